import assert from 'node:assert/strict'
import path from 'node:path'
import { after, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { fromErrorData, toErrorData } from '../../src/protocol/errors.ts'
import { filterStack, parseStackLine, serializeError } from '../../src/runner/errors.ts'
import { removeProject, writeProject } from './helpers.ts'

const dir = writeProject({
  'thrower.ts': `// Types and blank lines above the throw move the compiled line away from the source line.
interface Shape {
  kind: 'circle' | 'square'
  size: number
}

type Maybe<T> = T | undefined

export function area(shape: Maybe<Shape>): number {
  if (!shape) throw new Error('no shape given')
  return shape.size
}

export function throwsString(): never {
  throw 'plain string'
}
`,
})
after(() => removeProject(dir))

test('stack lines are original TypeScript lines; location and snippet point at the throw', async () => {
  const mod = await import(pathToFileURL(path.join(dir, 'thrower.ts')).href)
  let caught: unknown
  try {
    mod.area(undefined)
  } catch (e) {
    caught = e
  }
  const error = serializeError(caught)
  assert.equal(error.message, 'no shape given')
  assert.deepEqual(error.location, { file: path.join(dir, 'thrower.ts'), line: 10, column: 21 })
  assert.equal(
    error.snippet,
    [
      '   8 |',
      '   9 | export function area(shape: Maybe<Shape>): number {',
      "> 10 |   if (!shape) throw new Error('no shape given')",
      `     | ${' '.repeat(20)}^`,
      '  11 |   return shape.size',
      '  12 | }',
    ].join('\n'),
  )
  // No ANSI colors: reporters add them.
  assert.doesNotMatch(error.snippet ?? '', /\x1b\[/)
  assert.match(error.stack ?? '', /^Error: no shape given\n {4}at (Module\.)?area \(.*thrower\.ts:10:21\)/)
})

test('vt frames, node_modules and node internals are removed from stacks', () => {
  const stack = [
    'Error: boom',
    '    at userFn (/home/u/project/spec.vt.ts:3:9)',
    `    at TestInfoImpl._runStep (${path.resolve('src/runner/worker/testInfo.ts')}:10:5)`,
    '    at Object.toBe (/home/u/project/node_modules/expect/build/index.js:1:2)',
    '    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
    '    at async file:///home/u/project/other.vt.ts:7:1',
  ].join('\n')
  assert.equal(
    filterStack(stack),
    [
      'Error: boom',
      '    at userFn (/home/u/project/spec.vt.ts:3:9)',
      '    at async file:///home/u/project/other.vt.ts:7:1',
    ].join('\n'),
  )
  assert.deepEqual(parseStackLine('    at async file:///a/b.ts?vt-load=2:7:1'), {
    file: '/a/b.ts',
    line: 7,
    column: 1,
    function: undefined,
    raw: '    at async file:///a/b.ts?vt-load=2:7:1',
  })
})

test('non-Error throws become readable errors', async () => {
  const mod = await import(pathToFileURL(path.join(dir, 'thrower.ts')).href)
  let caught: unknown
  try {
    mod.throwsString()
  } catch (e) {
    caught = e
  }
  assert.equal(serializeError(caught).message, 'thrown value: plain string')
  assert.equal(serializeError({ code: 42 }).message, 'thrown value: { code: 42 }')
  assert.equal(serializeError(undefined).message, 'thrown value: undefined')
  const fallback = { file: path.join(dir, 'thrower.ts'), line: 15, column: 3 }
  const located = serializeError(null, fallback)
  assert.deepEqual(located.location, fallback)
  assert.match(located.snippet ?? '', /> 15 \| {3}throw 'plain string'/)
})

test('causes are kept in the stack', () => {
  const error = serializeError(new Error('outer', { cause: new Error('inner cause') }))
  assert.match(error.stack ?? '', /\[cause\]: Error: inner cause/)
})

test('cause cycles of any length end with a note instead of a stack overflow', () => {
  const self = new Error('selfish') as Error & { cause?: unknown }
  self.cause = self
  const one = serializeError(self)
  assert.equal(one.message, 'selfish')
  assert.match(one.stack ?? '', /^Error: selfish/)
  assert.match(one.stack ?? '', /\[cause\]: \(cycle: the cause chain leads back to an error shown above\)$/)

  const a = new Error('a') as Error & { cause?: unknown }
  const b = new Error('b', { cause: new Error('c', { cause: a }) })
  a.cause = b
  const three = serializeError(a)
  assert.deepEqual(
    (three.stack ?? '').split('\n').filter(l => l.startsWith('[cause]')),
    ['[cause]: Error: b', '[cause]: Error: c', '[cause]: (cycle: the cause chain leads back to an error shown above)'],
  )
  // A long chain is cut, not walked forever.
  let deep: Error = new Error('bottom')
  for (let i = 0; i < 1000; i++) deep = new Error(`level ${i}`, { cause: deep })
  assert.match(serializeError(deep).stack ?? '', /\[cause\]: \(more causes not shown\)$/)
})

test('any thrown value gives a readable message and never throws', () => {
  const nullProto = Object.assign(Object.create(null), { x: 1 })
  assert.equal(serializeError(nullProto).message, 'thrown value: [Object: null prototype] { x: 1 }')
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  assert.equal(serializeError(cyclic).message, 'thrown value: <ref *1> { a: 1, self: [Circular *1] }')
  assert.equal(serializeError(null).message, 'thrown value: null')
  assert.equal(serializeError(10n).message, 'thrown value: 10n')
  assert.equal(serializeError(Symbol('s')).message, 'thrown value: Symbol(s)')
  assert.doesNotMatch(serializeError({ a: { b: 1 } }).message, /\[object Object\]/)
  // An error-like null-prototype object, a getter that throws, a proxy whose every trap throws.
  const errorLike = Object.assign(Object.create(null), { message: 'like an error', stack: 'Error: like an error' })
  assert.equal(serializeError(errorLike).message, 'like an error')
  const getter = new Error('x')
  Object.defineProperty(getter, 'message', {
    get() {
      throw new Error('nope')
    },
  })
  assert.equal(typeof serializeError(getter).message, 'string')
  const trap = () => {
    throw new Error('trap')
  }
  const proxy = new Proxy({}, { get: trap, getPrototypeOf: trap, ownKeys: trap, has: trap })
  assert.match(serializeError(proxy).message, /^thrown value: /)
  // The cause may be anything too.
  assert.match(
    serializeError(new Error('outer', { cause: nullProto })).stack ?? '',
    /\[cause\]: thrown value: \[Object: null prototype\] \{ x: 1 \}/,
  )
})

test('error details become JSON-safe data (they cross the worker IPC as JSON)', () => {
  const details: Record<string, unknown> = { n: 1n, list: [1, 2] }
  details.self = details
  const error = Object.assign(new Error('with details'), { details })
  const serialized = serializeError(error)
  assert.deepEqual(serialized.details, { n: '1', list: [1, 2], self: '[Circular]' })
  assert.doesNotThrow(() => JSON.stringify(serialized))
})

test('wire error data: cause cycles and odd thrown values', () => {
  const self = new Error('loop') as Error & { cause?: unknown }
  self.cause = self
  const data = toErrorData(self)
  assert.equal(data.message, 'loop')
  let depth = 0
  for (let d = data.cause; d; d = d.cause) depth++
  assert.ok(depth <= 4, `cause depth ${depth}`)
  assert.equal(toErrorData(Object.assign(Object.create(null), { y: 2 })).message, '[Object: null prototype] { y: 2 }')
  assert.equal(toErrorData(undefined).message, 'undefined')
  // Deeply nested data from a peer is cut too.
  let nested: Record<string, unknown> = { name: 'Error', message: 'bottom' }
  for (let i = 0; i < 10_000; i++) nested = { name: 'Error', message: `m${i}`, cause: nested }
  assert.equal(fromErrorData(nested).message, 'm9999')
})
