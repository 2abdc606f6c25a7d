/**
 * `console.log`'s formatting for JavaScript run in the browser, close to Node's
 * `util.format`/`util.inspect` so a program prints what it prints on the server: strings as
 * they are at the top, `%s %d %i %f %j %o %O %c %%` substitutions, objects as `{ a: 1 }`,
 * arrays as `[ 1, 2 ]`, nested strings quoted. Unlike Node, everything stays on one line.
 */

/** How deep objects are shown before `[Object]`, as Node's default. */
const INSPECT_DEPTH = 2

/** Items of an array, map or set shown before `... N more items`, as Node's default. */
const MAX_ITEMS = 100

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

/** One value as Node's `util.inspect` would show it (on one line). */
export function inspect (value: unknown, depth = INSPECT_DEPTH, seen: unknown[] = []): string {
  switch (typeof value) {
    case 'string': return seen.length === 0 ? value : quote(value)
    case 'number': return Object.is(value, -0) ? '-0' : String(value)
    case 'bigint': return `${value}n`
    case 'undefined': return 'undefined'
    case 'boolean': return String(value)
    case 'symbol': return value.toString()
    case 'function': {
      const name = value.name
      if (/^class\b/.test(Function.prototype.toString.call(value))) return `[class ${name || '(anonymous)'}]`
      return name ? `[Function: ${name}]` : '[Function (anonymous)]'
    }
  }
  if (value === null) return 'null'
  const obj = value as object
  if (seen.includes(obj)) return '[Circular]'
  if (obj instanceof Error) return obj.stack && obj.stack.includes(obj.message) ? obj.stack : `${obj.name}: ${obj.message}`
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString()
  if (obj instanceof RegExp) return String(obj)
  if (obj instanceof Promise) return 'Promise { <pending> }'
  const inner = [...seen, obj]
  const show = (v: unknown) => inspect(v, depth - 1, inner)
  const list = (items: string[], more: number, open: string, close: string) => {
    if (more > 0) items.push(`... ${more} more item${more === 1 ? '' : 's'}`)
    return items.length ? `${open} ${items.join(', ')} ${close}` : `${open}${close}`
  }
  if (Array.isArray(obj)) {
    if (depth < 0) return '[Array]'
    const items = obj.slice(0, MAX_ITEMS).map(show)
    return list(items, obj.length - items.length, '[', ']')
  }
  if (obj instanceof Map) {
    if (depth < 0) return '[Map]'
    const items = [...obj].slice(0, MAX_ITEMS).map(([k, v]) => `${show(k)} => ${show(v)}`)
    return `Map(${obj.size}) ${list(items, obj.size - items.length, '{', '}')}`
  }
  if (obj instanceof Set) {
    if (depth < 0) return '[Set]'
    const items = [...obj].slice(0, MAX_ITEMS).map(show)
    return `Set(${obj.size}) ${list(items, obj.size - items.length, '{', '}')}`
  }
  const ctor = (Object.getPrototypeOf(obj) as { constructor?: { name?: string } } | null)?.constructor?.name
  const prefix = ctor && ctor !== 'Object' ? `${ctor} ` : Object.getPrototypeOf(obj) === null ? '[Object: null prototype] ' : ''
  if (depth < 0) return `[${ctor || 'Object'}]`
  const entries = Object.entries(obj)
  const items = entries.slice(0, MAX_ITEMS).map(([k, v]) => `${IDENTIFIER.test(k) ? k : quote(k)}: ${show(v)}`)
  return prefix + list(items, entries.length - items.length, '{', '}')
}

function quote (s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'"
  return q + s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(new RegExp(q, 'g'), `\\${q}`) + q
}

/** The arguments of one `console.log` call as the line Node prints (without the newline). */
export function format (args: readonly unknown[]): string {
  if (args.length === 0) return ''
  const [first, ...rest] = args
  if (typeof first !== 'string') return args.map(a => inspect(a)).join(' ')
  let i = 0
  const head = first.replace(/%[sdifjoOc%]/g, (spec) => {
    if (spec === '%%') return '%'
    if (i >= rest.length) return spec
    const v = rest[i++]
    switch (spec) {
      case '%s': return typeof v === 'string' ? v : typeof v === 'bigint' ? `${v}n` : typeof v === 'object' && v !== null ? inspect(v, 1) : String(v)
      case '%d': return typeof v === 'bigint' ? `${v}n` : typeof v === 'object' && v !== null ? 'NaN' : String(Number(v))
      case '%i': return typeof v === 'bigint' ? `${v}n` : String(parseInt(String(v), 10))
      case '%f': return String(parseFloat(String(v)))
      case '%j': try { return JSON.stringify(v) ?? 'undefined' } catch { return '[Circular]' }
      case '%c': return ''
      default: return inspect(v, INSPECT_DEPTH, [])
    }
  })
  return [head, ...rest.slice(i).map(a => inspect(a))].join(' ')
}
