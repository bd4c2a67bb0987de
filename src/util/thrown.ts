// Reading values that user code threw. Anything can be thrown: undefined, a null-prototype object, an object
// whose getters throw, a Proxy, an Error whose cause is itself. None of these helpers ever throws or loops.
import { inspect } from 'node:util'

/** `value[key]`, or undefined when value is not an object or reading it throws (getter, proxy trap). */
export function safeGet(value: unknown, key: PropertyKey): unknown {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined
  try {
    return (value as Record<PropertyKey, unknown>)[key]
  } catch {
    return undefined
  }
}

/** `value instanceof type` without running into a throwing `getPrototypeOf` trap. */
export function safeInstanceOf(value: unknown, type: abstract new (...args: never[]) => unknown): boolean {
  try {
    return value instanceof type
  } catch {
    return false
  }
}

/** An Error, or an object that carries a string message and stack like one. */
export function isErrorLike(value: unknown): boolean {
  if (safeInstanceOf(value, Error)) return true
  return typeof safeGet(value, 'message') === 'string' && typeof safeGet(value, 'stack') === 'string'
}

/** The string property `key` of value, or undefined. */
export function stringProp(value: unknown, key: string): string | undefined {
  const v = safeGet(value, key)
  return typeof v === 'string' ? v : undefined
}

/**
 * A readable one-line description of any value: strings as they are, everything else as `util.inspect`
 * shows it (`{ code: 'E1' }`, `[Object: null prototype] { x: 1 }`, `<ref *1> { self: [Circular *1] }`),
 * cut to `max` characters.
 */
export function describeValue(value: unknown, max = 2000): string {
  let text: string
  if (typeof value === 'string') text = value
  else {
    try {
      text = inspect(value, {
        depth: 2,
        breakLength: Number.POSITIVE_INFINITY,
        maxArrayLength: 20,
        maxStringLength: 500,
      })
    } catch {
      try {
        text = Object.prototype.toString.call(value)
      } catch {
        text = '<a value that cannot be read>'
      }
    }
  }
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text
}

/** The message of an Error-like value, else its description: always a string. */
export function messageOf(value: unknown): string {
  return stringProp(value, 'message') ?? describeValue(value)
}

/**
 * The `cause` chain of an error, without the error itself: stops at a value seen before (a cycle of any
 * length) and after `max` links. `cycle` tells whether it stopped at a repeat.
 */
export function causeChain(error: unknown, max = 10): { causes: unknown[]; cycle: boolean; cut: boolean } {
  const seen = new Set<unknown>([error])
  const causes: unknown[] = []
  let current = error
  while (true) {
    const cause = safeGet(current, 'cause')
    if (cause === undefined) return { causes, cycle: false, cut: false }
    if (seen.has(cause)) return { causes, cycle: true, cut: false }
    if (causes.length >= max) return { causes, cycle: false, cut: true }
    seen.add(cause)
    causes.push(cause)
    current = cause
  }
}

/**
 * A JSON-safe copy of plain data (for error details crossing process boundaries): cycles become
 * '[Circular]', bigints and symbols strings, functions dropped, depth and size bounded.
 */
export function toJsonSafe(value: unknown, depth = 6): unknown {
  const seen = new Set<unknown>()
  const copy = (v: unknown, d: number): unknown => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v)
    if (typeof v === 'bigint' || typeof v === 'symbol') return v.toString()
    if (typeof v !== 'object') return undefined
    if (seen.has(v)) return '[Circular]'
    if (d <= 0) return describeValue(v, 200)
    seen.add(v)
    try {
      if (Array.isArray(v)) return v.slice(0, 100).map(x => copy(x, d - 1) ?? null)
      const out: Record<string, unknown> = {}
      let keys: string[]
      try {
        keys = Object.keys(v).slice(0, 100)
      } catch {
        return describeValue(v, 200)
      }
      for (const key of keys) {
        const x = copy(safeGet(v, key), d - 1)
        if (x !== undefined) out[key] = x
      }
      return out
    } finally {
      seen.delete(v)
    }
  }
  return copy(value, depth)
}
