-- The built-in debugger's session, sans-IO: the protocol it drives and the state it keeps,
-- with the adapter played by the test.
local h = require("helpers")
local Session = require("mesh.dap.session")
local view = require("mesh.dap.view")

--- A session whose sent messages are recorded; `answer` plays the adapter's response.
local function new(opts)
  local t = { sent = {}, changes = {}, messages = {} }
  t.session = Session.new(vim.tbl_extend("force", {
    request = "launch",
    arguments = { program = "/p/main.py", language = "python" },
    send = function(m)
      table.insert(t.sent, m)
    end,
    breakpoints = function()
      return { ["/p/main.py"] = { { line = 2 } }, ["/p/a.py"] = { { line = 1, condition = "i > 2" } } }
    end,
    on_change = function(_, change)
      table.insert(t.changes, change)
    end,
    on_message = function(text)
      table.insert(t.messages, text)
    end,
  }, opts or {}))
  function t.last(command)
    for i = #t.sent, 1, -1 do
      if t.sent[i].command == command then
        return t.sent[i]
      end
    end
  end
  function t.answer(command, body, err)
    local req = assert(t.last(command), "no " .. command .. " was sent")
    t.session:receive({
      seq = 100,
      type = "response",
      request_seq = req.seq,
      command = command,
      success = err == nil,
      message = err,
      body = body,
    })
  end
  function t.event(name, body)
    t.session:receive({ seq = 100, type = "event", event = name, body = body })
  end
  function t.commands()
    return vim.tbl_map(function(m)
      return m.command
    end, t.sent)
  end
  return t
end

--- A session stopped at main.py:2 with its stack, scopes and Locals fetched.
local function stopped()
  local t = new()
  t.session:start()
  t.answer("initialize", {})
  t.event("stopped", { reason = "breakpoint", threadId = 1 })
  t.answer("threads", { threads = { { id = 1, name = "MainThread" } } })
  t.answer("stackTrace", {
    stackFrames = {
      { id = 5, name = "<module>", line = 2, column = 1, source = { path = "/p/main.py", name = "main.py" } },
      { id = 6, name = "outer", line = 9, column = 1, source = { path = "/p/lib.py", name = "lib.py" } },
    },
  })
  t.answer("scopes", { scopes = { { name = "Locals", variablesReference = 3, expensive = false } } })
  t.answer("variables", {
    variables = {
      { name = "x", value = "41", type = "int", variablesReference = 0 },
      { name = "d", value = "{…}", variablesReference = 4 },
    },
  })
  return t
end

test("initialize, then launch with the program; initialized sends every file's breakpoints, then configurationDone", function()
  local t = new()
  t.session:start()
  h.eq({ "initialize" }, t.commands())
  h.eq("path", t.sent[1].arguments.pathFormat)
  h.eq(true, t.sent[1].arguments.linesStartAt1)
  t.answer("initialize", { supportsConfigurationDoneRequest = true })
  h.eq({ program = "/p/main.py", language = "python" }, t.last("launch").arguments)
  t.event("initialized", {})
  h.eq(
    { "initialize", "launch", "setBreakpoints", "setBreakpoints", "setExceptionBreakpoints", "configurationDone" },
    t.commands()
  )
  h.eq({ path = "/p/a.py", name = "a.py" }, t.sent[3].arguments.source)
  h.eq({ { line = 1, condition = "i > 2" } }, t.sent[3].arguments.breakpoints)
  h.eq({ 2 }, t.sent[4].arguments.lines)
  -- seq numbers are the client's own, one counter, increasing.
  h.eq({ 1, 2, 3, 4, 5, 6 }, vim.tbl_map(function(m)
    return m.seq
  end, t.sent))
  t.answer("launch", {})
  h.eq("running", t.session.state)
end)

test("a failed launch ends the session with the server's words", function()
  local t = new()
  t.session:start()
  t.answer("initialize", {})
  t.answer("launch", nil, "readers may inspect the program but not control it")
  h.eq("ended", t.session.state)
  h.contains(t.messages[1], "readers may inspect")
  h.contains(view.headline(t.session), "■ ended: readers may inspect")
end)

test("a stop fetches threads, the stopped thread's stack, the top frame's scopes and the first cheap scope", function()
  local t = stopped()
  h.eq("stopped", t.session.state)
  h.eq(1, t.session.thread_id)
  h.eq({ threadId = 1, startFrame = 0, levels = Session.STACK_LEVELS }, t.last("stackTrace").arguments)
  h.eq({ frameId = 5 }, t.last("scopes").arguments)
  h.eq({ variablesReference = 3 }, t.last("variables").arguments)
  h.ok(vim.tbl_contains(t.changes, "stopped"), "the UI was told where")
  local lines = view.render(t.session)
  h.eq("⏸ breakpoint at main.py:2", lines[1])
  h.ok(vim.tbl_contains(lines, "      x = 41  (int)"), vim.inspect(lines))
  h.ok(vim.tbl_contains(lines, "    ▸ d = {…}"), vim.inspect(lines))
  h.ok(vim.tbl_contains(lines, "  > <module>  main.py:2"), vim.inspect(lines))
end)

test("opening a variable fetches its children once per stop; closing keeps them", function()
  local t = stopped()
  t.session:toggle(4)
  t.answer("variables", { variables = { { name = "'k'", value = "'v'", variablesReference = 0 } } })
  local lines, items = view.render(t.session)
  h.ok(vim.tbl_contains(lines, "        'k' = 'v'"), vim.inspect(lines))
  local n = #t.sent
  t.session:toggle(4)
  t.session:toggle(4)
  h.eq(n, #t.sent, "no second request for the same reference")
  for l, item in pairs(items) do
    if item.kind == "ref" and item.ref == 4 then
      h.contains(lines[l], "▾ d")
    end
  end
end)

test("answers about an earlier stop are dropped once the program moved on", function()
  local t = stopped()
  t.session:toggle(4)
  local late = t.last("variables")
  t.session:resume("next")
  t.answer("next", {})
  h.eq("running", t.session.state)
  t.session:receive({
    seq = 1,
    type = "response",
    request_seq = late.seq,
    command = "variables",
    success = true,
    body = { variables = { { name = "old", value = "1", variablesReference = 0 } } },
  })
  h.eq(nil, t.session.variables[4])
end)

test("steps go to the thread that stopped; nothing is sent while running", function()
  local t = stopped()
  t.session:resume("stepIn")
  h.eq({ threadId = 1 }, t.last("stepIn").arguments)
  t.answer("stepIn", {})
  local n = #t.sent
  local err
  t.session:resume("next", function(e)
    err = e
  end)
  h.eq("the program is not stopped", err)
  h.eq(n, #t.sent)
end)

test("pause goes to the last stopped thread, or to the first one the adapter names", function()
  local t = stopped()
  t.session:resume("continue")
  t.answer("continue", {})
  t.session:pause()
  h.eq({ threadId = 1 }, t.last("pause").arguments)
  local fresh = new()
  fresh.session:start()
  fresh.answer("initialize", {})
  fresh.answer("launch", {})
  fresh.session:pause()
  h.eq(nil, fresh.last("pause"), "no thread known yet: it asks first")
  fresh.answer("threads", { threads = { { id = 7, name = "main" } } })
  h.eq({ threadId = 7 }, fresh.last("pause").arguments)
  local err
  stopped().session:pause(function(e)
    err = e
  end)
  h.eq("the program is not running", err)
end)

test("restart asks the hub, forgets the stop once agreed, and needs a started program", function()
  local t = stopped()
  local err = "not called"
  t.session:restart(function(e)
    err = e
  end)
  h.eq({}, t.last("restart").arguments)
  h.eq("stopped", t.session.state, "the stop holds until the hub agrees")
  t.answer("restart", {})
  h.eq(nil, err)
  h.eq("running", t.session.state)
  h.eq(nil, t.session.stop, "the stop is forgotten")
  -- The fresh program stops again; a refusal (a reader) is said, and the stop is kept.
  t.event("stopped", { reason = "breakpoint", threadId = 1 })
  t.session:restart(function(e)
    err = e
  end)
  t.answer("restart", nil, "readers may inspect the program but not control it")
  h.eq("readers may inspect the program but not control it", err)
  h.eq("stopped", t.session.state)
  local fresh = new()
  fresh.session:restart(function(e)
    err = e
  end)
  h.eq("the program has not started", err)
  h.eq(nil, fresh.last("restart"))
end)

test("selecting another frame fetches its scopes", function()
  local t = stopped()
  t.session:select_frame(2)
  h.eq({ frameId = 6 }, t.last("scopes").arguments)
  h.eq("lib.py:9", view.frame_location(t.session:frame()))
  h.eq("⏸ breakpoint at main.py:2", view.headline(t.session), "the headline says where it stopped")
end)

test("evaluate runs in the selected frame", function()
  local t = stopped()
  local got
  t.session:evaluate("x + 1", function(err, body)
    got = { err, body and body.result }
  end)
  h.eq({ expression = "x + 1", context = "repl", frameId = 5 }, t.last("evaluate").arguments)
  t.answer("evaluate", { result = "42", variablesReference = 0 })
  h.eq({ nil, "42" }, got)
end)

test("requests still waiting fail when the adapter goes away; later ones fail at once", function()
  local t = new()
  t.session:start()
  local got
  t.session:request("threads", nil, function(err)
    got = err
  end)
  t.session:closed("mesh-proxy dap exited (status 1)")
  h.eq("the debug session has ended", got)
  h.eq("ended", t.session.state)
  local again
  t.session:request("threads", nil, function(err)
    again = err
  end)
  h.eq("the debug session has ended", again)
  h.contains(t.messages[1], "exited (status 1)")
end)

test("the adapter's reverse requests are answered with an error, never left waiting", function()
  local t = new()
  t.session:receive({ seq = 40, type = "request", command = "runInTerminal", arguments = {} })
  h.eq({ type = "response", request_seq = 40, command = "runInTerminal", success = false }, {
    type = t.sent[1].type,
    request_seq = t.sent[1].request_seq,
    command = t.sent[1].command,
    success = t.sent[1].success,
  })
end)

test("exited then terminated ends the session with the exit code", function()
  local t = stopped()
  t.event("exited", { exitCode = 3 })
  t.event("terminated", {})
  h.eq("ended", t.session.state)
  h.eq("■ ended (exit 3)", view.headline(t.session))
  h.eq({}, t.session.frames)
  h.eq({ "■ ended (exit 3)" }, (view.render(t.session)), "nothing of the program is left in the window")
end)

test("long or multi-line values stay on one line of the window", function()
  local t = stopped()
  t.session.variables[3][1].value = "a\nb" .. string.rep("z", 300)
  local lines = view.render(t.session)
  for _, l in ipairs(lines) do
    h.ok(not l:find("\n"), "a line with a newline")
  end
  local x = vim.tbl_filter(function(l)
    return l:find("x = a b", 1, true)
  end, lines)[1]
  h.ok(x and x:find("…", 1, true), vim.inspect(x))
end)
