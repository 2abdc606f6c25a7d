---@brief
--- The Debug Adapter Protocol's framing, sans-IO: `Content-Length: N\r\n\r\n` then N bytes
--- of JSON. `encode` makes one frame; a `Decoder` takes bytes as they come from the adapter's
--- stdout (in any pieces) and returns whole messages. Bad input never stops it: a header
--- without a usable length or a body that is not a JSON object is reported and skipped, and
--- decoding goes on with what follows.

local M = {}

--- A header block longer than this without its blank line is not a DAP header: what came
--- so far is dropped and the decoder looks for the next `Content-Length`.
M.MAX_HEADER_BYTES = 4096

--- One message larger than this is refused rather than buffered: the proxy never sends one
--- (its own limit is 16 MiB), so such a length means the stream is corrupt.
M.MAX_BODY_BYTES = 16 * 1024 * 1024

--- One frame holding `message` encoded as JSON. The length counts bytes, not characters.
---@param message table
---@return string
function M.encode(message)
  local body = vim.json.encode(message)
  return ("Content-Length: %d\r\n\r\n%s"):format(#body, body)
end

---@class mesh.dap.Decoder
---@field private buf string bytes not consumed yet
---@field private want? integer the body length of the frame being read, once its header is in
local Decoder = {}
Decoder.__index = Decoder

--- A decoder with nothing buffered.
---@return mesh.dap.Decoder
function M.decoder()
  return setmetatable({ buf = "", want = nil }, Decoder)
end

--- The length a header block declares, or nil when it declares none that can be used. Header
--- names are case-insensitive; other headers are ignored.
---@param header string
---@return integer?
local function content_length(header)
  local length = nil
  for line in (header .. "\r\n"):gmatch("(.-)\r\n") do
    local name, value = line:match("^%s*([^:]+):%s*(.-)%s*$")
    if name and name:lower() == "content-length" then
      length = tonumber(value:match("^%d+$"))
    end
  end
  return length
end

--- Feeds bytes; returns the messages completed by them, in order, and a description of each
--- piece of bad input met on the way.
---@param chunk string
---@return mesh.dap.Message[] messages
---@return string[] problems
function Decoder:feed(chunk)
  self.buf = self.buf .. chunk
  local messages, problems = {}, {}
  while true do
    if not self.want then
      local stop = self.buf:find("\r\n\r\n", 1, true)
      if not stop then
        if #self.buf > M.MAX_HEADER_BYTES then
          problems[#problems + 1] = ("a header over %d bytes without its end; skipped"):format(M.MAX_HEADER_BYTES)
          -- Keep only from the last `Content-Length`, which may start the next good frame.
          local at = self.buf:lower():find("content%-length[^\r\n]*$")
          self.buf = at and self.buf:sub(at) or ""
        end
        break
      end
      local header = self.buf:sub(1, stop - 1)
      self.buf = self.buf:sub(stop + 4)
      -- Text before the last `Content-Length` line (garbage, a broken frame's tail) is ignored.
      local last = nil
      local from = 1
      while true do
        local s = header:lower():find("content%-length", from)
        if not s then
          break
        end
        last, from = s, s + 1
      end
      local length = last and content_length(header:sub(last))
      if not length then
        problems[#problems + 1] = ("a header without a usable Content-Length: %q"):format(header:sub(1, 80))
      elseif length > M.MAX_BODY_BYTES then
        problems[#problems + 1] = ("a message of %d bytes, over the %d byte limit; the stream is out of step"):format(
          length,
          M.MAX_BODY_BYTES
        )
        self.buf = ""
        break
      else
        self.want = length
      end
    else
      if #self.buf < self.want then
        break
      end
      local body = self.buf:sub(1, self.want)
      self.buf = self.buf:sub(self.want + 1)
      self.want = nil
      local ok, decoded = pcall(vim.json.decode, body, { luanil = { object = true, array = true } })
      if not ok then
        problems[#problems + 1] = ("a body that is not JSON: %s"):format(tostring(decoded):sub(1, 120))
      elseif type(decoded) ~= "table" or type(decoded.type) ~= "string" then
        problems[#problems + 1] = "a body that is not a DAP message (no `type`)"
      else
        messages[#messages + 1] = decoded
      end
    end
  end
  return messages, problems
end

return M
