-- Remote edits (workspace/applyEdit) and the document hash, against a fake proxy whose
-- shadow copy is built only from what Neovim sends: after any mix of local and remote edits
-- the buffer, the shadow and the hash must agree.
local h = require("helpers")
local edits = require("mesh.edits")
local sha256 = require("mesh.sha256")

--- Checks that the fake proxy's shadow equals the buffer's text, and that the plugin's
--- answer to mesh/documentHash matches the shadow's hash and version.
local function assert_in_sync(fake, bufnr, expected_text)
  local uri = vim.uri_from_bufnr(bufnr)
  local shadow = fake.docs[uri]
  if expected_text then
    h.eq(expected_text, edits.buffer_text(bufnr), "buffer text")
  end
  h.eq(edits.buffer_text(bufnr), shadow.text, "the proxy's shadow")
  local result, err = fake.dispatchers.server_request("mesh/documentHash", { uri = uri })
  h.eq(nil, err)
  h.eq({ version = shadow.version, sha256 = sha256.hex(shadow.text) }, result, "documentHash")
end

test("buffer_text matches Neovim's didOpen text: eol, noeol, empty, dos", function()
  local cases = {
    { lines = { "a", "b" }, eol = true, ff = "unix", want = "a\nb\n" },
    { lines = { "a", "b" }, eol = false, ff = "unix", want = "a\nb" },
    { lines = { "" }, eol = true, ff = "unix", want = "\n" },
    { lines = { "" }, eol = false, ff = "unix", want = "" },
    { lines = { "x", "y" }, eol = true, ff = "dos", want = "x\r\ny\r\n" },
  }
  for i, case in ipairs(cases) do
    local bufnr = h.buffer(case.lines)
    vim.bo[bufnr].eol = case.eol
    vim.bo[bufnr].fileformat = case.ff
    h.eq(case.want, edits.buffer_text(bufnr), "case " .. i)
    h.eq(case.want, edits.buffer_text_fallback(bufnr), "fallback, case " .. i)
  end
end)

test("the sha256 fallback agrees with vim.fn.sha256 and handles NUL", function()
  for _, s in ipairs({ "", "abc", string.rep("é🎉漢", 50), string.rep("x", 64) }) do
    h.eq(vim.fn.sha256(s), sha256.lua(s))
  end
  h.eq("59b271ae1bbcb1d31d41929817f4b16fb439eb4f31520b5ad1d5ce98920a7138", sha256.hex("a\0b"))
end)

test("didOpen uses debounce 0, offers every encoding and the hash matches the shadow", function()
  local fake, bufnr, client = h.start_with_file("hello\nwörld 🎉\n")
  h.eq(0, client.flags.debounce_text_changes)
  h.eq({ "utf-8", "utf-16", "utf-32" }, fake.initialize_params.capabilities.general.positionEncodings)
  h.eq(true, fake.initialize_params.capabilities.workspace.applyEdit)
  h.eq("utf-8", client.offset_encoding)
  assert_in_sync(fake, bufnr, "hello\nwörld 🎉\n")
end)

for _, enc in ipairs({ "utf-8", "utf-16", "utf-32" }) do
  test(enc .. ": local and remote edits keep buffer, shadow and hash equal", function()
    local fake, bufnr = h.start_with_file("héllo 🎉 world\n漢字\n", { encoding = enc })
    -- Local typing, sent by Neovim as incremental didChange.
    vim.api.nvim_buf_set_text(bufnr, 0, 0, 0, 0, { "» " })
    vim.cmd("normal! Go🎉 last")
    assert_in_sync(fake, bufnr, "» héllo 🎉 world\n漢字\n🎉 last\n")

    -- A remote insert after the emoji, in this encoding's units.
    local after_emoji = ({ ["utf-8"] = 14, ["utf-16"] = 10, ["utf-32"] = 9 })[enc]
    local answer = h.remote_edit(fake, bufnr, {
      { range = h.range(0, after_emoji, 0, after_emoji), newText = "é漢" },
    })
    h.eq({ applied = true }, { applied = answer.applied })
    assert_in_sync(fake, bufnr, "» héllo 🎉é漢 world\n漢字\n🎉 last\n")

    -- Two edits in one message, given out of order, one of them across a line break.
    answer = h.remote_edit(fake, bufnr, {
      { range = h.range(2, 0, 2, 0), newText = ">" },
      { range = h.range(0, 0, 1, 0), newText = "" },
    })
    h.eq(true, answer.applied)
    assert_in_sync(fake, bufnr, "漢字\n>🎉 last\n")
  end)
end

test("edits at the end of the document: append, delete the last line, replace all", function()
  local fake, bufnr = h.start_with_file("one\ntwo\n")
  -- Insert after the final newline (the position one line past the last).
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(2, 0, 2, 0), newText = "three\n" } }).applied)
  assert_in_sync(fake, bufnr, "one\ntwo\nthree\n")
  -- Delete the last line together with its newline.
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(2, 0, 3, 0), newText = "" } }).applied)
  assert_in_sync(fake, bufnr, "one\ntwo\n")
  -- Replace everything, the final newline included.
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(0, 0, 2, 0), newText = "new\ntext\n" } }).applied)
  assert_in_sync(fake, bufnr, "new\ntext\n")
  -- Ranges far past the end are clamped, not refused.
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(1, 99, 1, 120), newText = "!" } }).applied)
  assert_in_sync(fake, bufnr, "new\ntext!\n")
end)

test("a remote edit that removes the final newline clears 'eol' and 'fixeol'", function()
  local fake, bufnr = h.start_with_file("a\nb\n")
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(1, 1, 2, 0), newText = "" } }).applied)
  h.eq(false, vim.bo[bufnr].eol)
  h.eq(false, vim.bo[bufnr].fixeol, ":write must save the room's text as it is")
  assert_in_sync(fake, bufnr, "a\nb")
end)

test("text typed after the final newline by someone else, then edits at the end", function()
  -- Other editors end a file without a newline when one types on its last, empty line.
  local fake, bufnr = h.start_with_file("one\ntwo\n")
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(2, 0, 2, 0), newText = "🎉\n🎉" } }).applied)
  assert_in_sync(fake, bufnr, "one\ntwo\n🎉\n🎉")
  -- Local edits at the end of a buffer without a final newline: Neovim's incremental
  -- description would be off by that newline; the full text goes instead.
  vim.cmd("normal! Goend")
  assert_in_sync(fake, bufnr, "one\ntwo\n🎉\n🎉\nend")
  vim.cmd("normal! Gdd")
  assert_in_sync(fake, bufnr, "one\ntwo\n🎉\n🎉")
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(3, 4, 3, 4), newText = "!" } }).applied)
  assert_in_sync(fake, bufnr, "one\ntwo\n🎉\n🎉!")
  -- Someone adds the final newline back: the buffer returns to the usual form.
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(3, 5, 3, 5), newText = "\n" } }).applied)
  assert_in_sync(fake, bufnr, "one\ntwo\n🎉\n🎉!\n")
  h.eq(true, vim.bo[bufnr].eol)
  h.eq(true, vim.bo[bufnr].fixeol, "the user's 'fixeol' is back")
  h.eq({ "one", "two", "🎉", "🎉!" }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false))
  vim.cmd("normal! Golast")
  assert_in_sync(fake, bufnr, "one\ntwo\n🎉\n🎉!\nlast\n")
end)

test("a file saved without a final newline stays in sync while edited at its end", function()
  local fake, bufnr = h.start_with_file("a\nb")
  h.eq(false, vim.bo[bufnr].eol)
  assert_in_sync(fake, bufnr, "a\nb")
  vim.cmd("normal! Goc")
  assert_in_sync(fake, bufnr, "a\nb\nc")
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(99, 0, 99, 0), newText = "d" } }).applied)
  assert_in_sync(fake, bufnr, "a\nb\ncd")
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(0, 0, 99, 0), newText = "" } }).applied)
  assert_in_sync(fake, bufnr, "")
end)

test("a stale version is refused with applied=false and the buffer is untouched", function()
  local fake, bufnr = h.start_with_file("abc\n")
  local version = fake.docs[vim.uri_from_bufnr(bufnr)].version
  vim.api.nvim_buf_set_text(bufnr, 0, 3, 0, 3, { "d" })
  local answer = h.remote_edit(fake, bufnr, { { range = h.range(0, 0, 0, 0), newText = "X" } }, version)
  h.eq(false, answer.applied)
  h.contains(answer.failureReason, "stale version")
  assert_in_sync(fake, bufnr, "abcd\n")
end)

test("an edit for a document that is not open is refused, nothing is loaded", function()
  local fake, bufnr = h.start_with_file("x\n")
  local uri = vim.uri_from_fname(vim.fn.getcwd() .. "/other.txt")
  local answer = fake.dispatchers.server_request("workspace/applyEdit", {
    edit = { documentChanges = { { textDocument = { uri = uri, version = 1 }, edits = {} } } },
  })
  h.eq(false, answer.applied)
  h.contains(answer.failureReason, "not open")
  h.eq(-1, vim.fn.bufnr(vim.uri_to_fname(uri)))
  local _, err = fake.dispatchers.server_request("mesh/documentHash", { uri = uri })
  h.ok(err and err.message:find("not open"), "documentHash of a closed document is an error")
  assert_in_sync(fake, bufnr, "x\n")
end)

test("the caret stays on its character when text is inserted before it", function()
  local fake, bufnr = h.start_with_file("hello world\nsecond\n")
  vim.api.nvim_win_set_cursor(0, { 1, 6 }) -- on "w"
  h.remote_edit(fake, bufnr, { { range = h.range(0, 0, 0, 0), newText = "漢🎉 " } })
  h.eq({ 1, 6 + #"漢🎉 " }, vim.api.nvim_win_get_cursor(0))
  h.remote_edit(fake, bufnr, { { range = h.range(0, 0, 0, 0), newText = "new line\n" } })
  h.eq({ 2, 6 + #"漢🎉 " }, vim.api.nvim_win_get_cursor(0))
  -- Text inserted after the caret leaves it alone.
  h.remote_edit(fake, bufnr, { { range = h.range(1, 16, 1, 16), newText = "XYZ" } })
  h.eq({ 2, 6 + #"漢🎉 " }, vim.api.nvim_win_get_cursor(0))
end)

test("a remote edit is its own undo step, apart from the user's change before it", function()
  local fake, bufnr = h.start_with_file("base\n")
  vim.cmd("normal! Alocal")
  h.remote_edit(fake, bufnr, { { range = h.range(0, 0, 0, 0), newText = "remote " } })
  h.eq({ "remote baselocal" }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false))
  vim.cmd("silent undo")
  h.eq({ "baselocal" }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "first undo: the remote edit")
  vim.cmd("silent undo")
  h.eq({ "base" }, vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "second undo: the local edit")
  -- Undo is an ordinary change: the proxy sees it like any other.
  assert_in_sync(fake, bufnr, "base\n")
end)

test("a read-only ('nomodifiable') buffer still receives remote edits", function()
  local fake, bufnr = h.start_with_file("ro\n")
  vim.bo[bufnr].modifiable = false
  h.eq(true, h.remote_edit(fake, bufnr, { { range = h.range(0, 2, 0, 2), newText = "!" } }).applied)
  h.eq(false, vim.bo[bufnr].modifiable)
  assert_in_sync(fake, bufnr, "ro!\n")
end)

test("a malformed edit is answered applied=false, not with an error", function()
  local fake, bufnr = h.start_with_file("x\n")
  local answer = fake.dispatchers.server_request("workspace/applyEdit", {
    edit = { documentChanges = { { kind = "rename", oldUri = "file:///a", newUri = "file:///b" } } },
  })
  h.eq(false, answer.applied)
  answer = fake.dispatchers.server_request("workspace/applyEdit", {
    edit = {
      documentChanges = {
        { textDocument = { uri = vim.uri_from_bufnr(bufnr), version = vim.NIL }, edits = { { range = "nonsense" } } },
      },
    },
  })
  h.eq(false, answer.applied)
  assert_in_sync(fake, bufnr, "x\n")
end)

test("a document named through a symlink is found (the proxy resolves the root)", function()
  local fake, bufnr = h.start_with_file("x\n")
  local real_dir = vim.fn.getcwd()
  local link = vim.fn.tempname()
  h.ok(vim.uv.fs_symlink(real_dir, link), "symlink created")
  local uri = vim.uri_from_fname(link .. "/file.txt")
  h.eq(bufnr, edits.loaded_buffer(uri))
  local answer = fake.dispatchers.server_request("workspace/applyEdit", {
    edit = {
      documentChanges = {
        {
          textDocument = { uri = uri, version = fake.docs[vim.uri_from_bufnr(bufnr)].version },
          edits = {
            { range = h.range(0, 0, 0, 0), newText = ">" },
          },
        },
      },
    },
  })
  h.eq(true, answer.applied)
  assert_in_sync(fake, bufnr, ">x\n")
end)
