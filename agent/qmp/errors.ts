// Typed QMP errors. QEMU answers a failed command with { error: { class, desc } }; each class becomes its own
// Error subclass so callers can `instanceof` them, and every error names the command and its arguments.
// They are VtErrors with a stable code (ErrorCodes); a rejected command also carries `qmp` (class, desc,
// command), which travels in the error data to the controller.
import { ErrorCodes, VtError } from '../../src/protocol/errors.ts'

export type QmpErrorClass =
  | 'GenericError'
  | 'CommandNotFound'
  | 'DeviceNotActive'
  | 'DeviceNotFound'
  | 'KVMMissingCap'
  | (string & {})

function callText(command: string, args: unknown): string {
  if (args === undefined) return command
  let text = JSON.stringify(args)
  if (text.length > 200) text = `${text.slice(0, 200)}…`
  return `${command} ${text}`
}

/** Base class of every error the QMP client throws. */
export class QmpError extends VtError {
  constructor(
    message: string,
    code: string = ErrorCodes.qmpBadRequest,
    extra: ConstructorParameters<typeof VtError>[2] = {},
  ) {
    super('QmpError', message, { code, ...extra })
  }
}

/** QEMU rejected a command: carries QEMU's error class and description. */
export class QmpCommandError extends QmpError {
  override name = 'QmpCommandError'
  constructor(
    readonly command: string,
    readonly args: unknown,
    readonly errorClass: QmpErrorClass,
    readonly desc: string,
  ) {
    super(`QMP ${callText(command, args)} failed: ${errorClass}: ${desc}`, ErrorCodes.qmpCommand, {
      qmp: { class: errorClass, desc, command },
    })
  }
}

export class GenericError extends QmpCommandError {
  override name = 'GenericError'
}
export class CommandNotFoundError extends QmpCommandError {
  override name = 'CommandNotFoundError'
}
export class DeviceNotActiveError extends QmpCommandError {
  override name = 'DeviceNotActiveError'
}
export class DeviceNotFoundError extends QmpCommandError {
  override name = 'DeviceNotFoundError'
}
export class KVMMissingCapError extends QmpCommandError {
  override name = 'KVMMissingCapError'
}

const classes: Record<string, typeof QmpCommandError> = {
  GenericError,
  CommandNotFound: CommandNotFoundError,
  DeviceNotActive: DeviceNotActiveError,
  DeviceNotFound: DeviceNotFoundError,
  KVMMissingCap: KVMMissingCapError,
}

export function commandError(command: string, args: unknown, errorClass: string, desc: string): QmpCommandError {
  const Cls = classes[errorClass] ?? QmpCommandError
  return new Cls(command, args, errorClass, desc)
}

/** A command got no reply in time. The connection stays usable; a late reply is dropped. */
export class QmpTimeoutError extends QmpError {
  override name = 'QmpTimeoutError'
  constructor(
    readonly command: string,
    readonly args: unknown,
    readonly timeoutMs: number,
  ) {
    super(`QMP ${callText(command, args)} got no reply within ${timeoutMs} ms`, ErrorCodes.qmpTimeout)
  }
}

/** The socket closed (QEMU exited or was killed) while a command was pending, or a command was sent after. */
export class QmpDisconnectedError extends QmpError {
  override name = 'QmpDisconnectedError'
  constructor(
    readonly command: string | undefined,
    readonly args: unknown,
    reason: string,
  ) {
    super(command ? `QMP ${callText(command, args)}: ${reason}` : `QMP: ${reason}`, ErrorCodes.qmpDisconnected)
  }
}

/** Could not connect, bad greeting, or capabilities negotiation failed. */
export class QmpConnectError extends QmpError {
  override name = 'QmpConnectError'
  /** Worth another attempt within the connect timeout (the socket closed before the greeting). */
  readonly retry: boolean
  constructor(message: string, options: { retry?: boolean } = {}) {
    super(message, ErrorCodes.qmpConnect)
    this.retry = options.retry ?? false
  }
}

/** waitForEvent gave up. */
export class QmpEventTimeoutError extends QmpError {
  override name = 'QmpEventTimeoutError'
  constructor(
    readonly event: string,
    readonly timeoutMs: number,
  ) {
    super(`QMP event ${event} did not arrive within ${timeoutMs} ms`, ErrorCodes.qmpEventTimeout)
  }
}
