---@brief
--- The proxy's life as a Neovim LSP client: which buffers are bridged, which workspace root
--- each belongs to (one client per root), starting the proxy, waiting until it is ready, and
--- reporting its failures in words.

local compat = require("mesh.compat")
local config = require("mesh.config")
local proxy = require("mesh.proxy")

local M = {}

local api = vim.api

--- The LSP client name; also how the plugin finds its clients among others.
M.NAME = "mesh"

--- Callbacks waiting for a client to finish `initialize`, by client id.
---@type table<integer, (fun(client: vim.lsp.Client?, err: string?))[]>
local waiting = {}

--- Clients the plugin itself is stopping, whose exit is not worth a warning.
---@type table<integer, boolean>
local stopping = {}

--- Functions run when a client exits, with its id (other modules forget its state).
---@type (fun(client_id: integer))[]
M.on_exit = {}

--- Lets `M.start` report a missing proxy only once per session when it is called for every
--- buffer, while explicit commands report it each time.
local told_missing = false

---@param path string
---@return string
local function normalize(path)
  local out = vim.fs.normalize(vim.fn.fnamemodify(path, ":p")):gsub("(.)/$", "%1")
  return out
end

--- True when `path` is `root` or inside it.
---@param path string
---@param root string
---@return boolean
function M.is_under(path, root)
  if root == "/" then
    return path:sub(1, 1) == "/"
  end
  return path == root or path:sub(1, #root + 1) == root .. "/"
end

--- Folders too broad to share by accident: the file system root and your home folder.
---@param dir string
---@return boolean
function M.too_broad(dir)
  local home = vim.env.HOME and normalize(vim.env.HOME) or nil
  return dir == "/" or dir == home
end

--- All running mesh clients.
---@return vim.lsp.Client[]
function M.clients()
  return vim.lsp.get_clients({ name = M.NAME })
end

--- The mesh client whose workspace holds `path`, if one runs (the innermost root wins).
---@param path string
---@return vim.lsp.Client?
function M.client_for_path(path)
  local best = nil
  for _, client in ipairs(M.clients()) do
    local root = client.root_dir and normalize(client.root_dir)
    if root and M.is_under(path, root) and (not best or #root > #normalize(best.root_dir)) then
      best = client
    end
  end
  return best
end

--- The workspace root of a file: the current directory when the file is inside it (that is
--- the project a Neovim user is working on), else the nearest folder with one of the
--- `root_markers`. Never your home folder or `/`, which are far too broad to share.
---@param path string absolute path
---@return string?
function M.root_for_path(path)
  local cfg = config.get()
  local running = M.client_for_path(path)
  if running then
    return normalize(running.root_dir)
  end
  local cwd = normalize(vim.fn.getcwd())
  if M.is_under(path, cwd) and not M.too_broad(cwd) then
    return cwd
  end
  local root = vim.fs.root(path, cfg.root_markers)
  if root and not M.too_broad(normalize(root)) then
    return normalize(root)
  end
  return nil
end

--- The root a buffer is bridged under, or nil when it is not bridged: special buffers,
--- buffers without a file, URLs, binary files, filetypes not enabled, ignored paths.
---@param bufnr integer
---@return string?
function M.eligible_root(bufnr)
  if not api.nvim_buf_is_valid(bufnr) or not api.nvim_buf_is_loaded(bufnr) then
    return nil
  end
  local bo = vim.bo[bufnr]
  if bo.buftype ~= "" or bo.binary then
    return nil
  end
  local name = api.nvim_buf_get_name(bufnr)
  if name == "" or name:match("^%a[%w+.-]*://") then
    return nil
  end
  local cfg = config.get()
  if cfg.filetypes and not vim.tbl_contains(cfg.filetypes, bo.filetype) then
    return nil
  end
  local path = normalize(name)
  local root = M.root_for_path(path)
  if not root then
    return nil
  end
  local rel = path:sub(#root + 2)
  for _, pattern in ipairs(cfg.ignore) do
    if rel:match(pattern) then
      return nil
    end
  end
  return root
end

--- The mesh client a buffer is attached to, if any.
---@param bufnr? integer
---@return vim.lsp.Client?
function M.for_buffer(bufnr)
  return vim.lsp.get_clients({ name = M.NAME, bufnr = bufnr or api.nvim_get_current_buf() })[1]
end

--- The client that commands act on: the current buffer's, else the one whose workspace
--- holds the current directory, else the only one running.
---@return vim.lsp.Client?
function M.current()
  local client = M.for_buffer()
  if client then
    return client
  end
  client = M.client_for_path(normalize(vim.fn.getcwd()))
  if client then
    return client
  end
  local all = M.clients()
  return #all == 1 and all[1] or nil
end

---@param client_id integer
---@param client vim.lsp.Client?
---@param err string?
local function release(client_id, client, err)
  local callbacks = waiting[client_id] or {}
  waiting[client_id] = nil
  for _, cb in ipairs(callbacks) do
    cb(client, err)
  end
end

--- The client configuration for a workspace root.
---@param root string
---@return vim.lsp.ClientConfig
function M.client_config(root)
  local cfg = config.get()
  local cmd, env = proxy.lsp_command(cfg)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.general = capabilities.general or {}
  -- Offer every encoding: the proxy then picks UTF-8, Neovim's own, and no conversion
  -- happens on either side for the common case.
  capabilities.general.positionEncodings = { "utf-8", "utf-16", "utf-32" }
  capabilities.workspace = capabilities.workspace or {}
  capabilities.workspace.applyEdit = true
  return {
    name = M.NAME,
    cmd = cmd,
    cmd_env = env,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = vim.fs.basename(root) } },
    capabilities = capabilities,
    -- Every keystroke must reach the proxy at once: the default 150 ms debounce would let
    -- remote edits arrive against text the proxy has not seen yet.
    flags = { debounce_text_changes = 0 },
    handlers = require("mesh.handlers").table(),
    on_init = function(client, result)
      local mesh = vim.tbl_get(result or {}, "capabilities", "experimental", "mesh")
      if type(mesh) ~= "table" then
        vim.notify(
          ("mesh: %s answered `initialize` without mesh's extensions; is it mesh-proxy?"):format(
            type(cmd) == "table" and cmd[1] or "the proxy"
          ),
          vim.log.levels.WARN
        )
      end
      release(client.id, client, nil)
    end,
    on_exit = function(code, signal, client_id)
      vim.schedule(function()
        release(client_id, nil, ("mesh-proxy exited (code %s) before it was ready"):format(code))
        for _, fn in ipairs(M.on_exit) do
          pcall(fn, client_id)
        end
        if not stopping[client_id] and (code ~= 0 or (signal or 0) ~= 0) then
          vim.notify(
            ("mesh: mesh-proxy stopped unexpectedly (exit code %s, signal %s); its messages are in :LspLog"):format(
              code,
              signal
            ),
            vim.log.levels.ERROR
          )
        end
        stopping[client_id] = nil
      end)
    end,
  }
end

--- Whether the proxy can be started at all; reports why not.
---@param quiet boolean report a missing proxy only once per session
---@return boolean
local function can_start(quiet)
  local cfg = config.get()
  if cfg.cmd or proxy.executable(cfg) then
    return true
  end
  if not quiet or not told_missing then
    told_missing = true
    vim.notify(proxy.missing_message(cfg), vim.log.levels.ERROR)
  end
  return false
end

--- Starts the client for `root` (or reuses the running one) and attaches `bufnr` to it
--- when given.
---@param root string
---@param bufnr? integer
---@param quiet? boolean
---@return vim.lsp.Client?
function M.start(root, bufnr, quiet)
  local existing = nil
  for _, client in ipairs(M.clients()) do
    if client.root_dir and normalize(client.root_dir) == root then
      existing = client
    end
  end
  if existing then
    if bufnr and not vim.lsp.buf_is_attached(bufnr, existing.id) then
      vim.lsp.buf_attach_client(bufnr, existing.id)
    end
    return existing
  end
  if not can_start(quiet or false) then
    return nil
  end
  local client_config = M.client_config(root)
  local id
  if bufnr then
    id = vim.lsp.start(client_config, {
      bufnr = bufnr,
      silent = quiet,
      reuse_client = function(client, conf)
        return client.name == conf.name and client.root_dir == conf.root_dir
      end,
    })
  else
    id = compat.start_detached(client_config)
  end
  local client = id and vim.lsp.get_client_by_id(id) or nil
  if client then
    require("mesh.edits").sync_fix(client)
    -- Files of this workspace opened before the proxy started join it now.
    for _, other in ipairs(api.nvim_list_bufs()) do
      if other ~= bufnr and M.eligible_root(other) == root then
        vim.lsp.buf_attach_client(other, client.id)
      end
    end
  end
  return client
end

--- Called for buffer events: bridges the buffer when it belongs to a workspace and mesh
--- starts automatically, or when the proxy for its workspace already runs.
---@param bufnr integer
function M.maybe_attach(bufnr)
  local root = M.eligible_root(bufnr)
  if not root then
    return
  end
  local cfg = config.get()
  local running = M.client_for_path(root)
  if cfg.autostart or running then
    M.start(root, bufnr, true)
  end
end

--- Runs `cb` with the client once it has finished `initialize`, or with an error message.
---@param client vim.lsp.Client
---@param cb fun(client: vim.lsp.Client?, err: string?)
function M.when_ready(client, cb)
  if client.initialized then
    cb(client, nil)
    return
  end
  waiting[client.id] = waiting[client.id] or {}
  table.insert(waiting[client.id], cb)
end

--- The client for the current buffer's workspace, started if needed (for `:Mesh share` and
--- `:Mesh join`), once it is ready. The workspace is the current file's, else the current
--- directory.
---@param cb fun(client: vim.lsp.Client)
function M.ensure_current(cb)
  local bufnr = api.nvim_get_current_buf()
  local root = M.eligible_root(bufnr)
  local attach = root and bufnr or nil
  if not root then
    root = normalize(vim.fn.getcwd())
    if M.too_broad(root) then
      vim.notify(("mesh: %s is too broad to share; :cd into a project folder first"):format(root), vim.log.levels.ERROR)
      return
    end
  end
  local client = M.start(root, attach, false)
  if not client then
    return
  end
  M.when_ready(client, function(ready, err)
    if not ready then
      vim.notify("mesh: " .. (err or "mesh-proxy did not start"), vim.log.levels.ERROR)
      return
    end
    cb(ready)
  end)
end

--- Sends a request and calls `cb` with its result; a JSON-RPC error is shown to the user as
--- it is (the proxy writes its messages for people) and `cb` is not called.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@param cb? fun(result: any)
function M.request(client, method, params, cb)
  local sent = compat.request(client, method, params, function(err, result)
    if err then
      local message = type(err) == "table" and err.message or tostring(err)
      vim.notify("mesh: " .. tostring(message), vim.log.levels.ERROR)
      return
    end
    if cb then
      local ok, failure = pcall(cb, result)
      if not ok then
        vim.notify(("mesh: could not handle the answer to %s: %s"):format(method, failure), vim.log.levels.ERROR)
      end
    end
  end)
  if not sent then
    vim.notify(("mesh: could not send %s; mesh-proxy is not running"):format(method), vim.log.levels.ERROR)
  end
end

--- Sends a notification; silently skipped when the client is gone.
---@param client vim.lsp.Client
---@param method string
---@param params table
function M.notify(client, method, params)
  if compat.is_stopped(client) then
    return
  end
  pcall(compat.notify, client, method, params)
end

--- Stops a client without the "stopped unexpectedly" warning.
---@param client vim.lsp.Client
function M.stop(client)
  stopping[client.id] = true
  compat.stop(client)
end

return M
