---@brief
--- The built-in debugger's window: a scratch buffer (`mesh://debug`) in a split that shows
--- the state, threads, the stack and the variables (`mesh.dap.view` makes the text), with
--- keys to step and to open variables; and showing the stopped line in the file's window.

local marks = require("mesh.dap.marks")
local view = require("mesh.dap.view")

local M = {}

local api = vim.api

--- The window's width when it opens (columns).
local WIDTH = 56

--- The buffer's name; one debugger window per Neovim.
M.NAME = "mesh://debug"

--- The window's keys: key → { action name (a function of `mesh.dap`), what it does }.
---@type { [1]: string, [2]: string, [3]: string }[]
M.KEYS = {
  { "<CR>", "activate", "open/close a variable, select a frame" },
  { "c", "continue", "continue" },
  { "n", "step_over", "step over" },
  { "s", "step_in", "step in" },
  { "o", "step_out", "step out" },
  { "p", "pause", "pause" },
  { "r", "restart", "restart the program" },
  { "e", "prompt_eval", "evaluate" },
  { "i", "prompt_input", "type a line into the program" },
  { "x", "stop", "stop debugging" },
  { "q", "close", "close this window" },
}

--- The hint at the bottom of the window.
---@return string
function M.keys_hint()
  return "<CR> open/select · c continue · n/s/o step over/in/out · p pause · r restart · e eval · i input · x stop · q close"
end

---@type integer?
local bufnr = nil
---@type table<integer, mesh.dap.ViewItem>
local items = {}

--- The debugger buffer, created with its keys on first use.
---@return integer
local function buffer()
  if bufnr and api.nvim_buf_is_valid(bufnr) then
    return bufnr
  end
  bufnr = api.nvim_create_buf(false, true)
  api.nvim_buf_set_name(bufnr, M.NAME)
  vim.bo[bufnr].buftype = "nofile"
  vim.bo[bufnr].bufhidden = "hide"
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].modifiable = false
  vim.bo[bufnr].filetype = "meshdebug"
  for _, k in ipairs(M.KEYS) do
    vim.keymap.set("n", k[1], function()
      require("mesh.dap")[k[2]]()
    end, { buffer = bufnr, nowait = true, desc = "mesh debug: " .. k[3] })
  end
  return bufnr
end

--- The window showing the debugger buffer, if any.
---@return integer?
function M.window()
  if not bufnr or not api.nvim_buf_is_valid(bufnr) then
    return nil
  end
  for _, win in ipairs(api.nvim_list_wins()) do
    if api.nvim_win_get_buf(win) == bufnr then
      return win
    end
  end
  return nil
end

--- Shows the window (a split on the right) without moving the cursor into it.
function M.open()
  if M.window() then
    return
  end
  local current = api.nvim_get_current_win()
  vim.cmd("botright " .. WIDTH .. "vsplit")
  local win = api.nvim_get_current_win()
  api.nvim_win_set_buf(win, buffer())
  vim.wo[win].number = false
  vim.wo[win].relativenumber = false
  vim.wo[win].signcolumn = "no"
  vim.wo[win].wrap = false
  vim.wo[win].winfixwidth = true
  if api.nvim_win_is_valid(current) then
    api.nvim_set_current_win(current)
  end
end

--- Closes the window (the session goes on).
function M.close()
  local win = M.window()
  if win and #api.nvim_list_wins() > 1 then
    api.nvim_win_close(win, true)
  end
end

--- Redraws the window's text from the session.
---@param session mesh.dap.Session
function M.render(session)
  local b = buffer()
  local lines
  lines, items = view.render(session, M.keys_hint())
  vim.bo[b].modifiable = true
  api.nvim_buf_set_lines(b, 0, -1, false, lines)
  vim.bo[b].modifiable = false
end

--- The item on the cursor's line of the debugger window, if the cursor is there.
---@return mesh.dap.ViewItem?
function M.item_under_cursor()
  if api.nvim_get_current_buf() ~= bufnr then
    return nil
  end
  return items[api.nvim_win_get_cursor(0)[1]]
end

--- The debugger buffer's lines, for tests and `:Mesh debug` status.
---@return string[]
function M.lines()
  if not bufnr or not api.nvim_buf_is_valid(bufnr) then
    return {}
  end
  return api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

--- A window to show a file in: one showing it already, else the current window unless it
--- is the debugger's, else any window of a normal buffer.
---@param path string
---@return integer
local function file_window(path)
  for _, win in ipairs(api.nvim_tabpage_list_wins(0)) do
    local name = api.nvim_buf_get_name(api.nvim_win_get_buf(win))
    if name ~= "" and vim.fs.normalize(name) == path then
      return win
    end
  end
  local current = api.nvim_get_current_win()
  if api.nvim_win_get_buf(current) ~= bufnr and vim.bo[api.nvim_win_get_buf(current)].buftype == "" then
    return current
  end
  for _, win in ipairs(api.nvim_tabpage_list_wins(0)) do
    if vim.bo[api.nvim_win_get_buf(win)].buftype == "" then
      return win
    end
  end
  return current
end

--- Shows where a frame is: its file in a window, the cursor and the current-line mark on its
--- line. A frame in a file that is not here (the container's standard library) only clears
--- the mark.
---@param frame? mesh.dap.StackFrame
function M.show_frame(frame)
  local path = frame and frame.source and frame.source.path
  if not path or vim.fn.filereadable(path) ~= 1 then
    marks.clear_current()
    return
  end
  path = vim.fs.normalize(path)
  local win = file_window(path)
  local b = vim.fn.bufnr(path)
  if b == -1 or api.nvim_win_get_buf(win) ~= b then
    api.nvim_win_call(win, function()
      pcall(vim.cmd, "keepjumps edit " .. vim.fn.fnameescape(path))
    end)
    b = api.nvim_win_get_buf(win)
  end
  marks.set_current(b, frame.line)
  local line = math.min(math.max(frame.line, 1), api.nvim_buf_line_count(b))
  pcall(api.nvim_win_set_cursor, win, { line, 0 })
end

return M
