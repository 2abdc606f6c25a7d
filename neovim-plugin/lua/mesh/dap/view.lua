---@brief
--- The debugger window's text, sans-IO: a session's state in, the lines to show and what
--- each line stands for out (a frame to jump to, a reference to open or close). The window
--- (`mesh.dap.ui`) only draws these lines and acts on the item under the cursor.

local M = {}

--- Variables nested deeper than this are not drawn: a cyclic structure would otherwise
--- grow the window each time someone opens one more level.
M.MAX_DEPTH = 8

--- A value longer than this is cut (with "…"): one line per variable keeps the window usable.
M.MAX_VALUE_CHARS = 120

---@class mesh.dap.ViewItem
---@field kind "frame"|"ref"|"thread"
---@field index? integer a frame's index
---@field ref? integer a scope's or variable's `variablesReference`
---@field id? integer a thread's id

---@param s string
---@return string
local function one_line(s)
  s = tostring(s):gsub("[\r\n]+", " ")
  if vim.fn.strchars(s) > M.MAX_VALUE_CHARS then
    s = vim.fn.strcharpart(s, 0, M.MAX_VALUE_CHARS) .. "…"
  end
  return s
end

--- The file name and line a frame shows, e.g. "app.py:12".
---@param frame mesh.dap.StackFrame
---@return string
function M.frame_location(frame)
  local source = frame.source or {}
  local name = source.name or (source.path and vim.fs.basename(source.path)) or "?"
  return ("%s:%d"):format(name, frame.line or 0)
end

--- The first line: what the program is doing.
---@param session mesh.dap.Session
---@return string
function M.headline(session)
  if session.state == "starting" then
    return "◌ starting the debug session…"
  elseif session.state == "running" then
    return "▷ running"
  elseif session.state == "stopped" then
    local stop = session.stop or {}
    local reason = stop.description or stop.reason or "stopped"
    -- Where the program stopped, whichever frame is selected for inspection.
    local frame = session.frames[1]
    local where = frame and (" at " .. M.frame_location(frame)) or ""
    return ("⏸ %s%s"):format(one_line(reason), where)
  end
  local tail = session.exit_code and (" (exit %d)"):format(session.exit_code) or ""
  return "■ ended" .. tail .. (session.ended_because and (": " .. one_line(session.ended_because)) or "")
end

--- The lines of the window and, for each line that stands for something, what.
---@param session mesh.dap.Session
---@param keys_hint? string the last line: the window's keys
---@return string[] lines
---@return table<integer, mesh.dap.ViewItem> items by 1-based line
function M.render(session, keys_hint)
  local lines, items = { M.headline(session) }, {}
  local function add(text, item)
    lines[#lines + 1] = text
    if item then
      items[#lines] = item
    end
  end

  if #session.threads > 0 then
    add("")
    add("Threads")
    for _, t in ipairs(session.threads) do
      local mark = t.id == session.thread_id and "*" or " "
      add(("  %s %s %s"):format(mark, tostring(t.id), one_line(t.name or "")), { kind = "thread", id = t.id })
    end
  end

  if #session.frames > 0 then
    add("")
    add("Stack")
    for i, f in ipairs(session.frames) do
      local mark = i == session.frame_index and ">" or " "
      add(("  %s %s  %s"):format(mark, one_line(f.name or "?"), M.frame_location(f)), { kind = "frame", index = i })
    end
  end

  if #session.scopes > 0 then
    add("")
    add("Variables")
    local function variables(ref, depth)
      for _, v in ipairs(session.variables[ref] or {}) do
        local indent = string.rep("  ", depth + 1)
        local open = v.variablesReference > 0 and (session.expanded[v.variablesReference] and "▾ " or "▸ ") or "  "
        local typ = (v.type and v.type ~= "") and ("  (" .. one_line(v.type) .. ")") or ""
        local item = v.variablesReference > 0 and { kind = "ref", ref = v.variablesReference } or nil
        add(("%s%s%s = %s%s"):format(indent, open, one_line(v.name), one_line(v.value), typ), item)
        if item and session.expanded[item.ref] and depth + 1 < M.MAX_DEPTH then
          variables(item.ref, depth + 1)
        end
      end
    end
    for _, scope in ipairs(session.scopes) do
      local open = session.expanded[scope.variablesReference] and "▾ " or "▸ "
      add("  " .. open .. one_line(scope.name), { kind = "ref", ref = scope.variablesReference })
      if session.expanded[scope.variablesReference] then
        variables(scope.variablesReference, 1)
      end
    end
  end

  if keys_hint then
    add("")
    add(keys_hint)
  end
  return lines, items
end

return M
