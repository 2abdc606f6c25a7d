/**
 * The `mesh` debug type without `vscode`, so the unit tests cover it: how a launch
 * configuration is completed (F5 without a launch.json, "Mesh: Debug", a launch.json entry),
 * which folder `mesh-proxy dap` serves, and its command line. `debug.ts` only copies these
 * into VS Code objects.
 */
import * as path from 'node:path';

/** The debug type this extension contributes (`debuggers` in package.json). */
export const DEBUG_TYPE = 'mesh';

/** The name of the configuration "Mesh: Debug" and F5 without a launch.json start. */
export const DEBUG_NAME = 'Mesh: Debug';

/**
 * VS Code language id → the mesh server's language id, for the languages the server debugs
 * (`[languages.*.debug]` in images/languages.toml). package.json's `debuggers.languages` and
 * `breakpoints` list the same ids; a unit test keeps them equal.
 */
export const DEBUG_LANGUAGES: Readonly<Record<string, string>> = { python: 'python', c: 'c', cpp: 'cpp' };

/** A launch configuration of type `mesh`, as VS Code hands it over (any other keys kept). */
export interface MeshDebugConfiguration {
  type?: string;
  request?: string;
  name?: string;
  /** The file to debug: a file of the shared folder. */
  program?: unknown;
  /** The server's language id, when the file's extension does not say it. */
  language?: unknown;
  [key: string]: unknown;
}

/** The editor's active file, as far as debugging cares. */
export interface ActiveFile {
  /** The URI scheme (only `file` can be debugged). */
  scheme: string;
  /** Its path on this machine. */
  fsPath: string;
  /** VS Code's language id. */
  languageId: string;
}

/** A configuration to start, or what to tell the user instead. */
export type Resolved = { ok: true; config: MeshDebugConfiguration } | { ok: false; message: string };

/** The name of the configuration that joins the room's session ("Join" on the offer). */
export const JOIN_NAME = 'Mesh: Join';

/** The message when there is nothing to debug. */
export const NO_FILE = 'Mesh: open a Python, C or C++ file of the shared folder to debug it.';

/** The mesh language of a VS Code language id, when mesh debugs it. */
export function meshLanguage(languageId: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(DEBUG_LANGUAGES, languageId) ? DEBUG_LANGUAGES[languageId] : undefined;
}

/**
 * The configuration that debugs `file`: what "Mesh: Debug" starts. The language is named
 * only when VS Code knows the file as one mesh debugs (a `.h` open as C++ then debugs as
 * C++); otherwise the server goes by the file's extension.
 */
export function configurationFor(file: ActiveFile | undefined): Resolved {
  if (file === undefined || file.scheme !== 'file') {
    return { ok: false, message: NO_FILE };
  }
  const config: MeshDebugConfiguration = { type: DEBUG_TYPE, request: 'launch', name: DEBUG_NAME, program: file.fsPath };
  const language = meshLanguage(file.languageId);
  if (language !== undefined) {
    config.language = language;
  }
  return { ok: true, config };
}

/**
 * The first step of VS Code's resolution (`resolveDebugConfiguration`, before variables
 * are substituted). An empty configuration — F5 in a folder without a launch.json — debugs
 * the active file; a `mesh` configuration without `program` gets `${file}`.
 */
export function resolveConfiguration(config: MeshDebugConfiguration, active: ActiveFile | undefined): Resolved {
  const empty = config.type === undefined && config.request === undefined && config.name === undefined;
  if (empty) {
    return configurationFor(active);
  }
  const resolved = { ...config };
  resolved.type ??= DEBUG_TYPE;
  resolved.request ??= 'launch';
  resolved.name ??= DEBUG_NAME;
  // An `attach` without a program joins whatever session is going.
  if (resolved.request === 'launch' && (resolved.program === undefined || resolved.program === '')) {
    resolved.program = '${file}';
  }
  return { ok: true, config: resolved };
}

/**
 * The last step (`resolveDebugConfigurationWithSubstitutedVariables`): `program` must now
 * be a path; a relative one is taken relative to the workspace folder. `mesh-proxy dap`
 * checks that the file is in the shared folder and says so when it is not.
 */
export function checkConfiguration(config: MeshDebugConfiguration, folder: string | undefined): Resolved {
  if (config.request !== 'launch' && config.request !== 'attach') {
    return {
      ok: false,
      message: `Mesh: a mesh debug configuration has "request": "launch" or "attach", not ${JSON.stringify(config.request)}.`,
    };
  }
  const program = config.program;
  if (config.request === 'attach' && (program === undefined || program === '')) {
    return { ok: true, config: { ...config } };
  }
  if (typeof program !== 'string' || program.trim() === '' || program.includes('${')) {
    return {
      ok: false,
      message:
        typeof program === 'string' && program.includes('${file}')
          ? NO_FILE
          : `Mesh: "program" must name the file to debug (a file of the shared folder), e.g. "\${file}"; it is ${JSON.stringify(program)}.`,
    };
  }
  if (config.language !== undefined && (typeof config.language !== 'string' || config.language.trim() === '')) {
    return { ok: false, message: `Mesh: "language" must be a language id such as "python", "c" or "cpp"; it is ${JSON.stringify(config.language)}.` };
  }
  const absolute = path.isAbsolute(program) ? program : path.resolve(folder ?? process.cwd(), program);
  return { ok: true, config: { ...config, program: absolute } };
}

/** What `mesh/debugStarted` says, as far as the offer to join cares. */
export interface DebugStarted {
  path: string;
  byName: string;
  you: boolean;
}

/**
 * The text of the offer to join a debug session someone started, or undefined when there is
 * nothing to offer: this editor's own connection started it, or a mesh debug session is
 * going in this window already (the starter's own session is one, as it comes through its
 * own `mesh-proxy dap`).
 */
export function joinOffer(started: DebugStarted, meshSessionActive: boolean): string | undefined {
  if (started.you || meshSessionActive) {
    return undefined;
  }
  return `${started.byName} started debugging ${started.path}`;
}

/** The configuration "Join" starts: an `attach`, naming the local entry file when there is one. */
export function joinConfiguration(program: string | undefined): MeshDebugConfiguration {
  const config: MeshDebugConfiguration = { type: DEBUG_TYPE, request: 'attach', name: JOIN_NAME };
  if (program !== undefined) {
    config.program = program;
  }
  return config;
}

/**
 * The folder `mesh-proxy dap` serves: the innermost workspace folder holding the program,
 * else the session's folder, else the first one, else the program's directory. The proxy
 * looks up the room of the shared folder that contains it.
 */
export function adapterFolder(program: string | undefined, sessionFolder: string | undefined, folders: readonly string[]): string | undefined {
  if (program !== undefined && path.isAbsolute(program)) {
    const holding = folders.filter((f) => isInside(program, f)).sort((a, b) => b.length - a.length);
    if (holding[0] !== undefined) {
      return holding[0];
    }
  }
  if (sessionFolder !== undefined) {
    return sessionFolder;
  }
  if (folders[0] !== undefined) {
    return folders[0];
  }
  return program !== undefined && path.isAbsolute(program) ? path.dirname(program) : undefined;
}

/** The arguments that start the Debug Adapter for `folder` (the current directory when none). */
export function adapterArgs(folder: string | undefined): string[] {
  return folder === undefined ? ['dap'] : ['dap', '--folder', folder];
}

/** True when `file` is `dir` or inside it. */
function isInside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
