---@brief
--- Other people's cursors and selections, drawn with extmarks in one namespace: a tinted
--- range for a selection, a one-cell caret in the person's colour, and their name as virtual
--- text. `mesh/cursors` carries the full set for a document, so each update redraws that
--- buffer from scratch. Positions come from the network and are converted with the
--- negotiated encoding and clamped (see `mesh.position`): a stale or wrong position draws at
--- the nearest valid spot, it never raises.

local config = require("mesh.config")
local position = require("mesh.position")

local M = {}

local api = vim.api

--- The namespace of every remote cursor mark.
M.ns = api.nvim_create_namespace("mesh.cursors")

--- Colours for participants whose colour is missing or malformed, picked by connection id
--- so one person keeps one colour.
local palette = { "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#d19a66", "#be5046" }

-- Above syntax, semantic tokens and diagnostics, so a remote caret is never hidden.
local PRIORITY_SELECTION = 180
local PRIORITY_CARET = 220

--- The latest `mesh/cursors` payload per document URI.
---@type table<string, { client_id: integer, encoding: string, cursors: mesh.RemoteCursor[] }>
local by_uri = {}

--- Colours whose highlight groups exist, so `ColorScheme` can define them again after
--- `:highlight clear` removed them.
---@type table<string, boolean>
local defined = {}

--- A valid "#rrggbb" colour (lower case) for a participant.
---@param color any
---@param conn_id any
---@return string
function M.color(color, conn_id)
  if type(color) == "string" and color:match("^#%x%x%x%x%x%x$") then
    return color:lower()
  end
  local n = math.floor(tonumber(conn_id) or 0)
  return palette[(n % #palette) + 1]
end

---@param hex string "#rrggbb"
---@return integer r, integer g, integer b
local function rgb(hex)
  return tonumber(hex:sub(2, 3), 16), tonumber(hex:sub(4, 5), 16), tonumber(hex:sub(6, 7), 16)
end

--- Black or white, whichever reads better on `hex` (by relative luminance).
---@param hex string
---@return string
function M.contrast(hex)
  local r, g, b = rgb(hex)
  local luminance = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
  return luminance > 0.55 and "#000000" or "#ffffff"
end

--- `hex` mixed with the editor background, for a selection tint that keeps text readable.
---@param hex string
---@param amount number share of `hex`, 0..1
---@return string
function M.blend(hex, amount)
  local bg = api.nvim_get_hl(0, { name = "Normal", link = false }).bg
  local br, bg_g, bb
  if bg then
    br, bg_g, bb = math.floor(bg / 65536) % 256, math.floor(bg / 256) % 256, bg % 256
  elseif vim.o.background == "light" then
    br, bg_g, bb = 255, 255, 255
  else
    br, bg_g, bb = 0, 0, 0
  end
  local r, g, b = rgb(hex)
  local function mix(a, c)
    return math.floor(a * amount + c * (1 - amount) + 0.5)
  end
  return ("#%02x%02x%02x"):format(mix(r, br), mix(g, bg_g), mix(b, bb))
end

--- The highlight group names for a colour, defining them on first use.
---@param hex string a valid "#rrggbb"
---@return { caret: string, selection: string, name: string }
function M.highlights(hex)
  local key = hex:sub(2)
  local groups = {
    caret = "MeshCaret_" .. key,
    selection = "MeshSelection_" .. key,
    name = "MeshName_" .. key,
  }
  if not defined[hex] then
    defined[hex] = true
    M.define(hex)
  end
  return groups
end

--- (Re)defines the highlight groups of one colour. Terminals without 'termguicolors' get
--- reverse video and underline instead of the colour.
---@param hex string
function M.define(hex)
  local key = hex:sub(2)
  local fg = M.contrast(hex)
  api.nvim_set_hl(0, "MeshCaret_" .. key, { bg = hex, fg = fg, cterm = { reverse = true } })
  api.nvim_set_hl(0, "MeshSelection_" .. key, { bg = M.blend(hex, 0.3), cterm = { underline = true } })
  api.nvim_set_hl(0, "MeshName_" .. key, { bg = hex, fg = fg, bold = true, cterm = { reverse = true, bold = true } })
end

--- Defines every colour in use again; run on `ColorScheme`.
function M.redefine_all()
  for hex in pairs(defined) do
    M.define(hex)
  end
end

--- Records a `mesh/cursors` notification and redraws its buffer when it is loaded.
---@param client_id integer
---@param params mesh.CursorsParams
---@param encoding "utf-8"|"utf-16"|"utf-32"
function M.update(client_id, params, encoding)
  if type(params) ~= "table" or type(params.uri) ~= "string" then
    return
  end
  local cursors = type(params.cursors) == "table" and params.cursors or {}
  if #cursors == 0 then
    by_uri[params.uri] = nil
  else
    by_uri[params.uri] = { client_id = client_id, encoding = encoding, cursors = cursors }
  end
  local bufnr = require("mesh.edits").loaded_buffer(params.uri)
  if bufnr then
    M.render(bufnr)
  end
end

---@param a integer[]
---@param b integer[]
---@return boolean
local function before(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

--- Draws one selection of one person.
---@param bufnr integer
---@param sel table
---@param encoding string
---@param hl table
---@return integer row, integer col of the caret
local function draw_selection(bufnr, sel, encoding, hl)
  local hrow, hcol = position.to_buf(bufnr, sel.head, encoding)
  local arow, acol = hrow, hcol
  if type(sel.anchor) == "table" then
    arow, acol = position.to_buf(bufnr, sel.anchor, encoding)
  end
  if arow ~= hrow or acol ~= hcol then
    local s, e = { arow, acol }, { hrow, hcol }
    if before(e, s) then
      s, e = e, s
    end
    api.nvim_buf_set_extmark(bufnr, M.ns, s[1], s[2], {
      end_row = e[1],
      end_col = e[2],
      hl_group = hl.selection,
      priority = PRIORITY_SELECTION,
      strict = false,
    })
  end
  local line = position.get_line(bufnr, hrow)
  if hcol < #line then
    api.nvim_buf_set_extmark(bufnr, M.ns, hrow, hcol, {
      end_col = position.next_char(line, hcol),
      hl_group = hl.caret,
      priority = PRIORITY_CARET,
      strict = false,
    })
  else
    -- At the end of a line there is no character to colour: draw a cell over the blank.
    api.nvim_buf_set_extmark(bufnr, M.ns, hrow, hcol, {
      virt_text = { { " ", hl.caret } },
      virt_text_pos = "overlay",
      priority = PRIORITY_CARET,
      strict = false,
    })
  end
  return hrow, hcol
end

--- Redraws every remote cursor of a buffer.
---@param bufnr integer
function M.render(bufnr)
  if not api.nvim_buf_is_valid(bufnr) then
    return
  end
  api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
  local entry = by_uri[vim.uri_from_bufnr(bufnr)]
  if not entry then
    -- The proxy may spell the file differently (see `edits.loaded_buffer`).
    local edits = require("mesh.edits")
    for uri, e in pairs(by_uri) do
      if edits.loaded_buffer(uri) == bufnr then
        entry = e
      end
    end
  end
  if not entry then
    return
  end
  local where = config.get().name_position
  for _, cursor in ipairs(entry.cursors) do
    if type(cursor) == "table" and type(cursor.selections) == "table" then
      local hl = M.highlights(M.color(cursor.color, cursor.connId))
      local name = tostring(cursor.name or "?")
      for i, sel in ipairs(cursor.selections) do
        if type(sel) == "table" then
          local row, col = draw_selection(bufnr, sel, entry.encoding, hl)
          -- The name goes with the first (primary) selection only.
          if i == 1 and where ~= "none" then
            api.nvim_buf_set_extmark(bufnr, M.ns, row, col, {
              virt_text = { { " " .. name .. " ", hl.name } },
              virt_text_pos = where,
              priority = PRIORITY_CARET,
              strict = false,
            })
          end
        end
      end
    end
  end
end

--- Forgets the cursors a client reported (its proxy exited) and wipes them off the screen.
---@param client_id integer
function M.clear_client(client_id)
  for uri, entry in pairs(by_uri) do
    if entry.client_id == client_id then
      by_uri[uri] = nil
      local bufnr = require("mesh.edits").loaded_buffer(uri)
      if bufnr then
        api.nvim_buf_clear_namespace(bufnr, M.ns, 0, -1)
      end
    end
  end
end

--- What is drawn in a buffer, for tests and debugging: one entry per mark with its kind
--- ("caret", "selection" or "name"), zero-based position, colour and, for names, the text.
---@param bufnr integer
---@return { kind: string, row: integer, col: integer, end_row?: integer, end_col?: integer, color: string, name?: string }[]
function M.describe(bufnr)
  local out = {}
  for _, m in ipairs(api.nvim_buf_get_extmarks(bufnr, M.ns, 0, -1, { details = true })) do
    local _, row, col, d = m[1], m[2], m[3], m[4]
    local group = d.hl_group or (d.virt_text and d.virt_text[1] and d.virt_text[1][2]) or ""
    if type(group) == "table" then
      group = group[1] or ""
    end
    local kind, key = tostring(group):match("^Mesh(%a+)_(%x+)$")
    local item = {
      kind = kind and kind:lower() or "?",
      row = row,
      col = col,
      end_row = d.end_row,
      end_col = d.end_col,
      color = key and ("#" .. key) or "",
    }
    if item.kind == "name" then
      item.name = vim.trim(d.virt_text[1][1])
    end
    out[#out + 1] = item
  end
  return out
end

return M
