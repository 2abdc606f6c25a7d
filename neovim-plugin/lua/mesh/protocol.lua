---@brief
--- A typed mirror of mesh's LSP extensions, the contract between `mesh-proxy lsp` and editor
--- plugins. The source of truth is `docs/lsp-extensions.md` at the root of the repository; a
--- unit test parses it and fails when a method named there is missing here, or when this file
--- names one that the contract does not. Everything else in the plugin refers to methods
--- through this table, so a renamed method is a one-line change.

local M = {}

---@alias mesh.ConnId integer

---@class mesh.Position
---@field line integer zero-based line
---@field character integer offset in the negotiated position encoding

---@class mesh.Range
---@field start mesh.Position
---@field ["end"] mesh.Position

---@class mesh.Selection
---@field anchor mesh.Position where the selection started
---@field head mesh.Position where the caret is

---@alias mesh.State "idle"|"connecting"|"lobby"|"connected"|"offline"
---@alias mesh.Role "host"|"writer"|"reader"

---@class mesh.Participant
---@field connId mesh.ConnId
---@field name string
---@field color string "#rrggbb"
---@field role string
---@field client string
---@field you boolean
---@field seat? string what host requests name
---@field verified boolean false without accounts
---@field link? string the id of the link their seat came in by

---@class mesh.Status
---@field state mesh.State
---@field room? string
---@field link? string
---@field readLink? string
---@field role? mesh.Role
---@field server? string
---@field you? mesh.ConnId
---@field participants mesh.Participant[]
---@field conflicts? string[] room paths in conflict, until `mesh/resolve`
---@field lobby? string what the lobby says while `state` is `lobby`
---@field seat? string our seat
---@field approval boolean whether joiners wait for the host
---@field joinRequests? mesh.JoinRequest[] waiting joiners (hosts only)

---@class mesh.JoinRequest
---@field seat string
---@field name string
---@field client string
---@field verified? boolean signed in: the name is the provider's

---@class mesh.Link
---@field id string
---@field role string
---@field url string
---@field createdAt number
---@field expiresAt number
---@field maxUses? integer
---@field uses integer
---@field revoked boolean

---@class mesh.PresenceParams
---@field kind "joined"|"left"|"roleChanged"|"kicked"|"followed"|"unfollowed"
---@field connId mesh.ConnId
---@field seat? string
---@field name string
---@field role string
---@field you boolean
---@field message string what to show

---@class mesh.LobbyParams
---@field message string

---@class mesh.JoinRequestClosedParams
---@field seat string
---@field name string
---@field admitted boolean
---@field by? string

---@class mesh.EndedParams
---@field reason "kicked"|"refused"|"revoked"
---@field message string

---@class mesh.ChatEntry
---@field id string
---@field author string
---@field connId mesh.ConnId
---@field text string
---@field ts number milliseconds since the Unix epoch

-- Requests: editor → proxy ---------------------------------------------------------------

---@class mesh.ShareParams
---@field server? string
---@field name? string

---@class mesh.ShareResult
---@field room string
---@field link string
---@field readLink string

---@class mesh.JoinParams
---@field link string

---@class mesh.JoinResult
---@field room string
---@field files integer
---@field conflicts string[]

---@class mesh.LeaveParams
---@class mesh.LeaveResult
---@class mesh.StatusParams
---@alias mesh.StatusResult mesh.Status

---@class mesh.ResolveParams
---@field uri? string the file in conflict
---@field path? string or its room path

---@alias mesh.ResolveResult table

---@class mesh.ChatParams
---@field text string
---@class mesh.ChatResult

---@alias mesh.GhostMode "explain"|"suggest"|"write"

---@class mesh.GhostAskParams
---@field text string what to ask the room's ghost
---@field mode? mesh.GhostMode absent: a writer's request is a suggestion, a reader's an explanation
---@field uri? string the file the selection is in
---@field startLine? integer first selected line, 1-based
---@field endLine? integer last selected line, 1-based, inclusive
---@field selection? string the selected text
---@class mesh.GhostAskResult

---@class mesh.GhostParams a writer's decision about the ghost's work
---@field kind "accept"|"reject"|"cancel"|"undo"
---@field suggestion? integer the suggestion accepted or rejected
---@field request? integer the request cancelled (absent: the newest going one)
---@class mesh.GhostResult

---@class mesh.GhostRequest
---@field id integer
---@field asker string
---@field mode mesh.GhostMode
---@field text string
---@field status "working"|"done"|"failed"|"cancelled"
---@field receivedChars integer
---@field message? string

---@class mesh.GhostEdit the first occurrence of `search` becomes `replace`; an empty `search` appends
---@field path string room path
---@field uri? string the file in the shared folder
---@field search string
---@field replace string

---@class mesh.GhostSuggestion
---@field id integer
---@field asker string
---@field files { path: string, uri?: string }[]
---@field edits mesh.GhostEdit[]
---@field omitted? boolean the edits were too large to publish; the answer is in chat

---@class mesh.GhostStateParams the room's ghosts, the full set on every change
---@field ghosts { connId: integer, name: string, requests: mesh.GhostRequest[], suggestions: mesh.GhostSuggestion[] }[]

---@class mesh.ChatHistoryParams
---@class mesh.ChatHistoryResult
---@field messages mesh.ChatEntry[]

---@class mesh.FollowParams
---@field connId mesh.ConnId|vim.NIL `vim.NIL` stops following
---@class mesh.FollowResult

---@class mesh.RunParams
---@field uri? string a file of the shared folder (wins over `path`)
---@field path? string a room path, relative to the shared folder
---@field language? string a language id, to override the file's extension
---@class mesh.RunResult
---@field runId string
---@field queued? integer set when the run waits for a free sandbox: its place in the server's queue

---@class mesh.RunInputParams
---@field runId string
---@field data string at most 64 KiB
---@field eof? boolean close stdin after `data`
---@class mesh.RunInputResult

---@class mesh.RunStopParams
---@field runId string
---@class mesh.RunStopResult

-- Notifications: editor → proxy ----------------------------------------------------------

---@class mesh.CursorParams
---@field uri string
---@field selections mesh.Selection[]

---@class mesh.ActiveEditorParams
---@field uri string|vim.NIL
---@field visibleRange? mesh.Range

---@class mesh.StopFollowingParams

-- Notifications: proxy → editor ----------------------------------------------------------

---@alias mesh.StatusNotification mesh.Status

---@class mesh.ParticipantsParams
---@field participants mesh.Participant[]

---@class mesh.RemoteCursor
---@field connId mesh.ConnId
---@field name string
---@field color string
---@field selections mesh.Selection[]

---@class mesh.CursorsParams
---@field uri string
---@field cursors mesh.RemoteCursor[] the full set for `uri`; empty clears

---@class mesh.FollowNotification
---@field connId mesh.ConnId
---@field name string
---@field uri string
---@field visibleRange? mesh.Range
---@field selections? mesh.Selection[]

---@class mesh.FollowStoppedParams
---@field reason string

---@class mesh.ChatMessageParams
---@field entry mesh.ChatEntry

---@class mesh.NotifyParams
---@field level "info"|"warning"|"error"
---@field message string

---@alias mesh.RunStream "compile"|"stdout"|"stderr"

---@class mesh.RunStartedParams
---@field runId string
---@field path string the entry file's room path
---@field uri? string the entry file in the local folder
---@field language string
---@field by mesh.ConnId who started it (0: the REST API)
---@field byName string
---@field you boolean whether this editor's own connection started it
---@field debug boolean the program of the room's debug session (its output is in the debugger's console too)

---@class mesh.RunQueuedParams a run (or, with `debug`, a debug session) waits for a free sandbox
---@field runId string
---@field path string the entry file's room path
---@field uri? string the entry file in the local folder
---@field language string
---@field by mesh.ConnId who asked for it (0: the REST API)
---@field byName string
---@field you boolean whether this editor's own connection asked for it
---@field position integer 1-based place in the server's queue
---@field limit "max_runs"|"max_runs_per_room"|"max_runs_per_person"|"max_debug_sessions" the cap it waits on
---@field debug boolean
---@field message string what to show

---@class mesh.DebugStartedParams
---@field debugId string
---@field path string the entry file's room path
---@field uri? string the entry file in the local folder
---@field language string
---@field by mesh.ConnId who started it (the starter's `mesh-proxy dap` connection)
---@field byName string
---@field you boolean whether this editor's own connection started it

---@class mesh.DebugBreakpointsParams
---@field debugId string
---@field path string the file's room path
---@field uri? string the file in the local folder
---@field lines integer[] 1-based lines with a breakpoint, everyone's merged (the full set; empty clears)

---@class mesh.DebugEndedParams
---@field debugId string
---@field exitCode? integer the program's exit code, when it exited
---@field error? string why it ended, when it was not the program's own exit

---@class mesh.RunOutputParams
---@field runId string
---@field stream mesh.RunStream
---@field data string as produced, ANSI escapes kept

---@class mesh.RunExitedParams
---@field runId string
---@field stage "compile"|"run"
---@field code integer|vim.NIL exit status (128 + signal when killed)
---@field durationMs integer
---@field limit "time"|"memory"|"output"|"pids"|vim.NIL the limit that ended it
---@field error string|vim.NIL set when the run could not be carried out or followed

-- Requests: proxy → editor ---------------------------------------------------------------

---@class mesh.DocumentHashParams
---@field uri string

---@class mesh.DocumentHashResult
---@field version integer the version Neovim last reported for the document
---@field sha256 string lower-case hex digest of the buffer's LSP text as UTF-8

--- Requests the editor sends to the proxy, keyed by a Lua-friendly name.
M.request = {
  share = "mesh/share", -- params: mesh.ShareParams; result: mesh.ShareResult
  join = "mesh/join", -- params: mesh.JoinParams; result: mesh.JoinResult
  leave = "mesh/leave", -- params: mesh.LeaveParams; result: mesh.LeaveResult
  status = "mesh/status", -- params: mesh.StatusParams; result: mesh.StatusResult
  chat = "mesh/chat", -- params: mesh.ChatParams; result: mesh.ChatResult
  chat_history = "mesh/chatHistory", -- params: mesh.ChatHistoryParams; result: mesh.ChatHistoryResult
  ghost_ask = "mesh/ghostAsk", -- params: mesh.GhostAskParams; result: mesh.GhostAskResult
  ghost = "mesh/ghost", -- params: mesh.GhostParams; result: mesh.GhostResult
  follow = "mesh/follow", -- params: mesh.FollowParams; result: mesh.FollowResult
  resolve = "mesh/resolve", -- params: mesh.ResolveParams; result: mesh.ResolveResult
  run = "mesh/run", -- params: mesh.RunParams; result: mesh.RunResult
  run_input = "mesh/runInput", -- params: mesh.RunInputParams; result: mesh.RunInputResult
  run_stop = "mesh/runStop", -- params: mesh.RunStopParams; result: mesh.RunStopResult
  host_participants = "mesh/hostParticipants", -- result: { participants, waiting, approval }
  set_role = "mesh/setRole", -- params: { seat, role }
  kick = "mesh/kick", -- params: { seat }
  admit = "mesh/admit", -- params: { seat }
  refuse = "mesh/refuse", -- params: { seat }
  set_approval = "mesh/setApproval", -- params: { on }
  links = "mesh/links", -- result: { links: mesh.Link[] }
  create_link = "mesh/createLink", -- params: { role, expiresInSecs?, maxUses? }; result: mesh.Link
  revoke_link = "mesh/revokeLink", -- params: { id }
  audit = "mesh/audit", -- params: { limit? }; result: { entries }
}

--- Notifications the editor sends to the proxy.
M.notify = {
  cursor = "mesh/cursor", -- params: mesh.CursorParams
  active_editor = "mesh/activeEditor", -- params: mesh.ActiveEditorParams
  stop_following = "mesh/stopFollowing", -- params: mesh.StopFollowingParams
}

--- Notifications the proxy sends to the editor.
M.notification = {
  status = "mesh/status", -- params: mesh.StatusNotification
  participants = "mesh/participants", -- params: mesh.ParticipantsParams
  cursors = "mesh/cursors", -- params: mesh.CursorsParams
  follow = "mesh/follow", -- params: mesh.FollowNotification
  follow_stopped = "mesh/followStopped", -- params: mesh.FollowStoppedParams
  chat_message = "mesh/chatMessage", -- params: mesh.ChatMessageParams
  ghost_state = "mesh/ghostState", -- params: mesh.GhostStateParams
  notify = "mesh/notify", -- params: mesh.NotifyParams
  run_started = "mesh/runStarted", -- params: mesh.RunStartedParams
  run_queued = "mesh/runQueued", -- params: mesh.RunQueuedParams
  run_output = "mesh/runOutput", -- params: mesh.RunOutputParams
  run_exited = "mesh/runExited", -- params: mesh.RunExitedParams
  debug_started = "mesh/debugStarted", -- params: mesh.DebugStartedParams
  debug_breakpoints = "mesh/debugBreakpoints", -- params: mesh.DebugBreakpointsParams
  debug_ended = "mesh/debugEnded", -- params: mesh.DebugEndedParams
  presence = "mesh/presence", -- params: mesh.PresenceParams
  lobby = "mesh/lobby", -- params: mesh.LobbyParams
  join_request = "mesh/joinRequest", -- params: mesh.JoinRequest
  join_request_closed = "mesh/joinRequestClosed", -- params: mesh.JoinRequestClosedParams
  ended = "mesh/ended", -- params: mesh.EndedParams
}

--- Requests the proxy sends to the editor.
M.server_request = {
  document_hash = "mesh/documentHash", -- params: mesh.DocumentHashParams; result: mesh.DocumentHashResult
}

--- The version of the extensions this plugin speaks; the proxy announces its own in
--- `initialize`'s `capabilities.experimental.mesh.version`.
M.VERSION = 1

--- Every `mesh/*` method name this file knows, each once, sorted.
---@return string[]
function M.all_methods()
  local seen, out = {}, {}
  for _, group in ipairs({ M.request, M.notify, M.notification, M.server_request }) do
    for _, method in pairs(group) do
      if not seen[method] then
        seen[method] = true
        out[#out + 1] = method
      end
    end
  end
  table.sort(out)
  return out
end

return M
