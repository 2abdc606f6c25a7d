---@brief
--- How `mesh-proxy` is started. This is the only place that knows its command line, so when
--- the proxy's interface changes (flags instead of environment variables, say) only this
--- file changes.

local M = {}

--- The command and environment that start the proxy as a Language Server on stdio. The
--- server URL and the display name travel as environment variables, which the proxy reads
--- in addition to its own configuration file.
---@param cfg mesh.Config
---@return string[]|function cmd
---@return table<string,string> env
function M.lsp_command(cfg)
  local env = {
    MESH_SERVER = cfg.server,
    MESH_NAME = cfg.name,
  }
  if cfg.cmd then
    return cfg.cmd, env
  end
  return { cfg.proxy, "lsp" }, env
end

--- The command and environment that start the proxy as a Debug Adapter on stdio for the
--- shared folder `root` (`mesh-proxy dap --folder ROOT`; the current directory when nil).
--- Same environment as the Language Server. `cmd` (the tests' in-process fake) does not
--- apply: nvim-dap starts a real executable.
---@param cfg mesh.Config
---@param root? string
---@return string[] cmd
---@return table<string,string> env
function M.dap_command(cfg, root)
  local _, env = M.lsp_command(cfg)
  local cmd = { cfg.proxy, "dap" }
  if root then
    vim.list_extend(cmd, { "--folder", root })
  end
  return cmd, env
end

--- The command that prints the proxy's version, for `:checkhealth mesh`.
---@param cfg mesh.Config
---@return string[]
function M.version_command(cfg)
  return { cfg.proxy, "--version" }
end

--- The absolute path of the proxy executable, or nil when it cannot be found. A configured
--- path is taken as it is; a bare name is looked up on PATH like the shell would.
---@param cfg mesh.Config
---@return string?
function M.executable(cfg)
  if vim.fn.executable(cfg.proxy) ~= 1 then
    return nil
  end
  local path = vim.fn.exepath(cfg.proxy)
  return path ~= "" and path or cfg.proxy
end

--- The message shown when the proxy cannot be started: what was looked for and how to fix it.
---@param cfg mesh.Config
---@return string
function M.missing_message(cfg)
  return (
    "mesh: cannot find the proxy `%s`. Install mesh-proxy and put it on PATH, or set "
    .. '`proxy = "/path/to/mesh-proxy"` in require("mesh").setup(). See :checkhealth mesh'
  ):format(cfg.proxy)
end

return M
