// The vt HTML report viewer, inlined into index.html by reporters/html.ts. Plain browser JavaScript, no
// framework and no fetches (works from file://). The report data comes from the JSON <script> element and is
// rendered with DOM APIs only (textContent, never innerHTML), so nothing in a title or output can become markup.
;(() => {
  const report = JSON.parse(document.getElementById('vt-report-data').textContent)
  const app = document.getElementById('app')

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag)
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue
      if (key === 'class') el.className = value
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
      else el.setAttribute(key, value === true ? '' : String(value))
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue
      el.append(child instanceof Node ? child : String(child))
    }
    return el
  }

  function duration(ms) {
    if (!Number.isFinite(ms) || ms < 0) ms = 0
    if (ms < 1000) return `${Math.round(ms)}ms`
    if (ms < 60000) return `${(ms / 1000).toFixed(1)}s`
    if (ms < 3600000) return `${(ms / 60000).toFixed(1)}m`
    return `${(ms / 3600000).toFixed(1)}h`
  }

  function size(bytes) {
    if (bytes === undefined) return ''
    if (bytes < 1024) return `${bytes} B`
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
  }

  const outcomes = ['passed', 'failed', 'flaky', 'skipped']
  const outcomeOf = test =>
    ({ expected: 'passed', unexpected: 'failed', flaky: 'flaky', skipped: 'skipped' })[test.status] || 'failed'
  const icons = { passed: '✓', failed: '✘', flaky: '±', skipped: '–' }
  const resultIcon = status => ({ passed: '✓', skipped: '–', interrupted: '!', timedOut: '⏱' })[status] || '✘'
  const resultClass = (test, status) =>
    status === 'skipped' ? 'skipped' : status === test.expectedStatus ? 'passed' : 'failed'

  for (const test of report.tests) {
    test.outcome = outcomeOf(test)
    test.haystack = [
      test.file,
      ...test.titles,
      test.projectName,
      test.outcome,
      ...test.annotations.map(a => `${a.type} ${a.description || ''}`),
    ]
      .join(' ')
      .toLowerCase()
  }

  // Filter state lives in the URL hash (#filter=failed&q=boot) so that a link or a reload keeps it.
  function readState() {
    const params = new URLSearchParams(location.hash.slice(1))
    const filter = params.get('filter')
    return { filter: outcomes.includes(filter) ? filter : 'all', q: params.get('q') || '' }
  }
  let state = readState()
  function setState(next) {
    state = { ...state, ...next }
    const params = new URLSearchParams()
    if (state.filter !== 'all') params.set('filter', state.filter)
    if (state.q) params.set('q', state.q)
    const hash = params.toString()
    history.replaceState(null, '', hash ? `#${hash}` : location.pathname + location.search)
    renderList()
    renderFilters()
  }
  window.addEventListener('hashchange', () => {
    state = readState()
    search.value = state.q
    renderList()
    renderFilters()
  })

  function matches(test) {
    if (state.filter !== 'all' && test.outcome !== state.filter) return false
    const tokens = state.q.toLowerCase().split(/\s+/).filter(Boolean)
    return tokens.every(token => test.haystack.includes(token))
  }

  // ---- header --------------------------------------------------------------------------------------------------
  const counts = { all: report.tests.length, passed: 0, failed: 0, flaky: 0, skipped: 0 }
  for (const test of report.tests) counts[test.outcome]++
  const stats = report.stats
  const runStatus = stats.status
  const started = new Date(stats.startTime)

  const filters = h('nav', { class: 'filters', 'aria-label': 'filter by outcome' })
  function renderFilters() {
    filters.replaceChildren(
      ...['all', ...outcomes].map(name =>
        h(
          'button',
          {
            type: 'button',
            class: `filter f-${name}${state.filter === name ? ' active' : ''}`,
            'aria-pressed': state.filter === name ? 'true' : 'false',
            onclick: () => setState({ filter: state.filter === name && name !== 'all' ? 'all' : name }),
          },
          name === 'all' ? 'All' : name[0].toUpperCase() + name.slice(1),
          h('span', { class: 'count' }, counts[name]),
        ),
      ),
    )
  }
  const search = h('input', {
    type: 'search',
    class: 'search',
    placeholder: 'Search tests, files, projects…',
    'aria-label': 'search tests',
    value: state.q,
    oninput: e => setState({ q: e.target.value }),
  })

  const extra = []
  if (stats.interrupted) extra.push(`${stats.interrupted} interrupted`)
  if (stats.didNotRun) extra.push(`${stats.didNotRun} did not run`)
  app.append(
    h(
      'header',
      null,
      h(
        'div',
        { class: 'title-row' },
        h('h1', null, report.title),
        h('span', { class: `run-status st-${runStatus === 'passed' ? 'passed' : 'failed'}` }, runStatus),
        h(
          'span',
          { class: 'meta' },
          Number.isNaN(started.getTime()) ? '' : `${started.toLocaleString()} · `,
          `total time ${duration(stats.duration)}`,
          extra.length ? ` · ${extra.join(', ')}` : '',
        ),
      ),
      h('div', { class: 'toolbar' }, filters, search),
    ),
  )
  renderFilters()

  // ---- global errors -------------------------------------------------------------------------------------------
  if (report.errors.length) {
    app.append(
      h(
        'section',
        { class: 'global-errors' },
        h('h2', null, `${report.errors.length} ${report.errors.length === 1 ? 'error' : 'errors'} outside of tests`),
        report.errors.map(renderError),
      ),
    )
  }

  const trends = window.vtHistory
  app.append(trends.runHistory(report, duration) || '')

  const list = h('main', { class: 'list' })
  app.append(list)

  // ---- test list -----------------------------------------------------------------------------------------------
  function renderList() {
    const shown = report.tests.filter(matches)
    const byFile = new Map()
    for (const test of shown) {
      if (!byFile.has(test.file)) byFile.set(test.file, new Map())
      const byProject = byFile.get(test.file)
      if (!byProject.has(test.projectName)) byProject.set(test.projectName, [])
      byProject.get(test.projectName).push(test)
    }
    const sections = []
    for (const [file, byProject] of byFile) {
      const total = [...byProject.values()].reduce((n, tests) => n + tests.length, 0)
      const failed = [...byProject.values()].flat().some(t => t.outcome === 'failed')
      sections.push(
        h(
          'details',
          { class: `file${failed ? ' has-failures' : ''}`, open: true },
          h(
            'summary',
            { class: 'file-head' },
            h('span', { class: 'file-name' }, file),
            h('span', { class: 'file-count' }, total),
          ),
          [...byProject].map(([project, tests]) =>
            h(
              'div',
              { class: 'project' },
              report.projects.length > 1 || project ? h('h3', null, project || '(unnamed project)') : null,
              tests.map(renderTest),
            ),
          ),
        ),
      )
    }
    if (sections.length === 0)
      sections.push(h('p', { class: 'empty' }, report.tests.length ? 'No test matches the filter.' : 'No tests.'))
    list.replaceChildren(...sections)
  }

  function renderTest(test) {
    const retries = test.results.length - 1
    const body = h('div', { class: 'test-body' })
    const details = h(
      'details',
      {
        class: `test o-${test.outcome}`,
        ontoggle: () => {
          if (details.open && !body.firstChild) body.append(...renderTestBody(test))
        },
      },
      h(
        'summary',
        { class: 'test-head' },
        h('span', { class: `icon o-${test.outcome}`, title: test.outcome }, icons[test.outcome]),
        h(
          'span',
          { class: 'test-title' },
          test.titles.slice(0, -1).map(t => h('span', { class: 'describe' }, t, ' › ')),
          test.titles[test.titles.length - 1],
        ),
        retries > 0
          ? h('span', { class: 'badge retry-badge' }, `${retries} ${retries === 1 ? 'retry' : 'retries'}`)
          : null,
        test.results.length === 0 ? h('span', { class: 'badge' }, 'did not run') : null,
        trends.trendStrip(report, test, duration),
        h('span', { class: 'location' }, `${test.file}:${test.line}`),
        h('span', { class: 'duration' }, duration(test.duration)),
      ),
      body,
    )
    return details
  }

  function renderTestBody(test) {
    const out = []
    if (test.annotations.length) out.push(renderAnnotations(test.annotations))
    const trend = trends.testHistory(report, test, duration)
    if (trend) out.push(block('History', trend))
    for (const result of test.results) {
      const cls = resultClass(test, result.status)
      out.push(
        h(
          'section',
          { class: `attempt r-${cls}` },
          h(
            'h4',
            null,
            h('span', { class: `icon o-${cls}` }, resultIcon(result.status)),
            result.retry > 0 ? `Retry #${result.retry}` : test.results.length > 1 ? 'First run' : 'Run',
            h('span', { class: `status s-${cls}` }, result.status),
            h('span', { class: 'duration' }, duration(result.duration)),
            h('span', { class: 'meta' }, `worker ${result.workerIndex}`),
          ),
          renderResult(test, result),
        ),
      )
    }
    return out
  }

  function renderResult(test, result) {
    const parts = []
    if (result.status === 'passed' && test.expectedStatus === 'failed')
      parts.push(h('p', { class: 'note failed-note' }, 'Expected to fail, but passed.'))
    if (result.errors.length) parts.push(block('Errors', result.errors.map(renderError)))
    // The test's own annotations are shown once above the attempts.
    const own = result.annotations.filter(
      a => !test.annotations.some(b => b.type === a.type && b.description === a.description),
    )
    if (own.length) parts.push(block('Annotations', renderAnnotations(own)))
    if (result.steps.length) parts.push(block('Steps', renderSteps(result.steps)))
    if (result.attachments.length) parts.push(block('Attachments', result.attachments.map(renderAttachment)))
    if (result.stdout) parts.push(block('stdout', h('pre', { class: 'output' }, result.stdout)))
    if (result.stderr) parts.push(block('stderr', h('pre', { class: 'output stderr' }, result.stderr)))
    if (parts.length === 0) parts.push(h('p', { class: 'note' }, 'Nothing recorded for this attempt.'))
    return parts
  }

  function block(title, content) {
    return h('div', { class: `block b-${title.toLowerCase()}` }, h('h5', null, title), content)
  }

  function renderAnnotations(annotations) {
    return h(
      'ul',
      { class: 'annotations' },
      annotations.map(a =>
        h('li', null, h('span', { class: 'badge' }, a.type), a.description ? ` ${a.description}` : ''),
      ),
    )
  }

  function errorHeader(error) {
    if (!error.stack) return error.message
    const at = error.stack.search(/\n\s+at\s/)
    const head = at < 0 ? error.stack : error.stack.slice(0, at)
    return head.endsWith(error.message) && head.length - error.message.length < 80 ? head : error.message
  }

  function renderError(error) {
    const frames = error.stack ? error.stack.split('\n').filter(l => /^\s+at\s/.test(l)) : []
    return h(
      'div',
      { class: 'error' },
      h('pre', { class: 'message' }, errorHeader(error)),
      error.snippet
        ? h(
            'pre',
            { class: 'snippet' },
            error.snippet
              .split('\n')
              .map(line =>
                h('span', { class: /^\s*>/.test(line) ? 'hl' : /^\s*\|\s*\^/.test(line) ? 'caret' : null }, line, '\n'),
              ),
          )
        : null,
      error.location
        ? h('div', { class: 'where' }, `at ${error.location.file}:${error.location.line}:${error.location.column}`)
        : null,
      frames.length
        ? h(
            'details',
            { class: 'stack' },
            h('summary', { class: 'stack-head' }, 'stack'),
            h('pre', null, frames.join('\n')),
          )
        : null,
      error.details && Object.keys(error.details).length
        ? h('pre', { class: 'details' }, JSON.stringify(error.details, null, 2))
        : null,
    )
  }

  function renderSteps(steps) {
    return h(
      'ul',
      { class: 'steps' },
      steps.map(step =>
        h(
          'li',
          { class: `step c-${step.category.replace(/\W/g, '')}${step.error ? ' failed' : ''}` },
          h(
            'div',
            { class: 'step-line' },
            h('span', { class: `icon o-${step.error ? 'failed' : 'passed'}` }, step.error ? '✘' : '✓'),
            h('span', { class: 'step-title' }, step.title),
            h('span', { class: 'category' }, step.category),
            step.location ? h('span', { class: 'location' }, `${step.location.file}:${step.location.line}`) : null,
            h('span', { class: 'duration' }, duration(step.duration)),
          ),
          // The first line only: the full error is shown above, under Errors.
          step.error ? h('pre', { class: 'step-error' }, errorHeader(step.error).split('\n')[0]) : null,
          step.steps?.length ? renderSteps(step.steps) : null,
        ),
      ),
    )
  }

  function renderAttachment(a) {
    const isImage = /^image\//.test(a.contentType)
    return h(
      'div',
      { class: 'attachment' },
      h(
        'div',
        { class: 'attachment-head' },
        h('span', { class: 'attachment-name' }, a.name),
        h('span', { class: 'meta' }, a.contentType, a.size !== undefined ? ` · ${size(a.size)}` : ''),
        a.path ? h('a', { href: a.path, target: '_blank', rel: 'noopener', download: a.name }, 'download') : null,
      ),
      a.missing ? h('p', { class: 'note failed-note' }, a.missing) : null,
      isImage && a.path ? h('a', { href: a.path, target: '_blank' }, h('img', { src: a.path, alt: a.name })) : null,
      a.text !== undefined && /json/.test(a.contentType) ? jsonCharts(a.text) : null,
      a.text !== undefined ? h('pre', { class: 'output' }, a.text) : null,
    )
  }

  /** Charts of a JSON attachment that holds a time series vt knows (a migration result), else nothing. */
  function jsonCharts(text) {
    try {
      return window.vtCharts.migrationCharts(JSON.parse(text))
    } catch {
      return null
    }
  }

  renderList()
})()
