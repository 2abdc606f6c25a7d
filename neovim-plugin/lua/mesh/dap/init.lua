---@brief
--- The built-in debugger, for a Neovim without nvim-dap: a small DAP client that starts
--- `mesh-proxy dap --folder ROOT` itself (`vim.system`, DAP over its stdio) and shows the
--- room's shared debug session with signs, a window (`mesh.dap.ui`) and commands.
---
--- `codec` frames the bytes, `session` is the sans-IO protocol state, `marks` draws your
--- breakpoints and the current line, `view` makes the window's text and `ui` draws it. This
--- module is the IO between them: the process, its output, and the commands and keys.

local codec = require("mesh.dap.codec")
local marks = require("mesh.dap.marks")
local proxy = require("mesh.proxy")
local Session = require("mesh.dap.session")
local ui = require("mesh.dap.ui")

local M = {}

local api = vim.api

--- How long the proxy may take to exit after being asked to leave before it is stopped.
local EXIT_GRACE_MS = 5000

--- Lines of the proxy's stderr kept to explain a failed start.
local STDERR_LINES = 20

---@class mesh.dap.Running
---@field session mesh.dap.Session
---@field proc vim.SystemObj
---@field root string
---@field stderr string[]
---@field exited boolean

---@type mesh.dap.Running?
local current = nil

--- The running session, if any (also one that ended and whose proxy is still exiting).
---@return mesh.dap.Session?
function M.session()
  return current and current.session or nil
end

--- The shared folder of the running session, if any.
---@return string?
function M.root()
  return current and current.root or nil
end

--- Whether a session is going (not ended).
---@return boolean
function M.active()
  return current ~= nil and current.session.state ~= "ended"
end

---@param text string
---@param level? integer
local function say(text, level)
  vim.notify(text, level or vim.log.levels.INFO)
end

--- The session, or nil after telling the user there is none.
---@return mesh.dap.Session?
local function need_session()
  if M.active() then
    return current.session
  end
  say("mesh: no debug session; start one with :Mesh debug [file]", vim.log.levels.WARN)
  return nil
end

--- Sends a file's breakpoints to the session when one is going, and marks each answer.
---@param bufnr integer
local function sync_breakpoints(bufnr)
  if not M.active() or current.session.state == "starting" then
    return
  end
  local sent = marks.list(bufnr)
  local path = vim.fs.normalize(api.nvim_buf_get_name(bufnr))
  current.session:set_breakpoints(path, marks.source_breakpoints(bufnr), function(err, results)
    if err then
      say("mesh: breakpoints of " .. vim.fn.fnamemodify(path, ":~:.") .. ": " .. err, vim.log.levels.WARN)
      return
    end
    marks.set_results(bufnr, sent, results)
  end)
end

--- What the session reports, turned into signs and the window.
---@param session mesh.dap.Session
---@param change mesh.dap.Change
---@param detail? any
local function on_change(session, change, detail)
  if not current or current.session ~= session then
    return
  end
  if change == "stopped" or change == "frame" then
    ui.show_frame(session:frame())
  elseif change == "state" and session.state ~= "stopped" then
    marks.clear_current()
  elseif change == "breakpoints" and detail and not detail.error then
    local b = vim.fn.bufnr(detail.path)
    if b ~= -1 then
      -- An answer to the `initialized` round: the buffer's marks as they are now.
      marks.set_results(b, marks.list(b), detail.results)
    end
  end
  ui.render(session)
  if session.state == "ended" then
    M.finish_process()
  end
end

--- Output from the debugger: the program's own output reaches the room's run view (and
--- this editor's run buffer, `:help mesh-runs`); what the proxy or adapter says to the user
--- is shown here.
---@param body mesh.dap.OutputEventBody
local function on_output(body)
  local category = body.category or "console"
  if category == "important" or category == "console" then
    local text = vim.trim(tostring(body.output or ""))
    if text ~= "" then
      say("mesh debug: " .. text, category == "important" and vim.log.levels.WARN or vim.log.levels.INFO)
    end
  end
end

--- Makes the proxy go: stdin closed (it exits on that), then stopped if it lingers.
function M.finish_process()
  local run = current
  if not run or run.exited then
    return
  end
  pcall(function()
    run.proc:write(nil)
  end)
  vim.defer_fn(function()
    if not run.exited then
      pcall(run.proc.kill, run.proc, 15)
    end
  end, EXIT_GRACE_MS)
end

--- The default keys this module mapped (so they, and only they, can be taken away).
---@type string[]
local mapped = {}

--- Installs the default keys (`:help mesh-debug-keys`) where the user has not mapped them.
function M.map_default_keys()
  local keys = {
    { "<F5>", M.continue_or_start, "continue (or start debugging this file)" },
    { "<S-F5>", M.stop, "stop debugging" },
    { "<F6>", M.pause, "pause" },
    { "<C-S-F5>", M.restart, "restart the program" },
    { "<F9>", M.toggle_breakpoint, "toggle breakpoint" },
    { "<F10>", M.step_over, "step over" },
    { "<F11>", M.step_in, "step in" },
    { "<S-F11>", M.step_out, "step out" },
  }
  for _, k in ipairs(keys) do
    if vim.fn.maparg(k[1], "n") == "" then
      vim.keymap.set("n", k[1], function()
        k[2]()
      end, { desc = "mesh debug: " .. k[3] })
      mapped[#mapped + 1] = k[1]
    end
  end
end

--- Starts (or joins) the room's debug session for `program` in the folder `root`; without a
--- program, joins the session going in the room (DAP `attach`).
---@param cfg mesh.Config
---@param root string the shared folder
---@param program? string absolute path of the entry file
---@param language? string the server's language id
function M.start(cfg, root, program, language)
  if M.active() then
    ui.open()
    say("mesh: already in the room's debug session; :Mesh stop ends it", vim.log.levels.WARN)
    return
  end
  if not proxy.executable(cfg) then
    say(proxy.missing_message(cfg), vim.log.levels.ERROR)
    return
  end
  if cfg.debug_keys then
    M.map_default_keys()
  end
  marks.reset_results()
  local cmd, env = proxy.dap_command(cfg, root)
  local decoder = codec.decoder()
  ---@type mesh.dap.Running
  local run = { root = root, stderr = {}, exited = false }
  local session
  session = Session.new({
    request = program and "launch" or "attach",
    arguments = program and { program = program, language = language } or vim.empty_dict(),
    send = function(message)
      if not run.exited then
        pcall(run.proc.write, run.proc, codec.encode(message))
      end
    end,
    breakpoints = function()
      local out = {}
      for path, b in pairs(marks.buffers()) do
        out[path] = marks.source_breakpoints(b)
      end
      return out
    end,
    on_change = on_change,
    on_output = on_output,
    on_message = say,
  })
  run.session = session
  local ok, proc = pcall(vim.system, cmd, {
    cwd = root,
    env = env,
    stdin = true,
    text = false,
    stdout = function(_, data)
      if data then
        vim.schedule(function()
          local messages, problems = decoder:feed(data)
          for _, p in ipairs(problems) do
            say("mesh: unreadable output from mesh-proxy dap: " .. p, vim.log.levels.WARN)
          end
          for _, m in ipairs(messages) do
            session:receive(m)
          end
        end)
      end
    end,
    stderr = function(_, data)
      if data then
        vim.schedule(function()
          for _, line in ipairs(vim.split(data, "\n", { trimempty = true })) do
            table.insert(run.stderr, line)
            if #run.stderr > STDERR_LINES then
              table.remove(run.stderr, 1)
            end
          end
        end)
      end
    end,
  }, function(out)
    vim.schedule(function()
      run.exited = true
      if session.state ~= "ended" then
        local tail = run.stderr[#run.stderr]
        session:closed(
          ("mesh-proxy dap exited (%s)%s"):format(
            out.signal ~= 0 and ("signal " .. out.signal) or ("status " .. out.code),
            tail and (": " .. tail) or ""
          )
        )
      end
      if current == run then
        marks.clear_current()
      end
    end)
  end)
  if not ok then
    say("mesh: could not start mesh-proxy dap: " .. tostring(proc), vim.log.levels.ERROR)
    return
  end
  run.proc = proc
  current = run
  ui.open()
  ui.render(session)
  session:start()
end

--- Toggles your breakpoint on the cursor's line; with a condition, sets a conditional one.
---@param condition? string
function M.toggle_breakpoint(condition)
  local b = api.nvim_get_current_buf()
  if vim.bo[b].buftype ~= "" or api.nvim_buf_get_name(b) == "" then
    say("mesh: breakpoints go in files of the shared folder", vim.log.levels.WARN)
    return
  end
  local line = api.nvim_win_get_cursor(0)[1]
  marks.toggle(b, line, type(condition) == "string" and condition or nil)
  sync_breakpoints(b)
end

---@param command "continue"|"next"|"stepIn"|"stepOut"
local function resume(command)
  local s = need_session()
  if s then
    s:resume(command, function(err)
      if err then
        say("mesh: " .. command .. ": " .. err, vim.log.levels.WARN)
      end
    end)
  end
end

function M.continue()
  resume("continue")
end

function M.step_over()
  resume("next")
end

function M.step_in()
  resume("stepIn")
end

function M.step_out()
  resume("stepOut")
end

--- <F5>: continue a session, or start debugging the current file.
function M.continue_or_start()
  if M.active() then
    M.continue()
  else
    require("mesh.debug").start("")
  end
end

function M.pause()
  local s = need_session()
  if s then
    s:pause(function(err)
      if err then
        say("mesh: pause: " .. err, vim.log.levels.WARN)
      end
    end)
  end
end

--- Restarts the program for everyone (a fresh program, the same breakpoints).
function M.restart()
  local s = need_session()
  if s then
    s:restart(function(err)
      if err then
        say("mesh: restart: " .. err, vim.log.levels.WARN)
      end
    end)
  end
end

--- Leaves the session; ends it for everyone when you started it (or host the room).
function M.stop()
  local s = need_session()
  if s then
    s:disconnect(true, function(err)
      if err then
        say("mesh: stop: " .. err, vim.log.levels.WARN)
      end
    end)
  end
end

--- Evaluates an expression in the selected frame; the answer is shown as a message.
---@param expression string
---@param cb? fun(err?: string, result?: string)
function M.eval(expression, cb)
  local s = need_session()
  if not s then
    return
  end
  s:evaluate(expression, function(err, body)
    if err then
      say(("mesh: %s: %s"):format(expression, err), vim.log.levels.WARN)
    else
      say(("mesh: %s = %s"):format(expression, tostring(body and body.result)))
    end
    if cb then
      cb(err, body and body.result)
    end
  end)
end

function M.prompt_eval()
  vim.ui.input({ prompt = "evaluate: " }, function(expr)
    if expr and vim.trim(expr) ~= "" then
      M.eval(expr)
    end
  end)
end

--- Types a line into the debugged program's stdin (through the room, as for runs).
---@param text string
function M.input(text)
  require("mesh.debug").input(text)
end

function M.prompt_input()
  vim.ui.input({ prompt = "input: " }, function(text)
    if text then
      M.input(text)
    end
  end)
end

--- <CR> in the window: open or close a variable, or select a frame.
function M.activate()
  local item = ui.item_under_cursor()
  local s = current and current.session
  if not item or not s then
    return
  end
  if item.kind == "ref" then
    s:toggle(item.ref)
  elseif item.kind == "frame" then
    s:select_frame(item.index)
  end
end

--- Shows the debugger window (it opens by itself when a session starts).
function M.open()
  if current then
    ui.render(current.session)
  end
  ui.open()
end

function M.close()
  ui.close()
end

--- Forgets everything: the session (its process is stopped), your breakpoints and the default
--- keys this module mapped. For tests, and for a fresh start without restarting Neovim.
function M.reset()
  local run = current
  current = nil
  if run and not run.exited then
    pcall(run.proc.kill, run.proc, 15)
  end
  marks.clear_current()
  marks.clear_all()
  for _, key in ipairs(mapped) do
    pcall(vim.keymap.del, "n", key)
  end
  mapped = {}
end

return M
