// Building blocks of a service contract. A contract lists each function's argument schemas (zod: the agent
// validates every call from the wire before it reaches a service) and its result type, plus the events the
// service emits. Both sides derive their TypeScript types from the same object, so a mismatch fails `tsc`.
import { z } from 'zod'

/**
 * One remote function: a tuple schema for its arguments and a phantom result type. `Client`, when given, is
 * the signature the controller sees instead of the one derived from the schemas (a generic one, e.g. the QMP
 * pass-through whose result type follows the command name).
 */
export interface CallSpec<
  Args extends z.ZodTuple<any, any> = z.ZodTuple<any, any>,
  Result = unknown,
  Client = unknown,
> {
  readonly kind: 'call'
  readonly args: Args
  /** Never set; carries the result type. */
  readonly __result?: Result
  /** Never set; carries the controller's signature. */
  readonly __client?: { fn: Client }
}

/** One event a service emits to its session's controller; `Payload` is the event's data (plain JSON). */
export interface EventSpec<Payload = unknown> {
  readonly kind: 'event'
  readonly __payload?: Payload
}

export interface ServiceContract<
  Name extends string = string,
  Calls extends Record<string, CallSpec> = Record<string, CallSpec>,
  Events extends Record<string, EventSpec> = Record<string, EventSpec>,
> {
  readonly name: Name
  readonly calls: Calls
  readonly events: Events
}

/**
 * Declares a function: `call(z.string(), z.number()).returns<Result>()`. Arguments are positional; prefer one
 * options object so that later fields can be added without breaking callers.
 */
export function call<const A extends readonly z.ZodType[]>(...args: A) {
  const tuple = z.tuple(args as unknown as [z.ZodType, ...z.ZodType[]])
  return {
    returns<R = void>(): CallSpec<z.ZodTuple<A, null>, R> {
      return { kind: 'call', args: tuple as any }
    },
    /** Like `returns`, with the signature the controller calls (must accept what the schemas accept). */
    signature<F extends (...args: any[]) => Promise<unknown>, R = unknown>(): CallSpec<z.ZodTuple<A, null>, R, F> {
      return { kind: 'call', args: tuple as any }
    },
  }
}

export function event<Payload>(): EventSpec<Payload> {
  return { kind: 'event' }
}

export function defineService<
  const Name extends string,
  Calls extends Record<string, CallSpec>,
  Events extends Record<string, EventSpec> = {},
>(name: Name, calls: Calls, events?: Events): ServiceContract<Name, Calls, Events> {
  return { name, calls, events: (events ?? {}) as Events }
}

// ---------- derived types ----------

export type CallArgs<C> = C extends CallSpec<infer A, any> ? Extract<z.output<A>, unknown[]> : never
export type CallInput<C> = C extends CallSpec<infer A, any> ? Extract<z.input<A>, unknown[]> : never
export type CallResult<C> = C extends CallSpec<any, infer R> ? R : never
/** The controller's signature of a call: its own `signature<F>()` if it has one, else derived from the schemas. */
export type CallClient<C> =
  C extends CallSpec<any, any, infer F>
    ? unknown extends F
      ? (...args: CallInput<C>) => Promise<CallResult<C>>
      : F
    : never

/** What the agent implements: arguments already validated (zod output types). */
export type ServiceImplementation<S extends ServiceContract> = {
  [K in keyof S['calls']]: (
    ...args: CallArgs<S['calls'][K]>
  ) => Promise<CallResult<S['calls'][K]>> | CallResult<S['calls'][K]>
}

/** What the controller calls: inputs as the caller writes them (zod input types). */
export type ServiceClient<S extends ServiceContract> = {
  [K in keyof S['calls']]: CallClient<S['calls'][K]>
}

export type EventPayload<S extends ServiceContract, E extends keyof S['events']> =
  S['events'][E] extends EventSpec<infer P> ? P : never

/** Wire name of a function: `service.function`. */
export function methodName(service: string, fn: string): string {
  return `${service}.${fn}`
}

// ---------- shared schemas ----------

/** Bytes: a Uint8Array on both sides (the wire encodes it; see wire.ts), or a string taken as UTF-8. */
export const bytes = z.union([
  z.custom<Uint8Array>(v => v instanceof Uint8Array, { message: 'expected bytes or a string' }),
  z.string(),
])
export const envSchema = z.record(z.string(), z.string())
export const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine(p => p.startsWith('/') && !p.includes('\0'), {
    message: 'must be an absolute path without NUL bytes',
  })
export const id = z.string().min(1).max(128)
