// The migration engine: drives two QEMUs through QMP the way libvirt does, with vt's failure semantics.
//
//   precheck → start-destination (-incoming defer) → configure (capabilities on both sides,
//   parameters) → incoming (migrate-incoming on port 0 of the destination's address; the real port comes
//   back in query-migrate) → storage (copy only: NBD export on the destination, drive-mirror from the
//   source, wait until ready) → migrate (progress from MIGRATION events + query-migrate polling, optional
//   postcopy switch) → complete (mirror cancelled = left consistent, exports stopped) → resume (cont on
//   a destination started paused; one started without -S resumes itself as soon as it has loaded the last
//   pass) → cleanup (driver shuts the source down and re-points the handle).
//
// Any failure before completion: migrate_cancel, block jobs cancelled, destination destroyed, source resumed
// and checked, then a MigrationError with the phase, QEMU's error text and the last numbers. A failure after
// the destination resumed the guest (and the source stopped for good) completes the move instead.
// Over 400 lines on purpose: the phases share one scope (what was started, the last numbers) that recovery
// must see whichever phase failed; the storage-mirror and resume helpers below are the parts that stand alone.
import { type QmpErrorInfo, VtError } from '../protocol/errors.ts'
import type { BlockInfo, MigrationCapabilityStatus, MigrationInfo, QmpEvent } from '../protocol/qmp.ts'
import { MigrationError } from './errors.ts'
import { SampleRecorder, sampleOf } from './samples.ts'
import {
  capabilitiesFor,
  isActive,
  keepReturnPath,
  leaveMigration,
  readSettings,
  restoreSettings,
  type SourceSettings,
} from './settle.ts'
import type {
  DestinationSide,
  MigrateOptions,
  MigrationDriver,
  MigrationParameters,
  MigrationPhase,
  MigrationProgress,
  MigrationResult,
  MigrationSide,
} from './types.ts'

/** Stops a wait early: timeout, abort, lost destination or source. */
class Interrupt extends Error {
  constructor(
    message: string,
    readonly kind: 'timeout' | 'aborted' | 'lost',
  ) {
    super(message)
  }
}

/** QEMU reported the migration failed (query-migrate), with its error-desc. */
class QemuMigrationFailed extends Error {
  constructor(
    message: string,
    readonly qemuError: string | undefined,
  ) {
    super(message)
  }
}

/** QEMU's answer to a rejected QMP command: set by the QMP client, kept in the error data through an agent. */
function qmpErrorOf(err: unknown): QmpErrorInfo | undefined {
  return err instanceof VtError ? err.qmp : undefined
}

const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

function validate(options: MigrateOptions<unknown>): void {
  if (!options || typeof options !== 'object')
    throw new TypeError('vm.migrate(options): options must be an object with `to`')
  if (options.to === undefined || options.to === null)
    throw new TypeError('vm.migrate(options): `to` (the destination host) is required')
  if (options.timeout !== undefined && !(typeof options.timeout === 'number' && options.timeout > 0)) {
    throw new TypeError(
      `vm.migrate(options): timeout must be a positive number of milliseconds, got ${String(options.timeout)}`,
    )
  }
  if (options.storage !== undefined && options.storage !== 'shared' && options.storage !== 'copy') {
    throw new TypeError(
      `vm.migrate(options): storage must be 'shared' or 'copy', got ${JSON.stringify(options.storage)}`,
    )
  }
  if (
    options.postcopy !== undefined &&
    typeof options.postcopy !== 'boolean' &&
    !(typeof options.postcopy === 'number' && options.postcopy >= 0)
  ) {
    throw new TypeError(
      'vm.migrate(options): postcopy must be true, false or a number of milliseconds of precopy before the switch',
    )
  }
  for (const [name, on] of Object.entries(options.capabilities ?? {})) {
    if (typeof on !== 'boolean') throw new TypeError(`vm.migrate(options): capabilities.${name} must be true or false`)
  }
  if (
    options.parameters !== undefined &&
    (typeof options.parameters !== 'object' || Array.isArray(options.parameters))
  ) {
    throw new TypeError('vm.migrate(options): parameters must be an object of migrate-set-parameters keys')
  }
}

function progressOf(
  info: MigrationInfo,
  phase: MigrationPhase,
  elapsedMs: number,
  storage?: MigrationProgress['storage'],
): MigrationProgress {
  const ram = info.ram
  return {
    phase,
    status: info.status ?? 'none',
    elapsedMs,
    transferredBytes: ram?.transferred ?? 0,
    remainingBytes: ram?.remaining ?? 0,
    totalBytes: ram?.total ?? 0,
    dirtySyncCount: ram?.['dirty-sync-count'] ?? 0,
    mbps: ram?.mbps ?? 0,
    ...(storage ? { storage } : {}),
  }
}

/**
 * Migrates the VM behind `driver` to `options.to`. `vm` is what `during` and `after` receive.
 */
/** How long a lost side waits for the links to show which host actually went away. */
const LOST_SETTLE_MS = 250

export async function runMigration<Host, V>(
  driver: MigrationDriver<Host>,
  options: MigrateOptions<Host, V>,
  vm: V,
): Promise<MigrationResult> {
  validate(options as MigrateOptions<unknown>)
  const started = performance.now()
  const src = driver.source
  const from = src.host
  const to = driver.hostName(options.to)
  const storage = options.storage ?? 'shared'
  const interval = options.progressIntervalMs ?? 250
  let phase: MigrationPhase = 'precheck'
  let dest: DestinationSide | undefined
  /** The destination being started: interrupted meanwhile, it is still awaited and destroyed. */
  let starting: Promise<DestinationSide> | undefined
  let last: MigrationProgress | undefined
  let migrateIssued = false
  let switchedToPostcopy = false
  /** The source's settings before this attempt, and what it changed: put back after a failure. */
  let settingsBefore: SourceSettings | undefined
  const changed = { capabilities: [] as string[], parameters: [] as string[] }
  let attemptCapabilities: MigrationCapabilityStatus[] = []
  const mirrorJobs: string[] = []
  let storageBytes = 0
  const offs: (() => void)[] = []

  // One place that ends every wait: timeout, caller's abort, a side going away.
  const stop = new AbortController()
  const stopped = new Promise<never>((_, reject) => {
    stop.signal.addEventListener('abort', () => reject(stop.signal.reason), { once: true })
  })
  stopped.catch(() => {})
  const timer = options.timeout
    ? setTimeout(
        () => stop.abort(new Interrupt(`did not complete within the timeout of ${options.timeout} ms`, 'timeout')),
        options.timeout,
      )
    : undefined
  const onAbort = () =>
    stop.abort(new Interrupt(`cancelled: ${String(options.signal?.reason ?? 'aborted')}`, 'aborted'))
  if (options.signal?.aborted) onAbort()
  options.signal?.addEventListener('abort', onAbort, { once: true })
  // A dying agent takes its QEMU along, and the other side's QEMU then fails as well, often first: let the
  // links settle a moment, then name the side whose host's link is down, if any, rather than the first to report.
  const sideLost = (label: string, reason: string) => {
    setTimeout(() => {
      if (stop.signal.aborted) return
      const down: [string, string | undefined][] = [
        [`the source QEMU on ${from}`, src.linkDown?.()],
        [`the destination QEMU on ${to}`, dest?.linkDown?.()],
      ]
      const [who, why] = down.find(([, why]) => why) ?? [label, reason]
      stop.abort(new Interrupt(`${who} is gone: ${why}`, 'lost'))
    }, LOST_SETTLE_MS).unref?.()
  }
  void src.lost.then(reason => sideLost(`the source QEMU on ${from}`, reason))
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stopped])

  let duringRun: Promise<unknown> | undefined
  const recorder = new SampleRecorder()
  let migrateAt = started
  try {
    await guard(driver.precheck(options.to))
    await guard(leaveEarlierMigration(src))

    phase = 'start-destination'
    starting = driver.startDestination(options.to, { storage })
    dest = await guard(starting)
    const d = dest
    void d.lost.then(reason => sideLost(`the destination QEMU on ${to}`, reason))

    phase = 'configure'
    const caps: Record<string, boolean> = { events: true }
    if (options.postcopy) caps['postcopy-ram'] = true
    Object.assign(caps, options.capabilities ?? {})
    settingsBefore = await guard(readSettings(src))
    const capabilities = capabilitiesFor(caps, settingsBefore.capabilities)
    attemptCapabilities = capabilities
    changed.capabilities = capabilities.map(c => c.capability)
    await guard(
      Promise.all([
        src.execute('migrate-set-capabilities', { capabilities }),
        d.execute('migrate-set-capabilities', { capabilities }),
      ]),
    )
    const parameters: MigrationParameters = { ...(options.parameters ?? {}) }
    if (Object.keys(parameters).length > 0) {
      changed.parameters = Object.keys(parameters)
      await guard(src.execute('migrate-set-parameters', parameters))
      if (parameters['multifd-channels'] !== undefined) {
        await guard(d.execute('migrate-set-parameters', { 'multifd-channels': parameters['multifd-channels'] }))
      }
    }

    phase = 'incoming'
    await guard(d.execute('migrate-incoming', { uri: `tcp:${hostPort(d.address, 0)}` }))
    const incoming = await guard(d.execute('query-migrate'))
    const listen = incoming['socket-address']?.[0]
    const port = Number(listen?.type === 'inet' ? listen.port : undefined)
    if (!port) throw new Error(`the destination did not report its incoming port: ${JSON.stringify(incoming)}`)

    if (storage === 'copy') {
      phase = 'storage'
      await guard(startMirror(src, d, await guard(driver.freePort(options.to)), mirrorJobs))
      await guard(
        waitMirrorReady(src, mirrorJobs, interval, p =>
          options.onProgress?.({ ...progressOf({}, 'storage', performance.now() - started), storage: p }),
        ),
      )
    }

    phase = 'migrate'
    // A MIGRATION event ends the wait between two polls at once; `seen` keeps one that arrives while a
    // query is in flight from being missed.
    let wake: (() => void) | undefined
    let seen = false
    offs.push(
      src.onEvent((ev: QmpEvent) => {
        if (ev.event !== 'MIGRATION') return
        seen = true
        wake?.()
      }),
    )
    if (options.during) {
      duringRun = Promise.resolve().then(() => options.during?.(vm))
      duringRun.catch(() => {})
    }
    if (driver.checkPath) await guard(driver.checkPath(options.to))
    migrateAt = performance.now()
    // Set first: interrupted while `migrate` is in flight, recovery must still cancel it.
    migrateIssued = true
    await guard(src.execute('migrate', { uri: `tcp:${hostPort(d.address, port)}` }))
    let info: MigrationInfo
    for (;;) {
      seen = false
      info = await guard(src.execute('query-migrate'))
      last = progressOf(info, phase, performance.now() - started, await mirrorProgress(src, mirrorJobs))
      recorder.add(sampleOf(info, phase, performance.now() - migrateAt))
      options.onProgress?.(last)
      const status = info.status ?? 'none'
      if (status === 'completed') break
      if (status === 'failed' || status === 'cancelled' || status === 'none') {
        throw new QemuMigrationFailed(
          `QEMU reports migration ${status}${info['error-desc'] ? `: ${info['error-desc']}` : ''}`,
          info['error-desc'],
        )
      }
      if (options.postcopy && !switchedToPostcopy && status === 'active') {
        const due =
          options.postcopy === true
            ? (info.ram?.['dirty-sync-count'] ?? 0) >= 2
            : performance.now() - migrateAt >= options.postcopy
        if (due) {
          phase = 'postcopy'
          await guard(src.execute('migrate-start-postcopy'))
          switchedToPostcopy = true
          // The destination runs the guest from now on (it was started paused, so resume it explicitly).
          await guard(resumeWhenLoaded(d, 'postcopy'))
        }
      }
      if (!seen) {
        let timer: NodeJS.Timeout | undefined
        await guard(
          new Promise<void>(r => {
            wake = r
            timer = setTimeout(r, interval)
          }),
        ).finally(() => clearTimeout(timer))
      }
      wake = undefined
    }

    phase = 'complete'
    if (mirrorJobs.length > 0) storageBytes = await guard(finishMirror(src, d, mirrorJobs))
    phase = 'resume'
    // A destination started without -S has resumed itself already (no round trip through vt in the guest's
    // pause); one started paused (storage copy: the mirror must finish first) is resumed now.
    if (!switchedToPostcopy) await guard(resumeWhenLoaded(d, 'precopy'))
    const result = await finalNumbers(guard)
    phase = 'cleanup'
    await driver.commit(d, options.to)
    dest = undefined
    if (duringRun) await duringRun
    if (options.after) await options.after(vm)
    return result
  } catch (err) {
    if (err instanceof MigrationError) throw err
    // An error from `during`/`after` after a completed migration is the caller's, not a migration failure.
    if (phase === 'cleanup' && dest === undefined) throw err
    // The destination resumes the guest on its own once it has loaded it: should the failure (a timeout, a
    // lost link, a call that failed) come after that, the guest lives there now, and rolling back would throw
    // the live guest away and run an older copy of it. The migration took effect: finish it.
    const result = phase === 'cleanup' ? undefined : await takeOver()
    if (result) {
      if (duringRun) await duringRun
      if (options.after) await options.after(vm)
      return result
    }
    const message = await blame((err as Error).message, err instanceof Interrupt)
    const failure = await recover()
    throw new MigrationError({
      message,
      phase,
      from,
      to,
      qemuError: (err instanceof QemuMigrationFailed ? err.qemuError : qmpErrorOf(err)?.desc) ?? failure.qemuError,
      qmp: qmpErrorOf(err),
      lastStats: last,
      sourceRunning: failure.sourceRunning,
      cause: err,
    })
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
    for (const off of offs) off()
  }

  /** QEMU's final numbers from the source, as the result. */
  async function finalNumbers(wrap: <T>(p: Promise<T>) => Promise<T>): Promise<MigrationResult> {
    // QEMU sets the status to 'completed' before its migration thread computes total-time and downtime (7.2:
    // migration_completion, then migration_iteration_finish): a query in between reads zeros. Ask again until
    // the numbers are in (they come within milliseconds), so the result carries QEMU's own figures.
    let final = await wrap(src.execute('query-migrate'))
    for (let i = 0; i < 50 && final.status === 'completed' && !final['total-time']; i++) {
      await new Promise(r => setTimeout(r, 10))
      final = await wrap(src.execute('query-migrate'))
    }
    last = progressOf(final, 'complete', performance.now() - started)
    const samples = recorder.finish(sampleOf(final, 'complete', performance.now() - migrateAt))
    const enabled = (await wrap(src.execute('query-migrate-capabilities'))).filter(c => c.state).map(c => c.capability)
    const params = await wrap(src.execute('query-migrate-parameters'))
    const totalTimeMs = final['total-time'] ?? 0
    const transferredBytes = final.ram?.transferred ?? 0
    return {
      status: 'completed',
      from,
      to,
      wallMs: Math.round(performance.now() - started),
      totalTimeMs,
      downtimeMs: final.downtime ?? 0,
      setupTimeMs: final['setup-time'] ?? 0,
      transferredBytes,
      throughputMbps: totalTimeMs > 0 ? Math.round(((transferredBytes * 8) / 1e6 / (totalTimeMs / 1000)) * 10) / 10 : 0,
      dirtySyncCount: final.ram?.['dirty-sync-count'] ?? 0,
      postcopyRequests: final.ram?.['postcopy-requests'] ?? 0,
      capabilities: enabled,
      parameters: params,
      postcopy: switchedToPostcopy,
      storage,
      storageBytes,
      samples,
      raw: final,
    }
  }

  /**
   * After a failure in precopy: if the destination already runs the guest (it resumed on its own) while the
   * source has stopped for good, commits the move and returns the result; otherwise undefined (roll back).
   */
  async function takeOver(): Promise<MigrationResult | undefined> {
    const d = dest
    if (!d || !migrateIssued || switchedToPostcopy || d.gone?.() || src.gone?.()) return undefined
    const quiet = <T>(p: Promise<T>) => p.catch(() => undefined)
    const [here, info] = await Promise.all([quiet(src.execute('query-status')), quiet(src.execute('query-migrate'))])
    // A source that runs (QEMU resumes it itself when a migration fails after the stop) keeps the guest.
    if (here?.running !== false || info?.status !== 'completed') return undefined
    // The source sent everything: the destination either loads it and runs, or fails. Wait for which.
    let there = await quiet(d.execute('query-status'))
    for (
      const until = performance.now() + CANCEL_WAIT_MS;
      there?.status === 'inmigrate' && performance.now() < until;
    ) {
      await sleep(10)
      there = await quiet(d.execute('query-status'))
    }
    if (!there?.running) return undefined
    try {
      const result = await finalNumbers(p => p)
      phase = 'cleanup'
      await driver.commit(d, options.to)
      dest = undefined
      return result
    } catch {
      return undefined
    }
  }

  /**
   * A failure reported by one side (QEMU's stream broke, a call failed) may have been caused by the other side's
   * host dying: if a side's link is down (after a moment to settle), the message names that host first.
   */
  async function blame(message: string, fromLost: boolean): Promise<string> {
    if (fromLost) return message // sideLost already settled and named the host
    const down = () =>
      src.linkDown?.() !== undefined
        ? `the source QEMU on ${from} is gone: ${src.linkDown?.()}`
        : dest?.linkDown?.() !== undefined
          ? `the destination QEMU on ${to} is gone: ${dest.linkDown?.()}`
          : undefined
    if (!down() && phase !== 'precheck') await sleep(LOST_SETTLE_MS)
    const who = down()
    return who && !message.startsWith(who) ? `${who}; ${message}` : message
  }

  /** Puts things back: cancel, source running, destination gone. Never throws. */
  async function recover(): Promise<{ sourceRunning: boolean; qemuError?: string }> {
    let qemuError: string | undefined
    const quiet = <T>(p: Promise<T>) => p.catch(() => undefined)
    // Never wait on a host whose agent is known to be gone: what it ran died with it.
    const srcGone = src.gone?.() ?? false
    if (migrateIssued && !switchedToPostcopy && !srcGone) {
      await quiet(src.execute('migrate_cancel'))
      // Report only once the source has really left the migration (a stream cut by a partition takes a
      // while to cancel): a retry right after the failure must find QEMU ready for a new one.
      const left = await quiet(leaveMigration(src, performance.now() + CANCEL_WAIT_MS))
      qemuError = left?.stuck ? `${left.stuck} ${CANCEL_WAIT_MS / 1000} s after migrate_cancel` : left?.errorDesc
    }
    if (settingsBefore && !switchedToPostcopy && !srcGone) {
      await quiet(restoreSettings(src, settingsBefore, changed))
      if (migrateIssued) await quiet(keepReturnPath(src, attemptCapabilities))
    }
    if (!srcGone) {
      for (const job of mirrorJobs) await quiet(src.execute('block-job-cancel', { device: job, force: true }))
    }
    if (!dest && starting) dest = await quiet(starting)
    if (dest) {
      if (!dest.gone?.()) await quiet(dest.destroy())
      dest = undefined
    }
    let sourceRunning = false
    if (!switchedToPostcopy && !srcGone) {
      const status = await quiet(src.execute('query-status'))
      if (
        status &&
        !status.running &&
        (status.status === 'paused' || status.status === 'postmigrate' || status.status === 'finish-migrate')
      ) {
        await quiet(src.execute('cont'))
      }
      const after = await quiet(src.execute('query-status'))
      sourceRunning = after?.running ?? false
    }
    return { sourceRunning, qemuError }
  }
}

const CANCEL_WAIT_MS = 30_000

/** Waits (up to CANCEL_WAIT_MS) for the source to leave a migration an earlier attempt left ending. */
async function leaveEarlierMigration(src: MigrationSide): Promise<void> {
  const status = (await src.execute('query-migrate')).status ?? 'none'
  if (isActive(status) && status !== 'cancelling') {
    throw new Error(`the source is already migrating (QEMU reports '${status}'): wait for that migration to end`)
  }
  const left = await leaveMigration(src, performance.now() + CANCEL_WAIT_MS)
  if (left.stuck) throw new Error(`${left.stuck} ${CANCEL_WAIT_MS / 1000} s after an earlier migration: retry later`)
}

/** NBD export of every writable disk on the destination, drive-mirror into it from the source. */
async function startMirror(src: MigrationSide, dest: DestinationSide, nbdPort: number, jobs: string[]): Promise<void> {
  // A -drive has a device name; a -blockdev disk has only its root node name (same id on both sides).
  const key = (b: BlockInfo) => b.device || b.inserted?.['node-name'] || ''
  const srcBlocks = (await src.execute('query-block')).filter(b => b.inserted && !b.inserted.ro && key(b))
  const destBlocks = await dest.execute('query-block')
  const drives =
    dest.copyDrives ??
    srcBlocks.map(b => {
      const node = destBlocks.find(x => key(x) === key(b))?.inserted?.['node-name']
      if (!node) throw new Error(`storage copy: the destination has no drive ${key(b)} to copy into`)
      return { device: key(b), exportNode: node }
    })
  if (drives.length === 0) throw new Error("storage: 'copy' but the VM has no writable disk to copy")
  // nbd-server-start takes the legacy (boxed) SocketAddress form.
  await dest.execute('nbd-server-start', {
    addr: { type: 'inet', data: { host: dest.address, port: String(nbdPort) } },
  })
  for (const drive of drives) {
    await dest.execute('block-export-add', {
      type: 'nbd',
      id: `vt-mig-${drive.device}`,
      'node-name': drive.exportNode,
      name: drive.device,
      writable: true,
    })
  }
  for (const drive of drives) {
    const job = `vt-mig-${drive.device}`
    await src.execute('drive-mirror', {
      'job-id': job,
      device: drive.device,
      target: `nbd:${hostPort(dest.address, nbdPort)}:exportname=${drive.device}`,
      format: 'raw',
      sync: 'full',
      mode: 'existing',
    })
    jobs.push(job)
  }
}

async function mirrorProgress(src: MigrationSide, jobs: string[]): Promise<MigrationProgress['storage']> {
  if (jobs.length === 0) return undefined
  const list = (await src.execute('query-block-jobs')).filter(j => jobs.includes(j.device))
  return {
    offset: list.reduce((n, j) => n + j.offset, 0),
    len: list.reduce((n, j) => n + j.len, 0),
    ready: list.length === jobs.length && list.every(j => j.ready),
  }
}

async function waitMirrorReady(
  src: MigrationSide,
  jobs: string[],
  interval: number,
  report: (p: NonNullable<MigrationProgress['storage']>) => void,
): Promise<void> {
  for (;;) {
    const list = (await src.execute('query-block-jobs')).filter(j => jobs.includes(j.device))
    if (list.length < jobs.length)
      throw new Error(`a storage mirror job ended before it was ready (${jobs.join(', ')})`)
    const p = {
      offset: list.reduce((n, j) => n + j.offset, 0),
      len: list.reduce((n, j) => n + j.len, 0),
      ready: list.every(j => j.ready),
    }
    report(p)
    if (p.ready) return
    await sleep(Math.min(interval, 50))
  }
}

/** After the switch-over (source paused): cancel the ready mirrors (which completes them without pivoting). */
async function finishMirror(src: MigrationSide, dest: DestinationSide, jobs: string[]): Promise<number> {
  const before = (await src.execute('query-block-jobs')).filter(j => jobs.includes(j.device))
  for (const job of jobs) await src.execute('block-job-cancel', { device: job })
  for (let i = 0; ; i++) {
    const left = (await src.execute('query-block-jobs')).filter(j => jobs.includes(j.device))
    if (left.length === 0) break
    if (i > 2000) throw new Error(`storage mirror jobs did not finish: ${JSON.stringify(left)}`)
    await sleep(5)
  }
  jobs.length = 0
  await dest.execute('nbd-server-stop')
  return before.reduce((n, j) => n + j.len, 0)
}

/** Waits until the destination finished loading (or entered postcopy), then resumes it if it is paused. */
async function resumeWhenLoaded(dest: MigrationSide, mode: 'precopy' | 'postcopy'): Promise<void> {
  for (let i = 0; ; i++) {
    const s = await dest.execute('query-status')
    if (s.running) return
    if (s.status !== 'inmigrate') {
      await dest.execute('cont')
      return
    }
    if (i > 6000) throw new Error(`the destination stayed in ${s.status} after the ${mode} switch-over`)
    await sleep(5)
  }
}
