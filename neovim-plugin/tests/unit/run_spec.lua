-- Shared runs: `:Mesh run`, `:Mesh input`, `:Mesh stop`, and the output buffers that every
-- run in the room fills, from the proxy's mesh/run* notifications.
local h = require("helpers")
local run = require("mesh.run")

local api = vim.api

--- Starts mesh on a Python file with a fake proxy that answers mesh/run* and records them.
local function start()
  local fake, bufnr, client = h.start_with_file("print('hi')\n", { name = "main.py" })
  fake.run_requests = {}
  for _, method in ipairs({ "mesh/run", "mesh/runInput", "mesh/runStop" }) do
    fake.responders[method] = function(params)
      table.insert(fake.run_requests, { method = method, params = params })
      if method == "mesh/run" then
        return { runId = "r1" }
      end
      return vim.empty_dict()
    end
  end
  return fake, bufnr, client
end

local function started(fake, fields)
  local params = { runId = "r1", path = "main.py", language = "python", by = 1, byName = "tester", you = true }
  fake.dispatchers.notification("mesh/runStarted", vim.tbl_extend("force", params, fields or {}))
end

local function output(fake, stream, data, id)
  fake.dispatchers.notification("mesh/runOutput", { runId = id or "r1", stream = stream, data = data })
end

local function exited(fake, fields)
  local params = { runId = "r1", stage = "run", code = 0, durationMs = 420, limit = vim.NIL, error = vim.NIL }
  fake.dispatchers.notification("mesh/runExited", vim.tbl_extend("force", params, fields or {}))
end

--- The lines of the run's buffer.
local function lines_of(id)
  for _, r in ipairs(run.describe()) do
    if r.id == id then
      return r.lines
    end
  end
  error("no run " .. id)
end

--- The highlight groups on a line of a buffer.
local function groups_on(bufnr, row)
  local out = {}
  for _, m in ipairs(api.nvim_buf_get_extmarks(bufnr, -1, { row, 0 }, { row, -1 }, { details = true })) do
    out[#out + 1] = m[4].hl_group
  end
  return out
end

test("terminal escapes and carriage returns are removed from output", function()
  h.eq("red plain\nnext", run.strip_ansi("\27[31mred\27[0m plain\r\nnext"))
  h.eq("title gone", run.strip_ansi("\27]0;a title\7title gone"))
end)

test("output pieces extend the open line or add lines", function()
  h.eq({ lines = { "a", "b" }, partial = false }, run.split_output(false, "a\nb\n"))
  h.eq({ lines = { "a" }, partial = true }, run.split_output(false, "a"))
  h.eq({ extend = "b", lines = { "c" }, partial = true }, run.split_output(true, "b\nc"))
  h.eq({ extend = "", lines = {}, partial = false }, run.split_output(true, "\n"))
  h.eq({ lines = { "" }, partial = false }, run.split_output(false, "\n"))
  h.eq({ lines = {}, partial = true }, run.split_output(true, ""))
end)

test("the exit line says code, duration, limit or error", function()
  h.eq({ "■ exit 0 · 420 ms", true }, { run.format_exit({ stage = "run", code = 0, durationMs = 420 }) })
  h.eq(
    { "■ exit 3 · 1.5 s", false },
    { run.format_exit({ stage = "run", code = 3, durationMs = 1500, limit = vim.NIL }) }
  )
  h.eq(
    { "■ time limit hit · exit 137 · 10.0 s", false },
    { run.format_exit({ stage = "run", code = 137, durationMs = 10000, limit = "time" }) }
  )
  h.eq(
    { "■ compile error · exit 1 · 80 ms", false },
    { run.format_exit({ stage = "compile", code = 1, durationMs = 80 }) }
  )
  h.eq(
    { "■ stopped", false },
    { run.format_exit({ stage = "run", code = vim.NIL, durationMs = 0, error = "stopped" }) }
  )
end)

test("each stream continues its own open line, whatever came between", function()
  local fake = start()
  vim.cmd("Mesh run")
  h.wait(function()
    return #fake.run_requests == 1
  end, "mesh/run")
  started(fake)
  output(fake, "stdout", "hello")
  output(fake, "stderr", "bye\n")
  output(fake, "stdout", " mesh\n")
  output(fake, "stderr", "half")
  output(fake, "stdout", "next\n")
  output(fake, "stderr", " done\n")
  h.eq({ "hello mesh", "bye", "half done", "next" }, vim.list_slice(lines_of("r1"), 2))
end)

test(":Mesh run runs the current file; its output fills a split live, stderr highlighted", function()
  local fake, bufnr = start()
  local editing = api.nvim_get_current_win()
  vim.cmd("Mesh run")
  h.wait(function()
    return #fake.run_requests == 1
  end, "mesh/run")
  h.eq({ method = "mesh/run", params = { uri = vim.uri_from_bufnr(bufnr) } }, fake.run_requests[1])

  started(fake)
  h.eq(editing, api.nvim_get_current_win(), "the output split does not take the focus")
  local runbuf = run.describe()[1].bufnr
  h.eq(1, #vim.fn.win_findbuf(runbuf), "the output is shown")
  output(fake, "stdout", "hello ")
  output(fake, "stdout", "\27[32mworld\27[0m\nsecond\n")
  output(fake, "stderr", "oops\n")
  output(fake, "compile", "warning: x\n")
  h.eq({ "▶ you · main.py (python) · run r1", "hello world", "second", "oops", "warning: x" }, lines_of("r1"))
  h.eq({ "MeshRunStderr" }, groups_on(runbuf, 3))
  h.eq({ "MeshRunCompile" }, groups_on(runbuf, 4))
  h.eq({}, groups_on(runbuf, 1), "stdout keeps normal colours")

  output(fake, "stdout", "no newline")
  exited(fake, { code = 3, durationMs = 1500 })
  h.eq({ "no newline", "■ exit 3 · 1.5 s" }, vim.list_slice(lines_of("r1"), 6))
  h.eq({ "MeshRunExitFail" }, groups_on(runbuf, 6))
  h.ok(run.describe()[1].exited, "the run is over")
  h.eq(false, vim.bo[runbuf].modifiable, "the output is read-only")
end)

test("a run started by someone else opens too, with a notification", function()
  local fake = start()
  started(fake, { runId = "r2", by = 2, byName = "Ana", you = false, path = "src/app.py" })
  h.contains(h.all_messages(), "mesh: Ana runs src/app.py")
  local r = run.describe()[1]
  h.eq("▶ Ana · src/app.py (python) · run r2", r.lines[1])
  h.eq(1, #vim.fn.win_findbuf(r.bufnr))
  output(fake, "stdout", "from Ana\n", "r2")
  h.eq("from Ana", lines_of("r2")[2])
end)

test("with run_open_others = false, others' runs only notify", function()
  local fake = start()
  require("mesh.config").set(vim.tbl_extend("force", require("mesh.config").get(), { run_open_others = false }))
  started(fake, { runId = "r3", by = 2, byName = "Ana", you = false })
  h.eq(0, #vim.fn.win_findbuf(run.describe()[1].bufnr))
  h.contains(h.all_messages(), "mesh: Ana runs main.py")
end)

test("a second run replaces the first in the output window", function()
  local fake = start()
  started(fake)
  started(fake, { runId = "r4", by = 2, byName = "Ana", you = false })
  local list = run.describe()
  h.eq(0, #vim.fn.win_findbuf(list[1].bufnr))
  h.eq(1, #vim.fn.win_findbuf(list[2].bufnr))
  h.eq(2, #api.nvim_list_wins(), "one output window")
end)

test(":Mesh input and :Mesh stop act on the run going; without one they say so", function()
  local fake = start()
  vim.cmd("Mesh input nothing")
  h.contains(h.all_messages(), "no run is going")
  started(fake)
  vim.cmd("Mesh input hello world")
  vim.cmd("Mesh stop")
  h.wait(function()
    return #fake.run_requests == 2
  end, "the requests")
  h.eq(
    { method = "mesh/runInput", params = { runId = "r1", data = "hello world\n", eof = false } },
    fake.run_requests[1]
  )
  h.eq({ method = "mesh/runStop", params = { runId = "r1" } }, fake.run_requests[2])
  exited(fake, { code = vim.NIL, error = "stopped" })
  h.messages = {}
  vim.cmd("Mesh stop")
  h.contains(h.all_messages(), "no run is going")
end)

test("in the output buffer, <C-d> closes stdin and i types a line", function()
  local fake = start()
  started(fake)
  local runbuf = run.describe()[1].bufnr
  api.nvim_set_current_win(vim.fn.win_findbuf(runbuf)[1])
  local real_input = vim.ui.input
  vim.ui.input = function(opts, on_confirm)
    h.eq("stdin> ", opts.prompt)
    on_confirm("typed")
  end
  local ok, err = pcall(function()
    api.nvim_feedkeys(api.nvim_replace_termcodes("<C-d>", true, false, true), "xt", false)
    api.nvim_feedkeys("i", "xt", false)
  end)
  vim.ui.input = real_input
  h.ok(ok, err)
  h.wait(function()
    return #fake.run_requests == 2
  end, "the requests")
  h.eq({ runId = "r1", data = "", eof = true }, fake.run_requests[1].params)
  h.eq({ runId = "r1", data = "typed\n", eof = false }, fake.run_requests[2].params)
end)

test("the proxy's refusal of a run is shown as it is", function()
  local fake = start()
  fake.responders["mesh/run"] = function()
    return nil, { code = -32001, message = "the server refused the run: unknown language \"cobol\"" }
  end
  vim.cmd("Mesh run")
  h.wait(function()
    return h.all_messages():find("unknown language", 1, true) ~= nil
  end, "the error")
  h.eq(vim.log.levels.ERROR, h.messages[#h.messages].level)
end)

test(":Mesh run {file} names the file; :Mesh run completes file names", function()
  local fake = start()
  h.write(vim.fn.getcwd(), "other.py", "print(2)\n")
  vim.cmd("Mesh run other.py")
  h.wait(function()
    return #fake.run_requests == 1
  end, "mesh/run")
  h.eq(vim.uri_from_fname(vim.fn.getcwd() .. "/other.py"), fake.run_requests[1].params.uri)
  h.eq({ "other.py" }, vim.fn.getcompletion("Mesh run oth", "cmdline"))
end)

test("when the proxy stops, a run going ends with a line saying so", function()
  local fake, _, client = start()
  started(fake)
  local runbuf = run.describe()[1].bufnr
  require("mesh.client").stop(client)
  h.wait(function()
    return #run.describe() == 0
  end, "the client's runs to be forgotten")
  local lines = api.nvim_buf_get_lines(runbuf, 0, -1, false)
  h.eq("■ mesh-proxy stopped; the rest of this run is not shown here", lines[#lines])
end)

test("a queued run opens its buffer with its place, updated as it moves, then starts", function()
  local fake = start()
  vim.cmd("Mesh run")
  h.wait(function()
    return #fake.run_requests == 1
  end, "mesh/run")
  local function queued(position, message)
    fake.dispatchers.notification("mesh/runQueued", {
      runId = "r1",
      path = "main.py",
      language = "python",
      by = 1,
      byName = "tester",
      you = true,
      position = position,
      limit = "max_runs",
      debug = false,
      message = message,
    })
  end
  queued(2, "queued: 2nd in line")
  queued(1, "queued: 1st in line")
  started(fake)
  output(fake, "stdout", "hi\n")
  h.eq({ "queued: 2nd in line", "queued: 1st in line", "started", "hi" }, vim.list_slice(lines_of("r1"), 2))
end)
