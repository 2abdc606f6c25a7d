/**
 * The room's files: the `files` map of the shared document, `path -> Y.Text`. Paths are
 * relative with `/`; the same rules as mesh-proxy's keep every client's folder safe (no
 * absolute paths, no `..`, nothing under `.git` or `.mesh`, in any case).
 *
 * Create, rename and delete are document edits that every client sees: a rename is one
 * transaction that adds the new path with the text and removes the old one, which the
 * proxies carry out on disk as a rename.
 */
import * as Y from 'yjs'

/** The root map of file texts (`mesh_protocol::doc::FILES`). */
export const FILES = 'files'

/** The longest path the page creates: far beyond real projects, well inside every disk. */
export const MAX_PATH_CHARS = 1024

/** Why a path cannot be a room path, or null when it can. */
export function pathProblem (path: string): string | null {
  if (path.length === 0) return 'a file needs a name'
  if (path.length > MAX_PATH_CHARS) return `a path may have at most ${MAX_PATH_CHARS} characters`
  if (path.startsWith('/')) return 'paths are relative to the project: remove the leading /'
  if (path.includes('\\')) return 'use / to separate folders'
  // Control characters make names that terminals and editors show wrongly.
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'a path may not contain control characters'
  for (const seg of path.split('/')) {
    if (seg === '') return 'a path may not have empty parts (//) or end with /'
    if (seg === '.' || seg === '..') return 'a path may not contain . or .. parts'
    const lower = seg.toLowerCase()
    if (lower === '.git' || lower === '.mesh') return `${seg} folders are never shared`
  }
  return null
}

/** The room's `files` map. */
export function filesOf (doc: Y.Doc): Y.Map<unknown> {
  return doc.getMap(FILES)
}

/** The text of a file, or null when the entry is missing or is not text (a stock client
 * could have put anything there). */
export function fileText (doc: Y.Doc, path: string): Y.Text | null {
  const v = filesOf(doc).get(path)
  return v instanceof Y.Text ? v : null
}

/** Every file path, sorted. */
export function filePaths (doc: Y.Doc): string[] {
  const out: string[] = []
  for (const [path, v] of filesOf(doc).entries()) if (v instanceof Y.Text) out.push(path)
  return out.sort()
}

/** A file operation's outcome: done, or refused with a reason for the user. */
export type FileResult = { ok: true } | { ok: false; reason: string }

const refused = (reason: string): FileResult => ({ ok: false, reason })

/** Adds an empty file (or one with `text`). */
export function createFile (doc: Y.Doc, path: string, text = ''): FileResult {
  const problem = pathProblem(path)
  if (problem) return refused(problem)
  const files = filesOf(doc)
  if (files.has(path)) return refused(`${path} already exists`)
  for (const other of files.keys()) {
    if (other.startsWith(`${path}/`)) return refused(`${path} is a folder`)
    if (path.startsWith(`${other}/`)) return refused(`${other} is a file, not a folder`)
  }
  doc.transact(() => {
    const t = new Y.Text()
    if (text) t.insert(0, text)
    files.set(path, t)
  })
  return { ok: true }
}

/** Moves a file to a new path, in one transaction. */
export function renameFile (doc: Y.Doc, from: string, to: string): FileResult {
  if (from === to) return { ok: true }
  const text = fileText(doc, from)
  if (!text) return refused(`${from} no longer exists`)
  const problem = pathProblem(to)
  if (problem) return refused(problem)
  const files = filesOf(doc)
  if (files.has(to)) return refused(`${to} already exists`)
  doc.transact(() => {
    const t = new Y.Text()
    t.insert(0, text.toString())
    files.set(to, t)
    files.delete(from)
  })
  return { ok: true }
}

/** Removes a file. */
export function deleteFile (doc: Y.Doc, path: string): FileResult {
  const files = filesOf(doc)
  if (!files.has(path)) return refused(`${path} no longer exists`)
  files.delete(path)
  return { ok: true }
}

/** A folder of the file tree. */
export interface TreeFolder { name: string; path: string; folders: TreeFolder[]; files: Array<{ name: string; path: string }> }

/** The file tree of a list of paths: folders first, each level sorted. */
export function fileTree (paths: readonly string[]): TreeFolder {
  const root: TreeFolder = { name: '', path: '', folders: [], files: [] }
  for (const path of paths) {
    const parts = path.split('/')
    let node = root
    for (let i = 0; i < parts.length - 1; i++) {
      const folderPath = parts.slice(0, i + 1).join('/')
      let next = node.folders.find(f => f.name === parts[i])
      if (!next) node.folders.push((next = { name: parts[i], path: folderPath, folders: [], files: [] }))
      node = next
    }
    node.files.push({ name: parts[parts.length - 1], path })
  }
  const sort = (f: TreeFolder): void => {
    f.folders.sort((a, b) => a.name.localeCompare(b.name))
    f.files.sort((a, b) => a.name.localeCompare(b.name))
    f.folders.forEach(sort)
  }
  sort(root)
  return root
}

/** Renames in one change of the files map: exactly one path removed and one added, with the
 * same text. Tabs follow them instead of closing. */
export function renamesIn (event: Y.YMapEvent<unknown>, doc: Y.Doc): Map<string, string> {
  const removed: string[] = []
  const added: string[] = []
  event.changes.keys.forEach((change, key) => {
    if (change.action === 'delete') removed.push(key)
    if (change.action === 'add') added.push(key)
  })
  const out = new Map<string, string>()
  if (removed.length === 1 && added.length === 1 && fileText(doc, added[0])) out.set(removed[0], added[0])
  return out
}
