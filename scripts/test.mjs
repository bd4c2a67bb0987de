#!/usr/bin/env node
// `npm test`: the project's checks in order, stopping at the first failing stage.
//   1. typecheck (tsc --noEmit)   2. lint and format (biome check .), import boundaries (scripts/check-deps.mjs)
//   3. unit and end-to-end tests: node's test runner through tsx over every test/**/*.test.ts
//   4. the examples: `vt test` runs examples/*.vt.ts on the embedded two-host cluster (vt.config.ts)
//   5. a leak check: no QEMU, agent or vt network namespace may survive the run
// Under CI=true a skipped test is a failure: CI provides QEMU, root and namespaces, so nothing may skip there.
// Options: `npm test -- <path or substring>...` runs only the matching test files and skips stages 1, 2 and 4.
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
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

// Node's TAP output goes to a file as well, to count skipped tests (the spec output stays on the terminal).
const tapDir = mkdtempSync(path.join(os.tmpdir(), 'vt-npm-test-'))
const tapFile = path.join(tapDir, 'tests.tap')

const stages = [
  !filters.length && ['typecheck', bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']],
  !filters.length && ['lint', bin('biome'), ['check', '.']],
  !filters.length && ['import boundaries', process.execPath, [path.join(root, 'scripts', 'check-deps.mjs')]],
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
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tapFile}`,
      ...files,
    ],
  ],
  !filters.length && ['examples', process.execPath, [path.join(root, 'bin', 'vt.js'), 'test']],
].filter(Boolean)

const ci = Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0'

/** Under CI nothing may skip: .ci/run installs every requirement (QEMU, root, namespaces). */
function checkSkips() {
  let tap = ''
  try {
    tap = readFileSync(tapFile, 'utf8')
  } catch {
    return true
  }
  const skipped = tap.split('\n').filter(line => /^\s*ok \d+ .*# SKIP/i.test(line))
  if (skipped.length === 0) return true
  console.log(`\n${skipped.length} test(s) skipped:\n${skipped.map(l => `  ${l.trim()}`).join('\n')}`)
  if (!ci) return true
  console.error('under CI every test must run: a skip means .ci/run lacks something that test needs')
  return false
}

/** What a run must not leave behind: QEMU processes, agents (and their keepers, run watchers), vt's network namespaces. */
function checkLeaks() {
  const ps = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout ?? ''
  const procs = ps
    .split('\n')
    .filter(l =>
      /qemu-system|qemu-img|agent\/main\.ts|vt\.js agent|vt-agent-keeper|reap-state\.ts|cluster\/watcher\.ts/.test(l),
    )
  let netns = []
  try {
    netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')
      .filter(l => l.startsWith('vt-'))
  } catch {}
  if (procs.length === 0 && netns.length === 0) return true
  console.error(`\nleft behind after the run:\n${[...procs, ...netns].map(l => `  ${l.trim()}`).join('\n')}`)
  return false
}

const started = Date.now()
let failed = false
for (const [title, cmd, args] of stages) {
  if (!(await run(title, cmd, args))) {
    console.error(`\nnpm test failed at stage "${title}"`)
    failed = true
    break
  }
  if (title.startsWith('tests') && !checkSkips()) {
    failed = true
    break
  }
}
rmSync(tapDir, { recursive: true, force: true })
// Only a full run can vouch for the whole machine; a filtered run may overlap with other work.
if (!filters.length && !checkLeaks()) failed = true
if (failed) process.exit(1)
console.log(`\nall stages passed in ${((Date.now() - started) / 1000).toFixed(1)}s`)
