// Errors cross the wire as plain data, never as code: name, message, and where it happened (host, service,
// call), plus an optional string code (e.g. 'ENOENT') and cause. The controller turns them back into
// `VtRemoteError` objects whose message names the host and the call.

export interface ErrorData {
  name: string
  message: string
  host?: string
  service?: string
  call?: string
  /** A machine-readable reason: 'ENOENT', 'AUTH', 'PROTOCOL_VERSION', 'OUTSIDE_ROOTS', 'BAD_REQUEST', ... */
  code?: string
  cause?: ErrorData
}

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
  constructor(name: string, message: string, extra: { code?: string; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause })
    this.name = name
    if (extra.code) this.code = extra.code
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
  if (error instanceof VtRemoteError) return { ...error.data, ...pick(where, error.data) }
  const e = error as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown } | null | undefined
  const isObj = typeof e === 'object' && e !== null
  const data: ErrorData = {
    name: isObj && typeof e.name === 'string' ? e.name.slice(0, 100) : 'Error',
    message: (isObj && typeof e.message === 'string' ? e.message : String(error)).slice(0, MAX_MESSAGE),
  }
  if (isObj && (typeof e.code === 'string' || typeof e.code === 'number')) data.code = String(e.code)
  const own = error as Partial<ErrorData>
  for (const key of ['host', 'service', 'call'] as const) {
    const v = isObj ? own[key] : undefined
    if (typeof v === 'string') data[key] = v
    else if (where[key]) data[key] = where[key]
  }
  if (isObj && e.cause !== undefined && depth < MAX_DEPTH) data.cause = toErrorData(e.cause, {}, depth + 1)
  return data
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

export function fromErrorData(value: unknown, where: Partial<ErrorData> = {}): VtRemoteError {
  if (!isErrorData(value)) return new VtRemoteError({ name: ErrorNames.internal, message: 'malformed error', ...where })
  const data: ErrorData = { name: value.name, message: value.message }
  if (typeof value.code === 'string') data.code = value.code
  for (const key of ['host', 'service', 'call'] as const) {
    const v = value[key]
    if (typeof v === 'string') data[key] = v
    else if (where[key]) data[key] = where[key]
  }
  if (value.cause !== undefined && isErrorData(value.cause)) data.cause = fromErrorData(value.cause).data
  return new VtRemoteError(data)
}
