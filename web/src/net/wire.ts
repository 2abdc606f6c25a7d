/**
 * Framing of the room socket (`docs/protocol.md`): each binary frame holds y-protocols
 * messages (`varuint tag`, then the payload); tag 100 carries one of mesh's JSON messages as
 * a length-prefixed byte string.
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import type { ClientMessage } from './messages.js'

export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const MSG_AUTH = 2
export const MSG_QUERY_AWARENESS = 3
export const MSG_MESH = 100

/** The largest frame the page accepts from the server: a whole room's first sync may be as
 * large as the room's document (64 MiB by default), with room to spare. */
export const MAX_SERVER_FRAME_BYTES = 128 * 1024 * 1024

/** The largest mesh message the page reads: participant lists of a full room fit. */
export const MAX_SERVER_MESH_BYTES = 4 * 1024 * 1024

/** The largest mesh message the server accepts from a client (`MAX_MESH_MESSAGE_BYTES`). */
export const MAX_CLIENT_MESH_BYTES = 64 * 1024

/** One mesh message as a frame, with its request id when it has one. */
export function encodeMesh (msg: ClientMessage, id?: number): Uint8Array {
  const json = JSON.stringify(id === undefined ? msg : { ...msg, id })
  const bytes = new TextEncoder().encode(json)
  if (bytes.length > MAX_CLIENT_MESH_BYTES) {
    throw new Error(`this message is ${bytes.length} bytes; the server takes at most ${MAX_CLIENT_MESH_BYTES}`)
  }
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, MSG_MESH)
  encoding.writeVarUint8Array(enc, bytes)
  return encoding.toUint8Array(enc)
}

/** The JSON payload of a mesh message whose tag was just read. */
export function readMeshPayload (dec: decoding.Decoder): unknown {
  const bytes = decoding.readVarUint8Array(dec)
  if (bytes.length > MAX_SERVER_MESH_BYTES) {
    throw new Error(`a mesh message of ${bytes.length} bytes is over the page's limit of ${MAX_SERVER_MESH_BYTES}`)
  }
  return JSON.parse(new TextDecoder().decode(bytes))
}
