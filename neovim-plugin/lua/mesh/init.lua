---@brief
--- mesh for Neovim: real-time collaboration through `mesh-proxy`, which Neovim runs as a
--- Language Server. This module is the public entry point: `setup()`, the statusline
--- component and a Lua function per `:Mesh` subcommand. `:help mesh` documents them.

local M = {}

local api = vim.api

local started = false

--- Buffer and cursor events that feed the proxy; created once, by `setup()` or by the first
--- `:Mesh` command.
local function create_autocmds()
  local group = api.nvim_create_augroup("mesh", { clear = true })
  local client = require("mesh.client")

  -- Bridge files as they are opened. Scheduled so that filetype detection (which also runs
  -- on these events) has run before the `filetypes` option is checked.
  api.nvim_create_autocmd({ "BufReadPost", "BufNewFile", "FileType" }, {
    group = group,
    callback = function(ev)
      vim.schedule(function()
        client.maybe_attach(ev.buf)
      end)
    end,
  })

  -- Remote cursors and shared breakpoints of a document that arrived before its buffer was
  -- loaded or shown.
  api.nvim_create_autocmd({ "BufWinEnter", "LspAttach" }, {
    group = group,
    callback = function(ev)
      require("mesh.cursors").render(ev.buf)
      require("mesh.breakpoints").render(ev.buf)
    end,
  })

  api.nvim_create_autocmd({ "CursorMoved", "CursorMovedI", "ModeChanged" }, {
    group = group,
    callback = function(ev)
      if ev.event ~= "ModeChanged" then
        require("mesh.follow").on_cursor_moved()
      end
      require("mesh.presence").cursor_moved()
    end,
  })

  api.nvim_create_autocmd({ "BufEnter", "WinScrolled" }, {
    group = group,
    callback = function()
      require("mesh.presence").view_changed()
    end,
  })

  api.nvim_create_autocmd("InsertEnter", {
    group = group,
    callback = function()
      require("mesh.follow").on_insert_enter()
    end,
  })

  api.nvim_create_autocmd("TextChanged", {
    group = group,
    callback = function(ev)
      require("mesh.follow").on_text_changed(ev.buf)
    end,
  })

  api.nvim_create_autocmd("ColorScheme", {
    group = group,
    callback = function()
      require("mesh.cursors").redefine_all()
      require("mesh.breakpoints").define()
    end,
  })
end

--- Wires the modules together once: what happens after remote edits and when a proxy exits.
local function start()
  if started then
    return
  end
  started = true
  local edits = require("mesh.edits")
  table.insert(edits.after_remote_edit, function(bufnr)
    require("mesh.follow").after_remote_edit(bufnr)
  end)
  table.insert(require("mesh.client").on_exit, function(client_id)
    require("mesh.status").clear(client_id)
    require("mesh.cursors").clear_client(client_id)
    require("mesh.breakpoints").clear_client(client_id)
    require("mesh.follow").forget(client_id)
    require("mesh.presence").forget(client_id)
    require("mesh.chat").forget(client_id)
    require("mesh.ghost").forget(client_id)
    require("mesh.run").forget(client_id)
  end)
  create_autocmds()
  -- Files that were open before mesh started.
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    require("mesh.client").maybe_attach(bufnr)
  end
end

--- Configures mesh (see `:help mesh-config`). Optional: without it mesh starts with the
--- defaults on the first `:Mesh` command. Calling it again changes the options; proxies
--- already running keep the server and name they were started with.
---@param opts? mesh.Config|table
function M.setup(opts)
  local ok, err = pcall(require("mesh.config").set, opts)
  if not ok then
    vim.notify(tostring(err), vim.log.levels.ERROR)
    return
  end
  start()
  -- With nvim-dap installed, `type = "mesh"` works in its configurations from now on;
  -- without it, the built-in debugger's keys are mapped (unless turned off).
  local debugging = require("mesh.debug")
  debugging.setup()
  local dap, err = debugging.backend()
  if not dap and not err and require("mesh.config").get().debug_keys then
    require("mesh.dap").map_default_keys()
  end
end

--- Starts mesh with the defaults unless `setup()` already ran (the `:Mesh` command calls it).
function M.ensure_started()
  start()
end

--- A statusline component: empty unless the current workspace is in a room, e.g.
--- "mesh · 3 people · following Ana". For `'statusline'`: `%{v:lua.require'mesh'.statusline()}`.
---@return string
function M.statusline()
  local c = require("mesh.client").current()
  if not c then
    return ""
  end
  return require("mesh.status").format(require("mesh.status").get(c.id), require("mesh.follow").following())
end

--- The last status of the current workspace's proxy (a copy), or nil when mesh is not
--- running for it. Scripts and tests read the room link from here.
---@return mesh.Status?
function M.status()
  local c = require("mesh.client").current()
  local status = c and require("mesh.status").get(c.id)
  return status and vim.deepcopy(status) or nil
end

--- Runs a `:Mesh` subcommand from Lua, e.g. `require("mesh").run("join " .. link)`.
---@param line string
function M.run(line, range)
  start()
  require("mesh.commands").run(line, range)
end

return M
