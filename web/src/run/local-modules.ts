/**
 * How a JavaScript program run in the browser finds the room's other files: `require` with a
 * relative path, resolved as Node resolves it (the exact name, then `.js`, `.cjs`, `.json`,
 * then `/index.js`) over the room's paths. Pure, so the rules have unit tests.
 */

/** The Node built-ins a program run in the browser may `require`, and why each is there:
 * the registry's JavaScript starter reads stdin with `fs`, and line-by-line programs use
 * `readline`. */
export const BUILTIN_MODULES = ['fs', 'readline', 'process', 'util'] as const

/** `path` with `.` and `..` segments folded, or null when it climbs out of the room. */
export function normalizePath (path: string): string | null {
  const out: string[] = []
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') {
      if (out.length === 0) return null
      out.pop()
    } else out.push(seg)
  }
  return out.join('/')
}

/** The folder of a room path (`''` at the top). */
export function dirOf (path: string): string {
  const i = path.lastIndexOf('/')
  return i < 0 ? '' : path.slice(0, i)
}

/** The room file `spec` names when `require`d from the file `from`, or null. Bare names
 * (packages) are not files of the room: the caller says what to do instead. */
export function resolveRequire (spec: string, from: string, has: (path: string) => boolean): string | null {
  let base: string | null
  if (spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..') base = normalizePath(`${dirOf(from)}/${spec}`)
  else if (spec.startsWith('/')) base = normalizePath(spec)
  else return null
  if (base === null) return null
  for (const candidate of [base, `${base}.js`, `${base}.cjs`, `${base}.json`, `${base ? `${base}/` : ''}index.js`]) {
    if (candidate && has(candidate)) return candidate
  }
  return null
}

/** The source a module's text is evaluated as: Node's CommonJS wrapper on the first line,
 * so line numbers in stack traces are the file's own, and the room path as its name. */
export function wrapModule (path: string, text: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${text}\n})\n//# sourceURL=${encodeURI(path)}`
}
