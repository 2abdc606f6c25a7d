-- The built-in debugger end to end inside Neovim: `:Mesh debug` starts a real process in
-- place of `mesh-proxy dap` (a scripted adapter, tests/fixtures/fake_dap_adapter.lua run by
-- this Neovim's own binary), speaks DAP to it over stdio, and draws the breakpoints, the
-- current line and the window. nvim-dap is not installed here, as on a plain Neovim.
local h = require("helpers")
local marks = require("mesh.dap.marks")

local here = vim.fs.dirname(vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p"))
local ADAPTER = vim.fs.normalize(here .. "/../fixtures/fake_dap_adapter.lua")

local PROGRAM = table.concat({
  "x = 41",
  "y = x + 1",
  "for i in range(3):",
  "    print(i)",
  "print('y is', y)",
  "# done",
  "",
}, "\n")

--- An executable that runs the fake adapter in place of `mesh-proxy`, and its log.
local function adapter_exe()
  local log = h.tempdir() .. "/adapter.log"
  local exe = h.write(
    h.tempdir(),
    "mesh-proxy",
    ("#!/bin/sh\nFAKE_DAP_LOG=%s exec %s --headless --clean -l %s \"$@\"\n"):format(
      vim.fn.shellescape(log),
      vim.fn.shellescape(vim.v.progpath),
      vim.fn.shellescape(ADAPTER)
    )
  )
  vim.fn.setfperm(exe, "rwx------")
  return exe, log
end

--- A folder with main.py (the current directory, the file open), the adapter, its log.
local function setup()
  local dir = h.tempdir()
  local file = h.write(dir, "main.py", PROGRAM)
  local exe, log = adapter_exe()
  vim.cmd.cd(vim.fn.fnameescape(dir))
  require("mesh").setup({ proxy = exe, autostart = false, debugger = "builtin" })
  vim.cmd.edit(vim.fn.fnameescape(file))
  return file, log
end

--- The requests the adapter received, decoded.
local function received(log)
  if vim.fn.filereadable(log) ~= 1 then
    return {}
  end
  return vim.tbl_map(vim.json.decode, vim.fn.readfile(log))
end

local function last_request(log, command)
  local found
  for _, r in ipairs(received(log)) do
    if r.command == command then
      found = r
    end
  end
  return found
end

local function current_line()
  local c = marks.current()
  return c and c.line or nil
end

local function window_has(text)
  for _, l in ipairs(require("mesh.dap.ui").lines()) do
    if l:find(text, 1, true) then
      return true
    end
  end
  return false
end

local function cleanup()
  local dap = require("mesh.dap")
  if dap.active() then
    dap.stop()
    h.wait(function()
      return not dap.active()
    end, "the session to end")
  end
end

test("breakpoints, stops, steps, variables and evaluate through a real adapter process", function()
  local file, log = setup()
  local ok, err = pcall(function()
    -- <F9> is mapped by setup() (debug_keys) and toggles your breakpoint on line 2.
    vim.api.nvim_win_set_cursor(0, { 2, 0 })
    vim.api.nvim_feedkeys(vim.keycode("<F9>"), "x", false)
    h.eq({ 2 }, vim.tbl_map(function(e)
      return e.line
    end, marks.list(0)))
    local sign = vim.api.nvim_buf_get_extmarks(0, marks.ns, 0, -1, { details = true })[1][4].sign_text
    h.eq(marks.SIGN, vim.trim(sign))

    vim.cmd("Mesh debug")
    h.wait(function()
      return current_line() == 2
    end, "the stop on line 2", 10000)
    local launch = last_request(log, "launch")
    h.eq({ program = file, language = "python" }, launch.arguments)
    local set = last_request(log, "setBreakpoints")
    h.eq(file, set.arguments.source.path)
    h.eq({ 2 }, set.arguments.lines)
    h.wait(function()
      return window_has("x = 41  (int)") and window_has("⏸ breakpoint at main.py:2")
    end, "the window to show the stop and x")
    h.ok(require("mesh.dap.ui").window(), "the debugger window is open")

    vim.cmd("Mesh step")
    h.wait(function()
      return current_line() == 3
    end, "the step to line 3")

    -- A breakpoint added while debugging reaches the adapter at once, with a condition.
    vim.api.nvim_win_set_cursor(0, { 5, 0 })
    vim.cmd("Mesh break y > 1")
    h.wait(function()
      local r = last_request(log, "setBreakpoints")
      return r and #r.arguments.breakpoints == 2
    end, "the second setBreakpoints")
    h.eq({ { line = 2 }, { line = 5, condition = "y > 1" } }, last_request(log, "setBreakpoints").arguments.breakpoints)
    vim.cmd("Mesh continue")
    h.wait(function()
      return current_line() == 5
    end, "the stop on line 5")

    -- Open `d` from the window, as <CR> on its line does.
    local ui = require("mesh.dap.ui")
    h.wait(function()
      return window_has("▸ d = ")
    end, "d in the window")
    vim.api.nvim_set_current_win(ui.window())
    for i, l in ipairs(ui.lines()) do
      if l:find("▸ d = ", 1, true) then
        vim.api.nvim_win_set_cursor(0, { i, 0 })
      end
    end
    vim.api.nvim_feedkeys(vim.keycode("<CR>"), "x", false)
    h.wait(function()
      return window_has("'k' = 'v'")
    end, "d's children")
    vim.cmd.wincmd("p")

    h.messages = {}
    vim.cmd("Mesh eval x + 1")
    h.wait(function()
      return h.all_messages():find("mesh: x + 1 = 42", 1, true) ~= nil
    end, "the evaluation's answer")
    vim.cmd("Mesh eval zz")
    h.wait(function()
      return h.all_messages():find("name 'zz' is not defined", 1, true) ~= nil
    end, "the evaluation's error")

    -- The last continue runs to the end: the session ends, the current line goes.
    vim.cmd("Mesh continue")
    h.wait(function()
      return not require("mesh.dap").active()
    end, "the end of the session")
    h.eq(nil, current_line())
    h.wait(function()
      return window_has("■ ended (exit 0)")
    end, "the end in the window")
    -- Your breakpoints stay for the next session.
    h.eq({ 2, 5 }, vim.tbl_map(function(e)
      return e.line
    end, marks.list(vim.fn.bufnr(file))))
  end)
  cleanup()
  assert(ok, err)
end)

test(":Mesh stop leaves the session; the adapter is told and its process goes", function()
  local _, log = setup()
  local ok, err = pcall(function()
    vim.api.nvim_win_set_cursor(0, { 1, 0 })
    vim.cmd("Mesh break")
    vim.cmd("Mesh debug")
    h.wait(function()
      return current_line() == 1
    end, "the stop on line 1", 10000)
    vim.cmd("Mesh stop")
    h.wait(function()
      return not require("mesh.dap").active()
    end, "the session to end")
    h.eq({ terminateDebuggee = true, restart = false }, last_request(log, "disconnect").arguments)
    h.eq(nil, current_line())
  end)
  cleanup()
  assert(ok, err)
end)

test("commands without a session say how to start one; :Mesh step checks its argument", function()
  require("mesh").setup({ autostart = false, debugger = "builtin" })
  vim.cmd("Mesh continue")
  h.contains(h.all_messages(), "no debug session; start one with :Mesh debug")
  h.messages = {}
  vim.cmd("Mesh step sideways")
  h.contains(h.all_messages(), "step over, in or out?")
  h.messages = {}
  vim.cmd("Mesh eval")
  h.contains(h.all_messages(), "evaluate what?")
end)

test("a breakpoint past the debugger's reach is drawn as rejected", function()
  local file = setup()
  local ok, err = pcall(function()
    -- The fake adapter refuses lines without code, as line 6 (a comment) is.
    vim.api.nvim_win_set_cursor(0, { 6, 0 })
    vim.cmd("Mesh break")
    vim.api.nvim_win_set_cursor(0, { 4, 0 })
    vim.cmd("Mesh break")
    vim.cmd("Mesh debug")
    h.wait(function()
      return current_line() == 4
    end, "the stop on line 4", 10000)
    local b = vim.fn.bufnr(file)
    h.wait(function()
      local signs = {}
      for _, m in ipairs(vim.api.nvim_buf_get_extmarks(b, marks.ns, 0, -1, { details = true })) do
        signs[m[2] + 1] = vim.trim(m[4].sign_text)
      end
      return signs[6] == marks.SIGN_REJECTED and signs[4] == marks.SIGN
    end, "line 6 drawn as rejected, line 4 as placed")
  end)
  cleanup()
  assert(ok, err)
end)

test(":Mesh debug with no file joins the session going in the room (attach), and is shown its stop", function()
  local exe, log = adapter_exe()
  local fake, bufnr = h.start_with_file(PROGRAM, { name = "main.py", setup = { proxy = exe, debugger = "builtin" } })
  vim.env.FAKE_DAP_PROGRAM = vim.api.nvim_buf_get_name(bufnr)
  local ok, err = pcall(function()
    marks.toggle(bufnr, 3)
    fake.dispatchers.notification(
      "mesh/debugStarted",
      { debugId = "d1", path = "main.py", language = "python", by = 7, byName = "Grace", you = false }
    )
    h.wait(function()
      return h.all_messages():find("Grace started debugging main.py; :Mesh debug to join", 1, true) ~= nil
    end, "the offer to join")
    vim.cmd("enew")
    vim.cmd("Mesh debug")
    h.wait(function()
      return current_line() == 3
    end, "the stop on line 3", 10000)
    h.eq({}, last_request(log, "attach").arguments)
    h.eq(nil, last_request(log, "launch"))
  end)
  vim.env.FAKE_DAP_PROGRAM = nil
  cleanup()
  assert(ok, err)
end)
