// Binds the service contracts (src/protocol/registry.ts) to their implementations for one session: each call is
// checked against its contract's argument schema before the implementation runs, and every error leaves as data
// naming the host, service and call.
import { methodName } from '../src/protocol/contract.ts'
import { ErrorNames, toErrorData, VtError } from '../src/protocol/errors.ts'
import { services as contracts, type ServiceName } from '../src/protocol/registry.ts'
import type { ServiceModule, ServiceSession, SessionFactory } from './service.ts'
import type { Session } from './sessions.ts'

/** A service module with the per-session factory its setup returned. */
export interface BoundModule {
  module: ServiceModule
  factory: SessionFactory<ServiceName>
}

/** What a session's connection dispatches into: its functions by wire name and its open binary streams. */
export interface SessionBinding {
  session: Session
  functions: Map<string, (...args: unknown[]) => Promise<unknown>>
  streams: Map<number, (chunk: Buffer) => void | Promise<void>>
}

/** Instantiates every service for `session` and wraps each contract call with argument checks. */
export function bindSession(
  host: string,
  session: Session,
  modules: BoundModule[],
  refused?: ReadonlySet<ServiceName>,
): SessionBinding {
  const functions = new Map<string, (...args: unknown[]) => Promise<unknown>>()
  const binding: SessionBinding = { session, functions, streams: new Map() }
  for (const { module, factory } of modules) {
    const name = module.name
    const contract = contracts[name]
    const serviceSession: ServiceSession<typeof name> = {
      id: session.id,
      dir: session.dir,
      signal: session.signal,
      log: session.log,
      track: r => session.track(r),
      untrack: (id, o) => session.untrack(id, o),
      onClose: fn => session.onClose(fn),
      congested: () => session.congested(),
      emit: (event, payload) => session.connection?.emit(name, event, payload),
    }
    // The session itself goes to every factory as a second argument; only the session service uses it.
    const impl = factory(serviceSession as never, session) as Record<string, (...args: unknown[]) => unknown>
    for (const [fn, spec] of Object.entries(contract.calls)) {
      const implFn = impl[fn]
      if (typeof implFn !== 'function') throw new Error(`service ${name} does not implement ${fn}`)
      const where = { host, service: name, call: fn }
      functions.set(methodName(name, fn), async (...args: unknown[]) => {
        if (refused?.has(name)) {
          throw toErrorData(
            new VtError(
              ErrorNames.badRequest,
              `${name}.${fn} is refused: this agent is confined (vt agent --confined runs no host commands)`,
              { code: 'CONFINED' },
            ),
            where,
          )
        }
        if (session.closed) {
          throw toErrorData(
            new VtError(ErrorNames.sessionExpired, `session ${session.id} is closed`, { code: 'SESSION_EXPIRED' }),
            where,
          )
        }
        // null and undefined are the same for an argument (JSON cannot carry undefined in a list).
        const parsed = spec.args.safeParse(args.map(a => (a === null ? undefined : a)))
        if (!parsed.success) {
          const detail = parsed.error.issues
            .slice(0, 5)
            .map(
              (i: { path: PropertyKey[]; message: string }) =>
                `${i.path.length ? `argument ${formatPath(i.path)}` : 'arguments'}: ${i.message}`,
            )
            .join('; ')
          throw toErrorData(
            new VtError(ErrorNames.badRequest, `invalid arguments: ${detail}`, { code: 'BAD_REQUEST' }),
            where,
          )
        }
        try {
          return await implFn.apply(impl, parsed.data as unknown[])
        } catch (e) {
          throw toErrorData(e, where)
        }
      })
    }
  }
  return binding
}

/** The answer for a name no contract has (including '__proto__', 'constructor', ...). */
export function unknownMethod(host: string, name: string): () => never {
  return () => {
    throw toErrorData(
      new VtError(ErrorNames.badRequest, `unknown function "${String(name).slice(0, 128)}"`, {
        code: 'UNKNOWN_FUNCTION',
      }),
      { host },
    )
  }
}

function formatPath(path: PropertyKey[]): string {
  const [first, ...rest] = path
  return [typeof first === 'number' ? first + 1 : String(first), ...rest.map(String)].join('.')
}
