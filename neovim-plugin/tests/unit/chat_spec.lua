-- The chat: formatting, history plus live messages in one buffer, sending from the prompt.
local h = require("helpers")
local chat = require("mesh.chat")

local function ts(hour, min)
  return os.time({ year = 2025, month = 1, day = 2, hour = hour, min = min, sec = 0 }) * 1000
end

local function text_lines(bufnr)
  return vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
end

test("an entry is 'HH:MM author: text', continuation lines indented under the text", function()
  local lines, spans = chat.format_entry({ id = "1", author = "Ana", connId = 2, text = "hi 🎉", ts = ts(9, 5) })
  h.eq({ "09:05 Ana: hi 🎉" }, lines)
  h.eq({ time = { 0, 5 }, author = { 6, 9 } }, spans)
  lines = chat.format_entry({ id = "2", author = "漢字", connId = 2, text = "one\r\ntwo", ts = ts(23, 59) })
  h.eq({ "23:59 漢字: one", "            two" }, lines, "indented by display width")
end)

test("odd entries still format: missing author, text or time", function()
  local lines = chat.format_entry({})
  h.eq(1, #lines)
  h.ok(lines[1]:match("^%d%d:%d%d %?: $"), "got " .. lines[1])
end)

test(":Mesh chat opens the history with a prompt, then live messages appear once", function()
  local fake, _, client = h.start_with_file("x\n")
  require("mesh.status").set(client.id, { state = "connected", you = 1, participants = {} })
  fake.responders["mesh/chatHistory"] = function()
    return {
      messages = {
        { id = "a", author = "Ana", connId = 2, text = "hello", ts = ts(10, 0) },
        { id = "b", author = "Bo", connId = 3, text = "hey", ts = ts(10, 1) },
      },
    }
  end
  vim.cmd("Mesh chat")
  local bufnr = chat.buffer()
  h.ok(bufnr, "a chat buffer")
  h.eq("prompt", vim.bo[bufnr].buftype)
  h.wait(function()
    return #text_lines(bufnr) >= 3
  end, "the history")
  h.eq({ "10:00 Ana: hello", "10:01 Bo: hey", "" }, text_lines(bufnr))

  fake.dispatchers.notification(
    "mesh/chatMessage",
    { entry = { id = "c", author = "Ana", connId = 2, text = "new", ts = ts(10, 2) } }
  )
  -- The same entry again (history and live overlap) is not shown twice.
  fake.dispatchers.notification(
    "mesh/chatMessage",
    { entry = { id = "c", author = "Ana", connId = 2, text = "new", ts = ts(10, 2) } }
  )
  h.eq({ "10:00 Ana: hello", "10:01 Bo: hey", "10:02 Ana: new", "" }, text_lines(bufnr))
  h.ok(not h.all_messages():find("mesh chat ·", 1, true), "no notification while the chat is visible")
end)

test("sending from the prompt: the message shows once, even when the proxy echoes it", function()
  local fake, _, client = h.start_with_file("x\n")
  require("mesh.status").set(client.id, { state = "connected", you = 1, participants = {} })
  fake.responders["mesh/chatHistory"] = function()
    return { messages = {} }
  end
  fake.responders["mesh/chat"] = function(params)
    fake.chat_text = params.text
    return vim.empty_dict()
  end
  vim.cmd("Mesh chat")
  local bufnr = chat.buffer()
  vim.cmd("stopinsert")
  vim.api.nvim_feedkeys("Ahi all\r", "xt", false)
  h.wait(function()
    return fake.chat_text ~= nil and #text_lines(bufnr) >= 2
  end, "the message to be sent")
  h.eq("hi all", fake.chat_text)
  fake.dispatchers.notification(
    "mesh/chatMessage",
    { entry = { id = "z", author = "tester", connId = 1, text = "hi all", ts = ts(11, 0) } }
  )
  local lines = text_lines(bufnr)
  h.eq(1, #vim.tbl_filter(function(l)
    return l:find("tester: hi all", 1, true) ~= nil
  end, lines), "shown once: " .. vim.inspect(lines))
end)

test("with the chat closed, others' messages are notified, your own are not", function()
  local fake, _, client = h.start_with_file("x\n")
  require("mesh.status").set(client.id, { state = "connected", you = 1, participants = {} })
  fake.dispatchers.notification(
    "mesh/chatMessage",
    { entry = { id = "1", author = "Ana", connId = 2, text = "ping", ts = 0 } }
  )
  fake.dispatchers.notification(
    "mesh/chatMessage",
    { entry = { id = "2", author = "tester", connId = 1, text = "mine", ts = 0 } }
  )
  h.contains(h.all_messages(), "mesh chat · Ana: ping")
  h.ok(not h.all_messages():find("mine", 1, true), "own message not notified")
end)

test(":Mesh chat {text} sends one message without opening anything", function()
  local fake = select(1, h.start_with_file("x\n"))
  fake.responders["mesh/chat"] = function(params)
    fake.chat_text = params.text
    return vim.empty_dict()
  end
  vim.cmd("Mesh chat lunch at 12? 🍜")
  h.wait(function()
    return fake.chat_text ~= nil
  end, "mesh/chat")
  h.eq("lunch at 12? 🍜", fake.chat_text)
  h.eq(nil, chat.buffer())
end)
