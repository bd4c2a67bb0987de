#!/usr/bin/env node
// Runner benchmark: the same suite of F files x T trivial TypeScript tests run by `vt test`, by
// `@playwright/test` and by `node --test` (through tsx), with the same number of workers, in one invocation.
// Prints wall time (median of --runs after one warm-up run each, so every runner has its transpile cache warm)
// and the peak RSS of each runner's whole process tree (sampled from /proc every 10 ms).
//
//   node bench/runner/run.mjs [--files 100] [--tests 10] [--workers 2] [--runs 3] [--only vt,playwright,node]
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const { values: opts } = parseArgs({
  options: {
    files: { type: 'string', default: '100' },
    tests: { type: 'string', default: '10' },
    workers: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string', default: 'vt,playwright,node' },
    verbose: { type: 'boolean', default: false },
  },
})
const FILES = Number(opts.files)
const TESTS = Number(opts.tests)
const WORKERS = Number(opts.workers)
const RUNS = Number(opts.runs)
for (const [k, v] of Object.entries({ FILES, TESTS, WORKERS, RUNS }))
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k.toLowerCase()} must be a positive integer`)

const work = path.join(root, 'bench', '.work', 'runner')

/** The body every runner executes: a little real work, not an empty function. */
const body = i => `const x = [${i}, 2, 3].map(n => n * 2); if (x[1] !== 4) throw new Error('math')`

function generate() {
  fs.rmSync(work, { recursive: true, force: true })
  const write = (file, text) => {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, text)
  }
  for (let f = 0; f < FILES; f++) {
    const name = `f${String(f).padStart(3, '0')}`
    const tests = kind =>
      Array.from({ length: TESTS }, (_, t) => `${kind}('test ${t}', async () => { ${body(t)} })`).join('\n')
    write(path.join(work, 'vt', 'specs', `${name}.vt.ts`), `import { test } from 'vt'\n\n${tests('test')}\n`)
    write(
      path.join(work, 'playwright', 'specs', `${name}.spec.ts`),
      `import { test } from '@playwright/test'\n\n${tests('test')}\n`,
    )
    write(path.join(work, 'node', `${name}.test.ts`), `import { test } from 'node:test'\n\n${tests('test')}\n`)
  }
  write(
    path.join(work, 'vt', 'vt.config.ts'),
    `import { defineConfig } from 'vt'\nexport default defineConfig({ testDir: 'specs', workers: ${WORKERS}, reporter: [['dot']] })\n`,
  )
  write(
    path.join(work, 'playwright', 'playwright.config.ts'),
    `import { defineConfig } from '@playwright/test'\nexport default defineConfig({ testDir: 'specs', workers: ${WORKERS}, reporter: [['dot']] })\n`,
  )
}

/** Sum of RSS (kB) of `pid` and all its descendants, read from /proc. */
function treeRssKb(pid) {
  const children = new Map()
  const rss = new Map()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const ppid = Number(fields[1])
      const pages = Number(fields[21])
      rss.set(Number(entry), (pages * 4096) / 1024)
      if (!children.has(ppid)) children.set(ppid, [])
      children.get(ppid).push(Number(entry))
    } catch {}
  }
  let total = 0
  const stack = [pid]
  while (stack.length) {
    const p = stack.pop()
    total += rss.get(p) ?? 0
    stack.push(...(children.get(p) ?? []))
  }
  return total
}

/** Checks from a runner's output that every test ran and passed, so that a fast number is never a broken run. */
function ranAll(name, out) {
  const total = FILES * TESTS
  const plain = out.replace(/\u001b\[[0-9;]*m/g, '')
  const ok =
    name === 'node --test'
      ? (plain.match(/\./g) ?? []).length >= total && !/[X✖]/.test(plain)
      : new RegExp(`\\b${total} passed\\b`).test(plain)
  if (!ok) throw new Error(`${name} did not report ${total} passed tests:\n${plain.slice(-2000)}`)
}

function measure(name, cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const child = spawn(cmd, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CI: '', FORCE_COLOR: '0' },
    })
    let out = ''
    child.stdout.on('data', d => (out += d))
    child.stderr.on('data', d => (out += d))
    let peak = 0
    const sampler = setInterval(() => {
      peak = Math.max(peak, treeRssKb(child.pid))
    }, 10)
    child.on('error', reject)
    child.on('close', code => {
      clearInterval(sampler)
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      if (opts.verbose) process.stderr.write(out)
      if (code !== 0) return reject(new Error(`${name} exited with ${code}:\n${out.slice(-3000)}`))
      try {
        ranAll(name, out)
      } catch (e) {
        return reject(e)
      }
      resolve({ ms, peakMb: peak / 1024, out })
    })
  })
}

const runners = {
  vt: () =>
    measure(
      'vt',
      process.execPath,
      [path.join(root, 'bin/vt.js'), 'test', '-j', String(WORKERS)],
      path.join(work, 'vt'),
    ),
  playwright: () =>
    measure(
      'playwright',
      process.execPath,
      [path.join(root, 'node_modules/@playwright/test/cli.js'), 'test', '--workers', String(WORKERS)],
      path.join(work, 'playwright'),
    ),
  node: () =>
    measure(
      'node --test',
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        `--test-concurrency=${WORKERS}`,
        '--test-reporter=dot',
        ...fs.readdirSync(path.join(work, 'node')).sort(),
      ],
      path.join(work, 'node'),
    ),
}

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

generate()
console.log(
  `runner benchmark: ${FILES} files x ${TESTS} tests = ${FILES * TESTS} tests, ${WORKERS} workers, ` +
    `median of ${RUNS} runs after a warm-up, Node ${process.version}`,
)
const selected = opts.only.split(',').map(s => s.trim())
const results = {}
for (const name of selected) {
  if (!runners[name]) throw new Error(`unknown runner ${name}; choose from ${Object.keys(runners).join(', ')}`)
  await runners[name]() // warm-up: transpile caches, page cache
  const runs = []
  for (let i = 0; i < RUNS; i++) runs.push(await runners[name]())
  results[name] = {
    ms: median(runs.map(r => r.ms)),
    all: runs.map(r => r.ms),
    peakMb: Math.max(...runs.map(r => r.peakMb)),
  }
  const r = results[name]
  console.log(
    `${name.padEnd(11)} wall ${(r.ms / 1000).toFixed(2).padStart(6)} s  (runs: ${r.all.map(ms => (ms / 1000).toFixed(2)).join(', ')})` +
      `  peak tree RSS ${r.peakMb.toFixed(0).padStart(5)} MB`,
  )
}
if (results.vt && results.playwright) {
  const ratio = results.vt.ms / results.playwright.ms
  console.log(`vt / playwright wall time: ${ratio.toFixed(2)}x ${ratio <= 1 ? '(goal met)' : '(goal: <= 1.00x)'}`)
}
