---@brief
--- The room's chat: `:Mesh chat {text}` sends one message; `:Mesh chat` opens a split with
--- the history (`mesh/chatHistory`), live messages (`mesh/chatMessage`) and a prompt line
--- (a Neovim prompt buffer: type, press Enter, it is sent).

local client = require("mesh.client")
local config = require("mesh.config")
local protocol = require("mesh.protocol")

local M = {}

local api = vim.api

--- Namespace of the chat buffer's highlights.
local ns = api.nvim_create_namespace("mesh.chat")

---@class mesh.ChatView
---@field bufnr integer
---@field client_id integer
---@field seen table<string, boolean> ids of the entries shown, since history and live messages overlap
---@field echoes table<string, integer> texts you sent that were shown before the proxy echoed them

---@type mesh.ChatView?
local view = nil

local PROMPT = "> "

--- The lines of one chat entry and where its parts are, for highlighting:
--- "HH:MM author: text", further lines of the text indented under the first.
---@param entry mesh.ChatEntry
---@return string[] lines
---@return { time: integer[], author: integer[] } spans byte ranges on the first line
function M.format_entry(entry)
  local ts = tonumber(entry.ts) or 0
  local time = os.date("%H:%M", math.floor(ts / 1000)) --[[@as string]]
  local author = tostring(entry.author or "?")
  local head = ("%s %s: "):format(time, author)
  local text = tostring(entry.text or ""):gsub("\r\n?", "\n")
  local lines = {}
  for i, part in ipairs(vim.split(text, "\n", { plain = true })) do
    lines[i] = (i == 1 and head or string.rep(" ", vim.fn.strdisplaywidth(head))) .. part
  end
  return lines, { time = { 0, #time }, author = { #time + 1, #time + 1 + #author } }
end

--- Whether an entry was written by you (by connection id when the proxy told it, else by
--- name).
---@param client_id integer
---@param entry mesh.ChatEntry
---@return boolean
local function is_own(client_id, entry)
  local status = require("mesh.status").get(client_id)
  if status and status.you ~= nil then
    return entry.connId == status.you
  end
  return entry.author == config.get().name
end

--- Appends entries above the prompt line of the chat buffer.
---@param entries mesh.ChatEntry[]
local function append(entries)
  if not view or not api.nvim_buf_is_valid(view.bufnr) then
    return
  end
  local bufnr = view.bufnr
  for _, entry in ipairs(entries) do
    local id = entry.id and tostring(entry.id) or nil
    if not (id and view.seen[id]) then
      if id then
        view.seen[id] = true
      end
      local lines, spans = M.format_entry(entry)
      -- The prompt is always the last line; history goes above it.
      local at = api.nvim_buf_line_count(bufnr) - 1
      api.nvim_buf_set_lines(bufnr, at, at, false, lines)
      api.nvim_buf_set_extmark(bufnr, ns, at, spans.time[1], { end_col = spans.time[2], hl_group = "Comment" })
      api.nvim_buf_set_extmark(bufnr, ns, at, spans.author[1], { end_col = spans.author[2], hl_group = "Identifier" })
    end
  end
  for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
    if win ~= api.nvim_get_current_win() then
      api.nvim_win_set_cursor(win, { api.nvim_buf_line_count(bufnr), 0 })
    end
  end
end

--- Sends one message.
---@param c vim.lsp.Client
---@param text string
function M.send(c, text)
  text = vim.trim(text)
  if text == "" then
    return
  end
  client.request(c, protocol.request.chat, { text = text }, function()
    -- Show your message at once when the proxy has not echoed it yet; the echo is then
    -- skipped once.
    if view and view.client_id == c.id then
      view.echoes[text] = (view.echoes[text] or 0) + 1
      append({ { author = config.get().name, connId = -1, text = text, ts = os.time() * 1000 } })
    end
  end)
end

--- `mesh/chatMessage` from the proxy.
---@param client_id integer
---@param entry mesh.ChatEntry?
function M.on_message(client_id, entry)
  if type(entry) ~= "table" then
    return
  end
  if view and view.client_id == client_id and api.nvim_buf_is_valid(view.bufnr) then
    local text = tostring(entry.text or "")
    if is_own(client_id, entry) and (view.echoes[text] or 0) > 0 then
      view.echoes[text] = view.echoes[text] - 1
      if entry.id then
        view.seen[tostring(entry.id)] = true
      end
      return
    end
    append({ entry })
    if #vim.fn.win_findbuf(view.bufnr) > 0 then
      return
    end
  end
  if config.get().chat_notify and not is_own(client_id, entry) then
    vim.notify(("mesh chat · %s: %s"):format(tostring(entry.author), tostring(entry.text)), vim.log.levels.INFO)
  end
end

--- Creates the chat buffer for a client.
---@param c vim.lsp.Client
---@return integer bufnr
local function create_buffer(c)
  local bufnr = api.nvim_create_buf(false, true)
  vim.bo[bufnr].buftype = "prompt"
  vim.bo[bufnr].bufhidden = "hide"
  vim.bo[bufnr].swapfile = false
  vim.bo[bufnr].filetype = "meshchat"
  pcall(api.nvim_buf_set_name, bufnr, "mesh://chat")
  vim.fn.prompt_setprompt(bufnr, PROMPT)
  vim.fn.prompt_setcallback(bufnr, function(text)
    -- The prompt buffer keeps what was typed as a line above the new prompt; the message
    -- is shown formatted instead once sent.
    local n = api.nvim_buf_line_count(bufnr)
    if n >= 2 then
      api.nvim_buf_set_lines(bufnr, n - 2, n - 1, false, {})
    end
    local live = vim.lsp.get_client_by_id(c.id)
    if not live then
      vim.notify("mesh: mesh-proxy is not running; the message was not sent", vim.log.levels.ERROR)
      return
    end
    M.send(live, text)
  end)
  api.nvim_create_autocmd("BufWipeout", {
    buffer = bufnr,
    callback = function()
      view = nil
    end,
  })
  return bufnr
end

--- `:Mesh chat` without text: opens (or focuses) the chat split and loads the history.
---@param c vim.lsp.Client
function M.open(c)
  if not view or not api.nvim_buf_is_valid(view.bufnr) or view.client_id ~= c.id then
    if view and api.nvim_buf_is_valid(view.bufnr) then
      api.nvim_buf_delete(view.bufnr, { force = true })
    end
    view = { bufnr = create_buffer(c), client_id = c.id, seen = {}, echoes = {} }
  end
  local bufnr = view.bufnr
  local win = vim.fn.win_findbuf(bufnr)[1]
  if win then
    api.nvim_set_current_win(win)
  else
    vim.cmd(("botright %dsplit"):format(config.get().chat_height))
    api.nvim_win_set_buf(0, bufnr)
    vim.wo.number = false
    vim.wo.relativenumber = false
    vim.wo.signcolumn = "no"
    vim.wo.wrap = true
  end
  client.request(c, protocol.request.chat_history, vim.empty_dict(), function(result)
    append(type(result) == "table" and type(result.messages) == "table" and result.messages or {})
  end)
  vim.cmd("startinsert")
end

--- The chat buffer, if open (for tests).
---@return integer?
function M.buffer()
  return view and api.nvim_buf_is_valid(view.bufnr) and view.bufnr or nil
end

--- Forgets the chat of a client that exited.
---@param client_id integer
function M.forget(client_id)
  if view and view.client_id == client_id then
    view.client_id = -1
  end
end

return M
