/**
 * Room paths ↔ the container's paths, as `debug_joined` describes them (`work_dir` and
 * `aliases`, container path → room path): the same rules `mesh-proxy dap` applies
 * (lsp-proxy/src/dap/paths.rs), minus the editor's own folder, which the page does not have.
 *
 * The entry file runs as the language's main file, so `{"/work/main.py": "debugme.py"}`
 * sends a breakpoint in `debugme.py` to `/work/main.py`, and a frame in `/work/main.py`
 * opens `debugme.py`. A room file that an alias hides (the room's own `main.py` then) is not
 * part of the program: it has no container path.
 */
export class PathMap {
  private readonly prefix: string

  constructor (readonly workDir: string, private readonly aliases: Readonly<Record<string, string>>) {
    this.prefix = workDir.endsWith('/') ? workDir : `${workDir}/`
  }

  /** The container path of a room file, or null when the program does not have it. */
  toContainer (roomPath: string): string | null {
    for (const [container, room] of Object.entries(this.aliases)) if (room === roomPath) return container
    const plain = `${this.prefix}${roomPath}`
    if (plain in this.aliases) return null
    return plain
  }

  /** The room path of a container path, or null for a file outside the room (the
   * language's own library, say). */
  toRoom (containerPath: string): string | null {
    const alias = this.aliases[containerPath]
    if (alias !== undefined) return alias
    if (!containerPath.startsWith(this.prefix)) return null
    const rest = containerPath.slice(this.prefix.length)
    if (!rest || rest.split('/').some(part => part === '..' || part === '.' || part === '')) return null
    return rest
  }
}
