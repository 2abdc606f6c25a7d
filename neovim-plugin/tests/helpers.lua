-- Helpers for the unit tests: assertions, a recorder for vim.notify, scratch files, and a
-- fake mesh-proxy that runs inside the Neovim under test (Neovim's LSP client accepts a Lua
-- function as the server command). The fake keeps its own copy of each document, built only
-- from the didOpen/didChange Neovim sends, with its own position arithmetic, so a test can
-- check that the plugin's `mesh/documentHash` agrees with what a real proxy would hold.

local M = {}

local api = vim.api

---@param v any
---@return string
local function show(v)
  return vim.inspect(v, { newline = " ", indent = "" })
end

--- Fails unless `actual` deep-equals `expected`.
function M.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(("%sexpected %s, got %s"):format(what and (what .. ": ") or "", show(expected), show(actual)), 2)
  end
end

--- Fails unless `cond` is truthy.
function M.ok(cond, what)
  if not cond then
    error(what or "expected a true value", 2)
  end
end

--- Fails unless `s` contains `needle` (plain text).
function M.contains(s, needle, what)
  if type(s) ~= "string" or not s:find(needle, 1, true) then
    error(("%sexpected %s to contain %s"):format(what and (what .. ": ") or "", show(s), show(needle)), 2)
  end
end

--- Waits (running the event loop) until `cond` is true; fails after `ms`.
function M.wait(cond, what, ms)
  if not vim.wait(ms or 2000, cond, 5) then
    error("timed out waiting for " .. (what or "a condition"), 2)
  end
end

-- vim.notify recorder ---------------------------------------------------------------------

---@type { msg: string, level: integer }[]
M.messages = {}

local real_notify = vim.notify
vim.notify = function(msg, level)
  table.insert(M.messages, { msg = tostring(msg), level = level or vim.log.levels.INFO })
end

--- The recorded messages joined, for `contains` checks.
function M.all_messages()
  return table.concat(
    vim.tbl_map(function(m)
      return m.msg
    end, M.messages),
    "\n"
  )
end

M.real_notify = real_notify

-- Files ------------------------------------------------------------------------------------

--- A fresh temporary folder (a workspace root for the test).
function M.tempdir()
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, "p")
  return vim.fs.normalize(vim.fn.resolve(dir))
end

--- Writes `text` to `dir/name` exactly (no newline added) and returns the path.
function M.write(dir, name, text)
  local path = dir .. "/" .. name
  vim.fn.mkdir(vim.fs.dirname(path), "p")
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- A scratch buffer holding `lines`, named like a file so URIs work, shown in the current
--- window.
function M.buffer(lines, name)
  local bufnr = api.nvim_create_buf(true, false)
  api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  if name then
    api.nvim_buf_set_name(bufnr, name)
  end
  api.nvim_set_current_buf(bufnr)
  return bufnr
end

-- Independent position arithmetic for the fake proxy's shadow copies ----------------------

--- Code points of a UTF-8 string as { byte_start, byte_len, codepoint }.
local function codepoints(s)
  local out, i = {}, 1
  while i <= #s do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or c < 0xE0 and 2 or c < 0xF0 and 3 or 4
    local cp = c
    if len == 2 then
      cp = c % 0x20
    elseif len == 3 then
      cp = c % 0x10
    elseif len == 4 then
      cp = c % 0x08
    end
    for k = 1, len - 1 do
      cp = cp * 64 + ((s:byte(i + k) or 0x80) % 64)
    end
    out[#out + 1] = { i, len, cp }
    i = i + len
  end
  return out
end

--- Byte offset in `line` of `character` units of `encoding` (clamped to the line).
function M.line_offset(line, character, encoding)
  local units = 0
  for _, cp in ipairs(codepoints(line)) do
    if units >= character then
      return cp[1] - 1
    end
    if encoding == "utf-8" then
      units = units + cp[2]
    elseif encoding == "utf-16" then
      units = units + (cp[3] >= 0x10000 and 2 or 1)
    else
      units = units + 1
    end
  end
  return #line
end

--- Byte offset in `text` of an LSP position (past the end: the end).
function M.text_offset(text, pos, encoding)
  local line_start, line = 1, 0
  while line < pos.line do
    local nl = text:find("\n", line_start, true)
    if not nl then
      return #text
    end
    line_start = nl + 1
    line = line + 1
  end
  local nl = text:find("\n", line_start, true)
  local content = text:sub(line_start, nl and nl - 1 or #text)
  return line_start - 1 + M.line_offset(content, pos.character, encoding)
end

--- Applies one LSP content change to `text`.
function M.apply_change(text, change, encoding)
  if not change.range then
    return change.text
  end
  local s = M.text_offset(text, change.range.start, encoding)
  local e = M.text_offset(text, change.range["end"], encoding)
  return text:sub(1, s) .. change.text .. text:sub(e + 1)
end

-- The fake proxy ---------------------------------------------------------------------------

---@class mesh.test.Fake
---@field encoding string the position encoding it answers `initialize` with
---@field docs table<string, { text: string, version: integer }> its shadow of each open document
---@field sent { method: string, params: any }[] notifications Neovim sent, in order
---@field requests { method: string, params: any }[] requests Neovim sent, in order
---@field responders table<string, fun(params: any): any, any> answers to `mesh/*` requests
---@field dispatchers table set once Neovim started it: call `dispatchers.server_request` and `dispatchers.notification` to play the proxy's part
---@field announce boolean whether `initialize` announces `experimental.mesh`

--- A fake proxy; pass `fake.cmd` as the plugin's `cmd` option.
---@param opts? { encoding?: string, announce?: boolean }
---@return mesh.test.Fake
function M.fake_proxy(opts)
  opts = opts or {}
  local fake = {
    encoding = opts.encoding or "utf-8",
    docs = {},
    sent = {},
    requests = {},
    responders = {},
    announce = opts.announce ~= false,
  }
  fake.cmd = function(dispatchers)
    fake.dispatchers = dispatchers
    local closing = false
    local next_id = 0
    local server = {}
    function server.request(method, params, callback, notify_reply_callback)
      next_id = next_id + 1
      local id = next_id
      table.insert(fake.requests, { method = method, params = params })
      local result, err
      if method == "initialize" then
        fake.initialize_params = params
        result = {
          capabilities = {
            textDocumentSync = { openClose = true, change = 2, save = { includeText = false } },
            positionEncoding = fake.encoding,
            experimental = fake.announce and { mesh = { version = 1 } } or nil,
          },
        }
      elseif method == "shutdown" then
        result = vim.NIL
      elseif fake.responders[method] then
        result, err = fake.responders[method](params)
      else
        err = { code = -32601, message = "method not found: " .. method }
      end
      vim.schedule(function()
        callback(err, result)
        if notify_reply_callback then
          notify_reply_callback(id)
        end
      end)
      return true, id
    end
    function server.notify(method, params)
      table.insert(fake.sent, { method = method, params = params })
      if method == "textDocument/didOpen" then
        local doc = params.textDocument
        fake.docs[doc.uri] = { text = doc.text, version = doc.version }
      elseif method == "textDocument/didChange" then
        local doc = fake.docs[params.textDocument.uri]
        for _, change in ipairs(params.contentChanges) do
          doc.text = M.apply_change(doc.text, change, fake.encoding)
        end
        doc.version = params.textDocument.version
      elseif method == "textDocument/didClose" then
        fake.docs[params.textDocument.uri] = nil
      elseif method == "exit" then
        closing = true
        vim.schedule(function()
          dispatchers.on_exit(0, 0)
        end)
      end
      return true
    end
    function server.is_closing()
      return closing
    end
    function server.terminate()
      if not closing then
        closing = true
        vim.schedule(function()
          dispatchers.on_exit(0, 15)
        end)
      end
    end
    return server
  end
  --- The notifications Neovim sent with this method.
  function fake.sent_with(method)
    return vim.tbl_filter(function(m)
      return m.method == method
    end, fake.sent)
  end
  return fake
end

--- Starts mesh with a fake proxy on a real file in a fresh folder, which becomes the current
--- directory, and waits until the buffer is attached and the client initialized.
---@param text string the file's content
---@param opts? { encoding?: string, name?: string, setup?: table, announce?: boolean }
---@return mesh.test.Fake fake
---@return integer bufnr
---@return vim.lsp.Client client
function M.start_with_file(text, opts)
  opts = opts or {}
  local dir = M.tempdir()
  local path = M.write(dir, opts.name or "file.txt", text)
  vim.cmd.cd(dir)
  local fake = M.fake_proxy({ encoding = opts.encoding, announce = opts.announce })
  require("mesh").setup(vim.tbl_extend("force", { cmd = fake.cmd, name = "tester" }, opts.setup or {}))
  vim.cmd.edit(vim.fn.fnameescape(path))
  local bufnr = api.nvim_get_current_buf()
  M.wait(function()
    local c = require("mesh.client").for_buffer(bufnr)
    return c ~= nil and c.initialized and fake.docs[vim.uri_from_bufnr(bufnr)] ~= nil
  end, "the mesh client to attach")
  return fake, bufnr, assert(require("mesh.client").for_buffer(bufnr))
end

--- Plays the proxy sending `workspace/applyEdit` for one document at the version the fake
--- believes Neovim is at; returns Neovim's answer.
function M.remote_edit(fake, bufnr, edits, version)
  local uri = vim.uri_from_bufnr(bufnr)
  local result = fake.dispatchers.server_request("workspace/applyEdit", {
    edit = {
      documentChanges = {
        { textDocument = { uri = uri, version = version or fake.docs[uri].version }, edits = edits },
      },
    },
  })
  return result
end

--- An LSP range.
function M.range(l1, c1, l2, c2)
  return { start = { line = l1, character = c1 }, ["end"] = { line = l2, character = c2 } }
end

--- Puts the editor back to a blank state between tests: mesh clients stopped, buffers
--- wiped, recorded messages dropped, default options.
function M.reset()
  for _, c in ipairs(vim.lsp.get_clients()) do
    require("mesh.compat").stop(c, true)
  end
  vim.wait(1000, function()
    return #vim.lsp.get_clients() == 0
  end, 5)
  pcall(vim.cmd, "silent! %bwipeout!")
  pcall(vim.cmd, "silent! only!")
  vim.cmd.cd(vim.fn.fnameescape(M.start_dir))
  M.messages = {}
  require("mesh.config").set({})
  -- A test's stub nvim-dap must not leak into the next test, nor the built-in debugger's
  -- session or keys.
  package.loaded.dap = nil
  if package.loaded["mesh.dap"] then
    require("mesh.dap").reset()
  end
end

M.start_dir = vim.fn.getcwd()

return M
