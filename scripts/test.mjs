#!/usr/bin/env node
// `npm test`: the project's checks in order, stopping at the first failing stage.
//   1. typecheck (tsc --noEmit)   2. lint and format (biome check .)
//   3. unit and end-to-end tests: node's test runner through tsx over every test/**/*.test.ts
//   4. (later stages) examples run with `vt test` on the embedded cluster — add them to `stages` below.
// Options: `npm test -- <path or substring>...` runs only the matching test files and skips stages 1, 2 and 4.
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const bin = name => path.join(root, 'node_modules', '.bin', name)

/** Every test/**\/*.test.ts, sorted (Node 20's --test has no glob of its own). */
function testFiles() {
  const out = []
  const walk = dir => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue
      const full = path.join(dir, entry.name)
      // test/e2e/projects/** holds spec projects the e2e tests run; they are inputs, not tests of their own.
      if (entry.isDirectory() && !(full.includes(`${path.sep}e2e${path.sep}`) && entry.name === 'projects')) walk(full)
      else if (entry.isFile() && entry.name.endsWith('.test.ts')) out.push(path.relative(root, full))
    }
  }
  walk(path.join(root, 'test'))
  return out.sort()
}

function run(title, cmd, args, env = {}) {
  return new Promise(resolve => {
    const started = Date.now()
    console.log(`\n▶ ${title}: ${[path.relative(root, cmd) || cmd, ...args].join(' ')}`)
    const child = spawn(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } })
    const forward = signal => child.kill(signal)
    process.on('SIGINT', forward)
    process.on('SIGTERM', forward)
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward)
      process.off('SIGTERM', forward)
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      const ok = code === 0
      console.log(`${ok ? '✓' : '✘'} ${title} ${ok ? 'passed' : `failed (${signal ?? `exit ${code}`})`} in ${seconds}s`)
      resolve(ok)
    })
  })
}

const filters = process.argv.slice(2)
const files = testFiles().filter(f => !filters.length || filters.some(p => f.includes(p)))
if (filters.length && files.length === 0) {
  console.error(`no test file matches ${filters.join(' ')}; test files are:\n  ${testFiles().join('\n  ')}`)
  process.exit(1)
}

// Two cores on the reference machine: e2e files spawn `vt` and its workers, so run two test files at a time.
const concurrency = Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length))

const [major, minor] = process.versions.node.split('.').map(Number)
const hasTestConcurrency = major > 20 || (major === 20 && minor >= 10)

const stages = [
  !filters.length && ['typecheck', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']],
  !filters.length && ['lint', bin('biome'), ['check', '.']],
  [
    `tests (${files.length} files)`,
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      // --test-concurrency arrived in Node 20.10; older runners use their default (cores - 1).
      ...(hasTestConcurrency ? [`--test-concurrency=${concurrency}`] : []),
      '--test-reporter=spec',
      ...files,
    ],
  ],
  // Later stages (other engineers): e.g. ['examples', process.execPath, ['bin/vt.js', 'test']],
].filter(Boolean)

const started = Date.now()
for (const [title, cmd, args] of stages) {
  if (!(await run(title, cmd, args))) {
    console.error(`\nnpm test failed at stage "${title}"`)
    process.exit(1)
  }
}
console.log(`\nall stages passed in ${((Date.now() - started) / 1000).toFixed(1)}s`)
