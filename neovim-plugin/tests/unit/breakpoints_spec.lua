-- The room's breakpoints during a shared debug session: ◆ signs from the proxy's
-- mesh/debugBreakpoints, in every loaded buffer of the file, gone on mesh/debugEnded.
local h = require("helpers")
local breakpoints = require("mesh.breakpoints")

local api = vim.api

local TEXT = "a = 1\nb = 2\nc = 3\nd = 4\n"

--- Sends `mesh/debugBreakpoints` for `bufnr`'s file from the fake proxy.
local function set(fake, bufnr, lines, fields)
  local params = { debugId = "d1", path = "main.py", uri = vim.uri_from_bufnr(bufnr), lines = lines }
  fake.dispatchers.notification("mesh/debugBreakpoints", vim.tbl_extend("force", params, fields or {}))
end

local function ended(fake, debug_id)
  fake.dispatchers.notification("mesh/debugEnded", { debugId = debug_id or "d1", exitCode = 0 })
end

--- Waits until the buffer shows exactly `lines`.
local function wait_lines(bufnr, lines, what)
  h.wait(function()
    return vim.deep_equal(breakpoints.lines(bufnr), lines)
  end, what .. " (now " .. vim.inspect(breakpoints.lines(bufnr)) .. ")")
end

test("the room's breakpoints show as ◆ signs, and each update replaces the file's set", function()
  local fake, bufnr = h.start_with_file(TEXT, { name = "main.py" })
  set(fake, bufnr, { 1, 3 })
  wait_lines(bufnr, { 1, 3 }, "the first set")
  local marks = api.nvim_buf_get_extmarks(bufnr, breakpoints.ns, 0, -1, { details = true })
  h.eq("◆", vim.trim(marks[1][4].sign_text))
  h.eq("MeshBreakpoint", marks[1][4].sign_hl_group)
  h.eq("DiagnosticInfo", api.nvim_get_hl(0, { name = "MeshBreakpoint" }).link)
  h.eq(breakpoints.ns, api.nvim_get_namespaces().mesh_breakpoints)
  set(fake, bufnr, { 2, 4, 99 })
  wait_lines(bufnr, { 2, 4 }, "the new set, without the line past the end")
  set(fake, bufnr, {})
  wait_lines(bufnr, {}, "an empty set clears")
end)

test("the session's end clears its marks; another session's end does not", function()
  local fake, bufnr = h.start_with_file(TEXT, { name = "main.py" })
  set(fake, bufnr, { 2 })
  wait_lines(bufnr, { 2 }, "the marks")
  ended(fake, "other")
  vim.wait(50)
  h.eq({ 2 }, breakpoints.lines(bufnr), "still there after another session ended")
  ended(fake)
  wait_lines(bufnr, {}, "the marks cleared")
end)

test("breakpoints of a file opened later show when it is opened; without a uri, by room path", function()
  local fake, bufnr = h.start_with_file(TEXT, { name = "main.py" })
  local other = h.write(vim.fn.getcwd(), "lib/util.py", TEXT)
  fake.dispatchers.notification("mesh/debugBreakpoints", { debugId = "d1", path = "lib/util.py", lines = { 3 } })
  vim.wait(50)
  h.eq({}, breakpoints.lines(bufnr), "not in another file")
  vim.cmd.edit(vim.fn.fnameescape(other))
  local later = api.nvim_get_current_buf()
  wait_lines(later, { 3 }, "the marks in the file opened later")
end)

test("the marks go when the proxy exits", function()
  local fake, bufnr, client = h.start_with_file(TEXT, { name = "main.py" })
  set(fake, bufnr, { 1 })
  wait_lines(bufnr, { 1 }, "the marks")
  require("mesh.compat").stop(client, true)
  wait_lines(bufnr, {}, "the marks cleared")
end)

test("malformed notifications are ignored", function()
  local fake, bufnr = h.start_with_file(TEXT, { name = "main.py" })
  h.messages = {}
  fake.dispatchers.notification("mesh/debugBreakpoints", { debugId = "d1", path = "main.py" })
  fake.dispatchers.notification("mesh/debugBreakpoints", { debugId = "d1", lines = { 1 } })
  fake.dispatchers.notification("mesh/debugEnded", vim.NIL)
  set(fake, bufnr, { 2, "x" })
  wait_lines(bufnr, { 2 }, "the well-formed lines")
  h.eq("", h.all_messages())
end)
