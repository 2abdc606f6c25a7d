-- Remote cursors as extmarks: names, colours, positions in every encoding, clamping.
local h = require("helpers")
local cursors = require("mesh.cursors")

--- The marks of one kind, sorted by position.
local function marks(bufnr, kind)
  local out = vim.tbl_filter(function(m)
    return m.kind == kind
  end, cursors.describe(bufnr))
  table.sort(out, function(a, b)
    return a.row < b.row or (a.row == b.row and a.col < b.col)
  end)
  return out
end

local function sel(l1, c1, l2, c2)
  return { anchor = { line = l1, character = c1 }, head = { line = l2 or l1, character = c2 or c1 } }
end

test("each person gets a caret, a selection and a name in their colour", function()
  local bufnr = h.buffer({ "héllo wörld", "漢字🎉 end" }, vim.fn.tempname() .. "/a.txt")
  local uri = vim.uri_from_bufnr(bufnr)
  cursors.update(1, {
    uri = uri,
    cursors = {
      { connId = 2, name = "Ana", color = "#FF8800", selections = { sel(0, 0, 0, 5) } },
      { connId = 3, name = "Bo", color = "#0066cc", selections = { sel(1, 4) } },
    },
  }, "utf-16")

  local names = marks(bufnr, "name")
  h.eq(2, #names)
  h.eq({ "Ana", "#ff8800", 0, 6 }, { names[1].name, names[1].color, names[1].row, names[1].col })
  h.eq({ "Bo", "#0066cc", 1, 10 }, { names[2].name, names[2].color, names[2].row, names[2].col })

  local selections = marks(bufnr, "selection")
  h.eq(1, #selections)
  h.eq({ 0, 0, 0, 6 }, { selections[1].row, selections[1].col, selections[1].end_row, selections[1].end_col })

  local carets = marks(bufnr, "caret")
  h.eq(2, #carets)
  h.eq({ 0, 6, 7 }, { carets[1].row, carets[1].col, carets[1].end_col }, "Ana's caret on the space after héllo")
  h.eq({ 1, 10, 11 }, { carets[2].row, carets[2].col, carets[2].end_col }, "Bo's caret on the space after 🎉")
  h.eq("#0066cc", carets[2].color)

  local hl = vim.api.nvim_get_hl(0, { name = "MeshCaret_ff8800" })
  h.eq(0xff8800, hl.bg, "the caret group is defined with the person's colour")
  h.ok(vim.api.nvim_get_hl(0, { name = "MeshSelection_0066cc" }).bg, "selection group defined")
  h.ok(vim.api.nvim_get_hl(0, { name = "MeshName_0066cc" }).bg, "name group defined")
end)

test("a caret on a multibyte character covers the whole character", function()
  local bufnr = h.buffer({ "a🎉b" }, vim.fn.tempname() .. "/m.txt")
  cursors.update(1, {
    uri = vim.uri_from_bufnr(bufnr),
    cursors = {
      { connId = 1, name = "x", color = "#123456", selections = { sel(0, 1) } },
    },
  }, "utf-16")
  local caret = marks(bufnr, "caret")[1]
  h.eq({ 0, 1, 5 }, { caret.row, caret.col, caret.end_col })
end)

test("positions past the end of a line or of the buffer are clamped, never an error", function()
  local bufnr = h.buffer({ "short", "" }, vim.fn.tempname() .. "/c.txt")
  cursors.update(1, {
    uri = vim.uri_from_bufnr(bufnr),
    cursors = {
      { connId = 1, name = "far", color = "#aa0000", selections = { sel(0, 999) } },
      { connId = 2, name = "gone", color = "#00aa00", selections = { sel(40, 3, 50, 1) } },
      { connId = 3, name = "odd", color = "#0000aa", selections = { { head = { line = "x" } } } },
    },
  }, "utf-8")
  local names = marks(bufnr, "name")
  h.eq(3, #names)
  local by_name = {}
  for _, n in ipairs(names) do
    by_name[n.name] = { n.row, n.col }
  end
  h.eq({ 0, 5 }, by_name.far, "end of the line")
  h.eq({ 1, 0 }, by_name.gone, "end of the buffer")
  h.eq({ 0, 0 }, by_name.odd, "a malformed position goes to the start")
  -- A caret at the end of a line is drawn as a cell over the blank.
  local carets = marks(bufnr, "caret")
  h.eq(3, #carets)
end)

test("a missing or malformed colour falls back to a palette colour per person", function()
  h.eq("#abcdef", cursors.color("#ABCDEF", 1))
  local fallback = cursors.color("red", 4)
  h.ok(fallback:match("^#%x%x%x%x%x%x$"), "a valid colour")
  h.eq(fallback, cursors.color(nil, 4), "stable for one person")
  h.eq("#000000", cursors.contrast("#ffff00"))
  h.eq("#ffffff", cursors.contrast("#000080"))
end)

test("an empty list clears the document; names can be drawn inline or not at all", function()
  local bufnr = h.buffer({ "text" }, vim.fn.tempname() .. "/d.txt")
  local uri = vim.uri_from_bufnr(bufnr)
  local one = { { connId = 1, name = "Ana", color = "#ff0000", selections = { sel(0, 2) } } }
  cursors.update(1, { uri = uri, cursors = one }, "utf-8")
  h.eq(2, #cursors.describe(bufnr))
  cursors.update(1, { uri = uri, cursors = {} }, "utf-8")
  h.eq(0, #cursors.describe(bufnr))

  require("mesh.config").set({ name_position = "none" })
  cursors.update(1, { uri = uri, cursors = one }, "utf-8")
  h.eq(0, #marks(bufnr, "name"))
  require("mesh.config").set({ name_position = "inline" })
  cursors.update(1, { uri = uri, cursors = one }, "utf-8")
  local mark = vim.api.nvim_buf_get_extmarks(bufnr, cursors.ns, 0, -1, { details = true })
  local inline = vim.tbl_filter(function(m)
    return m[4].virt_text_pos == "inline"
  end, mark)
  h.eq(1, #inline)
end)

test("cursors for a file that is not loaded are drawn when it is opened", function()
  local dir = h.tempdir()
  local path = h.write(dir, "later.txt", "one\ntwo\n")
  cursors.update(1, {
    uri = vim.uri_from_fname(path),
    cursors = {
      { connId = 9, name = "Cy", color = "#00ffff", selections = { sel(1, 1) } },
    },
  }, "utf-8")
  require("mesh").setup({ autostart = false })
  vim.cmd.edit(vim.fn.fnameescape(path))
  local names = marks(vim.api.nvim_get_current_buf(), "name")
  h.eq(1, #names)
  h.eq({ "Cy", 1, 1 }, { names[1].name, names[1].row, names[1].col })
end)

test("remote cursors arrive through the LSP client and use its encoding", function()
  local fake, bufnr = h.start_with_file("漢字🎉x\n", { encoding = "utf-16" })
  fake.dispatchers.notification("mesh/cursors", {
    uri = vim.uri_from_bufnr(bufnr),
    cursors = { { connId = 5, name = "Dee", color = "#336699", selections = { sel(0, 4) } } },
  })
  h.wait(function()
    return #marks(bufnr, "name") == 1
  end, "the cursor to be drawn")
  local caret = marks(bufnr, "caret")[1]
  h.eq({ 0, 10, 11 }, { caret.row, caret.col, caret.end_col }, "on the x after the emoji")
end)
