import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { colorsEnabled, fitToWidth, formatDuration, stripAnsi, visibleLength } from '../../reporters/base.ts'
import BlobReporter from '../../reporters/blob.ts'
import { mergeBlobReports, parseBlob } from '../../reporters/blobMerge.ts'
import DotReporter from '../../reporters/dot.ts'
import JsonReporter, { type JsonReport } from '../../reporters/json.ts'
import JUnitReporter, { xmlEscape } from '../../reporters/junit.ts'
import LineReporter from '../../reporters/line.ts'
import ListReporter from '../../reporters/list.ts'
import { TestCase } from '../../src/runner/model.ts'
import { buildTree, config, memoryStream, newResult, playRun } from './fakeRun.ts'
import { findAll, parseXml, validateJUnitSchema } from './xml.ts'

const hasAnsi = (s: string) => s.includes('\u001b[')

test('colors follow FORCE_COLOR, NO_COLOR and the TTY', () => {
  assert.equal(colorsEnabled({ write() {}, isTTY: true }, {}), true)
  assert.equal(colorsEnabled({ write() {}, isTTY: false }, {}), false)
  assert.equal(colorsEnabled({ write() {}, isTTY: true }, { NO_COLOR: '1' }), false)
  assert.equal(colorsEnabled({ write() {}, isTTY: false }, { FORCE_COLOR: '1' }), true)
  assert.equal(colorsEnabled({ write() {}, isTTY: true }, { FORCE_COLOR: '0' }), false)
  assert.equal(colorsEnabled({ write() {}, isTTY: true }, { TERM: 'dumb' }), false)
})

test('durations and widths', () => {
  assert.equal(formatDuration(350), '350ms')
  assert.equal(formatDuration(1234), '1.2s')
  assert.equal(formatDuration(150_000), '2.5m')
  const colored = '\u001b[31mabcdefghij\u001b[39m'
  assert.equal(visibleLength(colored), 10)
  const cut = fitToWidth(colored, 6)
  assert.equal(visibleLength(cut), 6)
  assert.equal(stripAnsi(cut), 'abcde…')
})

test('list prints a line per attempt, failure details with code frame and clean stack, and the summary', async () => {
  const stream = memoryStream()
  await playRun(new ListReporter({ stream, colors: false }))
  const out = stream.text()
  assert.ok(!hasAnsi(out.replace(/\u001b\[31m2\u001b\[39m/, '')), 'no colors when disabled')
  assert.match(out, /Running 6 tests using 2 workers/)
  assert.match(out, /✓ +1 \[unit\] › math\.vt\.ts:4:3 › math <&> "quotes" › adds \(120ms\)/)
  assert.match(out, /✘ +\d \[unit\] › math\.vt\.ts:5:3 › math <&> "quotes" › divides \(retry #1\) \(121ms\)/)
  assert.match(out, /- +\d \[unit\] › math\.vt\.ts:7:3 › .* › is skipped\n/)
  assert.match(out, /✓ +\d \[unit\] .* › expected failure/)
  assert.match(out, /adds says hi/, 'test output is printed live')
  assert.match(out, / {6}✘ check quotient/, 'failed steps under the failed test')
  // Failure block: numbered header, retry sections, message, code frame, user frames only, attachments, output.
  assert.match(out, /1\) \[unit\] › math\.vt\.ts:5:3 › math <&> "quotes" › divides ─/)
  assert.match(out, /Retry #1/)
  assert.match(out, /Expected: 3/)
  assert.match(out, /> 5 \| {3}expect\(6 \/ 3\)\.toBe\(3\)/)
  assert.match(out, /at math\.vt\.ts:5:15/)
  assert.doesNotMatch(out, /node:internal|node_modules|src\/runner\/worker/)
  assert.match(out, /attachment #1: trace\.txt \(text\/plain\)/)
  assert.match(out, /trace body/)
  assert.match(out, /test-results\/disk\.img/)
  assert.match(out, /division trouble/)
  assert.match(out, /Test timeout of 1000ms exceeded\./)
  assert.match(out, /worker teardown failed/)
  assert.match(out, / {2}2 failed\n {4}\[unit\] › math\.vt\.ts:5:3/)
  assert.match(out, / {2}1 flaky\n {4}\[unit\] › math\.vt\.ts:6:3 › math <&> "quotes" › is flaky/)
  assert.match(out, /2 passed, 2 failed, 1 flaky, 1 skipped, 1 error \(1\.2s\)\n$/)
})

test('list on a TTY rewrites the running test line in place and uses colors', async () => {
  const stream = memoryStream(true)
  await playRun(new ListReporter({ stream, colors: true, tty: true }))
  const out = stream.text()
  assert.ok(hasAnsi(out))
  assert.match(out, /\u001b\[1A\r\u001b\[2K.*adds › compute/, 'step shown on the running line')
  assert.match(out, /\u001b\[\dA\r\u001b\[2K.*✓.*adds/)
})

test('line prints failures as they happen and a final summary without repeating them', async () => {
  const stream = memoryStream()
  await playRun(new LineReporter({ stream, colors: false }))
  const out = stream.text()
  assert.equal(out.match(/\d\) \[unit\] › math\.vt\.ts:5:3/g)?.length, 1)
  const failureAt = out.indexOf('1) [unit] › math.vt.ts:5:3')
  assert.ok(failureAt > 0 && failureAt < out.indexOf('2 failed'), 'failure printed before the summary')
  assert.match(out, /\[\d+\/6\]/)
  assert.match(out, /2 passed, 2 failed, 1 flaky, 1 skipped, 1 error/)
})

test('line on a TTY keeps one status line', async () => {
  const stream = memoryStream(true)
  await playRun(new LineReporter({ stream, colors: false, tty: true }))
  assert.match(stream.text(), /\u001b\[1A\u001b\[2K\[1\/6\]/)
})

test('dot prints one mark per attempt and wraps', async () => {
  const stream = memoryStream()
  await playRun(new DotReporter({ stream, colors: false }))
  const out = stream.text()
  const marks = out.split('\n').find(l => /^[·F×±°TI]+$/.test(l))
  // adds ·, divides × then F, flaky × then ±, skipped °, expected failure ·, hangs × then T
  assert.equal(marks, '·×F×±°·×T')
  assert.doesNotMatch(out, /adds says hi/, 'dot keeps test output for failures')
  assert.match(out, /1\) \[unit\] › math\.vt\.ts:5:3/)
  assert.match(out, /2 passed, 2 failed, 1 flaky, 1 skipped, 1 error/)
})

test('json writes the whole run to outputFile', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-json-'))
  try {
    const reporter = new JsonReporter({ outputFile: 'out/report.json', configDir: dir })
    assert.equal(reporter.printsToStdio(), false)
    await playRun(reporter)
    const report: JsonReport = JSON.parse(fs.readFileSync(path.join(dir, 'out/report.json'), 'utf8'))
    assert.deepEqual(
      { ...report.stats, startTime: undefined, duration: undefined },
      {
        startTime: undefined,
        duration: undefined,
        status: 'failed',
        expected: 2,
        unexpected: 2,
        flaky: 1,
        skipped: 1,
        interrupted: 0,
        didNotRun: 0,
      },
    )
    assert.equal(report.config.rootDir, '/proj')
    assert.equal((report.config.projects as any[])[0].grep, '/.*/')
    assert.equal(report.suites.length, 1)
    assert.equal(report.suites[0].file, 'math.vt.ts')
    const describe = report.suites[0].suites![0]
    assert.equal(describe.title, 'math <&> "quotes"')
    const specs = Object.fromEntries(describe.specs.map(s => [s.title, s]))
    assert.equal(specs.divides.ok, false)
    assert.equal(specs.adds.ok, true)
    const divides = specs.divides.tests[0]
    assert.equal(divides.projectName, 'unit')
    assert.equal(divides.status, 'unexpected')
    assert.equal(divides.results.length, 2)
    assert.equal(divides.results[1].retry, 1)
    assert.equal(divides.results[0].error?.message.includes('\u001b'), false, 'ANSI stripped')
    assert.deepEqual(divides.results[0].errorLocation, { file: 'math.vt.ts', line: 5, column: 17 })
    assert.equal(divides.results[0].attachments[0].body, Buffer.from('trace body').toString('base64'))
    assert.deepEqual(divides.results[0].stderr, [{ buffer: Buffer.from('division trouble\n').toString('base64') }])
    assert.equal(specs['is flaky'].tests[0].status, 'flaky')
    assert.equal(specs['expected failure'].tests[0].expectedStatus, 'failed')
    assert.equal(specs['expected failure'].tests[0].status, 'expected')
    const steps = specs.adds.tests[0].results[0].steps
    assert.equal(steps[0].title, 'compute')
    assert.equal(steps[0].steps?.[0].title, 'inner')
    assert.deepEqual(specs.adds.tests[0].results[0].stdout, [{ text: 'adds says hi\n' }])
    assert.equal(report.errors.length, 1)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('json goes to VT_JSON_OUTPUT_FILE, else to stdout', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-json-'))
  const saved = process.env.VT_JSON_OUTPUT_FILE
  try {
    process.env.VT_JSON_OUTPUT_FILE = path.join(dir, 'env.json')
    await playRun(new JsonReporter())
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'env.json'), 'utf8')).stats.flaky, 1)
    delete process.env.VT_JSON_OUTPUT_FILE
    const stream = memoryStream()
    const reporter = new JsonReporter({ stream })
    assert.equal(reporter.printsToStdio(), true)
    await playRun(reporter)
    assert.equal(JSON.parse(stream.text()).stats.unexpected, 2)
  } finally {
    if (saved === undefined) delete process.env.VT_JSON_OUTPUT_FILE
    else process.env.VT_JSON_OUTPUT_FILE = saved
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('json rejects a bad outputFile option', () => {
  assert.throws(() => new JsonReporter({ outputFile: 42 as any }), /outputFile must be a non-empty string, got 42/)
})

test('xml escaping removes ANSI and characters XML forbids', () => {
  assert.equal(xmlEscape('a<b>&"c"\u0001\u001b[31mred\u001b[39m'), 'a&lt;b&gt;&amp;"c"red')
  assert.equal(xmlEscape(`"it's"\n`, true), '&quot;it&apos;s&quot;&#10;')
  assert.equal(xmlEscape('\uFFFE\uD800x'), 'x')
})

test('junit writes well-formed JUnit XML with suites, cases, failures, skips, output and attachments', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-junit-'))
  try {
    const reporter = new JUnitReporter({ outputFile: 'reports/junit.xml', configDir: dir, outputDir: dir })
    await playRun(reporter)
    const xml = fs.readFileSync(path.join(dir, 'reports/junit.xml'), 'utf8')
    assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites'))
    const root = parseXml(xml)
    validateJUnitSchema(xml)
    assert.equal(root.name, 'testsuites')
    assert.deepEqual(
      [root.attributes.tests, root.attributes.failures, root.attributes.skipped, root.attributes.errors],
      ['7', '2', '1', '1'],
    )
    assert.equal(root.attributes.time, '1.234')
    const [suite, errors] = findAll(root, 'testsuite')
    assert.equal(suite.attributes.name, 'math.vt.ts')
    assert.equal(suite.attributes.hostname, 'unit')
    assert.equal(suite.attributes.tests, '6')
    assert.equal(suite.attributes.failures, '2')
    assert.equal(suite.attributes.skipped, '1')
    assert.equal(suite.attributes.errors, '0')
    assert.equal(suite.attributes.timestamp, '2026-01-01T00:00:00')
    const cases = Object.fromEntries(findAll(suite, 'testcase').map(c => [c.attributes.name, c]))
    assert.deepEqual(Object.keys(cases), [
      'math <&> "quotes" › adds',
      'math <&> "quotes" › divides',
      'math <&> "quotes" › is flaky',
      'math <&> "quotes" › is skipped',
      'math <&> "quotes" › expected failure',
      'math <&> "quotes" › hangs',
    ])
    const divides = cases['math <&> "quotes" › divides']
    assert.equal(divides.attributes.classname, 'math.vt.ts')
    assert.equal(divides.attributes.time, '0.241')
    const failure = findAll(divides, 'failure')[0]
    assert.equal(failure.attributes.message, 'math.vt.ts:5:3 Error: expect(received).toBe(expected)')
    assert.equal(failure.attributes.type, 'Error')
    assert.match(failure.text, /> 5 \| {3}expect\(6 \/ 3\)\.toBe\(3\)/)
    assert.match(failure.text, /Received: 2/)
    assert.equal(findAll(divides, 'system-err')[0].text, 'division trouble\ndivision trouble\n')
    const out = findAll(divides, 'system-out')[0].text
    const refs = [...out.matchAll(/\[\[ATTACHMENT\|([^\]]+)\]\]/g)].map(m => m[1])
    assert.equal(refs.length, 4)
    assert.ok(
      refs.includes('../../proj/test-results/disk.img') || refs.some(r => r.endsWith('proj/test-results/disk.img')),
    )
    const bodyFile = refs.find(r => r.includes('junit-attachments'))!
    assert.equal(fs.readFileSync(path.join(dir, bodyFile), 'utf8'), 'trace body')
    const props = findAll(divides, 'property').map(p => p.attributes.name)
    assert.ok(props.includes('attachment:trace.txt') && props.includes('project'))
    const skipped = findAll(cases['math <&> "quotes" › is skipped'], 'skipped')[0]
    assert.equal(skipped.attributes.message, 'not on this host')
    assert.deepEqual(
      findAll(cases['math <&> "quotes" › is skipped'], 'property').map(p => [p.attributes.name, p.attributes.value])[0],
      ['skip', 'not on this host'],
    )
    assert.equal(findAll(cases['math <&> "quotes" › is flaky'], 'failure').length, 0)
    assert.match(findAll(cases['math <&> "quotes" › is flaky'], 'system-out')[0].text, /flaky: passed on retry #1/)
    assert.equal(findAll(cases['math <&> "quotes" › expected failure'], 'failure').length, 0)
    assert.equal(findAll(cases['math <&> "quotes" › hangs'], 'failure')[0].attributes.type, 'TimeoutError')
    assert.equal(errors.attributes.errors, '1')
    assert.equal(findAll(errors, 'error')[0].attributes.message, 'Error: worker teardown failed')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the XML checker used above rejects malformed documents', () => {
  for (const bad of [
    '<a><b></a></b>',
    '<a x="1" x="2"/>',
    '<a>&nbsp;</a>',
    '<a x=1/>',
    '<a/><b/>',
    '<a>\u0001</a>',
    '<a>x & y</a>',
  ]) {
    assert.throws(() => parseXml(bad), Error, bad)
  }
  assert.equal(parseXml('<a x="&lt;&#10;">t&amp;<b/></a>').attributes.x, '<\n')
})

test('the JUnit schema check rejects a report that Jenkins would misread', t => {
  const bad = '<testsuites tests="1" failures="0" skipped="0" errors="0" time="1,5"><testsuite name="x"/></testsuites>'
  let checked = false
  try {
    checked = validateJUnitSchema(bad)
  } catch (e) {
    assert.match(String(e), /does not match junit.xsd/)
    return
  }
  if (!checked) return t.skip('xmllint is not installed')
  assert.fail('an invalid report passed the schema check')
})

test('blob records the event stream and replays it into other reporters as the same run', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-blob-'))
  try {
    const direct = memoryStream()
    await playRun(new JsonReporter({ stream: direct }))
    await playRun(new BlobReporter({ outputFile: 'blob/report.jsonl', configDir: dir }))
    const replayed = memoryStream()
    const list = memoryStream()
    const result = await mergeBlobReports(
      [path.join(dir, 'blob/report.jsonl')],
      [new JsonReporter({ stream: replayed }), new ListReporter({ stream: list, colors: false })],
    )
    assert.equal(result.status, 'failed')
    const normalize = (text: string) => {
      const report = JSON.parse(text)
      delete report.config
      return report
    }
    assert.deepEqual(normalize(replayed.text()), normalize(direct.text()))
    assert.match(list.text(), /2 passed, 2 failed, 1 flaky, 1 skipped, 1 error/)
    assert.match(list.text(), /> 5 \| {3}expect\(6 \/ 3\)\.toBe\(3\)/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('blob replay rejects a file that is not a blob', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-blob-'))
  try {
    fs.writeFileSync(path.join(dir, 'x.jsonl'), '{"type":"begin"\n')
    assert.throws(() => parseBlob(path.join(dir, 'x.jsonl')), /x\.jsonl:1: not a blob event/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('dot wraps its rows at 80 marks', () => {
  const { root } = buildTree()
  const describe = root.suites[0].suites[0].suites[0]
  for (let i = 0; i < 170; i++) {
    const t = new TestCase(`extra ${i}`, () => {}, undefined, { file: '/proj/math.vt.ts', line: 100 + i, column: 3 })
    describe._addTest(t)
  }
  const stream = memoryStream()
  const dot = new DotReporter({ stream, colors: false })
  dot.onBegin(config([root.suites[0]._project!]), root)
  for (const t of describe.tests.filter(x => x.title.startsWith('extra'))) {
    const r = newResult(0)
    t.results.push(r)
    dot.onTestEnd(t, r)
  }
  const rows = stream
    .text()
    .split('\n')
    .filter(l => /^·+$/.test(l))
  assert.deepEqual(
    rows.map(r => r.length),
    [80, 80, 10],
  )
})

test('list on a TTY counts wrapped output rows to find the line of a test again', () => {
  const { root, tests } = buildTree()
  const stream = { ...memoryStream(true), columns: 40 }
  const list = new ListReporter({ stream, colors: false, tty: true })
  list.onBegin(config([root.suites[0]._project!]), root)
  const r = newResult(0)
  tests.adds.results.push(r)
  list.onTestBegin(tests.adds, r)
  list.onStdOut(`${'x'.repeat(100)}\n`, tests.adds, r)
  list.onTestEnd(tests.adds, r)
  // the test's line, then 100 characters of output on three 40-column rows: the cursor goes up 4 rows
  assert.match(stream.text(), /\u001b\[4A\r\u001b\[2K {2}✓ 1 \[unit\] › math/)
})
