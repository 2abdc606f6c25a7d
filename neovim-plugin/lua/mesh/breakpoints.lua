---@brief
--- The room's breakpoints during a shared debug session, shown as signs ("◆") in every
--- loaded buffer of their file, whether or not this editor attached to the session. The
--- server merges everyone's breakpoints per file and `mesh/debugBreakpoints` carries the full
--- set for one file, so each update redraws that file's buffers from scratch;
--- `mesh/debugEnded` (or the proxy exiting) takes the marks away. The marks are extmarks in
--- their own namespace, so they never touch nvim-dap's own signs.

local M = {}

local api = vim.api

--- The namespace of every shared breakpoint mark.
M.ns = api.nvim_create_namespace("mesh_breakpoints")

--- The sign text of a shared breakpoint.
M.SIGN = "◆"

--- The highlight group of the sign.
M.HL = "MeshBreakpoint"

-- Below nvim-dap's own breakpoint signs (priority 21 by default), so your own breakpoint
-- still shows where both are set; above diagnostics' signs (10).
local PRIORITY = 15

---@class mesh.SharedBreakpoints
---@field client_id integer
---@field debug_id string
---@field path string the room path
---@field lines integer[] 1-based

--- The latest `mesh/debugBreakpoints` per file, keyed by client id and room path.
---@type table<string, mesh.SharedBreakpoints>
local by_file = {}

--- Defines the highlight group (again after `:highlight clear`); a colour scheme's own
--- `MeshBreakpoint` wins.
function M.define()
  api.nvim_set_hl(0, M.HL, { link = "DiagnosticInfo", default = true })
end

---@param client_id integer
---@param path string
---@return string
local function key(client_id, path)
  return client_id .. "\0" .. path
end

--- The local file URI of an entry's room path: under its client's workspace root.
---@param entry mesh.SharedBreakpoints
---@return string?
local function uri_of(entry)
  local client = vim.lsp.get_client_by_id(entry.client_id)
  if not client or type(client.root_dir) ~= "string" then
    return nil
  end
  return vim.uri_from_fname(vim.fs.normalize(client.root_dir .. "/" .. entry.path))
end

--- The loaded buffer of an entry's file, if any.
---@param entry mesh.SharedBreakpoints
---@return integer?
local function buffer_of(entry)
  return require("mesh.edits").loaded_buffer(entry.uri or uri_of(entry))
end

--- Redraws the shared breakpoints of one buffer.
---@param bufnr integer
function M.render(bufnr)
  if not api.nvim_buf_is_valid(bufnr) or not api.nvim_buf_is_loaded(bufnr) then
    return
  end
  api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  local line_count = api.nvim_buf_line_count(bufnr)
  for _, entry in pairs(by_file) do
    if buffer_of(entry) == bufnr then
      M.define()
      for _, line in ipairs(entry.lines) do
        -- A line past the end (the file changed since) is not drawn rather than moved.
        if line >= 1 and line <= line_count then
          api.nvim_buf_set_extmark(bufnr, M.ns, line - 1, 0, {
            sign_text = M.SIGN,
            sign_hl_group = M.HL,
            priority = PRIORITY,
          })
        end
      end
    end
  end
end

--- Clears an entry's marks from its buffer and forgets it.
---@param k string
local function drop(k)
  local entry = by_file[k]
  by_file[k] = nil
  local bufnr = entry and buffer_of(entry)
  if bufnr then
    M.render(bufnr)
  end
end

--- `mesh/debugBreakpoints`: the room's breakpoints in one file changed.
---@param client_id integer
---@param params mesh.DebugBreakpointsParams?
function M.on_breakpoints(client_id, params)
  if type(params) ~= "table" or type(params.path) ~= "string" or type(params.lines) ~= "table" then
    return
  end
  local k = key(client_id, params.path)
  local lines = vim.tbl_filter(function(l)
    return type(l) == "number"
  end, params.lines)
  -- The old set goes first: the file may be spelled differently this time.
  drop(k)
  if #lines > 0 then
    by_file[k] = {
      client_id = client_id,
      debug_id = tostring(params.debugId),
      path = params.path,
      uri = type(params.uri) == "string" and params.uri or nil,
      lines = lines,
    }
    local bufnr = buffer_of(by_file[k])
    if bufnr then
      M.render(bufnr)
    end
  end
end

--- `mesh/debugEnded`: the session is over; its marks go.
---@param client_id integer
---@param params mesh.DebugEndedParams?
function M.on_ended(client_id, params)
  local debug_id = type(params) == "table" and params.debugId or nil
  for k, entry in pairs(by_file) do
    if entry.client_id == client_id and (debug_id == nil or entry.debug_id == tostring(debug_id)) then
      drop(k)
    end
  end
end

--- Forgets a client's marks (its proxy exited) and wipes them off the screen.
---@param client_id integer
function M.clear_client(client_id)
  for k, entry in pairs(by_file) do
    if entry.client_id == client_id then
      drop(k)
    end
  end
end

--- The 1-based lines marked in a buffer, sorted, for tests and debugging.
---@param bufnr integer
---@return integer[]
function M.lines(bufnr)
  local out = {}
  for _, m in ipairs(api.nvim_buf_get_extmarks(bufnr, M.ns, 0, -1, {})) do
    out[#out + 1] = m[2] + 1
  end
  table.sort(out)
  return out
end

return M
