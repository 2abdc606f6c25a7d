---@brief
--- One debug session of the built-in debugger, sans-IO: it takes the messages `mesh-proxy dap`
--- sends (`receive`) and hands the ones to send to an injected `send`; it never touches a
--- process, a buffer or a clock. It drives the protocol (initialize, launch or attach,
--- breakpoints and `configurationDone` on `initialized`) and keeps what the UI shows: the
--- state, the threads, the stack of the thread that stopped, the scopes of the selected frame
--- and the variables fetched so far. `on_change` tells the UI what changed.
---
--- Requests are answered through callbacks keyed by `seq`, registered before the message is
--- sent; when the adapter goes away (`closed`), every callback still waiting is failed.

local M = {}

--- How many frames of the stopped thread are asked for: enough to see where the program is,
--- few enough that a deep recursion does not flood the window.
M.STACK_LEVELS = 50

--- What the client tells the adapter about itself in `initialize`.
---@type mesh.dap.InitializeArguments
M.INITIALIZE = {
  clientID = "neovim-mesh",
  clientName = "Neovim (mesh)",
  adapterID = "mesh",
  linesStartAt1 = true,
  columnsStartAt1 = true,
  pathFormat = "path",
  supportsVariableType = true,
}

---@alias mesh.dap.State "starting"|"running"|"stopped"|"ended"

---@alias mesh.dap.Change
---| "state"        the state changed (running, ended)
---| "stopped"      the program stopped and the top frame is known: show where
---| "frame"        another frame was selected: show where
---| "view"         threads, scopes or variables arrived
---| "breakpoints"  the adapter answered a file's breakpoints

---@class mesh.dap.SessionOptions
---@field send fun(message: mesh.dap.Request|mesh.dap.Response) writes one message to the adapter
---@field request "launch"|"attach"
---@field arguments mesh.dap.LaunchArguments|table
---@field breakpoints fun(): table<string, mesh.dap.SourceBreakpoint[]> every file's own breakpoints, by local path
---@field on_change? fun(session: mesh.dap.Session, change: mesh.dap.Change, detail?: any)
---@field on_output? fun(body: mesh.dap.OutputEventBody)
---@field on_message? fun(text: string, level: integer) something to tell the user

---@class mesh.dap.Session
---@field state mesh.dap.State
---@field capabilities table
---@field threads mesh.dap.Thread[]
---@field thread_id? integer the thread shown: the one that stopped last
---@field stop? mesh.dap.StoppedEventBody the last stop, while stopped
---@field frames mesh.dap.StackFrame[] the shown thread's stack, innermost first
---@field frame_index integer the selected frame (1-based into `frames`)
---@field scopes mesh.dap.Scope[] the selected frame's scopes
---@field variables table<integer, mesh.dap.Variable[]> fetched variables by `variablesReference`
---@field expanded table<integer, boolean> references shown open
---@field exit_code? integer
---@field ended_because? string why the session ended, when known
---@field private opts mesh.dap.SessionOptions
---@field private seq integer
---@field private pending table<integer, fun(err?: string, body?: table)>
---@field private generation integer bumped on every stop and resume: answers about an older stop are dropped
local Session = {}
Session.__index = Session

--- A session that has not sent anything yet; `start` begins it.
---@param opts mesh.dap.SessionOptions
---@return mesh.dap.Session
function M.new(opts)
  local s = setmetatable({
    opts = opts,
    state = "starting",
    capabilities = {},
    threads = {},
    frames = {},
    frame_index = 1,
    scopes = {},
    variables = {},
    expanded = {},
    seq = 0,
    pending = {},
    generation = 0,
  }, Session)
  return s
end

---@private
---@param change mesh.dap.Change
---@param detail? any
function Session:changed(change, detail)
  if self.opts.on_change then
    self.opts.on_change(self, change, detail)
  end
end

---@private
---@param text string
---@param level? integer
function Session:tell(text, level)
  if self.opts.on_message then
    self.opts.on_message(text, level or vim.log.levels.INFO)
  end
end

--- Sends a request; `cb` gets the error message (nil on success) and the response body.
---@param command string
---@param arguments? table
---@param cb? fun(err?: string, body?: table)
---@return integer seq
function Session:request(command, arguments, cb)
  if self.state == "ended" then
    if cb then
      cb("the debug session has ended", nil)
    end
    return -1
  end
  self.seq = self.seq + 1
  local seq = self.seq
  self.pending[seq] = cb or function() end
  self.opts.send({ seq = seq, type = "request", command = command, arguments = arguments or vim.empty_dict() })
  return seq
end

--- Begins the session: `initialize`, then the configured `launch` or `attach`.
function Session:start()
  self:request("initialize", vim.deepcopy(M.INITIALIZE), function(err, body)
    if err then
      self:finish("the debugger did not start: " .. err)
      return
    end
    self.capabilities = body or {}
    self:request(self.opts.request, self.opts.arguments, function(lerr)
      if lerr then
        self:finish(lerr)
        return
      end
      if self.state == "starting" then
        self.state = "running"
        self:changed("state")
      end
    end)
  end)
end

--- Sends one file's breakpoints; `cb` gets the adapter's answer per breakpoint.
---@param path string a local path
---@param breakpoints mesh.dap.SourceBreakpoint[]
---@param cb? fun(err?: string, results: mesh.dap.Breakpoint[])
function Session:set_breakpoints(path, breakpoints, cb)
  local lines = vim.tbl_map(function(b)
    return b.line
  end, breakpoints)
  ---@type mesh.dap.SetBreakpointsArguments
  local args = { source = { path = path, name = vim.fs.basename(path) }, breakpoints = breakpoints, lines = lines }
  self:request("setBreakpoints", args, function(err, body)
    local results = (body and type(body.breakpoints) == "table") and body.breakpoints or {}
    self:changed("breakpoints", { path = path, results = results, error = err })
    if cb then
      cb(err, results)
    end
  end)
end

--- `initialized`: the adapter takes configuration now; the program starts (or, for a late
--- joiner, the current stop is replayed) after `configurationDone`.
---@private
function Session:configure()
  local files = self.opts.breakpoints()
  local paths = vim.tbl_keys(files)
  table.sort(paths)
  for _, path in ipairs(paths) do
    self:set_breakpoints(path, files[path])
  end
  self:request("setExceptionBreakpoints", { filters = {} })
  self:request("configurationDone", vim.empty_dict(), function(err)
    if err then
      self:tell("mesh: the debugger refused configurationDone: " .. err, vim.log.levels.WARN)
    end
  end)
end

--- Forgets everything about the last stop (frames, scopes and variables are only valid
--- while the program stays stopped).
---@private
function Session:forget_stop()
  self.generation = self.generation + 1
  self.stop = nil
  self.frames = {}
  self.frame_index = 1
  self.scopes = {}
  self.variables = {}
  self.expanded = {}
end

--- Asks for the scopes of the selected frame, and the variables of the first cheap scope
--- (shown open, as "Locals" usually is).
---@private
function Session:load_scopes()
  local frame = self.frames[self.frame_index]
  if not frame then
    return
  end
  local generation = self.generation
  self:request("scopes", { frameId = frame.id }, function(err, body)
    if err or generation ~= self.generation then
      return
    end
    self.scopes = (body and body.scopes) or {}
    self.variables, self.expanded = {}, {}
    for _, scope in ipairs(self.scopes) do
      if not scope.expensive and scope.variablesReference > 0 then
        self:expand(scope.variablesReference)
        break
      end
    end
    self:changed("view")
  end)
end

--- The program stopped: fetch threads, the stack of the thread that stopped, its scopes.
---@private
---@param body mesh.dap.StoppedEventBody
function Session:on_stopped(body)
  self:forget_stop()
  self.state = "stopped"
  self.stop = body
  if type(body.threadId) == "number" then
    self.thread_id = body.threadId
  end
  local generation = self.generation
  self:request("threads", nil, function(err, tbody)
    if err or generation ~= self.generation then
      return
    end
    self.threads = (tbody and tbody.threads) or {}
    local known = false
    for _, t in ipairs(self.threads) do
      known = known or t.id == self.thread_id
    end
    if not known then
      self.thread_id = self.threads[1] and self.threads[1].id or nil
    end
    self:changed("view")
    if not self.thread_id then
      return
    end
    local args = { threadId = self.thread_id, startFrame = 0, levels = M.STACK_LEVELS }
    self:request("stackTrace", args, function(serr, sbody)
      if serr or generation ~= self.generation then
        return
      end
      self.frames = (sbody and sbody.stackFrames) or {}
      self.frame_index = 1
      self:changed("stopped")
      self:load_scopes()
    end)
  end)
  self:changed("state")
end

--- The program runs again: what was known of the stop is no longer true.
---@private
function Session:on_continued()
  if self.state == "ended" then
    return
  end
  self:forget_stop()
  self.state = "running"
  self:changed("state")
end

--- The session is over (the adapter ended it, or the process went away). Every request
--- still waiting is failed; `reason` is said once when given.
---@param reason? string
function Session:finish(reason)
  if self.state == "ended" then
    return
  end
  self:forget_stop()
  self.threads = {}
  self.state = "ended"
  self.ended_because = reason
  local pending = self.pending
  self.pending = {}
  for _, cb in pairs(pending) do
    pcall(cb, "the debug session has ended", nil)
  end
  if reason then
    self:tell("mesh: " .. reason, vim.log.levels.WARN)
  end
  self:changed("state")
end

--- The adapter's process exited or closed its output.
---@param reason? string
function Session:closed(reason)
  self:finish(reason)
end

--- Handles one message from the adapter.
---@param msg mesh.dap.Message
function Session:receive(msg)
  if msg.type == "response" then
    local cb = self.pending[msg.request_seq]
    self.pending[msg.request_seq] = nil
    if cb then
      local err = nil
      if msg.success == false then
        err = msg.message or (msg.body and msg.body.error and msg.body.error.format) or (msg.command .. " failed")
      end
      cb(err, msg.body)
    end
  elseif msg.type == "event" then
    local body = msg.body or {}
    if msg.event == "initialized" then
      self:configure()
    elseif msg.event == "stopped" then
      self:on_stopped(body)
    elseif msg.event == "continued" then
      self:on_continued()
    elseif msg.event == "output" then
      if self.opts.on_output then
        self.opts.on_output(body)
      end
    elseif msg.event == "exited" then
      self.exit_code = body.exitCode
    elseif msg.event == "terminated" then
      local why = self.exit_code and ("the program exited with code %d"):format(self.exit_code) or nil
      self:finish()
      if why then
        self:tell("mesh: debug session over: " .. why)
      end
    elseif msg.event == "capabilities" and type(body.capabilities) == "table" then
      self.capabilities = vim.tbl_extend("force", self.capabilities, body.capabilities)
    end
  elseif msg.type == "request" then
    -- The hub answers the adapter's reverse requests itself; anything that still reaches an
    -- editor is answered so the other side never waits on it.
    self.opts.send({
      seq = 0,
      type = "response",
      request_seq = msg.seq,
      command = msg.command,
      success = false,
      message = "the built-in debugger of mesh.nvim does not handle " .. tostring(msg.command),
    })
  end
end

--- The selected frame, if stopped.
---@return mesh.dap.StackFrame?
function Session:frame()
  return self.frames[self.frame_index]
end

--- Selects a frame of the stack: its scopes are fetched and the UI shows where it is.
---@param index integer
function Session:select_frame(index)
  if not self.frames[index] or index == self.frame_index then
    return
  end
  self.frame_index = index
  self.scopes, self.variables, self.expanded = {}, {}, {}
  self:changed("frame")
  self:load_scopes()
end

--- Opens a variable (or scope) reference: its children are fetched once per stop.
---@param ref integer
function Session:expand(ref)
  if ref <= 0 then
    return
  end
  self.expanded[ref] = true
  if self.variables[ref] then
    self:changed("view")
    return
  end
  local generation = self.generation
  self:request("variables", { variablesReference = ref }, function(err, body)
    if err or generation ~= self.generation then
      return
    end
    self.variables[ref] = (body and body.variables) or {}
    self:changed("view")
  end)
end

--- Opens a closed reference, closes an open one.
---@param ref integer
function Session:toggle(ref)
  if self.expanded[ref] then
    self.expanded[ref] = nil
    self:changed("view")
  else
    self:expand(ref)
  end
end

--- The thread that steps: the one that stopped, else the first known.
---@private
---@return integer?
function Session:step_thread()
  return self.thread_id or (self.threads[1] and self.threads[1].id)
end

--- Sends a command that resumes the program (`continue`, `next`, `stepIn`, `stepOut`).
--- The program runs once the adapter agrees, so the stop is forgotten then: adapters do not
--- all send `continued` for steps they were asked for.
---@param command "continue"|"next"|"stepIn"|"stepOut"
---@param cb? fun(err?: string)
function Session:resume(command, cb)
  local thread = self:step_thread()
  if self.state ~= "stopped" or not thread then
    if cb then
      cb("the program is not stopped")
    end
    return
  end
  self:request(command, { threadId = thread }, function(err)
    if not err then
      self:on_continued()
    end
    if cb then
      cb(err)
    end
  end)
end

--- Asks the program to pause: the thread that stopped last, else the first the adapter
--- names (a session that never stopped knows no thread yet).
---@param cb? fun(err?: string)
function Session:pause(cb)
  if self.state ~= "running" then
    if cb then
      cb("the program is not running")
    end
    return
  end
  local thread = self:step_thread()
  if thread then
    self:request("pause", { threadId = thread }, cb)
    return
  end
  self:request("threads", nil, function(err, body)
    local first = not err and body and body.threads and body.threads[1]
    if not first then
      if cb then
        cb(err or "the program has no thread to pause")
      end
      return
    end
    self.threads = body.threads
    self:request("pause", { threadId = first.id }, cb)
  end)
end

--- Restarts the program: the hub gives the session a fresh program with the same files,
--- every participant stays attached, and it stops again at the breakpoints. What was known
--- of the stop is forgotten at once (the old program is gone).
---@param cb? fun(err?: string)
function Session:restart(cb)
  if self.state ~= "running" and self.state ~= "stopped" then
    if cb then
      cb("the program has not started")
    end
    return
  end
  self:request("restart", {}, function(err)
    if not err and self.state == "stopped" then
      self:on_continued()
    end
    if cb then
      cb(err)
    end
  end)
end

--- Evaluates an expression in the selected frame (or globally when running).
---@param expression string
---@param cb fun(err?: string, body?: mesh.dap.EvaluateResponseBody)
function Session:evaluate(expression, cb)
  local frame = self:frame()
  ---@type mesh.dap.EvaluateArguments
  local args = { expression = expression, context = "repl", frameId = frame and frame.id or nil }
  self:request("evaluate", args, cb)
end

--- Leaves the session. The one who started it (or the host) ends it for everyone with
--- `terminate = true`; for anyone else the server only detaches this editor.
---@param terminate boolean
---@param cb? fun(err?: string)
function Session:disconnect(terminate, cb)
  self:request("disconnect", { terminateDebuggee = terminate, restart = false }, cb)
end

return M
