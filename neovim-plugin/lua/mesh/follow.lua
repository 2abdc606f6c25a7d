---@brief
--- Follow mode: your view goes where another participant's goes, until you act on your own.
---
--- How "on your own" is told apart from the plugin's moves: after each move the plugin
--- records where it put the caret (window, buffer, position). Neovim fires `CursorMoved`
--- later, from its main loop, so a flag set around the move would already be cleared; a
--- recorded position is not. A `CursorMoved` that finds the caret anywhere else was the user
--- (remote edits shift the caret too, so the record is refreshed after each of them). Any
--- `InsertEnter` in a file, and any `TextChanged` whose b:changedtick is not the one a remote
--- edit left, also stop following. Special windows (the chat, help) are exempt, so you can
--- chat while following.

local client = require("mesh.client")
local position = require("mesh.position")
local protocol = require("mesh.protocol")

local M = {}

local api = vim.api

---@class mesh.Following
---@field client_id integer
---@field conn_id integer
---@field name string

---@type mesh.Following?
local following = nil

--- Where the plugin last put the caret while following.
---@type { win: integer, buf: integer, cursor: integer[] }?
local expected = nil

--- The name of the person followed, or nil.
---@return string?
function M.following()
  return following and following.name or nil
end

--- Finds a participant by name: an exact match (ignoring case) first, else the only one
--- whose name starts with `query`.
---@param participants mesh.Participant[]
---@param query string
---@return mesh.Participant? found
---@return string? error
function M.find(participants, query)
  local q = vim.trim(query):lower()
  if q == "" then
    return nil, "whom to follow? :Mesh follow {name}"
  end
  local exact, prefix = {}, {}
  for _, p in ipairs(participants) do
    local name = tostring(p.name or ""):lower()
    if name == q then
      exact[#exact + 1] = p
    elseif name:sub(1, #q) == q then
      prefix[#prefix + 1] = p
    end
  end
  local matches = #exact > 0 and exact or prefix
  if #matches == 1 then
    return matches[1]
  end
  local names = vim.tbl_map(function(p)
    return tostring(p.name)
  end, participants)
  if #matches == 0 then
    return nil,
      ("nobody called %q is in the room (%s)"):format(
        query,
        #names > 0 and table.concat(names, ", ") or "nobody else is"
      )
  end
  return nil,
    ("%q matches %d people (%s); type more of the name"):format(
      query,
      #matches,
      table.concat(
        vim.tbl_map(function(p)
          return tostring(p.name)
        end, matches),
        ", "
      )
    )
end

--- Remembers where the caret of the followed view is now.
---@param win integer
local function record(win)
  expected = { win = win, buf = api.nvim_win_get_buf(win), cursor = api.nvim_win_get_cursor(win) }
end

--- Stops following on this side, optionally telling the proxy, and says so.
---@param why string
---@param tell_proxy boolean
function M.stop_local(why, tell_proxy)
  if not following then
    return
  end
  local was = following
  following, expected = nil, nil
  if tell_proxy then
    local c = vim.lsp.get_client_by_id(was.client_id)
    if c then
      client.notify(c, protocol.notify.stop_following, vim.empty_dict())
    end
  end
  vim.notify(("mesh: stopped following %s (%s)"):format(was.name, why), vim.log.levels.INFO)
  vim.cmd("redrawstatus")
end

--- `:Mesh follow {name}`.
---@param c vim.lsp.Client
---@param query string
function M.start(c, query)
  client.request(c, protocol.request.status, vim.empty_dict(), function(status)
    require("mesh.status").set(c.id, status)
    local person, err = M.find(require("mesh.status").others(status), query)
    if not person then
      vim.notify("mesh: " .. err, vim.log.levels.ERROR)
      return
    end
    client.request(c, protocol.request.follow, { connId = person.connId }, function()
      following = { client_id = c.id, conn_id = person.connId, name = tostring(person.name) }
      expected = nil
      vim.notify(("mesh: following %s; move or type to stop"):format(person.name), vim.log.levels.INFO)
      vim.cmd("redrawstatus")
    end)
  end)
end

--- `:Mesh unfollow`.
---@param c vim.lsp.Client
function M.unfollow(c)
  if not following then
    vim.notify("mesh: you are not following anyone", vim.log.levels.INFO)
  end
  client.request(c, protocol.request.follow, { connId = vim.NIL }, function()
    M.stop_local("you asked", false)
  end)
end

--- The window to move: the current one unless it shows a special buffer (the chat), then
--- the first window with a file.
---@return integer
local function target_window()
  local win = api.nvim_get_current_win()
  if vim.bo[api.nvim_win_get_buf(win)].buftype == "" then
    return win
  end
  for _, w in ipairs(api.nvim_tabpage_list_wins(0)) do
    if vim.bo[api.nvim_win_get_buf(w)].buftype == "" then
      return w
    end
  end
  return win
end

--- `mesh/follow` from the proxy: the followed person moved.
---@param client_id integer
---@param params mesh.FollowNotification
---@param encoding "utf-8"|"utf-16"|"utf-32"
function M.on_follow(client_id, params, encoding)
  if type(params) ~= "table" or type(params.uri) ~= "string" then
    return
  end
  if not following or following.conn_id ~= params.connId then
    following = { client_id = client_id, conn_id = params.connId, name = tostring(params.name or "?") }
  end
  local edits = require("mesh.edits")
  local bufnr = edits.loaded_buffer(params.uri)
  if not bufnr then
    bufnr = vim.fn.bufadd(vim.uri_to_fname(params.uri))
    vim.bo[bufnr].buflisted = true
    vim.fn.bufload(bufnr)
  end
  local win = target_window()
  if api.nvim_win_get_buf(win) ~= bufnr then
    api.nvim_win_set_buf(win, bufnr)
  end

  local range = type(params.visibleRange) == "table" and params.visibleRange or nil
  local sel = type(params.selections) == "table" and params.selections[1] or nil
  local row, col
  if type(sel) == "table" and sel.head then
    row, col = position.to_buf(bufnr, sel.head, encoding)
  end
  local top
  if range then
    top = position.to_buf(bufnr, range.start, encoding)
    local bottom = position.to_buf(bufnr, range["end"], encoding)
    -- Their caret may be off their screen (they scrolled): show what they see.
    if not row or row < top or row > bottom then
      row, col = top, 0
    end
  end
  if row then
    api.nvim_win_set_cursor(win, { row + 1, col or 0 })
  end
  if top then
    api.nvim_win_call(win, function()
      vim.fn.winrestview({ topline = top + 1 })
    end)
  end
  record(win)
end

--- `mesh/followStopped` from the proxy.
---@param reason string?
function M.on_stopped(_, reason)
  if not following then
    return
  end
  local was = following
  following, expected = nil, nil
  vim.notify(("mesh: stopped following %s: %s"):format(was.name, tostring(reason or "")), vim.log.levels.INFO)
  vim.cmd("redrawstatus")
end

--- True when the current window shows a file (not the chat, help, a picker...).
local function in_file_window()
  return vim.bo[api.nvim_get_current_buf()].buftype == ""
end

--- `CursorMoved`/`CursorMovedI`: a caret that is not where the plugin put it means the user
--- moved.
function M.on_cursor_moved()
  if not following or not expected or not in_file_window() then
    return
  end
  local win = api.nvim_get_current_win()
  local cursor = api.nvim_win_get_cursor(win)
  if
    win == expected.win
    and api.nvim_win_get_buf(win) == expected.buf
    and cursor[1] == expected.cursor[1]
    and cursor[2] == expected.cursor[2]
  then
    return
  end
  M.stop_local("you moved", true)
end

--- `InsertEnter`.
function M.on_insert_enter()
  if following and in_file_window() then
    M.stop_local("you started typing", true)
  end
end

--- `TextChanged`: a change the plugin did not make is the user's.
---@param bufnr integer
function M.on_text_changed(bufnr)
  if not following or not in_file_window() then
    return
  end
  if api.nvim_buf_get_changedtick(bufnr) == require("mesh.edits").remote_tick[bufnr] then
    return
  end
  M.stop_local("you edited", true)
end

--- After a remote edit: the caret moved with the text, which is not the user's doing.
---@param bufnr integer
function M.after_remote_edit(bufnr)
  if expected and expected.buf == bufnr and api.nvim_win_is_valid(expected.win) then
    record(expected.win)
  end
end

--- Forgets following through a client that exited.
---@param client_id integer
function M.forget(client_id)
  if following and following.client_id == client_id then
    following, expected = nil, nil
  end
end

return M
