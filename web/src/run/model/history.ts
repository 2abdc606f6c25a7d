/**
 * The room's run history (`GET /api/sessions/{id}/runs`, newest first) read into
 * {@link HistoryRecord}s, without DOM. The answer is untrusted like every server message:
 * records of another shape are skipped, strings cut, and only the newest
 * {@link MAX_HISTORY_RUNS} kept.
 */
import type { HistoryRecord } from './runs.js'

/** How many past runs the panel loads: the recent ones people look back at; the REST API
 * has up to 100, each with up to 128 KiB of output. */
export const MAX_HISTORY_RUNS = 20

/** The largest history answer the page reads: 100 runs of 2 x 64 KiB, JSON-escaped, fit. */
export const MAX_HISTORY_BYTES = 32 * 1024 * 1024

/** The server keeps the first 64 KiB of each stream (`HISTORY_OUTPUT_BYTES`). */
const MAX_STREAM_CHARS = 64 * 1024

function str (o: Record<string, unknown>, key: string, max: number): string | null {
  const v = o[key]
  return typeof v === 'string' ? v.slice(0, max) : null
}

function optStr (o: Record<string, unknown>, key: string, max: number): string | null | undefined {
  return o[key] == null ? null : (str(o, key, max) ?? undefined)
}

function whole (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v)
}

/** One record, or null when it has another shape. */
export function readRecord (v: unknown): HistoryRecord | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null
  const o = v as Record<string, unknown>
  const runId = str(o, 'run_id', 200)
  const path = str(o, 'path', 4096)
  const language = str(o, 'language', 100)
  const by = str(o, 'by', 64)
  const stage = str(o, 'stage', 20)
  const limit = optStr(o, 'limit', 20)
  const error = optStr(o, 'error', 4096)
  const code = o.code == null ? null : o.code
  if (runId === null || path === null || language === null || by === null || stage === null) return null
  if (limit === undefined || error === undefined || (code !== null && !whole(code))) return null
  if (!whole(o.started_at) || o.started_at < 0 || !whole(o.duration_ms) || o.duration_ms < 0) return null
  return {
    run_id: runId,
    path,
    language,
    by,
    started_at: o.started_at,
    stage,
    code,
    duration_ms: o.duration_ms,
    limit,
    error,
    stdout: str(o, 'stdout', MAX_STREAM_CHARS) ?? '',
    stderr: str(o, 'stderr', MAX_STREAM_CHARS) ?? '',
  }
}

/** The history answer: the newest {@link MAX_HISTORY_RUNS} records that have the shape. */
export function readHistory (json: unknown): HistoryRecord[] {
  if (!Array.isArray(json)) return []
  const out: HistoryRecord[] = []
  for (const v of json) {
    const r = readRecord(v)
    if (r) out.push(r)
  }
  return out.sort((a, b) => b.started_at - a.started_at).slice(0, MAX_HISTORY_RUNS)
}
