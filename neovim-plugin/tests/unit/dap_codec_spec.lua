-- The built-in debugger's DAP framing: whole messages from bytes in any pieces, and bad
-- input reported and skipped, never fatal.
local h = require("helpers")
local codec = require("mesh.dap.codec")

local function frame(t)
  return codec.encode(t)
end

test("a frame's length counts bytes, so multibyte text round-trips", function()
  local msg = { seq = 1, type = "event", event = "output", body = { output = "héllo 🎉\n" } }
  local bytes = frame(msg)
  h.eq(("Content-Length: %d\r\n\r\n"):format(#vim.json.encode(msg)), bytes:match("^.-\r\n\r\n"))
  local got = codec.decoder():feed(bytes)
  h.eq({ msg }, got)
end)

test("messages split anywhere, or several in one chunk, come out whole and in order", function()
  local a = frame({ seq = 1, type = "response", request_seq = 1, command = "initialize", success = true })
  local b = frame({ seq = 2, type = "event", event = "initialized" })
  local stream = a .. b
  for cut = 1, #stream - 1 do
    local d = codec.decoder()
    local first = d:feed(stream:sub(1, cut))
    local second = d:feed(stream:sub(cut + 1))
    local all = vim.list_extend(vim.deepcopy(first), second)
    h.eq({ 1, 2 }, vim.tbl_map(function(m)
      return m.seq
    end, all), "cut at " .. cut)
  end
end)

test("header names are case-insensitive and other headers are ignored", function()
  local body = vim.json.encode({ seq = 7, type = "event", event = "stopped" })
  local got = codec.decoder():feed(("content-length: %d\r\nContent-Type: x\r\n\r\n%s"):format(#body, body))
  h.eq(7, got[1].seq)
end)

test("bad input is reported and skipped; what follows is read", function()
  local good = frame({ seq = 9, type = "event", event = "continued" })
  local d = codec.decoder()
  local msgs, problems = d:feed("Content-Type: nothing\r\n\r\n" .. good)
  h.eq({ 9 }, vim.tbl_map(function(m)
    return m.seq
  end, msgs))
  h.contains(problems[1], "without a usable Content-Length")
  msgs, problems = d:feed("Content-Length: 5\r\n\r\nnope!" .. good)
  h.eq(1, #msgs)
  h.contains(problems[1], "not JSON")
  msgs, problems = d:feed("Content-Length: 2\r\n\r\n{}" .. good)
  h.eq(1, #msgs)
  h.contains(problems[1], "not a DAP message")
end)

test("an endless header is dropped at the limit, and decoding finds its step again", function()
  local d = codec.decoder()
  local msgs, problems = d:feed(string.rep("x", codec.MAX_HEADER_BYTES + 10))
  h.eq({}, msgs)
  h.contains(problems[1], "header over")
  msgs = d:feed(frame({ seq = 3, type = "event", event = "thread" }))
  h.eq(3, msgs[1].seq)
end)

test("a length over the limit is refused, not buffered", function()
  local d = codec.decoder()
  local msgs, problems = d:feed(("Content-Length: %d\r\n\r\n{"):format(codec.MAX_BODY_BYTES + 1))
  h.eq({}, msgs)
  h.contains(problems[1], "over the")
  h.eq(1, #d:feed(frame({ seq = 4, type = "event", event = "thread" })))
end)

test("random bytes in random pieces never raise, never yield a non-message, never grow the buffer unbounded", function()
  -- Seeded, so a failure replays; the seed is in the failure message.
  local seed = 4242
  math.randomseed(seed)
  local pieces = { "Content-Length: ", "\r\n", "\r\n\r\n", "{", "}", '"type"', ":", "12", "x", "\0", "é", "99999999" }
  for round = 1, 200 do
    local d = codec.decoder()
    local parts = {}
    for _ = 1, math.random(1, 40) do
      if math.random() < 0.5 then
        parts[#parts + 1] = pieces[math.random(#pieces)]
      else
        local bytes = {}
        for _ = 1, math.random(1, 30) do
          bytes[#bytes + 1] = string.char(math.random(0, 255))
        end
        parts[#parts + 1] = table.concat(bytes)
      end
    end
    local stream = table.concat(parts)
    local at = 1
    while at <= #stream do
      local n = math.random(1, 64)
      local ok, msgs = pcall(d.feed, d, stream:sub(at, at + n - 1))
      h.ok(ok, ("seed %d round %d: the decoder raised: %s"):format(seed, round, tostring(msgs)))
      for _, m in ipairs(msgs) do
        h.ok(type(m) == "table" and type(m.type) == "string", ("seed %d round %d: a non-message came out"):format(seed, round))
      end
      -- A header waits for its end up to the limit; a body for its declared length.
      local bound = math.max(codec.MAX_HEADER_BYTES, d.want or 0) + 64
      h.ok(#d.buf <= bound, ("seed %d round %d: %d bytes buffered"):format(seed, round, #d.buf))
      at = at + n
    end
  end
end)
