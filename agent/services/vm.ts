// The `vm` service (contract: src/protocol/vm.ts): a VmManager per session, whose QEMU processes and
// directories are recorded with the session so its reaper removes them, whatever happens to this agent. Each VM
// books its memory and cpus in the agent's capacity ledger while its QEMU lives.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import type { VmQmpEvent } from '../../src/protocol/vm.ts'
import { cacheDir } from '../image/cache.ts'
import { implement } from '../service.ts'
import { agentStorage } from '../storage/index.ts'
import { syncEndpointOf } from '../sync/forwarder.ts'
import { type AccelProbe, probeAccel } from '../vm/accel.ts'
import { VmManager } from '../vm/manager.ts'
import { sessionManagers } from '../vm/registry.ts'

function cachedProbe(): AccelProbe | undefined {
  const file = join(cacheDir(), 'accel-probe.json')
  if (!existsSync(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as AccelProbe
  } catch {
    return undefined
  }
}

function matches(data: unknown, want: Record<string, unknown> | undefined): boolean {
  if (!want) return true
  const d = (data ?? {}) as Record<string, unknown>
  return Object.entries(want).every(([k, v]) => JSON.stringify(d[k]) === JSON.stringify(v))
}

export const vmService = implement('vm', agent => {
  let probe: AccelProbe | undefined = cachedProbe()
  // Decide the accelerator in the background (cached per machine boot): the first 'auto' VM needs it.
  probeAccel()
    .then(p => {
      probe = p
      agent.log.info('accelerator probe', { kvm: p.kvm, reason: p.reason })
    })
    .catch(err => agent.log.warn('accelerator probe failed', { error: (err as Error).message }))
  agent.addFacts(() => {
    if (!probe) return {}
    return {
      accelerators: probe.kvm ? ['kvm', 'tcg'] : ['tcg'],
      extra: { vm: { kvm: probe.kvm, kvmReason: probe.reason } },
    } as Record<string, unknown>
  })

  const storage = agentStorage({ roots: agent.roots, stateDir: agent.stateDir, log: agent.log })
  return session => {
    const mgr = new VmManager({
      resolveVolume: ref => storage.resolve(ref),
      host: agent.name,
      dir: session.dir,
      sync: syncEndpointOf(session.id),
      // Disks, kernels and firmware must come from the allowed roots or the image cache.
      roots: [...agent.roots, agent.stateDir, cacheDir()],
      confined: agent.confined,
      progress: message => {
        session.log.info(`image: ${message}`)
        session.emit('progress', { message })
      },
      hooks: {
        track: r => session.track(r),
        untrack: id => session.untrack(id),
        book: async (name, want, options) => {
          const owner = { session: session.id, kind: 'vm' as const, label: name }
          const what = `VM ${name}`
          const b = options.reservation
            ? agent.capacity.takeOver(options.reservation, want, owner, what)
            : await agent.capacity.book(want, owner, {
                timeoutMs: options.capacityTimeoutMs,
                signal: session.signal,
                what,
              })
          return () => agent.capacity.release(b.id)
        },
        onConsole: (name, data) => session.emit('console', { name, data }),
        onState: (name, status, reason) => session.emit('state', { name, status, ...(reason ? { reason } : {}) }),
        onQmpEvent: (name, ev) =>
          session.emit('qmp', { name, event: ev.event, data: ev.data, timestamp: ev.timestamp }),
      },
    })
    const managers = sessionManagers(agent)
    managers.set(session.id, mgr)
    session.onClose(() => {
      managers.delete(session.id)
      return mgr.destroyAll()
    })

    return {
      create: (spec, options) => mgr.create(spec, options),
      info: name => mgr.info(name),
      list: () => mgr.list(),
      async exec(name, req) {
        const r = await mgr.get(name).exec(req.command, { env: req.env, timeoutMs: req.timeoutMs })
        return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode, durationMs: r.durationMs }
      },
      readFile: (name, req) => mgr.get(name).readFile(req.path, req),
      async writeFile(name, req) {
        const data = typeof req.data === 'string' ? Buffer.from(req.data, 'utf8') : req.data
        await mgr.get(name).writeFile(req.path, data, req)
      },
      pause: name => mgr.get(name).pause(),
      resume: name => mgr.get(name).resume(),
      shutdown: (name, opts) => mgr.shutdown(name, opts?.timeoutMs),
      destroy: name => mgr.destroy(name),
      snapshot: (name, snap) => mgr.snapshot(name, snap),
      restore: (name, snap) => mgr.restore(name, snap),
      qmp: (name, command, args) => {
        const m = mgr.get(name)
        mgr.checkQmp(name, command, args)
        return m.requireQmp().execute(command, args)
      },
      async waitForQmpEvent(name, { event, data, timeoutMs, sinceStart }) {
        const ev = await mgr
          .get(name)
          .requireQmp()
          .waitForEvent(event, {
            predicate: d => matches(d, data),
            timeout: timeoutMs ?? 30_000,
            ...(sinceStart ? { since: 0 } : {}),
          })
        return { name, event: ev.event, data: ev.data, timestamp: ev.timestamp } satisfies VmQmpEvent
      },
      console: (name, opts) => mgr.get(name).console.text(opts?.tailBytes ?? 4 * 1024 * 1024),
      async consoleWrite(name, data) {
        const m = mgr.get(name)
        if (!m.alive) throw new VtError(ErrorNames.badRequest, `${m.label}: ${m.exitReason()}`)
        m.console.write(data)
      },
      transcript: name => mgr.get(name).transcript(),
    }
  }
})
