-- Follow mode: the view goes where the followed person's goes; your own move stops it, the
-- plugin's moves and remote edits do not.
local h = require("helpers")
local follow = require("mesh.follow")

local people = {
  { connId = 1, name = "me", you = true },
  { connId = 2, name = "Ana" },
  { connId = 3, name = "Anders" },
  { connId = 4, name = "Bo" },
}

test("names resolve exactly first, then by a unique prefix, else say why", function()
  h.eq(2, follow.find(people, "ana").connId)
  h.eq(4, follow.find(people, "b").connId)
  local none, err = follow.find(people, "Cy")
  h.eq(nil, none)
  h.contains(err, 'nobody called "Cy"')
  local _, ambiguous = follow.find(people, "an")
  h.contains(ambiguous, "matches 2 people")
end)

--- A workspace with a long second file, following Ana through the fake proxy.
local function following()
  local lines = {}
  for i = 1, 200 do
    lines[i] = ("line %d 漢🎉"):format(i)
  end
  local fake, bufnr, client = h.start_with_file("first\n")
  local other = h.write(vim.fn.getcwd(), "long.txt", table.concat(lines, "\n") .. "\n")
  fake.responders["mesh/status"] = function()
    return { state = "connected", you = 1, participants = people }
  end
  fake.responders["mesh/follow"] = function(params)
    fake.follow_params = params
    return vim.empty_dict()
  end
  vim.cmd("Mesh follow ana")
  h.wait(function()
    return follow.following() == "Ana"
  end, "following to start")
  h.eq({ connId = 2 }, fake.follow_params)
  return fake, bufnr, client, other
end

test("mesh/follow opens the file, shows the range and puts the caret on their head", function()
  local fake, _, _, other = following()
  fake.dispatchers.notification("mesh/follow", {
    connId = 2,
    name = "Ana",
    uri = vim.uri_from_fname(other),
    visibleRange = h.range(99, 0, 140, 0),
    selections = { { anchor = { line = 120, character = 7 }, head = { line = 120, character = 9 } } },
  })
  h.eq(vim.fs.normalize(other), vim.fs.normalize(vim.api.nvim_buf_get_name(0)))
  h.eq({ 121, 9 }, vim.api.nvim_win_get_cursor(0), "utf-8 column 9 is the start of 🎉")
  h.eq(100, vim.fn.line("w0"))
  -- The plugin's own move is not taken for the user's.
  follow.on_cursor_moved()
  h.eq("Ana", follow.following())
  h.eq(0, #fake.sent_with("mesh/stopFollowing"))
  h.contains(require("mesh").statusline(), "following Ana")
end)

test("their caret off their screen: the view shows what they see", function()
  local fake, _, _, other = following()
  fake.dispatchers.notification("mesh/follow", {
    connId = 2,
    name = "Ana",
    uri = vim.uri_from_fname(other),
    visibleRange = h.range(49, 0, 80, 0),
    selections = { { anchor = { line = 5, character = 0 }, head = { line = 5, character = 0 } } },
  })
  h.eq(50, vim.api.nvim_win_get_cursor(0)[1])
  h.eq(50, vim.fn.line("w0"))
end)

test("moving on your own stops following and tells the proxy", function()
  local fake, _, _, other = following()
  fake.dispatchers.notification("mesh/follow", {
    connId = 2,
    name = "Ana",
    uri = vim.uri_from_fname(other),
    visibleRange = h.range(10, 0, 40, 0),
  })
  vim.api.nvim_win_set_cursor(0, { 30, 2 })
  follow.on_cursor_moved()
  h.eq(nil, follow.following())
  h.eq(1, #fake.sent_with("mesh/stopFollowing"))
  h.contains(h.all_messages(), "stopped following Ana (you moved)")
end)

test("a remote edit that shifts the caret does not stop following; typing does", function()
  local fake, _, _, other = following()
  local uri = vim.uri_from_fname(other)
  fake.dispatchers.notification("mesh/follow", {
    connId = 2,
    name = "Ana",
    uri = uri,
    visibleRange = h.range(10, 0, 40, 0),
    selections = { { anchor = { line = 20, character = 0 }, head = { line = 20, character = 0 } } },
  })
  local bufnr = vim.api.nvim_get_current_buf()
  h.wait(function()
    return fake.docs[uri] ~= nil
  end, "the followed file to be bridged")
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(0, 0, 0, 0), newText = "new\n" } }).applied)
  h.eq(22, vim.api.nvim_win_get_cursor(0)[1], "the caret moved down with its line")
  follow.on_cursor_moved()
  follow.on_text_changed(bufnr)
  h.eq("Ana", follow.following())
  vim.cmd("normal! x")
  follow.on_text_changed(bufnr)
  h.eq(nil, follow.following())
  h.contains(h.all_messages(), "you edited")
end)

test("InsertEnter in a file stops following", function()
  local fake = following()
  vim.api.nvim_exec_autocmds("InsertEnter", {})
  h.eq(nil, follow.following())
  h.eq(1, #fake.sent_with("mesh/stopFollowing"))
end)

test("mesh/followStopped ends following with the proxy's reason; :Mesh unfollow too", function()
  local fake = following()
  fake.dispatchers.notification("mesh/followStopped", { reason = "Ana left the room" })
  h.eq(nil, follow.following())
  h.contains(h.all_messages(), "Ana left the room")
  vim.cmd("Mesh unfollow")
  h.wait(function()
    return fake.follow_params.connId == vim.NIL
  end, "mesh/follow with connId null")
end)
