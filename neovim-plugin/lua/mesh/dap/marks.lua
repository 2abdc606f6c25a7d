---@brief
--- What the built-in debugger draws in file buffers: your own breakpoints ("●", or "○" when
--- the debugger could not place one) and the line where the program stopped ("▶" with the
--- line highlighted). Breakpoints are extmarks, so they move with edits above them and the
--- lines sent to the debugger are always where the marks are now. The room's merged
--- breakpoints (everyone's) are drawn apart by `mesh.breakpoints` as "◆" at a lower
--- priority: a line with only a "◆" is someone else's breakpoint.

local M = {}

local api = vim.api

--- Namespace of your own breakpoints.
M.ns = api.nvim_create_namespace("mesh_debug_breakpoints")

--- Namespace of the current-line mark.
M.current_ns = api.nvim_create_namespace("mesh_debug_current")

M.SIGN = "●"
M.SIGN_REJECTED = "○"
M.SIGN_CURRENT = "▶"

M.HL = "MeshDebugBreakpoint"
M.HL_REJECTED = "MeshDebugBreakpointRejected"
M.HL_CURRENT = "MeshDebugCurrent"
M.HL_CURRENT_LINE = "MeshDebugCurrentLine"

-- Above the room's shared marks (15) so your own shows where both are; the current line
-- above both, as a stop on a breakpoint must show that it stopped.
local PRIORITY = 21
local CURRENT_PRIORITY = 30

--- Defines the highlight groups (again after `:highlight clear`); a colour scheme's win.
function M.define()
  api.nvim_set_hl(0, M.HL, { link = "DiagnosticError", default = true })
  api.nvim_set_hl(0, M.HL_REJECTED, { link = "Comment", default = true })
  api.nvim_set_hl(0, M.HL_CURRENT, { link = "DiagnosticWarn", default = true })
  api.nvim_set_hl(0, M.HL_CURRENT_LINE, { link = "Visual", default = true })
end

---@class mesh.dap.OwnBreakpoint
---@field condition? string
---@field verified? boolean nil until the debugger answered
---@field message? string why the debugger did not place it

--- Per buffer, per extmark id: what a breakpoint carries besides its line.
---@type table<integer, table<integer, mesh.dap.OwnBreakpoint>>
local meta = {}

---@param bufnr integer
---@param row integer 0-based
---@param bp mesh.dap.OwnBreakpoint
---@param id? integer
---@return integer
local function place(bufnr, row, bp, id)
  M.define()
  local rejected = bp.verified == false
  return api.nvim_buf_set_extmark(bufnr, M.ns, row, 0, {
    id = id,
    sign_text = rejected and M.SIGN_REJECTED or M.SIGN,
    sign_hl_group = rejected and M.HL_REJECTED or M.HL,
    priority = PRIORITY,
    -- A deleted line takes its breakpoint with it.
    invalidate = true,
    undo_restore = false,
  })
end

--- The breakpoints of a buffer, by line (1-based), sorted.
---@param bufnr integer
---@return { line: integer, id: integer, bp: mesh.dap.OwnBreakpoint }[]
function M.list(bufnr)
  bufnr = bufnr == 0 and api.nvim_get_current_buf() or bufnr
  local out = {}
  if not api.nvim_buf_is_valid(bufnr) then
    return out
  end
  local seen = {}
  for _, m in ipairs(api.nvim_buf_get_extmarks(bufnr, M.ns, 0, -1, { details = true })) do
    local id, row, details = m[1], m[2], m[4]
    local bp = (meta[bufnr] or {})[id]
    -- Two marks pushed onto one line by an edit count once.
    if bp and not details.invalid and not seen[row] then
      seen[row] = true
      out[#out + 1] = { line = row + 1, id = id, bp = bp }
    end
  end
  table.sort(out, function(a, b)
    return a.line < b.line
  end)
  return out
end

--- The buffer's breakpoints as DAP's `SourceBreakpoint`s.
---@param bufnr integer
---@return mesh.dap.SourceBreakpoint[]
function M.source_breakpoints(bufnr)
  return vim.tbl_map(function(e)
    return { line = e.line, condition = e.bp.condition }
  end, M.list(bufnr))
end

--- Toggles a breakpoint on a line; with a condition, sets (or replaces) a conditional one.
---@param bufnr integer
---@param line integer 1-based
---@param condition? string
---@return boolean set whether the line has a breakpoint now
function M.toggle(bufnr, line, condition)
  bufnr = bufnr == 0 and api.nvim_get_current_buf() or bufnr
  meta[bufnr] = meta[bufnr] or {}
  condition = condition and vim.trim(condition) ~= "" and vim.trim(condition) or nil
  for _, e in ipairs(M.list(bufnr)) do
    if e.line == line then
      api.nvim_buf_del_extmark(bufnr, M.ns, e.id)
      meta[bufnr][e.id] = nil
      if not condition then
        return false
      end
    end
  end
  local bp = { condition = condition }
  local id = place(bufnr, line - 1, bp)
  meta[bufnr][id] = bp
  return true
end

--- Records the debugger's answer to a buffer's breakpoints (in the order they were sent)
--- and redraws the rejected ones as such.
---@param bufnr integer
---@param sent { line: integer, id: integer }[] what `list` returned when they were sent
---@param results mesh.dap.Breakpoint[]
function M.set_results(bufnr, sent, results)
  for i, e in ipairs(sent) do
    local bp = (meta[bufnr] or {})[e.id]
    local r = results[i]
    if bp and r then
      bp.verified = r.verified ~= false
      bp.message = r.message
      local pos = api.nvim_buf_get_extmark_by_id(bufnr, M.ns, e.id, {})
      if pos[1] then
        place(bufnr, pos[1], bp, e.id)
      end
    end
  end
end

--- Every loaded buffer holding breakpoints, by its file's path.
---@return table<string, integer>
function M.buffers()
  local out = {}
  for bufnr in pairs(meta) do
    if api.nvim_buf_is_valid(bufnr) and api.nvim_buf_get_name(bufnr) ~= "" and #M.list(bufnr) > 0 then
      out[vim.fs.normalize(api.nvim_buf_get_name(bufnr))] = bufnr
    end
  end
  return out
end

--- Marks the debugger's answers as unknown again (a new session will answer anew).
function M.reset_results()
  for bufnr, entries in pairs(meta) do
    for _, bp in pairs(entries) do
      bp.verified, bp.message = nil, nil
    end
    for _, e in ipairs(M.list(bufnr)) do
      place(bufnr, e.line - 1, e.bp, e.id)
    end
  end
end

--- Removes every breakpoint of every buffer.
function M.clear_all()
  for bufnr in pairs(meta) do
    if api.nvim_buf_is_valid(bufnr) then
      api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
    end
  end
  meta = {}
end

--- Draws the current-line mark on `line` of `bufnr` (and nowhere else).
---@param bufnr integer
---@param line integer 1-based
function M.set_current(bufnr, line)
  M.clear_current()
  if not api.nvim_buf_is_valid(bufnr) or line < 1 or line > api.nvim_buf_line_count(bufnr) then
    return
  end
  M.define()
  api.nvim_buf_set_extmark(bufnr, M.current_ns, line - 1, 0, {
    sign_text = M.SIGN_CURRENT,
    sign_hl_group = M.HL_CURRENT,
    line_hl_group = M.HL_CURRENT_LINE,
    priority = CURRENT_PRIORITY,
  })
end

--- Takes the current-line mark away.
function M.clear_current()
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) then
      api.nvim_buf_clear_namespace(bufnr, M.current_ns, 0, -1)
    end
  end
end

--- Where the current-line mark is: `{ bufnr, line }` (1-based), or nil.
---@return { bufnr: integer, line: integer }?
function M.current()
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) then
      local marks = api.nvim_buf_get_extmarks(bufnr, M.current_ns, 0, -1, {})
      if marks[1] then
        return { bufnr = bufnr, line = marks[1][2] + 1 }
      end
    end
  end
  return nil
end

return M
