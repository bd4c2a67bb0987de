// The `console` service (contract: src/protocol/console.ts): terminals for `vt console`. A VM's shell is
// reached in the session that owns the VM, named by its id and secret; a host shell runs in this agent's
// namespace and is a host command, so a confined agent refuses it. Every terminal ends with its session.
import os from 'node:os'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import { HostShell } from '../console/hostShell.ts'
import { type ShellSink, VmShell, type VmShells } from '../console/vmShell.ts'
import { implement } from '../service.ts'
import { sessionManagers } from '../vm/registry.ts'

type Terminal = Pick<HostShell, 'write' | 'resize' | 'end'>

export const consoleService = implement('console', agent => {
  const vmShells: VmShells = new Map()
  const wrongOwner = (what: string) =>
    new VtError(
      ErrorNames.notFound,
      `${what}: no live session with that id and secret on host ${agent.name} (the paused run ended, or its state file is stale)`,
      { code: 'ENOENT' },
    )

  return session => {
    const open = new Map<number, Terminal>()
    session.onClose(() => {
      for (const t of open.values()) t.end()
      open.clear()
    })

    const sinkFor = (stream: number): ShellSink => ({
      data: chunk => {
        agent.sendStream(session.id, stream, chunk).catch(() => {})
      },
      closed: (reason, exitCode) => {
        if (!open.delete(stream)) return
        unsubscribe.get(stream)?.()
        unsubscribe.delete(stream)
        session.emit('closed', { stream, reason, ...(exitCode !== undefined ? { exitCode } : {}) })
      },
    })
    const unsubscribe = new Map<number, () => void>()

    const get = (stream: number) => {
      const t = open.get(stream)
      if (!t) throw new VtError(ErrorNames.badRequest, `no console open on stream ${stream}`, { code: 'BAD_REQUEST' })
      return t
    }

    return {
      async open({ target, stream, cols, rows, term }) {
        if (open.has(stream)) {
          throw new VtError(ErrorNames.badRequest, `stream ${stream} is already open`, { code: 'BAD_REQUEST' })
        }
        let terminal: Terminal
        let label: string
        if (target.kind === 'vm') {
          const owner = agent.peerSession(target.owner.session, target.owner.secret)
          if (!owner) throw wrongOwner(`VM ${target.name}`)
          const mgr = sessionManagers(agent).get(owner.id)
          if (!mgr) throw wrongOwner(`VM ${target.name}`)
          const machine = mgr.get(target.name)
          label = machine.label
          const shell = await VmShell.attach(machine, `${owner.id}/${target.name}`, vmShells, sinkFor(stream))
          shell.resize(cols, rows)
          terminal = {
            write: c => shell.write(c),
            resize: (c, r) => shell.resize(c, r),
            end: () => shell.end('detached'),
          }
        } else {
          if (agent.confined) {
            throw new VtError(
              ErrorNames.badRequest,
              `a host shell is refused: this agent is confined (vt agent --confined runs no host commands)`,
              { code: 'CONFINED' },
            )
          }
          let cwd = os.homedir()
          if (target.owner) {
            const owner = agent.peerSession(target.owner.session, target.owner.secret)
            if (!owner) throw wrongOwner('host shell')
            cwd = owner.dir
          }
          label = `host ${agent.name}`
          terminal = await HostShell.start({
            host: agent.name,
            cwd,
            dir: session.dir,
            id: stream,
            cols,
            rows,
            term,
            sink: sinkFor(stream),
            track: (pid, startTime) =>
              session.track({ kind: 'process', pid, startTime, group: true, label: 'vt console host shell' }),
            untrack: id => void session.untrack(id).catch(() => {}),
          })
        }
        open.set(stream, terminal)
        unsubscribe.set(
          stream,
          agent.onStream(session.id, stream, chunk => terminal.write(chunk)),
        )
        session.log.info('console opened', { session: session.id, target: label })
        return { label }
      },
      resize: (stream, cols, rows) => get(stream).resize(cols, rows),
      close: stream => get(stream).end(),
    }
  }
})
