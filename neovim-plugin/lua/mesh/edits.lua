---@brief
--- Remote edits into buffers (`workspace/applyEdit`) and the buffer text the proxy checks
--- (`mesh/documentHash`).
---
--- Why not Neovim's default `workspace/applyEdit` handler:
--- - When the version is stale it prints "newer than edits", skips the edit and still answers
---   `applied: true`; mesh's contract needs `applied: false` so the proxy re-bases and retries
---   instead of believing the buffer holds text it does not.
--- - It leaves the edit in the user's current undo block: typed in Insert mode, `u` would
---   remove the remote person's text together with one's own. Here each remote edit is its
---   own undo block (see `break_undo`). Neovim's undo tree stores line snapshots, so an edit
---   cannot be kept out of it altogether without corrupting it or clearing it ('undolevels'
---   at -1 clears the history); `u` can therefore still revert a remote edit, as an ordinary
---   change that then syncs to everyone.
--- - It moves the caret like text typed at it; here a remote insert exactly at the caret
---   in Insert mode lands after the caret, so two people typing at one spot each keep their
---   words together.
--- - Edits that reach past the final newline are mapped to whole-line operations, so the
---   `didChange` Neovim derives from them describes exactly the proxy's edit (Neovim's
---   incremental sync treats every line, the last included, as ending in a newline).
--- - That same assumption makes Neovim's incremental `didChange` wrong at the end of a
---   buffer without a final newline ('noeol': a file saved that way, or a room text someone
---   ended without one, which other editors do when typing on the last line). For such
---   buffers the plugin replaces the changes of each `didChange` with the buffer's full
---   text (`sync_fix`), which LSP allows and which is always exact.

local position = require("mesh.position")
local sha256 = require("mesh.sha256")

local M = {}

local api = vim.api

--- Namespace of the temporary marks that carry each window's caret across a remote edit.
local caret_ns = api.nvim_create_namespace("mesh.caret")

--- b:changedtick right after the plugin's last remote edit of each buffer, so follow mode
--- can tell a remote change from a user's own in `TextChanged`.
---@type table<integer, integer>
M.remote_tick = {}

--- Functions called with the buffer number after every remote edit (follow mode uses it to
--- re-learn where the caret now is).
---@type (fun(bufnr: integer))[]
M.after_remote_edit = {}

local line_endings = { dos = "\r\n", unix = "\n", mac = "\r" }

--- Buffers whose next `didChange` must carry the full text even though 'eol' is set (the
--- change that restores the final newline).
---@type table<integer, boolean>
local force_full = {}

--- The user's 'fixeol' of buffers whose final newline a remote edit removed; 'fixeol' is
--- off meanwhile so that `:write` saves the room's text, not one with a newline added.
---@type table<integer, boolean>
local saved_fixeol = {}

--- Removes the final newline of a buffer's text: 'eol' off (before the lines change, so the
--- `didChange` of that change already carries the right text).
---@param bufnr integer
local function drop_final_newline(bufnr)
  if vim.bo[bufnr].eol then
    if saved_fixeol[bufnr] == nil then
      saved_fixeol[bufnr] = vim.bo[bufnr].fixeol
    end
    vim.bo[bufnr].eol = false
    vim.bo[bufnr].fixeol = false
  end
end

--- A buffer without a final newline whose last line is empty holds text that ends with a
--- newline: turn it back into the usual form (lines plus 'eol'), so that it goes back to
--- incremental sync.
---@param bufnr integer
local function restore_final_newline(bufnr)
  local count = api.nvim_buf_line_count(bufnr)
  if vim.bo[bufnr].eol or count < 2 or position.get_line(bufnr, count - 1) ~= "" then
    return
  end
  force_full[bufnr] = true
  vim.bo[bufnr].eol = true
  if saved_fixeol[bufnr] ~= nil then
    vim.bo[bufnr].fixeol = saved_fixeol[bufnr]
    saved_fixeol[bufnr] = nil
  end
  local ok, err = pcall(api.nvim_buf_set_lines, bufnr, count - 1, count, false, {})
  force_full[bufnr] = nil
  if not ok then
    error(err, 0)
  end
end

--- The text Neovim sends for a buffer in `didOpen`: its lines joined by the 'fileformat'
--- line ending, plus a final one when 'eol' is set. This must match Neovim exactly, so
--- Neovim's own function is used when this version has it.
---@param bufnr integer
---@return string
function M.buffer_text(bufnr)
  local ok, text = pcall(function()
    return vim.lsp._buf_get_full_text(bufnr)
  end)
  if ok and type(text) == "string" then
    return text
  end
  return M.buffer_text_fallback(bufnr)
end

--- The same text computed by the plugin itself (a test checks it agrees with Neovim's).
---@param bufnr integer
---@return string
function M.buffer_text_fallback(bufnr)
  local ending = line_endings[vim.bo[bufnr].fileformat] or "\n"
  local text = table.concat(api.nvim_buf_get_lines(bufnr, 0, -1, true), ending)
  if vim.bo[bufnr].eol then
    text = text .. ending
  end
  return text
end

--- The version Neovim last reported for the buffer in `didOpen`/`didChange`.
---@param bufnr integer
---@return integer
function M.buffer_version(bufnr)
  return vim.lsp.util.buf_versions[bufnr] or 0
end

--- The loaded buffer of a `file://` URI, or nil. Never creates or loads a buffer: the proxy
--- only edits documents the editor opened.
---@param uri string
---@return integer?
function M.loaded_buffer(uri)
  if type(uri) ~= "string" then
    return nil
  end
  local loaded = vim.tbl_filter(api.nvim_buf_is_loaded, api.nvim_list_bufs())
  -- The URI Neovim itself sends: what the proxy echoes back in the common case.
  for _, bufnr in ipairs(loaded) do
    if vim.uri_from_bufnr(bufnr) == uri then
      return bufnr
    end
  end
  local ok, fname = pcall(vim.uri_to_fname, uri)
  if not ok then
    return nil
  end
  -- The same file spelled differently: another normalisation, or through a symlink (the
  -- proxy resolves the workspace root, Neovim keeps the path you opened).
  local uv = vim.uv or vim.loop
  local real = uv.fs_realpath(fname)
  for _, bufnr in ipairs(loaded) do
    local name = api.nvim_buf_get_name(bufnr)
    if name ~= "" then
      if vim.fs.normalize(name) == vim.fs.normalize(fname) then
        return bufnr
      end
      if real and uv.fs_realpath(name) == real then
        return bufnr
      end
    end
  end
  return nil
end

--- Answers `mesh/documentHash`.
---@param params mesh.DocumentHashParams
---@return mesh.DocumentHashResult?
---@return string? error message when the document is not open
function M.document_hash(params)
  local bufnr = M.loaded_buffer(params and params.uri)
  if not bufnr then
    return nil, ("document is not open in Neovim: %s"):format(tostring(params and params.uri))
  end
  return {
    version = M.buffer_version(bufnr),
    sha256 = sha256.hex(M.buffer_text(bufnr)),
  }
end

--- Ends the current undo block of `bufnr`. Setting 'undolevels', even to its own value, is
--- the documented way to do that (`:help undo-blocks`), and unlike `CTRL-G u` it also works
--- outside Insert mode and from a callback.
---@param bufnr integer
local function break_undo(bufnr)
  api.nvim_buf_call(bufnr, function()
    vim.cmd("let &g:undolevels = &g:undolevels")
  end)
end

--- Remembers the caret of every window showing `bufnr` as an extmark, which Neovim moves
--- along with the text, and returns a function that puts the carets back there.
---@param bufnr integer
---@return fun()
local function keep_carets(bufnr)
  local insert = api.nvim_get_mode().mode:sub(1, 1) == "i"
  local current = api.nvim_get_current_win()
  local kept = {}
  for _, win in ipairs(vim.fn.win_findbuf(bufnr)) do
    local cursor = api.nvim_win_get_cursor(win)
    local id = api.nvim_buf_set_extmark(bufnr, caret_ns, cursor[1] - 1, cursor[2], {
      -- In Insert mode the caret sits between two characters: text inserted right there by
      -- someone else goes after it, so what you type next stays next to what you typed.
      right_gravity = not (insert and win == current),
    })
    kept[#kept + 1] = { win = win, id = id }
  end
  return function()
    for _, k in ipairs(kept) do
      local mark = api.nvim_buf_get_extmark_by_id(bufnr, caret_ns, k.id, {})
      if mark[1] and api.nvim_win_is_valid(k.win) and api.nvim_win_get_buf(k.win) == bufnr then
        pcall(api.nvim_win_set_cursor, k.win, { mark[1] + 1, mark[2] })
      end
    end
    api.nvim_buf_clear_namespace(bufnr, caret_ns, 0, -1)
  end
end

--- Applies one text edit, given in LSP terms, to the buffer.
---@param bufnr integer
---@param edit { s: mesh.Position, e: mesh.Position, text: string }
---@param encoding "utf-8"|"utf-16"|"utf-32"
local function apply_one(bufnr, edit, encoding)
  local count = api.nvim_buf_line_count(bufnr)
  local eol = vim.bo[bufnr].eol

  -- Resolves a position; `virtual` is true for the spot after the final newline, which is a
  -- position of the LSP text but not a place in the buffer.
  local function resolve(pos)
    local line = math.max(0, math.floor(tonumber(pos.line) or 0))
    if line >= count then
      if eol then
        return count, 0, true
      end
      return count - 1, #position.get_line(bufnr, count - 1), false
    end
    return line, position.byte_col(position.get_line(bufnr, line), pos.character, encoding), false
  end

  local srow, scol, svirtual = resolve(edit.s)
  local erow, ecol, evirtual = resolve(edit.e)
  if not evirtual then
    api.nvim_buf_set_text(bufnr, srow, scol, erow, ecol, vim.split(edit.text, "\n", { plain = true }))
    return
  end

  -- The range swallows the final newline: rebuild the lines from its start to the end of
  -- the buffer from what comes before the start on its line plus the new text.
  local head = svirtual and "" or position.get_line(bufnr, srow):sub(1, scol)
  local tail = head .. edit.text
  if tail == "" then
    if srow > 0 then
      -- The document now ends with the newline of the line above.
      api.nvim_buf_set_lines(bufnr, srow, count, false, {})
    else
      drop_final_newline(bufnr)
      api.nvim_buf_set_lines(bufnr, 0, count, false, { "" })
    end
  elseif tail:sub(-1) == "\n" then
    api.nvim_buf_set_lines(bufnr, srow, count, false, vim.split(tail:sub(1, -2), "\n", { plain = true }))
  else
    drop_final_newline(bufnr)
    api.nvim_buf_set_lines(bufnr, srow, count, false, vim.split(tail, "\n", { plain = true }))
  end
end

--- Applies a list of LSP `TextEdit`s to a buffer, as one undo block of its own, keeping the
--- carets of the windows that show it in place.
---@param bufnr integer
---@param text_edits table[]
---@param encoding "utf-8"|"utf-16"|"utf-32"
function M.apply_text_edits(bufnr, text_edits, encoding)
  local edits = {}
  for i, te in ipairs(text_edits) do
    local s, e = te.range.start, te.range["end"]
    if e.line < s.line or (e.line == s.line and e.character < s.character) then
      s, e = e, s
    end
    local text = tostring(te.newText or ""):gsub("\r\n?", "\n")
    edits[#edits + 1] = { s = s, e = e, text = text, index = i }
  end
  -- Every range refers to the document before any edit, so they are applied from the last
  -- to the first; inserts at one spot keep their order from the list.
  table.sort(edits, function(a, b)
    if a.s.line ~= b.s.line then
      return a.s.line > b.s.line
    end
    if a.s.character ~= b.s.character then
      return a.s.character > b.s.character
    end
    return a.index > b.index
  end)

  local modifiable = vim.bo[bufnr].modifiable
  local restore_carets = keep_carets(bufnr)
  break_undo(bufnr)
  -- A read-only view ('nomodifiable') must still follow the room, or it would silently
  -- show text nobody has any more.
  vim.bo[bufnr].modifiable = true
  local ok, err = pcall(function()
    for _, edit in ipairs(edits) do
      apply_one(bufnr, edit, encoding)
    end
    restore_final_newline(bufnr)
  end)
  vim.bo[bufnr].modifiable = modifiable
  break_undo(bufnr)
  restore_carets()
  M.remote_tick[bufnr] = api.nvim_buf_get_changedtick(bufnr)
  for _, fn in ipairs(M.after_remote_edit) do
    pcall(fn, bufnr)
  end
  if not ok then
    error(err, 0)
  end
end

--- Rewrites an outgoing `didChange` of a buffer without a final newline to carry the full
--- text (see the module comment). Other notifications pass unchanged.
---@param method string
---@param params table
---@return table params
function M.fix_did_change(method, params)
  if method ~= "textDocument/didChange" or type(params) ~= "table" then
    return params
  end
  local bufnr = M.loaded_buffer(params.textDocument and params.textDocument.uri)
  if not bufnr or (vim.bo[bufnr].eol and not force_full[bufnr]) then
    return params
  end
  return {
    textDocument = params.textDocument,
    contentChanges = { { text = M.buffer_text(bufnr) } },
  }
end

--- Installs `fix_did_change` on a client's outgoing messages. Neovim computes `didChange`
--- inside its change tracking with no hook for it, so the client's transport is wrapped.
---@param client vim.lsp.Client
function M.sync_fix(client)
  local rpc = client.rpc
  if type(rpc) ~= "table" or rpc.mesh_sync_fix then
    return
  end
  local notify = rpc.notify
  rpc.notify = function(method, params)
    local ok, fixed = pcall(M.fix_did_change, method, params)
    return notify(method, ok and fixed or params)
  end
  rpc.mesh_sync_fix = true
end

--- Applies a `WorkspaceEdit` from the proxy. Every document is checked before any is
--- changed, so a stale version leaves all buffers untouched.
---@param edit table
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@return boolean applied
---@return string? failure_reason
function M.apply_workspace_edit(edit, encoding)
  local docs = {}
  if type(edit) ~= "table" then
    return false, "the edit is empty"
  end
  if edit.documentChanges then
    for _, change in ipairs(edit.documentChanges) do
      if change.kind then
        return false, ("mesh does not apply %q workspace edits"):format(tostring(change.kind))
      end
      docs[#docs + 1] = {
        uri = change.textDocument.uri,
        version = change.textDocument.version,
        edits = change.edits or {},
      }
    end
  elseif edit.changes then
    for uri, edits in pairs(edit.changes) do
      docs[#docs + 1] = { uri = uri, edits = edits }
    end
  end

  for _, doc in ipairs(docs) do
    doc.bufnr = M.loaded_buffer(doc.uri)
    if not doc.bufnr then
      return false, ("document is not open in Neovim: %s"):format(doc.uri)
    end
    if type(doc.version) == "number" then
      local have = M.buffer_version(doc.bufnr)
      if have ~= doc.version then
        return false,
          ("stale version: Neovim is at version %d of %s, the edit is for version %d"):format(
            have,
            doc.uri,
            doc.version
          )
      end
    end
  end

  for _, doc in ipairs(docs) do
    M.apply_text_edits(doc.bufnr, doc.edits, encoding)
  end
  return true
end

--- The `workspace/applyEdit` handler installed on mesh clients. Never raises: a failure is
--- an `applied: false` answer with the reason, which the proxy logs and acts on.
---@param params table
---@param ctx table
---@return table
function M.handler(_, params, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  local encoding = client and client.offset_encoding or "utf-16"
  local ok, applied, reason = pcall(M.apply_workspace_edit, params and params.edit, encoding)
  if not ok then
    return { applied = false, failureReason = tostring(applied) }
  end
  return { applied = applied, failureReason = reason }
end

return M
