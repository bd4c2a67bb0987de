// The html reporter on the synthetic run of fakeRun.ts: the folder it writes, the embedded JSON read back the way
// the viewer reads it, attachments copied under data/, and titles or output that try to close the <script>.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import vm from 'node:vm'
import HtmlReporter, { type HtmlReport, jsonForScript } from '../../reporters/html.ts'
import type { Reporter } from '../../src/runner/reporterApi.ts'
import { buildTree, memoryStream, playRun } from './fakeRun.ts'

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-html-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The report data as the viewer gets it: the text of the one JSON <script> element, parsed. */
function embedded(html: string): HtmlReport {
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
  assert.equal(scripts.length, 2, 'exactly the data and the viewer scripts: nothing broke out of them')
  const data = scripts.find(s => s[1].includes('id="vt-report-data"'))
  assert.ok(data, 'data script present')
  assert.match(data[1], /type="application\/json"/)
  return JSON.parse(data[2])
}

test('html writes index.html with the run embedded as JSON and a viewer that parses', async t => {
  const dir = tempDir(t)
  fs.mkdirSync(path.join(dir, 'test-results'))
  const diskImg = path.join(dir, 'test-results', 'console.log')
  fs.writeFileSync(diskImg, 'boot: ok\n\u001b[31mred\u001b[0m line\n')
  const png = path.join(dir, 'shot.png')
  fs.writeFileSync(png, Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'))
  const tree = buildTree()
  const stream = memoryStream()
  const reporter = new HtmlReporter({ outputFolder: 'out/report', configDir: dir, open: 'on-failure', stream })
  assert.equal(reporter.printsToStdio(), false)
  const wrapped: Reporter = {
    onBegin: reporter.onBegin.bind(reporter),
    onError: reporter.onError.bind(reporter),
    onEnd: reporter.onEnd.bind(reporter),
    onExit: reporter.onExit.bind(reporter),
    // Points fakeRun's file attachment at a real file, and adds an image.
    onTestEnd(testCase, result) {
      for (const a of result.attachments) if (a.path === '/proj/test-results/disk.img') a.path = diskImg
      if (testCase.title === 'adds') result.attachments.push({ name: 'screen', contentType: 'image/png', path: png })
    },
  }
  await playRun(wrapped, tree)

  const folder = path.join(dir, 'out/report')
  const html = fs.readFileSync(path.join(folder, 'index.html'), 'utf8')
  assert.match(html, /^<!doctype html>/)
  const report = embedded(html)
  assert.equal(report.tests.length, 6)
  assert.deepEqual(
    { ...report.stats, startTime: undefined },
    {
      startTime: undefined,
      duration: 1234,
      status: 'failed',
      expected: 2,
      unexpected: 2,
      flaky: 1,
      skipped: 1,
      interrupted: 0,
      didNotRun: 0,
    },
  )
  const byTitle = (title: string) => report.tests.find(x => x.titles.at(-1) === title)!
  assert.deepEqual(byTitle('adds').titles, ['math <&> "quotes"', 'adds'])
  assert.equal(byTitle('adds').file, 'math.vt.ts')
  assert.equal(byTitle('adds').projectName, 'unit')
  assert.equal(byTitle('adds').results[0].stdout, 'adds says hi\n')
  assert.equal(byTitle('adds').results[0].steps[0].steps?.[0].title, 'inner')
  assert.equal(byTitle('is flaky').status, 'flaky')
  assert.equal(byTitle('is skipped').status, 'skipped')

  const divides = byTitle('divides')
  assert.equal(divides.status, 'unexpected')
  assert.equal(divides.results.length, 2, 'every attempt')
  assert.equal(divides.duration, 120 + 121)
  const attempt = divides.results[1]
  assert.equal(attempt.retry, 1)
  assert.equal(attempt.stderr, 'division trouble\n', 'Buffer output decoded')
  assert.doesNotMatch(attempt.errors[0].message, /\u001b/, 'ANSI stripped')
  assert.match(attempt.errors[0].snippet!, /> 5 \| {3}expect\(6 \/ 3\)/)
  assert.match(attempt.errors[0].stack!, /at \/proj\/math\.vt\.ts:5:15/)
  assert.ok(attempt.steps[0].error, 'failed step keeps its error')

  // Attachments: a body and a file, copied under data/ and linked; text inlined; the image copied byte for byte.
  const [body, file] = attempt.attachments
  assert.equal(body.name, 'trace.txt')
  assert.equal(body.text, 'trace body')
  assert.match(body.path!, /^data\/[0-9a-f]{40}\.txt$/)
  assert.equal(fs.readFileSync(path.join(folder, body.path!), 'utf8'), 'trace body')
  assert.match(file.path!, /^data\/[0-9a-f]{40}\.log$/)
  assert.equal(fs.readFileSync(path.join(folder, file.path!), 'utf8'), fs.readFileSync(diskImg, 'utf8'))
  assert.equal(file.text, undefined, 'application/octet-stream is not inlined')
  const image = byTitle('adds').results[0].attachments[0]
  assert.equal(image.contentType, 'image/png')
  assert.deepEqual(fs.readFileSync(path.join(folder, image.path!)), fs.readFileSync(png))
  assert.equal(report.errors.length, 1)
  assert.match(report.errors[0].message, /worker teardown failed/)

  // The viewer is inlined and is valid JavaScript; no external resources are referenced.
  const viewer = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)][0][1]
  assert.doesNotThrow(() => new vm.Script(viewer))
  assert.doesNotMatch(html, /<(link|script)[^>]+(href|src)=/, 'no external scripts or styles')
  assert.doesNotMatch(viewer, /fetch\(|XMLHttpRequest|\.innerHTML\s*=|insertAdjacentHTML/)

  // on-failure: the run failed, so the hint is printed.
  assert.match(stream.text(), /To open the report: npx vt show-report \S*out\/report/)
})

test('</script> and <!-- in titles and output cannot break out of the data element', async t => {
  const dir = tempDir(t)
  const evil = '</script><script>window.pwned=1</script><!--<script>'
  const tree = buildTree()
  tree.tests.adds.title = `adds ${evil}`
  const reporter = new HtmlReporter({ outputFolder: dir, open: 'never', stream: memoryStream() })
  await playRun(
    {
      onBegin: (c, s) => reporter.onBegin(c, s),
      onEnd: r => reporter.onEnd(r),
      onTestEnd(_test, result) {
        result.stdout.push(`out ${evil}\n`)
        result.stderr.push(Buffer.from(`err ${evil}\u2028\n`))
      },
    },
    tree,
  )
  const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8')
  assert.equal(html.split('</script>').length - 1, 2, 'only the two real closing tags')
  assert.ok(!html.includes('<!--<script>'))
  const report = embedded(html)
  const adds = report.tests.find(x => x.titles.at(-1)?.startsWith('adds'))!
  assert.equal(adds.titles.at(-1), `adds ${evil}`, 'the title survives intact')
  assert.ok(adds.results[0].stdout.includes(`out ${evil}`))
  assert.ok(adds.results[0].stderr.includes(`err ${evil}\u2028`))
  assert.equal(JSON.parse(jsonForScript({ s: evil })).s, evil)
})

test('html: default folder, VT_HTML_OUTPUT_DIR, open modes, bad options', async t => {
  const dir = tempDir(t)
  const saved = { env: process.env.VT_HTML_OUTPUT_DIR, ci: process.env.CI }
  t.after(() => {
    if (saved.env === undefined) delete process.env.VT_HTML_OUTPUT_DIR
    else process.env.VT_HTML_OUTPUT_DIR = saved.env
    if (saved.ci === undefined) delete process.env.CI
    else process.env.CI = saved.ci
  })
  delete process.env.VT_HTML_OUTPUT_DIR
  delete process.env.CI
  const local = new HtmlReporter({ configDir: dir })
  assert.equal(local.outputFolder, path.join(dir, 'vt-report'))
  assert.equal(local.open, 'on-failure')
  process.env.CI = 'true'
  assert.equal(new HtmlReporter({ configDir: dir }).open, 'never')
  process.env.VT_HTML_OUTPUT_DIR = path.join(dir, 'from-env')
  assert.equal(new HtmlReporter({ configDir: dir }).outputFolder, path.join(dir, 'from-env'))
  assert.equal(new HtmlReporter({ configDir: dir, outputFolder: 'opt' }).outputFolder, path.join(dir, 'opt'))
  assert.throws(() => new HtmlReporter({ open: 'sometimes' as any }), /option open must be 'always', 'never' or/)
  assert.throws(() => new HtmlReporter({ outputFolder: '' }), /outputFolder must be a non-empty string/)

  // always prints even for a passing run, never prints nothing.
  for (const [open, printed] of [
    ['always', true],
    ['never', false],
  ] as const) {
    const stream = memoryStream()
    const r = new HtmlReporter({ outputFolder: path.join(dir, open), open, stream })
    r.onBegin({ rootDir: dir } as any, buildTree().root)
    r.onEnd({ status: 'passed', startTime: new Date(), duration: 1 })
    r.onExit()
    assert.equal(stream.text().includes('npx vt show-report'), printed, open)
    assert.ok(fs.existsSync(path.join(dir, open, 'index.html')))
  }
})

test('html: a report that cannot be written does not throw, and a second run replaces data/', async t => {
  const dir = tempDir(t)
  const blocked = path.join(dir, 'blocked')
  fs.writeFileSync(blocked, 'a file where the folder should be')
  const stream = memoryStream()
  const r = new HtmlReporter({ outputFolder: blocked, open: 'always', stream })
  const stderr = process.stderr.write
  let warned = ''
  process.stderr.write = ((s: string) => {
    warned += s
    return true
  }) as any
  try {
    await playRun(r)
  } finally {
    process.stderr.write = stderr
  }
  assert.match(warned, /html reporter could not write the report to .*blocked/)
  assert.equal(stream.text(), '', 'no open hint for a report that was not written')

  const folder = path.join(dir, 'ok')
  await playRun(new HtmlReporter({ outputFolder: folder, open: 'never' }))
  fs.writeFileSync(path.join(folder, 'data', 'stale.txt'), 'old')
  fs.writeFileSync(path.join(folder, 'junit.xml'), '<testsuites/>')
  await playRun(new HtmlReporter({ outputFolder: folder, open: 'never' }))
  assert.ok(!fs.existsSync(path.join(folder, 'data', 'stale.txt')), 'old attachments removed')
  assert.ok(fs.existsSync(path.join(folder, 'data')), 'new attachments written')
  assert.ok(fs.existsSync(path.join(folder, 'junit.xml')), 'files of other reporters kept')

  // A data/ folder that is not ours is neither deleted nor mixed into.
  const foreign = path.join(dir, 'foreign')
  fs.mkdirSync(path.join(foreign, 'data'), { recursive: true })
  fs.writeFileSync(path.join(foreign, 'data', 'precious.csv'), '1,2,3')
  warned = ''
  process.stderr.write = ((s: string) => {
    warned += s
    return true
  }) as any
  try {
    await playRun(new HtmlReporter({ outputFolder: foreign, open: 'never' }))
  } finally {
    process.stderr.write = stderr
  }
  assert.match(warned, /foreign\/data exists and was not written by the html reporter; choose another outputFolder/)
  assert.equal(fs.readFileSync(path.join(foreign, 'data', 'precious.csv'), 'utf8'), '1,2,3')
  assert.throws(
    () => new HtmlReporter({ outputFolder: '.', configDir: dir }),
    /the report folder .* holds the project .*Set outputFolder to a folder of its own/,
  )
})

// A quick check without a browser: the viewer runs on a minimal DOM (elements, text, attributes, events) to check
// that it renders the real report, expands a test lazily, and filters and searches, without runtime errors.
// test/reporters/htmlBrowser.test.ts opens a real report in Chromium.
class FakeNode {
  childNodes: FakeNode[] = []
  text = ''
  get firstChild() {
    return this.childNodes[0]
  }
  get textContent(): string {
    return this.text + this.childNodes.map(c => c.textContent).join('')
  }
  set textContent(value: string) {
    this.text = value
    this.childNodes = []
  }
  append(...nodes: (FakeNode | string)[]) {
    for (const n of nodes) {
      if (typeof n === 'string') {
        const t = new FakeNode()
        t.text = n
        this.childNodes.push(t)
      } else this.childNodes.push(n)
    }
  }
  replaceChildren(...nodes: (FakeNode | string)[]) {
    this.childNodes = []
    this.append(...nodes)
  }
}
class FakeElement extends FakeNode {
  className = ''
  attributes: Record<string, string> = {}
  listeners: Record<string, ((e: unknown) => void)[]> = {}
  open = false
  value = ''
  constructor(readonly tagName: string) {
    super()
  }
  setAttribute(k: string, v: string) {
    this.attributes[k] = v
    if (k === 'open') this.open = true
    if (k === 'value') this.value = v
  }
  addEventListener(type: string, fn: (e: unknown) => void) {
    ;(this.listeners[type] ??= []).push(fn)
  }
  fire(type: string) {
    for (const fn of this.listeners[type] ?? []) fn({ target: this })
  }
  all(pred: (e: FakeElement) => boolean): FakeElement[] {
    const out: FakeElement[] = []
    const visit = (n: FakeNode) => {
      if (n instanceof FakeElement && pred(n)) out.push(n)
      n.childNodes.forEach(visit)
    }
    this.childNodes.forEach(visit)
    return out
  }
}

test('the viewer renders the report, expands tests on demand, filters by outcome and searches', async t => {
  const dir = tempDir(t)
  const tree = buildTree()
  tree.tests.adds.title = 'adds </script><b>bold</b>'
  await playRun(new HtmlReporter({ outputFolder: dir, open: 'never' }), tree)
  const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8')
  const data = new FakeElement('script')
  data.text = /id="vt-report-data">([\s\S]*?)<\/script>/.exec(html)![1]
  const app = new FakeElement('div')
  const location = { hash: '', pathname: '/index.html', search: '' }
  const context = vm.createContext({
    Node: FakeNode,
    URLSearchParams,
    location,
    history: {
      replaceState: (_s: unknown, _t: string, url: string) => (location.hash = url.startsWith('#') ? url : ''),
    },
    window: { addEventListener() {} },
    document: {
      createElement: (tag: string) => new FakeElement(tag),
      createElementNS: (_ns: string, tag: string) => new FakeElement(tag),
      getElementById: (id: string) => (id === 'app' ? app : id === 'vt-report-data' ? data : null),
    },
  })
  vm.runInContext([...html.matchAll(/<script>([\s\S]*?)<\/script>/g)][0][1], context)

  const tests = () => app.all(e => e.tagName === 'details' && e.className.startsWith('test '))
  assert.equal(tests().length, 6)
  assert.match(app.textContent, /vt report/)
  assert.match(app.textContent, /Passed2Failed2Flaky1Skipped1/)
  assert.match(app.textContent, /1 error outside of tests/)
  assert.ok(app.all(e => e.tagName === 'b').length === 0, 'a title is text, never markup')
  assert.match(app.textContent, /adds <\/script><b>bold<\/b>/)

  const divides = tests().find(e => e.textContent.includes('divides'))!
  assert.match(divides.className, /o-failed/)
  assert.doesNotMatch(divides.textContent, /Retry #1/, 'the body is built when the test is opened')
  divides.open = true
  divides.fire('toggle')
  const body = divides.textContent
  for (const expected of ['First run', 'Retry #1', 'Expected: 3', '> 5 |', 'check quotient', 'trace body'])
    assert.ok(body.includes(expected), `expanded test shows ${expected}`)
  assert.match(body, /division trouble/)
  assert.ok(divides.all(e => e.className.includes('step') && e.className.includes('failed')).length > 0)
  assert.ok(divides.all(e => e.tagName === 'a' && /^data\//.test(e.attributes.href)).length >= 2, 'attachment links')

  const button = (label: string) => app.all(e => e.tagName === 'button' && e.textContent.startsWith(label))[0]
  button('Failed').fire('click')
  assert.equal(location.hash, '#filter=failed')
  assert.deepEqual(
    tests().map(e => /o-(\w+)/.exec(e.className)![1]),
    ['failed', 'failed'],
  )
  button('All').fire('click')
  const search = app.all(e => e.tagName === 'input')[0]
  search.value = 'FLAKY'
  search.fire('input')
  assert.equal(tests().length, 1)
  search.value = 'no such test'
  search.fire('input')
  assert.equal(tests().length, 0)
  assert.match(app.textContent, /No test matches the filter/)
})
