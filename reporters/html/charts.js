// Inline SVG charts for the vt HTML report: line charts (migration time series, durations over runs) and the
// charts of a migration result attachment. Plain browser JavaScript, no library and no fetches; inlined into
// index.html by reporters/html.ts before viewer.js, which finds these functions on window.vtCharts.
;(() => {
  const NS = 'http://www.w3.org/2000/svg'

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(NS, tag)
    for (const [key, value] of Object.entries(attrs || {})) if (value !== undefined) el.setAttribute(key, String(value))
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue
      if (typeof child === 'string') el.append(child)
      else el.append(child)
    }
    return el
  }

  function div(cls, ...children) {
    const el = document.createElement('div')
    el.className = cls
    for (const child of children.flat()) if (child !== undefined && child !== null) el.append(child)
    return el
  }

  /** A round upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten. */
  function niceMax(v) {
    if (!(v > 0)) return 1
    const p = 10 ** Math.floor(Math.log10(v))
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p
    return 10 * p
  }

  const round = n => Math.round(n * 10) / 10

  /**
   * series: [{ name, color, points: [[x, y, pointColor?, tooltip?]], dots? }]; format(y) and xFormat(x) label
   * the axes; marker: { x, label } draws a dashed vertical line (the switchover of a migration).
   */
  function lineChart({
    title,
    series,
    format = String,
    xFormat = String,
    marker,
    xStart = 0,
    width = 520,
    height = 150,
  }) {
    const left = 64
    const right = 10
    const top = 10
    const bottom = 22
    const all = series.flatMap(s => s.points)
    const xMin = Math.min(xStart, ...all.map(p => p[0]))
    const xMax = Math.max(xMin + 1e-9, ...all.map(p => p[0]), marker ? marker.x : xMin)
    const top0 = Math.max(0, ...all.map(p => p[1]))
    const yMax = niceMax(top0)
    const X = x => round(left + ((x - xMin) / (xMax - xMin)) * (width - left - right))
    const Y = y => round(top + (1 - y / yMax) * (height - top - bottom))
    // All zero: one line at 0 (fractions of a made-up scale would only mislead).
    const grid = (top0 > 0 ? [0, 0.25, 0.5, 0.75, 1] : [0]).map(f =>
      svg(
        'g',
        { class: 'grid' },
        svg('line', { x1: left, x2: width - right, y1: Y(f * yMax), y2: Y(f * yMax) }),
        svg('text', { x: left - 6, y: Y(f * yMax) + 4, 'text-anchor': 'end' }, format(f * yMax)),
      ),
    )
    const xLabels = [xMin, xMax].map((x, i) =>
      svg('text', { x: X(x), y: height - 6, 'text-anchor': i ? 'end' : 'start', class: 'axis' }, xFormat(x)),
    )
    const lines = series.map(s =>
      svg(
        'g',
        { class: 'series', 'data-series': s.name },
        s.points.length > 1
          ? svg('polyline', {
              points: s.points.map(p => `${X(p[0])},${Y(p[1])}`).join(' '),
              fill: 'none',
              stroke: s.color,
              'stroke-width': 2,
            })
          : null,
        s.dots || s.points.length === 1
          ? s.points.map(p =>
              svg(
                'circle',
                { cx: X(p[0]), cy: Y(p[1]), r: 3.5, fill: p[2] || s.color },
                svg('title', null, p[3] || `${xFormat(p[0])}: ${format(p[1])}`),
              ),
            )
          : null,
      ),
    )
    const mark = marker
      ? svg(
          'g',
          { class: 'marker' },
          svg('line', { x1: X(marker.x), x2: X(marker.x), y1: top, y2: height - bottom, 'stroke-dasharray': '4 3' }),
          svg('text', { x: X(marker.x) - 4, y: top + 10, 'text-anchor': 'end' }, marker.label),
        )
      : null
    const chart = svg(
      'svg',
      { class: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title },
      grid,
      svg('line', { class: 'axis-line', x1: left, x2: left, y1: top, y2: height - bottom }),
      xLabels,
      lines,
      mark,
    )
    const legend = series.length > 1 ? series.map(s => svg('tspan', { fill: s.color }, `● ${s.name}  `)) : []
    const head = document.createElement('h6')
    head.textContent = title
    if (legend.length)
      head.append(svg('svg', { class: 'legend', width: 240, height: 14 }, svg('text', { y: 11 }, legend)))
    return div('chart-box', head, chart)
  }

  function bytes(n) {
    if (n < 1024) return `${Math.round(n)} B`
    if (n < 1024 ** 2) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`
    if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(n < 10 * 1024 ** 2 ? 1 : 0)} MiB`
    return `${(n / 1024 ** 3).toFixed(1)} GiB`
  }
  const seconds = ms => `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)}s`

  /** Charts of a vm.migrate() result attachment (MigrationResult with samples), or null for other JSON. */
  function migrationCharts(data) {
    if (!data || !Array.isArray(data.samples) || data.samples.length === 0 || typeof data.downtimeMs !== 'number')
      return null
    // Setup comes before QEMU counted anything: its zeros are not the state of the RAM.
    const samples = data.samples.filter(s => s && typeof s.t === 'number' && s.status !== 'setup')
    const at = (key, scale = 1) => samples.map(s => [s.t, (Number(s[key]) || 0) * scale])
    const switchover = samples.find(s => s.status !== 'active' && s.status !== 'setup')
    const marker = switchover ? { x: switchover.t, label: `downtime ${data.downtimeMs} ms` } : undefined
    const facts = [
      ['downtime', `${data.downtimeMs} ms`],
      ['total time', seconds(data.totalTimeMs || 0)],
      ['setup', `${data.setupTimeMs || 0} ms`],
      ['transferred', bytes(data.transferredBytes || 0)],
      ['throughput', `${data.throughputMbps || 0} Mbit/s`],
      ['dirty syncs', String(data.dirtySyncCount || 0)],
      ['postcopy', data.postcopy ? 'yes' : 'no'],
      ['storage', data.storage === 'copy' ? `copied ${bytes(data.storageBytes || 0)}` : 'shared'],
    ]
    const dl = document.createElement('dl')
    dl.className = 'migration-facts'
    for (const [k, v] of facts) {
      const dt = document.createElement('dt')
      dt.textContent = k
      const dd = document.createElement('dd')
      dd.textContent = v
      dl.append(dt, dd)
    }
    const common = { xFormat: seconds, marker }
    return div(
      'migration-charts',
      dl,
      lineChart({
        ...common,
        title: 'Remaining RAM',
        format: bytes,
        series: [{ name: 'remaining', color: '#0969da', points: at('remainingBytes') }],
      }),
      lineChart({
        ...common,
        title: 'Throughput',
        format: v => `${Math.round(v)} Mbit/s`,
        series: [{ name: 'throughput', color: '#1a7f37', points: at('mbps') }],
      }),
      samples.some(s => s.dirtyBytesPerSec > 0)
        ? lineChart({
            ...common,
            title: 'Dirty rate',
            format: v => `${bytes(v)}/s`,
            series: [{ name: 'dirty rate', color: '#cf222e', points: at('dirtyBytesPerSec') }],
          })
        : div(
            'chart-box note',
            'Dirty rate: QEMU reported none (it measures it at a dirty sync at least 1 s after the previous one; this migration had no such sync).',
          ),
    )
  }

  window.vtCharts = { svg, lineChart, migrationCharts, niceMax }
})()
