// Errors cross the wire as plain data, never as code: name, message, and where it happened (host, service,
// call), plus an optional string code (e.g. 'ENOENT'), QEMU's own error for a failed QMP command, and cause.
// The controller turns them back into `VtRemoteError` objects whose message names the host and the call.
// VtError is the one family: the agent's errors, the QMP client's, MigrationError; callers test `code`
// (and `qmp.class`), never the message.
import { describeValue, messageOf, safeGet, safeInstanceOf, stringProp } from '../util/thrown.ts'

export interface ErrorData {
  name: string
  message: string
  host?: string
  service?: string
  call?: string
  /** A machine-readable reason: 'ENOENT', 'AUTH', 'PROTOCOL_VERSION', 'OUTSIDE_ROOTS', 'BAD_REQUEST', ... */
  code?: string
  /** QEMU rejected a QMP command: its error class and description (code QMP_COMMAND). */
  qmp?: QmpErrorInfo
  cause?: ErrorData
}

/** QEMU's answer to a failed QMP command: `{ error: { class, desc } }`, and the command it answered. */
export interface QmpErrorInfo {
  /** 'GenericError', 'CommandNotFound', 'DeviceNotFound', ... */
  class: string
  desc: string
  command: string
}

/** Codes of the QMP and migration errors (the agent's own are listed where ErrorData.code is). */
export const ErrorCodes = {
  /** QEMU answered with an error: see `qmp` for its class and description. */
  qmpCommand: 'QMP_COMMAND',
  /** A QMP command got no reply in time. */
  qmpTimeout: 'QMP_TIMEOUT',
  /** The QMP connection closed (QEMU exited) with the command pending, or before it was sent. */
  qmpDisconnected: 'QMP_DISCONNECTED',
  /** No QMP connection could be made, or the greeting or negotiation failed. */
  qmpConnect: 'QMP_CONNECT',
  /** A QMP event did not arrive in time. */
  qmpEventTimeout: 'QMP_EVENT_TIMEOUT',
  /** A QMP call refused before it reached QEMU (empty name, arguments not an object). */
  qmpBadRequest: 'QMP_BAD_REQUEST',
  /** A migration did not complete (MigrationError: phase, hosts, QEMU's error, source state). */
  migrationFailed: 'MIGRATION_FAILED',
} as const

/** Error names used by the agent and the client. */
export const ErrorNames = {
  auth: 'AuthError',
  protocolVersion: 'ProtocolVersionError',
  badRequest: 'BadRequestError',
  notFound: 'NotFoundError',
  outsideRoots: 'PathOutsideRootsError',
  timeout: 'TimeoutError',
  connectionLost: 'ConnectionLostError',
  sessionExpired: 'SessionExpiredError',
  capacity: 'CapacityError',
  internal: 'InternalError',
} as const

/** An error raised on purpose (agent or client) with a name and code that callers may test. */
export class VtError extends Error {
  code?: string
  host?: string
  service?: string
  call?: string
  /** Set when QEMU rejected a QMP command (here or on the way). */
  qmp?: QmpErrorInfo
  constructor(name: string, message: string, extra: { code?: string; cause?: unknown; qmp?: QmpErrorInfo } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause })
    this.name = name
    if (extra.code) this.code = extra.code
    if (extra.qmp) this.qmp = extra.qmp
  }
}

/** An error that happened on (or on the way to) a remote host. Its message starts with `host: service.call:`. */
export class VtRemoteError extends VtError {
  readonly data: ErrorData
  constructor(data: ErrorData) {
    const where = [data.host, data.service && data.call ? `${data.service}.${data.call}` : data.call]
      .filter(Boolean)
      .join(': ')
    super(data.name, where ? `${where}: ${data.message}` : data.message, {
      code: data.code,
      qmp: data.qmp,
      cause: data.cause ? new VtRemoteError(data.cause) : undefined,
    })
    this.data = data
    this.host = data.host
    this.service = data.service
    this.call = data.call
  }
}

const MAX_MESSAGE = 8192
const MAX_DEPTH = 4

/** Turns anything thrown into wire data. Only strings are kept: no stack, no functions, no prototypes. */
export function toErrorData(error: unknown, where: Partial<ErrorData> = {}, depth = 0): ErrorData {
  if (safeInstanceOf(error, VtRemoteError)) {
    const data = (error as VtRemoteError).data
    return { ...data, ...pick(where, data) }
  }
  const isObj = typeof error === 'object' && error !== null
  const name = stringProp(error, 'name')
  const data: ErrorData = {
    name: name ? name.slice(0, 100) : 'Error',
    message: (isObj ? messageOf(error) : describeValue(error)).slice(0, MAX_MESSAGE),
  }
  const code = safeGet(error, 'code')
  if (typeof code === 'string' || typeof code === 'number') data.code = String(code)
  const qmp = qmpInfoOf(safeGet(error, 'qmp'))
  if (qmp) data.qmp = qmp
  for (const key of ['host', 'service', 'call'] as const) {
    const v = safeGet(error, key)
    if (typeof v === 'string') data[key] = v
    else if (where[key]) data[key] = where[key]
  }
  // MAX_DEPTH also ends a cause chain that loops back on itself.
  const cause = safeGet(error, 'cause')
  if (cause !== undefined && depth < MAX_DEPTH) data.cause = toErrorData(cause, {}, depth + 1)
  return data
}

/** A bounded copy of QmpErrorInfo, or undefined for anything else (the peer may send anything). */
function qmpInfoOf(value: unknown): QmpErrorInfo | undefined {
  const cls = safeGet(value, 'class')
  const desc = safeGet(value, 'desc')
  const command = safeGet(value, 'command')
  if (typeof cls !== 'string' || typeof desc !== 'string' || typeof command !== 'string') return undefined
  return { class: cls.slice(0, 100), desc: desc.slice(0, MAX_MESSAGE), command: command.slice(0, 128) }
}

function pick(where: Partial<ErrorData>, existing: ErrorData): Partial<ErrorData> {
  const out: Partial<ErrorData> = {}
  for (const key of ['host', 'service', 'call'] as const) if (!existing[key] && where[key]) out[key] = where[key]
  return out
}

/** Validates untrusted error data from the wire (the peer may send anything). */
export function isErrorData(value: unknown): value is ErrorData {
  const v = value as ErrorData
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.message === 'string'
}

export function fromErrorData(value: unknown, where: Partial<ErrorData> = {}, depth = 0): VtRemoteError {
  if (!isErrorData(value)) return new VtRemoteError({ name: ErrorNames.internal, message: 'malformed error', ...where })
  const data: ErrorData = { name: value.name, message: value.message }
  if (typeof value.code === 'string') data.code = value.code
  const qmp = qmpInfoOf(value.qmp)
  if (qmp) data.qmp = qmp
  for (const key of ['host', 'service', 'call'] as const) {
    const v = value[key]
    if (typeof v === 'string') data[key] = v
    else if (where[key]) data[key] = where[key]
  }
  if (value.cause !== undefined && isErrorData(value.cause) && depth < MAX_DEPTH)
    data.cause = fromErrorData(value.cause, {}, depth + 1).data
  return new VtRemoteError(data)
}
