/**
 * The typed mirror of mesh's LSP extensions: every `mesh/*` method of
 * `docs/lsp-extensions.md`, with its params and result. This file is the only place that
 * names a method string; everything else goes through these descriptors, so a change to
 * the contract is one edit here (and `test/unit/protocol.test.ts` fails until it is made).
 *
 * It imports nothing from `vscode` or the language client, so unit tests load it in plain
 * Node.js.
 */

/** An LSP position in the negotiated encoding (UTF-16 for VS Code). */
export interface Position {
  line: number;
  character: number;
}

/** An LSP range. */
export interface Range {
  start: Position;
  end: Position;
}

/** One selection: `anchor` is where it started, `head` is where the caret is. */
export interface Selection {
  anchor: Position;
  head: Position;
}

/** A participant's role in a room. */
export type Role = 'host' | 'writer' | 'reader';

/** Where the proxy stands with the room. */
export type ConnectionState = 'idle' | 'connecting' | 'lobby' | 'connected' | 'offline';

/** Someone in the room (the local user too, with `you: true`). */
export interface Participant {
  connId: number;
  name: string;
  /** `#rrggbb`. */
  color: string;
  role: string;
  /** Which editor or client they use, e.g. `vscode`, `neovim`, `yjs`. */
  client: string;
  you: boolean;
  /** Their seat: what host requests name. */
  seat?: string;
  /** False without accounts: the name is what their client said. */
  verified?: boolean;
  /** The id of the link their seat came in by (what to revoke so they cannot come back). */
  link?: string;
}

/** The proxy's view of the session. */
export interface Status {
  state: ConnectionState;
  room?: string;
  link?: string;
  readLink?: string;
  role?: Role;
  server?: string;
  /** The local user's connection id. */
  you?: number;
  participants: Participant[];
  /** Room paths in conflict: the local text is kept, the room's version is in
   * `.mesh/conflicts/<path>`, and the file is out of sync until `mesh/resolve`. */
  conflicts?: string[];
  /** What the lobby says while `state` is `lobby`. */
  lobby?: string;
  /** Our seat. */
  seat?: string;
  /** Whether joiners wait for the host's approval. */
  approval?: boolean;
  /** Joiners waiting for the host (hosts only). */
  joinRequests?: JoinRequest[];
}

/** One chat message. */
export interface ChatEntry {
  id: string;
  author: string;
  connId: number;
  text: string;
  /** Milliseconds since the Unix epoch. */
  ts: number;
}

/** A remote participant's selections in one document. */
export interface RemoteCursor {
  connId: number;
  name: string;
  color: string;
  selections: Selection[];
}

// --- params and results ----------------------------------------------------------------

export interface ShareParams {
  server?: string;
  name?: string;
}
export interface ShareResult {
  room: string;
  link: string;
  readLink: string;
}
export interface JoinParams {
  link: string;
}
export interface JoinResult {
  room: string;
  files: number;
  conflicts: string[];
}
/** The empty object that several methods take or return. */
export type Empty = Record<string, never>;
export interface ChatParams {
  text: string;
}
/** How the room's ghost answers: an explanation, a suggestion to accept, or typing it in. */
export type GhostMode = 'explain' | 'suggest' | 'write';
/** `mesh/ghostAsk`: a question for the room's ghost about lines (1-based, inclusive) of `uri`. */
export interface GhostAskParams {
  text: string;
  mode?: GhostMode;
  uri?: string;
  startLine?: number;
  endLine?: number;
  selection?: string;
}
/** `mesh/ghost`: a writer's decision about the ghost's work. */
export type GhostDecisionParams =
  | { kind: 'accept' | 'reject'; suggestion: number }
  | { kind: 'cancel'; request?: number }
  | { kind: 'undo' };
/** One request of a ghost, as `mesh/ghostState` lists it. */
export interface GhostRequest {
  id: number;
  asker: string;
  mode: GhostMode;
  text: string;
  status: 'working' | 'done' | 'failed' | 'cancelled';
  receivedChars: number;
  message?: string;
}
/** A search/replace edit of a suggestion: the first occurrence of `search` becomes `replace`; an empty `search` appends (or creates the file). */
export interface GhostEdit {
  path: string;
  uri?: string;
  search: string;
  replace: string;
}
/** A suggestion waiting for a writer to accept or reject it. */
export interface GhostSuggestion {
  id: number;
  asker: string;
  files: { path: string; uri?: string }[];
  edits: GhostEdit[];
  /** The edits were too large to publish; the answer is in chat. */
  omitted?: boolean;
}
/** `mesh/ghostState`: every ghost of the room, the full set on every change. */
export interface GhostStateParams {
  ghosts: { connId: number; name: string; requests: GhostRequest[]; suggestions: GhostSuggestion[] }[];
}
export interface ChatHistoryResult {
  messages: ChatEntry[];
}
/** `mesh/resolve`: the file in conflict, by URI or room path. */
export interface ResolveParams {
  uri?: string;
  path?: string;
}
export interface FollowParams {
  /** Who to follow; `null` stops following. */
  connId: number | null;
}
export interface CursorParams {
  uri: string;
  selections: Selection[];
}
export interface ActiveEditorParams {
  uri: string | null;
  visibleRange?: Range;
}
export interface ParticipantsParams {
  participants: Participant[];
}
export interface CursorsParams {
  uri: string;
  cursors: RemoteCursor[];
}
export interface FollowNotification {
  connId: number;
  name: string;
  uri: string;
  visibleRange?: Range;
  selections?: Selection[];
}
export interface FollowStoppedParams {
  reason: string;
}
export interface ChatMessageParams {
  entry: ChatEntry;
}
export type NotifyLevel = 'info' | 'warning' | 'error';
export interface NotifyParams {
  level: NotifyLevel;
  message: string;
}
export interface RunParams {
  /** A file of the shared folder (wins over `path`). */
  uri?: string;
  /** A room path, relative to the shared folder. */
  path?: string;
  /** A language id, to override the file's extension. */
  language?: string;
}
export interface RunResult {
  runId: string;
  /** Set when the run waits for a free sandbox: its 1-based place in the server's queue. */
  queued?: number;
}
export interface RunInputParams {
  runId: string;
  /** Text for the program's stdin, at most 64 KiB. */
  data: string;
  /** Close stdin after `data`. */
  eof?: boolean;
}
export interface RunStopParams {
  runId: string;
}
/** Which stream a piece of run output came from. */
export type RunStream = 'compile' | 'stdout' | 'stderr';
/** `mesh/debugStarted`: a debug session started in the room; other editors offer to join it. */
export interface DebugStartedParams {
  debugId: string;
  /** The entry file's room path. */
  path: string;
  /** The entry file in the local folder. */
  uri?: string;
  language: string;
  /** Who started it (connection id: the starter's `mesh-proxy dap`). */
  by: number;
  byName: string;
  /** Whether this editor's own language-server connection started it (never, for a session started through `mesh-proxy dap`). */
  you: boolean;
}
/**
 * `mesh/debugBreakpoints`: the room's breakpoints in one file of a debug session, everyone's
 * merged; the full set for that file (an empty list clears it).
 */
export interface DebugBreakpointsParams {
  debugId: string;
  /** The file's room path. */
  path: string;
  /** The file in the local folder. */
  uri?: string;
  /** 1-based lines with a breakpoint. */
  lines: number[];
}
/** `mesh/debugEnded`: a debug session in the room ended, for everyone. */
export interface DebugEndedParams {
  debugId: string;
  /** The program's exit code, when it exited. */
  exitCode?: number;
  /** Why it ended, when it was not the program's own exit. */
  error?: string;
}

export interface RunStartedParams {
  runId: string;
  /** The entry file's room path. */
  path: string;
  /** The entry file in the local folder. */
  uri?: string;
  language: string;
  /** Who started it (connection id; 0 for the REST API). */
  by: number;
  byName: string;
  /** Whether this editor's own connection started it. */
  you: boolean;
  /** The program of the room's debug session: its output is in the Debug Console too, so it
   * is not shown as a run; its terminal is where its input is typed. */
  debug?: boolean;
}
/** `mesh/runQueued`: a run (or, with `debug`, a debug session) waits for a free sandbox. */
export interface RunQueuedParams {
  runId: string;
  /** The entry file's room path. */
  path: string;
  /** The entry file in the local folder. */
  uri?: string;
  language: string;
  /** Who asked for it (connection id; 0 for the REST API). */
  by: number;
  byName: string;
  /** Whether this editor's own connection asked for it. */
  you: boolean;
  /** 1-based place in the server's queue. */
  position: number;
  /** The cap it waits on. */
  limit: 'max_runs' | 'max_runs_per_room' | 'max_runs_per_person' | 'max_debug_sessions';
  debug: boolean;
  /** What to show, e.g. "queued: 2nd in line, waiting for a free run slot on this server (max_runs)". */
  message: string;
}
export interface RunOutputParams {
  runId: string;
  stream: RunStream;
  /** As produced, ANSI escapes kept. */
  data: string;
}
export interface RunExitedParams {
  runId: string;
  stage: 'compile' | 'run';
  /** Exit status (128 + signal when killed). */
  code: number | null;
  durationMs: number;
  limit: 'time' | 'memory' | 'output' | 'pids' | null;
  /** Set when the run could not be carried out, or this editor stopped hearing about it. */
  error: string | null;
}
export interface DocumentHashParams {
  uri: string;
}
export interface DocumentHashResult {
  version: number;
  /** SHA-256 of the buffer's text as UTF-8, lower-case hex. */
  sha256: string;
}

// --- descriptors -----------------------------------------------------------------------

/** Who sends a message, as the contract's tables are headed. */
/** Someone waiting in the lobby. */
export interface JoinRequest {
  seat: string;
  name: string;
  client: string;
  /** Signed in: the name is the provider's. */
  verified?: boolean;
}

/** `mesh/joinRequestClosed`. */
export interface JoinRequestClosedParams {
  seat: string;
  name: string;
  admitted: boolean;
  by?: string;
}

/** `mesh/presence`: someone joined, left, changed role, was removed, follows you. */
export interface PresenceParams {
  kind: 'joined' | 'left' | 'roleChanged' | 'kicked' | 'followed' | 'unfollowed';
  connId: number;
  seat?: string;
  name: string;
  role: string;
  /** About you: your own role changed. */
  you: boolean;
  /** What to show. */
  message: string;
}

/** `mesh/lobby`. */
export interface LobbyParams {
  message: string;
}

/** `mesh/ended`: the room ended this session for good. */
export interface EndedParams {
  reason: 'kicked' | 'refused' | 'revoked';
  message: string;
}

/** `mesh/hostParticipants`. */
export interface HostParticipants {
  participants: Participant[];
  waiting: JoinRequest[];
  approval: boolean;
}

/** `mesh/setRole`. */
export interface SetRoleParams {
  seat: string;
  role: Role;
}

/** `mesh/kick`, `mesh/admit`, `mesh/refuse`. */
export interface SeatParams {
  seat: string;
}

/** `mesh/setApproval`. */
export interface ApprovalParams {
  on: boolean;
}

/** A join link of the room. */
export interface Link {
  id: string;
  role: string;
  url: string;
  createdAt: number;
  expiresAt: number;
  maxUses?: number;
  uses: number;
  revoked: boolean;
}

/** `mesh/links`. */
export interface LinksResult {
  links: Link[];
}

/** `mesh/createLink`. */
export interface CreateLinkParams {
  role: 'reader' | 'writer';
  expiresInSecs?: number;
  maxUses?: number;
}

/** `mesh/revokeLink`. */
export interface RevokeLinkParams {
  id: string;
}

/** One entry of the audit trail. */
export interface AuditEntry {
  ts: number;
  kind: string;
  actor: string;
  subject: string;
  detail: string;
}

/** `mesh/audit`. */
export interface AuditParams {
  limit?: number;
}

/** `mesh/audit`'s result. */
export interface AuditResult {
  entries: AuditEntry[];
}

export type Direction = 'editor→proxy' | 'proxy→editor';

/** A request; the phantom fields carry its params and result types. */
export interface RequestDescriptor<P, R> {
  readonly kind: 'request';
  readonly method: string;
  readonly direction: Direction;
  /** Never set: it only carries the types. */
  readonly _types?: { params: P; result: R };
}

/** A notification; the phantom field carries its params type. */
export interface NotificationDescriptor<P> {
  readonly kind: 'notification';
  readonly method: string;
  readonly direction: Direction;
  /** Never set: it only carries the type. */
  readonly _types?: { params: P };
}

/** Any descriptor. */
export type Descriptor = RequestDescriptor<unknown, unknown> | NotificationDescriptor<unknown>;

function request<P, R>(method: string, direction: Direction): RequestDescriptor<P, R> {
  return { kind: 'request', method, direction };
}

function notification<P>(method: string, direction: Direction): NotificationDescriptor<P> {
  return { kind: 'notification', method, direction };
}

/** Requests the editor sends to the proxy. */
export const EditorRequests = {
  share: request<ShareParams, ShareResult>('mesh/share', 'editor→proxy'),
  join: request<JoinParams, JoinResult>('mesh/join', 'editor→proxy'),
  leave: request<Empty, Empty>('mesh/leave', 'editor→proxy'),
  status: request<Empty, Status>('mesh/status', 'editor→proxy'),
  chat: request<ChatParams, Empty>('mesh/chat', 'editor→proxy'),
  chatHistory: request<Empty, ChatHistoryResult>('mesh/chatHistory', 'editor→proxy'),
  ghostAsk: request<GhostAskParams, Empty>('mesh/ghostAsk', 'editor→proxy'),
  ghost: request<GhostDecisionParams, Empty>('mesh/ghost', 'editor→proxy'),
  follow: request<FollowParams, Empty>('mesh/follow', 'editor→proxy'),
  resolve: request<ResolveParams, Empty>('mesh/resolve', 'editor→proxy'),
  run: request<RunParams, RunResult>('mesh/run', 'editor→proxy'),
  runInput: request<RunInputParams, Empty>('mesh/runInput', 'editor→proxy'),
  runStop: request<RunStopParams, Empty>('mesh/runStop', 'editor→proxy'),
  hostParticipants: request<Empty, HostParticipants>('mesh/hostParticipants', 'editor→proxy'),
  setRole: request<SetRoleParams, Empty>('mesh/setRole', 'editor→proxy'),
  kick: request<SeatParams, Empty>('mesh/kick', 'editor→proxy'),
  admit: request<SeatParams, Empty>('mesh/admit', 'editor→proxy'),
  refuse: request<SeatParams, Empty>('mesh/refuse', 'editor→proxy'),
  setApproval: request<ApprovalParams, Empty>('mesh/setApproval', 'editor→proxy'),
  links: request<Empty, LinksResult>('mesh/links', 'editor→proxy'),
  createLink: request<CreateLinkParams, Link>('mesh/createLink', 'editor→proxy'),
  revokeLink: request<RevokeLinkParams, Empty>('mesh/revokeLink', 'editor→proxy'),
  audit: request<AuditParams, AuditResult>('mesh/audit', 'editor→proxy'),
} as const;

/** Notifications the editor sends to the proxy. */
export const EditorNotifications = {
  cursor: notification<CursorParams>('mesh/cursor', 'editor→proxy'),
  activeEditor: notification<ActiveEditorParams>('mesh/activeEditor', 'editor→proxy'),
  stopFollowing: notification<Empty>('mesh/stopFollowing', 'editor→proxy'),
} as const;

/** Notifications the proxy sends to the editor. */
export const ProxyNotifications = {
  status: notification<Status>('mesh/status', 'proxy→editor'),
  participants: notification<ParticipantsParams>('mesh/participants', 'proxy→editor'),
  cursors: notification<CursorsParams>('mesh/cursors', 'proxy→editor'),
  follow: notification<FollowNotification>('mesh/follow', 'proxy→editor'),
  followStopped: notification<FollowStoppedParams>('mesh/followStopped', 'proxy→editor'),
  chatMessage: notification<ChatMessageParams>('mesh/chatMessage', 'proxy→editor'),
  ghostState: notification<GhostStateParams>('mesh/ghostState', 'proxy→editor'),
  notify: notification<NotifyParams>('mesh/notify', 'proxy→editor'),
  runStarted: notification<RunStartedParams>('mesh/runStarted', 'proxy→editor'),
  runQueued: notification<RunQueuedParams>('mesh/runQueued', 'proxy→editor'),
  runOutput: notification<RunOutputParams>('mesh/runOutput', 'proxy→editor'),
  runExited: notification<RunExitedParams>('mesh/runExited', 'proxy→editor'),
  debugStarted: notification<DebugStartedParams>('mesh/debugStarted', 'proxy→editor'),
  debugBreakpoints: notification<DebugBreakpointsParams>('mesh/debugBreakpoints', 'proxy→editor'),
  debugEnded: notification<DebugEndedParams>('mesh/debugEnded', 'proxy→editor'),
  presence: notification<PresenceParams>('mesh/presence', 'proxy→editor'),
  lobby: notification<LobbyParams>('mesh/lobby', 'proxy→editor'),
  joinRequest: notification<JoinRequest>('mesh/joinRequest', 'proxy→editor'),
  joinRequestClosed: notification<JoinRequestClosedParams>('mesh/joinRequestClosed', 'proxy→editor'),
  ended: notification<EndedParams>('mesh/ended', 'proxy→editor'),
} as const;

/** Requests the proxy sends to the editor. */
export const ProxyRequests = {
  documentHash: request<DocumentHashParams, DocumentHashResult>('mesh/documentHash', 'proxy→editor'),
} as const;

/** Every descriptor of the contract, for the mirror check and for logging. */
export const ALL_DESCRIPTORS: readonly Descriptor[] = [
  ...Object.values(EditorRequests),
  ...Object.values(EditorNotifications),
  ...Object.values(ProxyNotifications),
  ...Object.values(ProxyRequests),
] as Descriptor[];

/** The version of the contract this mirror implements (`experimental.mesh.version`). */
export const PROTOCOL_VERSION = 1;

/** Params type of a descriptor. */
export type ParamsOf<D> =
  D extends RequestDescriptor<infer P, unknown> ? P : D extends NotificationDescriptor<infer P> ? P : never;
/** Result type of a request descriptor. */
export type ResultOf<D> = D extends RequestDescriptor<unknown, infer R> ? R : never;
