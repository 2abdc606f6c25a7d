-- LSP positions to byte columns and back, in every encoding, with text whose characters
-- take 1 to 4 bytes and 1 or 2 UTF-16 units: "a" (1 byte), "é" (2), "漢" (3), "🎉" (4 bytes,
-- a surrogate pair in UTF-16).
local h = require("helpers")
local position = require("mesh.position")

local line = "a🎉b漢é"
-- byte starts: a=0, 🎉=1, b=5, 漢=6, é=9, end=11

test("utf-8: byte offsets; inside a character rounds down", function()
  h.eq(0, position.byte_col(line, 0, "utf-8"))
  h.eq(1, position.byte_col(line, 1, "utf-8"))
  h.eq(1, position.byte_col(line, 3, "utf-8"), "inside 🎉")
  h.eq(5, position.byte_col(line, 5, "utf-8"))
  h.eq(6, position.byte_col(line, 7, "utf-8"), "inside 漢")
  h.eq(11, position.byte_col(line, 11, "utf-8"))
end)

test("utf-16: the emoji counts two units; half a surrogate pair rounds down", function()
  h.eq(1, position.byte_col(line, 1, "utf-16"))
  h.eq(1, position.byte_col(line, 2, "utf-16"), "between the surrogates of 🎉")
  h.eq(5, position.byte_col(line, 3, "utf-16"))
  h.eq(6, position.byte_col(line, 4, "utf-16"))
  h.eq(9, position.byte_col(line, 5, "utf-16"))
  h.eq(11, position.byte_col(line, 6, "utf-16"))
end)

test("utf-32: one unit per code point", function()
  h.eq(1, position.byte_col(line, 1, "utf-32"))
  h.eq(5, position.byte_col(line, 2, "utf-32"))
  h.eq(6, position.byte_col(line, 3, "utf-32"))
  h.eq(9, position.byte_col(line, 4, "utf-32"))
  h.eq(11, position.byte_col(line, 5, "utf-32"))
end)

test("past the end of a line, negative or missing: clamped, no error", function()
  for _, enc in ipairs({ "utf-8", "utf-16", "utf-32" }) do
    h.eq(11, position.byte_col(line, 999, enc), enc)
    h.eq(0, position.byte_col(line, -4, enc), enc)
    h.eq(0, position.byte_col(line, nil, enc), enc)
    h.eq(0, position.byte_col("", 3, enc), enc)
  end
end)

test("byte columns back to characters, per encoding", function()
  h.eq(
    { 0, 1, 3, 4, 5, 6 },
    vim.tbl_map(function(b)
      return position.character(line, b, "utf-16")
    end, { 0, 1, 5, 6, 9, 11 })
  )
  h.eq(
    { 0, 1, 2, 3, 4, 5 },
    vim.tbl_map(function(b)
      return position.character(line, b, "utf-32")
    end, { 0, 1, 5, 6, 9, 11 })
  )
  h.eq(5, position.character(line, 5, "utf-8"))
  h.eq(1, position.character(line, 3, "utf-16"), "a byte inside 🎉 counts as its start")
  h.eq(6, position.character(line, 99, "utf-16"), "past the end: the line's length")
end)

test("round trip at every character boundary", function()
  local text = "é漢🎉x 🎉🎉漢"
  for _, enc in ipairs({ "utf-8", "utf-16", "utf-32" }) do
    for _, b in ipairs(vim.str_utf_pos(text)) do
      local col = b - 1
      h.eq(col, position.byte_col(text, position.character(text, col, enc), enc), enc .. " at byte " .. col)
    end
  end
end)

test("buffer positions: lines past the end clamp to the end of the last line", function()
  local bufnr = h.buffer({ "héllo", "漢字🎉" })
  h.eq({ 1, 10 }, { position.to_buf(bufnr, { line = 1, character = 4 }, "utf-16") })
  h.eq({ 1, 10 }, { position.to_buf(bufnr, { line = 7, character = 0 }, "utf-16") })
  h.eq({ 0, 0 }, { position.to_buf(bufnr, { line = -1, character = 5 }, "utf-16") })
  h.eq({ 0, 0 }, { position.to_buf(bufnr, nil, "utf-16") })
  h.eq({ 0, 6 }, { position.to_buf(bufnr, { line = 0, character = 99 }, "utf-32") })
  h.eq({ line = 1, character = 2 }, position.from_buf(bufnr, 1, 6, "utf-16"))
  h.eq({ line = 1, character = 4 }, position.from_buf(bufnr, 1, 10, "utf-16"))
  h.eq({ line = 1, character = 2 }, position.from_buf(bufnr, 1, 6, "utf-32"))
  h.eq({ line = 1, character = 6 }, position.from_buf(bufnr, 1, 6, "utf-8"))
end)

test("next_char steps over a whole multibyte character", function()
  h.eq(5, position.next_char(line, 1))
  h.eq(9, position.next_char(line, 6))
  h.eq(11, position.next_char(line, 11))
end)
