---@brief
--- Your own presence, sent to the proxy: the cursor and selection (`mesh/cursor`) as you
--- move, and the focused file with its visible lines (`mesh/activeEditor`) for people who
--- follow you. Both are throttled: at most one message per `cursor_throttle_ms`, and the
--- last position is always sent once movement stops.

local client = require("mesh.client")
local config = require("mesh.config")
local position = require("mesh.position")
local protocol = require("mesh.protocol")

local M = {}

local api = vim.api
local uv = vim.uv or vim.loop

--- A throttle that runs `fn` at once when it last ran long enough ago, else once when the
--- interval is over; calls in between are merged, and `fn` reads the state when it runs, so
--- the last position always goes out.
---@param fn fun()
---@return fun() trigger
function M.throttle(fn)
  local timer = nil
  local last = nil
  local function run()
    last = uv.now()
    local ok, err = pcall(fn)
    if not ok then
      vim.lsp.log.error("mesh: presence update failed", err)
    end
  end
  return function()
    local interval = config.get().cursor_throttle_ms
    -- uv.now() is the loop's cached time; refresh it so that bursts are measured right.
    uv.update_time()
    local now = uv.now()
    if not last or now - last >= interval then
      run()
      return
    end
    if timer then
      return
    end
    timer = uv.new_timer()
    timer:start(
      interval - (now - last),
      0,
      vim.schedule_wrap(function()
        if timer then
          timer:stop()
          timer:close()
          timer = nil
        end
        run()
      end)
    )
  end
end

--- The selections of a window in LSP terms. Normal and Insert mode give one empty selection
--- at the caret; Visual mode gives the selected text, with the character under the cursor
--- included as Vim shows it; Visual-line mode whole lines.
---@param bufnr integer
---@param win integer
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@return mesh.Selection[]
function M.selections(bufnr, win, encoding)
  local cursor = api.nvim_win_get_cursor(win)
  local head = { cursor[1] - 1, cursor[2] }
  local anchor = { head[1], head[2] }
  local mode = api.nvim_get_mode().mode
  local visual = win == api.nvim_get_current_win() and (mode:match("^[vV\22]") ~= nil)
  if visual then
    local v = vim.fn.getpos("v")
    anchor = { v[2] - 1, v[3] - 1 }
    local forward = anchor[1] < head[1] or (anchor[1] == head[1] and anchor[2] <= head[2])
    if mode:sub(1, 1) == "V" then
      if forward then
        anchor[2] = 0
        head[2] = #position.get_line(bufnr, head[1])
      else
        anchor[2] = #position.get_line(bufnr, anchor[1])
        head[2] = 0
      end
    elseif forward then
      head[2] = position.next_char(position.get_line(bufnr, head[1]), head[2])
    else
      anchor[2] = position.next_char(position.get_line(bufnr, anchor[1]), anchor[2])
    end
  end
  return {
    {
      anchor = position.from_buf(bufnr, anchor[1], anchor[2], encoding),
      head = position.from_buf(bufnr, head[1], head[2], encoding),
    },
  }
end

--- The last message sent per client and method, to skip repeats.
---@type table<integer, table<string, string>>
local last_sent = {}

---@param c vim.lsp.Client
---@param method string
---@param params table
local function send(c, method, params)
  if not c.initialized then
    return
  end
  local encoded = vim.json.encode(params)
  last_sent[c.id] = last_sent[c.id] or {}
  if last_sent[c.id][method] == encoded then
    return
  end
  last_sent[c.id][method] = encoded
  client.notify(c, method, params)
end

--- Sends the current window's cursor, if its buffer is bridged.
function M.send_cursor()
  local bufnr = api.nvim_get_current_buf()
  local c = client.for_buffer(bufnr)
  if not c then
    return
  end
  send(c, protocol.notify.cursor, {
    uri = vim.uri_from_bufnr(bufnr),
    selections = M.selections(bufnr, api.nvim_get_current_win(), c.offset_encoding),
  })
end

--- The visible range of a window in LSP terms.
---@param bufnr integer
---@param win integer
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@return mesh.Range
function M.visible_range(bufnr, win, encoding)
  local top, bottom = unpack(api.nvim_win_call(win, function()
    return { vim.fn.line("w0") - 1, vim.fn.line("w$") - 1 }
  end))
  local last = position.get_line(bufnr, bottom)
  return {
    start = { line = top, character = 0 },
    ["end"] = position.from_buf(bufnr, bottom, #last, encoding),
  }
end

--- Sends the focused file and its visible range. Entering a file outside every workspace
--- tells each proxy that you are elsewhere; special windows (help, chat, quickfix) leave
--- the last file standing, since you are still looking at it.
function M.send_active_editor()
  local bufnr = api.nvim_get_current_buf()
  local c = client.for_buffer(bufnr)
  if c then
    send(c, protocol.notify.active_editor, {
      uri = vim.uri_from_bufnr(bufnr),
      visibleRange = M.visible_range(bufnr, api.nvim_get_current_win(), c.offset_encoding),
    })
    return
  end
  if vim.bo[bufnr].buftype ~= "" then
    return
  end
  for _, other in ipairs(client.clients()) do
    send(other, protocol.notify.active_editor, { uri = vim.NIL })
  end
end

--- Forgets what was sent to a client that exited.
---@param client_id integer
function M.forget(client_id)
  last_sent[client_id] = nil
end

M.cursor_moved = M.throttle(M.send_cursor)
M.view_changed = M.throttle(M.send_active_editor)

return M
