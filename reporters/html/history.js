// The history part of the vt HTML report viewer: per run the totals (stacked bars and a table), per test its
// outcome over the last runs (a strip of squares in the test's row) and its duration over them (a chart in the
// expanded test). The runs come from report.history (reporters/htmlHistory.ts). Inlined by reporters/html.ts
// after charts.js and before viewer.js, which finds these functions on window.vtHistory.
;(() => {
  const { svg, lineChart } = window.vtCharts
  const colors = { p: '#1a7f37', f: '#cf222e', k: '#9a6700', s: '#8c959f' }
  const words = { p: 'passed', f: 'failed', k: 'flaky', s: 'skipped' }

  function el(tag, cls, ...children) {
    const e = document.createElement(tag)
    if (cls) e.className = cls
    for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c)
    return e
  }

  const when = run => {
    const d = new Date(run.startTime)
    return Number.isNaN(d.getTime()) ? run.startTime : d.toLocaleString()
  }

  /** The test in each run of the history, oldest first: { run, outcome, duration } or outcome undefined. */
  function trendOf(report, test) {
    return report.history.map(run => {
      const entry = run.tests[test.testId]
      return { run, outcome: entry ? entry[0] : undefined, duration: entry ? entry[1] : undefined }
    })
  }

  function trendStrip(report, test, duration) {
    if (report.history.length < 2) return null
    return el(
      'span',
      'trend',
      trendOf(report, test).map(({ run, outcome, duration: d }) => {
        const box = el('span', `tr t-${outcome || 'none'}`)
        box.title = `${when(run)}: ${outcome ? `${words[outcome]} in ${duration(d)}` : 'not run'}`
        return box
      }),
    )
  }

  function testHistory(report, test, duration) {
    if (report.history.length < 2) return null
    const trend = trendOf(report, test)
    const ran = trend.filter(t => t.outcome)
    const counts = { p: 0, f: 0, k: 0, s: 0 }
    for (const t of ran) counts[t.outcome]++
    const summary = Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([o, n]) => `${n} ${words[o]}`)
      .join(' · ')
    const points = trend.flatMap((t, i) =>
      t.outcome
        ? [[i + 1, t.duration, colors[t.outcome], `${when(t.run)}: ${words[t.outcome]} in ${duration(t.duration)}`]]
        : [],
    )
    return el(
      'div',
      'test-history',
      el('p', 'note', `${summary} in the last ${trend.length} runs (${trend.length - ran.length} without this test)`),
      lineChart({
        title: 'Duration over the runs',
        format: duration,
        xFormat: x => `run ${Math.round(x)}`,
        xStart: 1,
        series: [{ name: 'duration', color: '#8c959f', points, dots: true }],
      }),
    )
  }

  function runHistory(report, duration) {
    const runs = report.history
    if (runs.length === 0) return null
    const width = Math.max(160, Math.min(720, runs.length * 28))
    const height = 90
    const slot = width / runs.length
    const max = Math.max(1, ...runs.map(r => r.totals.passed + r.totals.failed + r.totals.flaky + r.totals.skipped))
    const bars = runs.map((run, i) => {
      let y = height
      const parts = ['passed', 'flaky', 'failed', 'skipped'].map(key => {
        const h = (run.totals[key] / max) * (height - 4)
        y -= h
        return svg('rect', {
          x: Math.round(i * slot + slot * 0.15),
          y: Math.round(y * 10) / 10,
          width: Math.max(2, Math.round(slot * 0.7)),
          height: Math.round(h * 10) / 10,
          fill: colors[{ passed: 'p', failed: 'f', flaky: 'k', skipped: 's' }[key]],
        })
      })
      const t = run.totals
      return svg(
        'g',
        { class: 'run-bar' },
        parts,
        svg(
          'title',
          null,
          `${when(run)}: ${run.status} · ${t.passed} passed, ${t.failed} failed, ${t.flaky} flaky, ${t.skipped} skipped · ${duration(run.duration)}`,
        ),
      )
    })
    const rows = [...runs].reverse().map((run, i) =>
      el(
        'tr',
        i === 0 ? 'this-run' : null,
        el('td', null, when(run), i === 0 ? ' (this run)' : ''),
        el('td', `st st-${run.status === 'passed' ? 'passed' : 'failed'}`, run.status),
        ['passed', 'failed', 'flaky', 'skipped'].map(k => el('td', `num n-${k}`, String(run.totals[k]))),
        el('td', 'num', duration(run.duration)),
      ),
    )
    const head = el(
      'tr',
      null,
      ['run', 'status', 'passed', 'failed', 'flaky', 'skipped', 'time'].map(t => el('th', null, t)),
    )
    const details = el(
      'details',
      'run-history',
      el('summary', null, `History: the last ${runs.length} run${runs.length === 1 ? '' : 's'}`),
      svg('svg', { class: 'runs-chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' }, bars),
      el('table', 'runs', el('thead', null, head), el('tbody', null, rows)),
    )
    details.open = true
    return el('section', 'history', details)
  }

  window.vtHistory = { trendStrip, testHistory, runHistory }
})()
