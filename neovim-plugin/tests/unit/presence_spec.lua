-- Your cursor and view, sent to the proxy: positions in the negotiated encoding, visual
-- selections, and the throttle that never drops the last position.
local h = require("helpers")
local presence = require("mesh.presence")

test("normal mode: one empty selection at the caret, in utf-16", function()
  local bufnr = h.buffer({ "漢🎉abc" })
  vim.api.nvim_win_set_cursor(0, { 1, 7 }) -- on "a"
  h.eq(
    { { anchor = { line = 0, character = 3 }, head = { line = 0, character = 3 } } },
    presence.selections(bufnr, 0, "utf-16")
  )
end)

test("the visible range covers the window's lines", function()
  local lines = {}
  for i = 1, 100 do
    lines[i] = "x" .. i
  end
  local bufnr = h.buffer(lines)
  vim.cmd("normal! 50Gzt")
  local range = presence.visible_range(bufnr, 0, "utf-8")
  h.eq(49, range.start.line)
  h.ok(range["end"].line >= 49, "the end is at or below the top")
end)

test("cursor updates are throttled: the first goes at once, the last always follows", function()
  local fake, bufnr = h.start_with_file("abcdef\nghijkl\n")
  require("mesh.config").set({ cmd = fake.cmd, cursor_throttle_ms = 50 })
  -- Opening the file may itself have moved the cursor; let that interval pass.
  vim.wait(60)
  local function cursors()
    return fake.sent_with("mesh/cursor")
  end
  local before = #cursors()
  vim.api.nvim_win_set_cursor(0, { 1, 1 })
  presence.cursor_moved()
  h.eq(before + 1, #cursors(), "sent at once")
  for col = 2, 5 do
    vim.api.nvim_win_set_cursor(0, { 1, col })
    presence.cursor_moved()
  end
  h.eq(before + 1, #cursors(), "held back within the interval")
  h.wait(function()
    return #cursors() == before + 2
  end, "the trailing update")
  local last = cursors()[#cursors()].params
  h.eq(vim.uri_from_bufnr(bufnr), last.uri)
  h.eq({ line = 0, character = 5 }, last.selections[1].head, "the last position")
  -- Nothing new to say: nothing sent.
  vim.wait(80)
  presence.cursor_moved()
  h.eq(before + 2, #cursors())
end)

test("entering a bridged file sends mesh/activeEditor with its uri", function()
  local fake, bufnr = h.start_with_file("a\n")
  vim.wait(40)
  presence.send_active_editor()
  local sent = fake.sent_with("mesh/activeEditor")
  h.ok(#sent >= 1, "sent")
  h.eq(vim.uri_from_bufnr(bufnr), sent[#sent].params.uri)
  h.eq(0, sent[#sent].params.visibleRange.start.line)
end)
