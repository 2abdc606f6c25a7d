---@brief
--- Shared debugging. `mesh-proxy dap` is a Debug Adapter on stdio: it answers `initialize`,
--- turns `launch` into starting (or joining) the room's one debug session on the mesh
--- server, maps paths between this folder and the container, and forwards everything else.
--- The client is nvim-dap when it is installed (its breakpoints, stepping, scopes and REPL
--- drive the session every participant shares), else mesh's own small debugger
--- (`mesh.dap`); the `debugger` option picks one.
---
--- This module builds nvim-dap's adapter and configurations (pure functions, which the unit
--- tests check against a stub `dap` table), registers them, runs `:Mesh debug` and sends the
--- debugger commands (`:Mesh break`, `:Mesh continue`, …) to whichever client is in use.

local config = require("mesh.config")
local proxy = require("mesh.proxy")

local M = {}

--- The debug type (`dap.adapters.mesh`, `type = "mesh"` in configurations).
M.TYPE = "mesh"

--- The name of the configuration `:Mesh debug` runs.
M.NAME = "Mesh: Debug"

--- Neovim filetype → the mesh server's language id, for the languages the server debugs.
---@type table<string, string>
M.LANGUAGES = { python = "python", c = "c", cpp = "cpp" }

--- What to say when the `debugger` option asks for nvim-dap and it is missing.
M.NO_DAP = "mesh: the debugger option is \"nvim-dap\" but nvim-dap "
  .. "(https://github.com/mfussenegger/nvim-dap) is not installed. Install it, or set "
  .. 'debugger = "auto" to use mesh\'s built-in debugger (see :help mesh-debug)'

--- The room's debug session per LSP client, from `mesh/debugStarted`: its id is the run id
--- that the program's stdin goes to.
---@type table<integer, string>
local debug_ids = {}

---@class mesh.DapAdapter
---@field type "executable"
---@field command string
---@field args string[]
---@field options { env: table<string,string>, cwd?: string }

---@class mesh.DapConfiguration
---@field type string
---@field request "launch"
---@field name string
---@field program string
---@field language? string

--- nvim-dap's module, or nil when it is not installed.
---@return table?
function M.load_dap()
  local ok, dap = pcall(require, "dap")
  if ok and type(dap) == "table" then
    return dap
  end
  return nil
end

--- The folder `mesh-proxy dap` serves for `program`: its mesh workspace (the running proxy's
--- root, else the current directory or a root marker, as for editing), else its directory.
--- Without an absolute program, the current buffer's workspace or the current directory.
---@param program? string
---@return string
function M.folder_for(program)
  local client = require("mesh.client")
  local path = nil
  if type(program) == "string" and program ~= "" and not program:find("${", 1, true) then
    path = vim.fs.normalize(vim.fn.fnamemodify(program, ":p"))
  elseif vim.bo.buftype == "" and vim.api.nvim_buf_get_name(0) ~= "" then
    path = vim.fs.normalize(vim.api.nvim_buf_get_name(0))
  end
  local root = path and client.root_for_path(path)
  if root then
    return root
  end
  if path then
    return vim.fs.dirname(path)
  end
  return vim.fs.normalize(vim.fn.getcwd())
end

--- The nvim-dap adapter that starts `mesh-proxy dap --folder {root}`, with the server and
--- name in its environment on top of `base_env` (Neovim's environment when nil: nvim-dap
--- may pass `env` to the process as the whole environment).
---@param cfg mesh.Config
---@param root? string
---@param base_env? table<string,string>
---@return mesh.DapAdapter
function M.adapter(cfg, root, base_env)
  local cmd, env = proxy.dap_command(cfg, root)
  local options = { env = vim.tbl_extend("force", base_env or vim.fn.environ(), env) }
  if root then
    options.cwd = root
  end
  return {
    type = "executable",
    command = cmd[1],
    args = vim.list_slice(cmd, 2),
    options = options,
  }
end

--- `dap.adapters.mesh`: a function, so the folder follows the program being debugged (and
--- the options in force when it starts) instead of wherever Neovim was at setup time.
---@param callback fun(adapter: mesh.DapAdapter)
---@param dap_config table the configuration being run
function M.resolve_adapter(callback, dap_config)
  callback(M.adapter(config.get(), M.folder_for(dap_config and dap_config.program)))
end

--- The configuration that debugs `program` (language from `filetype` when mesh debugs it;
--- otherwise the server goes by the file's extension).
---@param program string
---@param filetype? string
---@return mesh.DapConfiguration
function M.configuration(program, filetype)
  local c = { type = M.TYPE, request = "launch", name = M.NAME, program = program }
  if filetype and M.LANGUAGES[filetype] then
    c.language = M.LANGUAGES[filetype]
  end
  return c
end

--- The entry added to `dap.configurations.{python,c,cpp}` with the `dap_configurations`
--- option: debug the current file in the room.
---@return mesh.DapConfiguration
function M.file_configuration()
  return { type = M.TYPE, request = "launch", name = "Mesh: debug this file together", program = "${file}" }
end

--- Registers the adapter in `dap`, and with `cfg.dap_configurations` a configuration per
--- language mesh debugs (once; the user's own configurations stay first).
---@param dap table nvim-dap's module (or a stub)
---@param cfg? mesh.Config
function M.register(dap, cfg)
  cfg = cfg or config.get()
  dap.adapters = dap.adapters or {}
  dap.adapters[M.TYPE] = M.resolve_adapter
  if not cfg.dap_configurations then
    return
  end
  dap.configurations = dap.configurations or {}
  local entry = M.file_configuration()
  local filetypes = vim.tbl_keys(M.LANGUAGES)
  table.sort(filetypes)
  for _, ft in ipairs(filetypes) do
    local list = dap.configurations[ft] or {}
    local present = false
    for _, c in ipairs(list) do
      if c.type == entry.type and c.name == entry.name then
        present = true
      end
    end
    if not present then
      list[#list + 1] = vim.deepcopy(entry)
    end
    dap.configurations[ft] = list
  end
end

--- Registers with nvim-dap when it is installed; says nothing otherwise (it is optional).
---@return boolean registered
function M.setup()
  local dap = M.load_dap()
  if not dap then
    return false
  end
  M.register(dap)
  return true
end

--- The file `:Mesh debug [file]` debugs and its filetype, or nil and what is wrong.
---@param arg string
---@return string? path
---@return string? filetype_or_error
function M.target(arg)
  arg = vim.trim(arg or "")
  if arg ~= "" then
    local path = vim.fs.normalize(vim.fn.fnamemodify(vim.fn.expand(arg), ":p"))
    if vim.fn.filereadable(path) ~= 1 then
      return nil, ("mesh: no such file: %s"):format(path)
    end
    return path, vim.filetype.match({ filename = path })
  end
  local name = vim.api.nvim_buf_get_name(0)
  if name == "" or vim.bo.buftype ~= "" then
    return nil, "mesh: which file? Open a file of the shared folder, or :Mesh debug {file}"
  end
  return vim.fs.normalize(name), vim.bo.filetype
end

--- What to tell the user when someone started a debug session in the room, or nil when
--- there is nothing to offer: this editor's own connection started it, or a mesh session of
--- nvim-dap is going here already (the starter's own one comes through its own
--- `mesh-proxy dap`, so `you` is false for it).
---@param params mesh.DebugStartedParams
---@param session_active boolean
---@return string?
function M.join_offer(params, session_active)
  if params.you == true or session_active then
    return nil
  end
  return ("mesh: %s started debugging %s; :Mesh debug to join"):format(
    tostring(params.byName or "someone"),
    tostring(params.path or "a file")
  )
end

--- Whether nvim-dap, when it is loaded already, has a `mesh` session going.
---@return boolean
local function mesh_session_active()
  local dap = package.loaded.dap
  local session = type(dap) == "table" and type(dap.session) == "function" and dap.session() or nil
  return type(session) == "table" and type(session.config) == "table" and session.config.type == M.TYPE
end

--- `mesh/debugStarted`: someone started a debug session in the room; says how to join it.
---@param params mesh.DebugStartedParams?
---@param client_id? integer
function M.on_started(params, client_id)
  if type(params) ~= "table" then
    return
  end
  if client_id and params.debugId ~= nil then
    debug_ids[client_id] = tostring(params.debugId)
  end
  local text = M.join_offer(params, M.session_active())
  if text then
    vim.notify(text, vim.log.levels.INFO)
  end
end

--- Which client debugs: nvim-dap's module, or nil for the built-in debugger; and an error
--- when the `debugger` option asks for nvim-dap and it is not installed.
---@param cfg? mesh.Config
---@return table? dap
---@return string? err
function M.backend(cfg)
  cfg = cfg or config.get()
  if cfg.debugger == "builtin" then
    return nil
  end
  local dap = M.load_dap()
  if not dap and cfg.debugger == "nvim-dap" then
    return nil, M.NO_DAP
  end
  return dap
end

--- `:Mesh debug [file]`: debugs `file` (default: the current buffer's) in the room's shared
--- debug session, through nvim-dap when it is in use, else the built-in debugger.
---@param arg string
function M.start(arg)
  local dap, err = M.backend()
  if err then
    vim.notify(err, vim.log.levels.ERROR)
    return
  end
  local program, filetype = M.target(arg)
  if not program then
    -- No file to name, but the room has a session going: join it (`attach` needs none).
    local c = vim.trim(arg or "") == "" and require("mesh.client").current() or nil
    if c and debug_ids[c.id] then
      if dap then
        M.register(dap)
        dap.run({ type = M.TYPE, request = "attach", name = M.NAME })
      else
        require("mesh.dap").start(config.get(), M.folder_for(nil), nil, nil)
      end
      return
    end
    vim.notify(filetype, vim.log.levels.ERROR)
    return
  end
  if dap then
    M.register(dap)
    dap.run(M.configuration(program, filetype))
    return
  end
  local c = M.configuration(program, filetype)
  require("mesh.dap").start(config.get(), M.folder_for(program), program, c.language)
end

--- The debugger commands, each for nvim-dap and for the built-in debugger. nvim-dap's
--- functions are looked up when called, so a stub or a newer nvim-dap works alike.
---@type table<string, { dap: fun(dap: table, arg: string), builtin: fun(arg: string) }>
M.actions = {
  ["break"] = {
    dap = function(dap, arg)
      dap.toggle_breakpoint(arg ~= "" and arg or nil)
    end,
    builtin = function(arg)
      require("mesh.dap").toggle_breakpoint(arg)
    end,
  },
  continue = {
    dap = function(dap)
      dap.continue()
    end,
    builtin = function()
      require("mesh.dap").continue()
    end,
  },
  step = {
    dap = function(dap, arg)
      local fn = ({ over = "step_over", ["in"] = "step_into", out = "step_out" })[arg ~= "" and arg or "over"]
      dap[fn]()
    end,
    builtin = function(arg)
      local fn = ({ over = "step_over", ["in"] = "step_in", out = "step_out" })[arg ~= "" and arg or "over"]
      require("mesh.dap")[fn]()
    end,
  },
  pause = {
    dap = function(dap)
      dap.pause()
    end,
    builtin = function()
      require("mesh.dap").pause()
    end,
  },
  restart = {
    dap = function(dap)
      dap.restart()
    end,
    builtin = function()
      require("mesh.dap").restart()
    end,
  },
  stop = {
    dap = function(dap)
      dap.terminate()
    end,
    builtin = function()
      require("mesh.dap").stop()
    end,
  },
  eval = {
    dap = function(dap, arg)
      dap.repl.open()
      dap.repl.execute(arg)
    end,
    builtin = function(arg)
      require("mesh.dap").eval(arg)
    end,
  },
  window = {
    dap = function(dap)
      dap.repl.toggle()
    end,
    builtin = function()
      require("mesh.dap").open()
    end,
  },
}

--- Runs a debugger command (`:Mesh break`, `:Mesh continue`, …) on the client in use.
---@param name string a key of `M.actions`
---@param arg? string
function M.action(name, arg)
  arg = vim.trim(arg or "")
  if name == "step" and arg ~= "" and not vim.tbl_contains({ "over", "in", "out" }, arg) then
    vim.notify(("mesh: step over, in or out? (:Mesh step [over|in|out]), not %q"):format(arg), vim.log.levels.ERROR)
    return
  end
  if name == "eval" and arg == "" then
    vim.notify("mesh: evaluate what? :Mesh eval {expression}", vim.log.levels.ERROR)
    return
  end
  local dap, err = M.backend()
  if err then
    vim.notify(err, vim.log.levels.ERROR)
    return
  end
  if dap then
    M.actions[name].dap(dap, arg)
  else
    M.actions[name].builtin(arg)
  end
end

--- Whether a debug session of this editor is going, in either client.
---@return boolean
function M.session_active()
  return mesh_session_active() or (package.loaded["mesh.dap"] ~= nil and require("mesh.dap").active())
end

--- `mesh/debugEnded`: forgets the session's id.
---@param client_id integer
---@param params mesh.DebugEndedParams?
function M.on_ended(client_id, params)
  local id = type(params) == "table" and params.debugId or nil
  if id == nil or debug_ids[client_id] == tostring(id) then
    debug_ids[client_id] = nil
  end
end

--- Types a line into the debugged program's stdin: a run input to the session's id, through
--- the room connection of the folder being debugged.
---@param text string
function M.input(text)
  local c = require("mesh.client").current()
  local root = package.loaded["mesh.dap"] and require("mesh.dap").root() or nil
  if root then
    c = require("mesh.client").client_for_path(root) or c
  end
  local id = c and debug_ids[c.id]
  if not c or not id then
    vim.notify("mesh: no debug session of this room is going; start one with :Mesh debug", vim.log.levels.WARN)
    return
  end
  require("mesh.run").input(c, id, text .. "\n", false)
end

return M
