// What travels on the WebSocket. Text frames are JSON: first the handshake (hello → welcome | refused), then
// birpc messages ({t:'q'} requests and events, {t:'s'} responses) and agent notices ({t:'error'}). Bytes inside
// JSON are tagged as {"$b": base64}. Binary frames carry bulk streams (file transfer): a 4-byte big-endian
// stream id followed by the chunk.
import type { ErrorData } from './errors.ts'
import type { HostFacts } from './facts.ts'

/** Bump on any incompatible change of the handshake, the frames or a service contract. */
export const PROTOCOL_VERSION = 1

/** Largest text or binary frame either side accepts. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024
/** Size of one binary stream chunk. */
export const STREAM_CHUNK_BYTES = 1024 * 1024
/** The agent closes a connection whose first frame has not arrived within this time. */
export const HELLO_TIMEOUT_MS = 5000
/** Largest hello the agent reads (the token is at most MAX_TOKEN_CHARS). */
export const MAX_HELLO_BYTES = 8 * 1024
/** Longest token a hello may carry: an agent refuses to start with a longer one. */
export const MAX_TOKEN_CHARS = 4096

/**
 * The lease a controller may ask for. Below 2 s heartbeats (a quarter of half the lease) cannot keep a
 * session alive on a busy machine; above a day the agent refuses the hello.
 */
export const LEASE_SECONDS = { min: 2, max: 86_400 } as const

export interface Hello {
  t: 'hello'
  protocol: number
  token: string
  /** Who connects, for the agent's log. */
  client: { name: string; pid: number }
  /** Requested lease; the agent may clamp it. */
  leaseSeconds?: number
  /** Resume a session after a broken link (within its lease). */
  resume?: { session: string; secret: string }
}

export interface Welcome {
  t: 'welcome'
  protocol: number
  host: string
  session: { id: string; secret: string; leaseSeconds: number; resumed: boolean }
  facts: HostFacts
  services: string[]
}

export interface Refused {
  t: 'refused'
  error: ErrorData
}

/** A protocol-level error the agent reports for a frame it cannot answer otherwise (no request id). */
export interface Notice {
  t: 'error'
  error: ErrorData
}

export interface RpcRequestFrame {
  t: 'q'
  i?: string
  m: string
  a: unknown[]
  o?: boolean
}

export interface RpcResponseFrame {
  t: 's'
  i: string
  r?: unknown
  e?: unknown
}

/** The function the controller exposes to the agent: one entry point for every service event. */
export interface ControllerFunctions {
  event(service: string, name: string, payload: unknown): void
}

export function encodeJson(value: unknown): string {
  return JSON.stringify(value, bytesReplacer)
}

function bytesReplacer(this: any, key: string, value: unknown): unknown {
  const raw = this[key]
  if (raw instanceof Uint8Array)
    return { $b: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') }
  return value
}

/** Parses a text frame. Throws on invalid JSON. */
export function decodeJson(text: string): unknown {
  if (!text.includes('"$b"')) return JSON.parse(text)
  return JSON.parse(text, (_key, value) => {
    if (value && typeof value === 'object' && typeof value.$b === 'string' && Object.keys(value).length === 1) {
      return Buffer.from(value.$b, 'base64')
    }
    return value
  })
}

/** Checks that a decoded frame is a well-formed birpc request or response; returns a reason otherwise. */
export function checkRpcFrame(frame: unknown): string | undefined {
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return 'frame is not a JSON object'
  const f = frame as Record<string, unknown>
  if (f.i !== undefined && (typeof f.i !== 'string' || f.i.length === 0 || f.i.length > 64)) {
    return 'field "i" must be a string of 1-64 characters'
  }
  if (f.t === 'q') {
    if (typeof f.m !== 'string' || f.m.length === 0 || f.m.length > 128) return 'field "m" must be a method name'
    if (!Array.isArray(f.a)) return 'field "a" must be an array of arguments'
    if (f.o !== undefined && typeof f.o !== 'boolean') return 'field "o" must be a boolean'
    return undefined
  }
  if (f.t === 's') {
    if (typeof f.i !== 'string') return 'a response needs field "i"'
    return undefined
  }
  return `unknown frame type ${JSON.stringify(f.t)?.slice(0, 40)}`
}

export const STREAM_HEADER_BYTES = 4

/** Writes the stream header into the first 4 bytes of `frame` (callers that read data at offset 4 avoid a copy). */
export function writeStreamHeader(frame: Buffer, stream: number): Buffer {
  frame.writeUInt32BE(stream, 0)
  return frame
}

export function encodeStreamChunk(stream: number, chunk: Uint8Array): Buffer {
  const header = Buffer.allocUnsafe(4)
  header.writeUInt32BE(stream, 0)
  return Buffer.concat([header, chunk])
}

export function decodeStreamChunk(frame: Buffer): { stream: number; chunk: Buffer } | undefined {
  if (frame.length < 4) return undefined
  return { stream: frame.readUInt32BE(0), chunk: frame.subarray(4) }
}
