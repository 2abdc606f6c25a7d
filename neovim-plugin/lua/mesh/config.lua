---@brief
--- The plugin's options: defaults, validation and the merged result. Every other module
--- reads options through `require("mesh.config").get()`, so `setup()` may be called again
--- to change them.

local M = {}

---@class mesh.Config
---@field server string base URL of the mesh server
---@field name string your display name in rooms
---@field proxy string path or name of the `mesh-proxy` executable
---@field cmd? string[]|fun(dispatchers: table, config: table): table advanced: replaces the whole proxy command (tests run an in-process fake proxy this way)
---@field autostart boolean start the proxy for every eligible buffer, not only on `:Mesh share`/`:Mesh join`
---@field filetypes? string[] only these filetypes are bridged (nil: all)
---@field ignore string[] Lua patterns matched against a file's path relative to its workspace root; a match is not bridged
---@field root_markers string[] files or folders that mark a workspace root when the file is outside the current directory
---@field cursor_throttle_ms integer at most one local cursor update per this many milliseconds
---@field name_position "eol"|"inline"|"none" where remote participants' names are drawn
---@field chat_notify boolean show chat messages from others with `vim.notify` while the chat window is closed
---@field chat_height integer height of the chat split
---@field run_height integer height of the run output split
---@field run_open_others boolean show runs that others start in the output split (else only a notification)
---@field dap_configurations boolean add "debug this file together" to nvim-dap's python, c and cpp configurations
---@field debugger "auto"|"builtin"|"nvim-dap" which debugger client `:Mesh debug` uses ("auto": nvim-dap when installed, else the built-in one)
---@field debug_keys boolean map <F5>, <F9>, <F10>, … to the built-in debugger's commands (where you have not mapped them)

---@type mesh.Config
local defaults = {
  server = "http://127.0.0.1:7420",
  name = "",
  proxy = "mesh-proxy",
  cmd = nil,
  autostart = true,
  filetypes = nil,
  ignore = { "^%.git/" },
  root_markers = { ".git", ".mesh" },
  cursor_throttle_ms = 30,
  name_position = "eol",
  chat_notify = true,
  chat_height = 12,
  run_height = 12,
  run_open_others = true,
  dap_configurations = false,
  debugger = "auto",
  debug_keys = true,
}

---@type mesh.Config?
local current = nil

--- The display name used when none is configured: the login name, which is what people
--- expect to see of each other in a room, else a neutral word.
---@return string
local function default_name()
  local user = vim.env.USER or vim.env.USERNAME or vim.env.LOGNAME
  if user and user ~= "" then
    return user
  end
  return "neovim"
end

--- Raises an error naming the option when `value` is not of one of `types`. Written here
--- instead of using `vim.validate`, whose signature changed between Neovim 0.10 and 0.11.
---@param name string
---@param value any
---@param types string|string[]
---@param optional? boolean
local function check(name, value, types, optional)
  if value == nil and optional then
    return
  end
  types = type(types) == "table" and types or { types }
  if not vim.tbl_contains(types, type(value)) then
    error(("mesh: option `%s` must be a %s, got %s"):format(name, table.concat(types, " or "), vim.inspect(value)), 0)
  end
end

--- Checks `opts` and merges it over the defaults. Raises an error naming the first bad
--- option, because a silent fallback would leave a typo unnoticed.
---@param opts? table
---@return mesh.Config
function M.resolve(opts)
  opts = opts or {}
  check("opts", opts, "table")
  for key in pairs(opts) do
    if defaults[key] == nil and key ~= "cmd" and key ~= "filetypes" then
      error(("mesh: unknown option `%s` (see :help mesh-config)"):format(tostring(key)), 0)
    end
  end
  local cfg = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts)
  -- A list given by the user replaces the default list instead of being merged index by
  -- index, which is what a person writing `ignore = { ... }` means.
  for _, key in ipairs({ "ignore", "root_markers", "filetypes", "cmd" }) do
    if opts[key] ~= nil then
      cfg[key] = vim.deepcopy(opts[key])
    end
  end
  check("server", cfg.server, "string")
  check("name", cfg.name, "string")
  check("proxy", cfg.proxy, "string")
  check("cmd", cfg.cmd, { "table", "function" }, true)
  check("autostart", cfg.autostart, "boolean")
  check("filetypes", cfg.filetypes, "table", true)
  check("ignore", cfg.ignore, "table")
  check("root_markers", cfg.root_markers, "table")
  check("cursor_throttle_ms", cfg.cursor_throttle_ms, "number")
  if not vim.tbl_contains({ "eol", "inline", "none" }, cfg.name_position) then
    error('mesh: option `name_position` must be "eol", "inline" or "none"', 0)
  end
  check("chat_notify", cfg.chat_notify, "boolean")
  check("chat_height", cfg.chat_height, "number")
  check("run_height", cfg.run_height, "number")
  check("run_open_others", cfg.run_open_others, "boolean")
  check("dap_configurations", cfg.dap_configurations, "boolean")
  if not vim.tbl_contains({ "auto", "builtin", "nvim-dap" }, cfg.debugger) then
    error('mesh: option `debugger` must be "auto", "builtin" or "nvim-dap"', 0)
  end
  check("debug_keys", cfg.debug_keys, "boolean")
  if cfg.name == "" then
    cfg.name = default_name()
  end
  cfg.server = cfg.server:gsub("/+$", "")
  return cfg
end

--- Replaces the current options.
---@param opts? table
---@return mesh.Config
function M.set(opts)
  current = M.resolve(opts)
  return current
end

--- The current options; the defaults until `setup()` ran.
---@return mesh.Config
function M.get()
  if not current then
    current = M.resolve({})
  end
  return current
end

return M
