import assert from 'node:assert/strict'
import path from 'node:path'
import { after, test } from 'node:test'
import { pathToFileURL } from 'node:url'
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
  assert.equal(serializeError({ code: 42 }).message, 'thrown value: {"code":42}')
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
