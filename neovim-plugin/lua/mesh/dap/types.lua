---@meta
--- LuaCATS types for the Debug Adapter Protocol messages mesh's built-in debugger sends and
--- reads (https://microsoft.github.io/debug-adapter-protocol/specification). Only the fields
--- the client uses are declared; every message may carry more, which is kept as it is.
--- This file is read by the language server only; nothing requires it.

---@class mesh.dap.ProtocolMessage
---@field seq integer
---@field type "request"|"response"|"event"

---@class mesh.dap.Request: mesh.dap.ProtocolMessage
---@field type "request"
---@field command string
---@field arguments? table

---@class mesh.dap.Response: mesh.dap.ProtocolMessage
---@field type "response"
---@field request_seq integer
---@field success boolean
---@field command string
---@field message? string
---@field body? table

---@class mesh.dap.Event: mesh.dap.ProtocolMessage
---@field type "event"
---@field event string
---@field body? table

---@alias mesh.dap.Message mesh.dap.Request|mesh.dap.Response|mesh.dap.Event

---@class mesh.dap.InitializeArguments
---@field clientID string
---@field clientName string
---@field adapterID string
---@field linesStartAt1 boolean
---@field columnsStartAt1 boolean
---@field pathFormat "path"
---@field supportsVariableType boolean

---@class mesh.dap.LaunchArguments
---@field program string the entry file (absolute, in the shared folder)
---@field language? string a mesh server language id

---@class mesh.dap.Source
---@field name? string
---@field path? string
---@field sourceReference? integer

---@class mesh.dap.SourceBreakpoint
---@field line integer
---@field condition? string
---@field hitCondition? string
---@field logMessage? string

---@class mesh.dap.SetBreakpointsArguments
---@field source mesh.dap.Source
---@field breakpoints mesh.dap.SourceBreakpoint[]
---@field lines integer[]

---@class mesh.dap.Breakpoint
---@field id? integer
---@field verified boolean
---@field message? string
---@field line? integer

---@class mesh.dap.Thread
---@field id integer
---@field name string

---@class mesh.dap.StackFrame
---@field id integer
---@field name string
---@field source? mesh.dap.Source
---@field line integer
---@field column integer

---@class mesh.dap.Scope
---@field name string
---@field variablesReference integer
---@field expensive boolean

---@class mesh.dap.Variable
---@field name string
---@field value string
---@field type? string
---@field variablesReference integer

---@class mesh.dap.StoppedEventBody
---@field reason string "step", "breakpoint", "pause", "entry", "exception", …
---@field description? string
---@field threadId? integer
---@field allThreadsStopped? boolean
---@field text? string

---@class mesh.dap.ContinuedEventBody
---@field threadId integer
---@field allThreadsContinued? boolean

---@class mesh.dap.OutputEventBody
---@field category? "console"|"important"|"stdout"|"stderr"|"telemetry"|string
---@field output string

---@class mesh.dap.ExitedEventBody
---@field exitCode integer

---@class mesh.dap.EvaluateArguments
---@field expression string
---@field frameId? integer
---@field context "repl"|"watch"|"hover"

---@class mesh.dap.EvaluateResponseBody
---@field result string
---@field type? string
---@field variablesReference integer
