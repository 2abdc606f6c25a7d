/**
 * Finding and checking the `mesh-proxy` binary, and the environment it is started with.
 * Node.js only (no `vscode`), so tests cover it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

/** The settings the proxy is started with. */
export interface ProxySettings {
  serverUrl: string;
  displayName: string;
}

/**
 * The environment variables that carry the settings to the proxy. This is the one place
 * that names them; the proxy reads `MESH_SERVER` and `MESH_NAME`.
 */
export function proxyEnvironment(settings: ProxySettings): Record<string, string> {
  const env: Record<string, string> = { MESH_SERVER: settings.serverUrl.trim() };
  const name = settings.displayName.trim();
  if (name !== '') {
    env.MESH_NAME = name;
  }
  return env;
}

/** Where the proxy binary was found, and why there. */
export interface ProxyLocation {
  command: string;
  source: 'setting' | 'bundled' | 'path';
}

/** The file name of the proxy binary on this platform. */
export function proxyFileName(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'mesh-proxy.exe' : 'mesh-proxy';
}

/**
 * Resolves `mesh.proxyPath`: the setting if given (a leading `~/` is the home directory),
 * else a binary bundled in the extension's `bin/`, else `mesh-proxy` on `PATH`.
 */
export function resolveProxy(
  setting: string,
  extensionPath: string,
  opts: { exists?: (p: string) => boolean; platform?: NodeJS.Platform; home?: string } = {},
): ProxyLocation {
  const exists = opts.exists ?? existsSync;
  const file = proxyFileName(opts.platform);
  const configured = setting.trim();
  if (configured !== '') {
    const home = opts.home ?? process.env.HOME ?? '';
    const expanded = configured.startsWith('~/') && home !== '' ? path.join(home, configured.slice(2)) : configured;
    return { command: expanded, source: 'setting' };
  }
  const bundled = path.join(extensionPath, 'bin', file);
  if (exists(bundled)) {
    return { command: bundled, source: 'bundled' };
  }
  return { command: file, source: 'path' };
}

/** How long `mesh-proxy --version` may take before the binary counts as broken. */
const VERSION_TIMEOUT_MS = 10_000;

/** Runs `PROXY --version`; resolves to its first line, or rejects with a message to show. */
export function checkProxy(location: ProxyLocation): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(location.command, ['--version'], { timeout: VERSION_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err === null) {
        resolve(stdout.split('\n')[0]?.trim() ?? '');
        return;
      }
      reject(new Error(proxyProblem(location, err as NodeJS.ErrnoException, stderr)));
    });
  });
}

/** The message for a proxy that did not answer `--version`. */
export function proxyProblem(location: ProxyLocation, err: { code?: string | number; message: string }, stderr = ''): string {
  const where =
    location.source === 'setting'
      ? `at "${location.command}" (the mesh.proxyPath setting)`
      : location.source === 'bundled'
        ? `bundled with the extension at "${location.command}"`
        : 'on PATH';
  if (err.code === 'ENOENT') {
    return `mesh-proxy was not found ${where}. Install mesh-proxy or set mesh.proxyPath to its location.`;
  }
  if (err.code === 'EACCES') {
    return `mesh-proxy ${where} is not executable. Check its permissions or set mesh.proxyPath.`;
  }
  const detail = stderr.trim().split('\n')[0] ?? '';
  return `mesh-proxy ${where} did not answer --version (${detail !== '' ? detail : err.message}). Set mesh.proxyPath to a working mesh-proxy.`;
}
