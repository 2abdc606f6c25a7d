---@brief
--- Conversions between LSP positions (line, character in the negotiated encoding) and
--- Neovim's (row, byte column), both zero-based. Remote data is never trusted: every
--- conversion clamps to the buffer and lands on a character boundary, so a position past the
--- end of a line or of the buffer, or inside a multibyte character, draws somewhere sensible
--- instead of raising an error.

local compat = require("mesh.compat")

local M = {}

--- Moves a byte column to the start of the character it falls in.
---@param line string
---@param byte integer zero-based byte column
---@return integer
function M.char_start(line, byte)
  if byte <= 0 then
    return 0
  end
  if byte >= #line then
    return #line
  end
  return byte + vim.str_utf_start(line, byte + 1)
end

--- The byte column of the character at `character` code units of `encoding` into `line`.
--- Past the end it is `#line`; inside a character (half a UTF-16 surrogate pair, a byte in
--- the middle of a UTF-8 sequence) it rounds down to the start of that character.
---@param line string
---@param character integer|any
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@return integer
function M.byte_col(line, character, encoding)
  character = tonumber(character)
  if not character or character <= 0 then
    return 0
  end
  character = math.floor(character)
  local byte = M.char_start(line, compat.byteindex(line, encoding, character))
  -- `vim.str_byteindex` rounds an index inside a character up to its end; stepping back one
  -- character makes every encoding round the same way.
  if byte > 0 and compat.utfindex(line, encoding, byte) > character then
    byte = M.char_start(line, byte - 1)
  end
  return byte
end

--- The LSP character offset of byte column `col` in `line`.
---@param line string
---@param col integer
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@return integer
function M.character(line, col, encoding)
  return compat.utfindex(line, encoding, M.char_start(line, col))
end

--- One line of a buffer, or "" when the row does not exist.
---@param bufnr integer
---@param row integer
---@return string
function M.get_line(bufnr, row)
  return vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
end

--- Converts an LSP position to a (row, byte column) inside `bufnr`. A line past the end of
--- the buffer maps to the end of its last line; a negative or missing line to the start.
---@param bufnr integer
---@param pos mesh.Position|table|nil
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@return integer row
---@return integer col
function M.to_buf(bufnr, pos, encoding)
  local count = vim.api.nvim_buf_line_count(bufnr)
  local line = type(pos) == "table" and tonumber(pos.line) or nil
  if not line or line < 0 then
    return 0, 0
  end
  line = math.floor(line)
  if line >= count then
    return count - 1, #M.get_line(bufnr, count - 1)
  end
  return line, M.byte_col(M.get_line(bufnr, line), pos.character, encoding)
end

--- Converts a (row, byte column) of `bufnr` to an LSP position.
---@param bufnr integer
---@param row integer
---@param col integer
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@return mesh.Position
function M.from_buf(bufnr, row, col, encoding)
  return { line = row, character = M.character(M.get_line(bufnr, row), col, encoding) }
end

--- The byte column just after the character that starts at `col` (for drawing a one-cell
--- caret), or `col` itself at the end of the line.
---@param line string
---@param col integer
---@return integer
function M.next_char(line, col)
  if col >= #line then
    return #line
  end
  return col + 1 + vim.str_utf_end(line, col + 1)
end

return M
