---@brief
--- The few Neovim APIs whose shape changed between 0.10 (the oldest release mesh supports)
--- and later releases, wrapped once so the rest of the plugin reads the same everywhere.

local M = {}

--- True on Neovim 0.11 and later, where LSP client methods are called with `:` and the
--- string index functions take an encoding name.
M.nvim_0_11 = vim.fn.has("nvim-0.11") == 1

--- Sends a request through an LSP client.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@param handler fun(err: table?, result: any)
---@param bufnr? integer
---@return boolean sent
function M.request(client, method, params, handler, bufnr)
  if M.nvim_0_11 then
    return (client:request(method, params, handler, bufnr))
  end
  ---@diagnostic disable-next-line: param-type-mismatch
  return (client.request(method, params, handler, bufnr))
end

--- Sends a notification through an LSP client.
---@param client vim.lsp.Client
---@param method string
---@param params table
---@return boolean sent
function M.notify(client, method, params)
  if M.nvim_0_11 then
    return client:notify(method, params)
  end
  ---@diagnostic disable-next-line: param-type-mismatch
  return client.notify(method, params)
end

--- Stops an LSP client.
---@param client vim.lsp.Client
---@param force? boolean
function M.stop(client, force)
  if M.nvim_0_11 then
    client:stop(force)
  else
    ---@diagnostic disable-next-line: param-type-mismatch
    client.stop(force)
  end
end

--- Whether an LSP client has stopped (or is stopping).
---@param client vim.lsp.Client
---@return boolean
function M.is_stopped(client)
  if M.nvim_0_11 then
    return client:is_stopped()
  end
  ---@diagnostic disable-next-line: missing-parameter
  return client.is_stopped()
end

--- Starts (or reuses) an LSP client without attaching any buffer, for `:Mesh share` and
--- `:Mesh join` run from a window that shows no file.
---@param config vim.lsp.ClientConfig
---@return integer? client_id
function M.start_detached(config)
  if M.nvim_0_11 then
    return vim.lsp.start(config, { attach = false })
  end
  ---@diagnostic disable-next-line: deprecated
  return vim.lsp.start_client(config)
end

--- The byte index in `line` of the `index`-th code unit of `encoding`, clamped to the
--- length of the line (an index past the end yields `#line`, never an error).
---@param line string
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@param index integer
---@return integer
function M.byteindex(line, encoding, index)
  if index <= 0 then
    return 0
  end
  if encoding == "utf-8" then
    return math.min(index, #line)
  end
  if M.nvim_0_11 then
    return vim.str_byteindex(line, encoding, index, false)
  end
  local ok, byte = pcall(vim.str_byteindex, line, index, encoding == "utf-16")
  return ok and byte or #line
end

--- The number of `encoding` code units in the first `byte` bytes of `line` (clamped).
---@param line string
---@param encoding "utf-8"|"utf-16"|"utf-32"
---@param byte integer
---@return integer
function M.utfindex(line, encoding, byte)
  byte = math.max(0, math.min(byte, #line))
  if encoding == "utf-8" then
    return byte
  end
  if M.nvim_0_11 then
    return vim.str_utfindex(line, encoding, byte, false)
  end
  ---@diagnostic disable-next-line: missing-parameter
  local utf32, utf16 = vim.str_utfindex(line, byte)
  return encoding == "utf-16" and utf16 or utf32
end

return M
