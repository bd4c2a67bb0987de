// The embedded cluster's NFS server: nfs-ganesha (userspace, VFS backend) and the rpcbind it registers with, in
// the cluster's storage namespace. This kernel has neither an NFS client nor a server module: QEMU and qemu-img
// open nfs:// URLs themselves (libnfs, NFSv3, which finds mountd through the portmapper on port 111).
// Both daemons run in a private mount namespace whose /run is the server's own temp dir, so that neither
// rpcbind's socket and lock nor ganesha's pid file meet those of another run or of the machine's own daemons;
// config, log, recovery dir and the export live in that temp dir too. Everything dies with the namespace: the
// run record names it, so a crashed controller's server is removed by its watcher like its agents.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface NfsServerOptions {
  /** The storage namespace (made with the run's underlay). */
  netns: string
  /** Its address on the underlay: what the hosts' URLs name. */
  address: string
  /** A fresh dir of the run for config, log, /run, recovery state and the export. */
  dir: string
  /** Default 30 s. */
  readyTimeoutMs?: number
  /** Called with the daemon's pid right after the spawn (for the run record). */
  onSpawn?: (pid: number) => void
}

export interface NfsServer {
  address: string
  /** The exported directory: on this machine, and the path in nfs:// URLs. */
  export: string
  pid: number
  log: string
  /** Set when the daemon exited without being stopped (killed, crashed). */
  readonly exited: { code: number | null; signal: NodeJS.Signals | null } | undefined
  stop(): Promise<void>
}

/** The nfs pools of a config that name no server: an embedded cluster serves them with its own server. */
export function poolsWithoutServer(pools: Record<string, { type: string; server?: string }> | undefined): string[] {
  return Object.entries(pools ?? {})
    .filter(([, p]) => p.type === 'nfs' && !p.server)
    .map(([name]) => name)
}

/** The pools with the embedded server filled into those that name none. */
export function withEmbeddedServer<P extends { type: string; server?: string; export?: string }>(
  pools: Record<string, P>,
  server: NfsServer | undefined,
): Record<string, P> {
  if (!server) return pools
  return Object.fromEntries(
    Object.entries(pools).map(([name, p]) => [
      name,
      p.type === 'nfs' && !p.server ? { ...p, server: server.address, export: server.export } : p,
    ]),
  )
}

const GANESHA = 'ganesha.nfsd'
const FSAL_DIR = '/usr/lib/x86_64-linux-gnu/ganesha'
const NFS_BLOCK_MODULE = '/usr/lib/x86_64-linux-gnu/qemu/block-nfs.so'

/** What this machine lacks to run the embedded NFS server, each with its Debian package (empty: nothing). */
export function missingNfsServerParts(): string[] {
  const has = (cmd: string) => {
    try {
      execFileSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { stdio: 'ignore', env: pathWithSbin() })
      return true
    } catch {
      return false
    }
  }
  const missing: string[] = []
  if (!has(GANESHA)) missing.push(`${GANESHA} (Debian package nfs-ganesha)`)
  if (!existsSync(join(FSAL_DIR, 'libfsalvfs.so'))) missing.push('the VFS backend of ganesha (nfs-ganesha-vfs)')
  if (!has('rpcbind')) missing.push('rpcbind (rpcbind)')
  if (!has('unshare')) missing.push('unshare (util-linux)')
  if (!existsSync(NFS_BLOCK_MODULE)) missing.push("QEMU's nfs:// support (qemu-block-extra)")
  return missing
}

function pathWithSbin(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin` }
}

/** Ganesha's config: one VFS export of `exportDir`, NFSv3 over TCP, root not squashed (QEMU runs as root). */
export function ganeshaConfig(exportDir: string, recoveryDir: string): string {
  const q = (s: string) => {
    if (/["\n\\]/.test(s)) throw new Error(`NFS server: unusable path ${JSON.stringify(s)}`)
    return `"${s}"`
  }
  return `NFS_CORE_PARAM {
  Protocols = 3;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Plugins_Dir = ${q(FSAL_DIR)};
}
NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = ${q(recoveryDir)}; }
EXPORT {
  Export_Id = 1;
  Path = ${q(exportDir)};
  Pseudo = "/vt";
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 3;
  Transports = TCP;
  SecType = sys;
  FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
`
}

// Runs inside `ip netns exec NS unshare -m`: the private /run first, rpcbind next (ganesha registers its
// programs with it at start), then ganesha in place of the shell, so that our child is the NFS server itself.
const START_SCRIPT = `set -e
mount --bind "$1/run" /run
rpcbind -f &
i=0
while [ ! -S /run/rpcbind.sock ]; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "rpcbind did not start" >&2; exit 1; }
  sleep 0.05
done
exec ${GANESHA} -F -f "$1/ganesha.conf" -L "$1/ganesha.log" -p /run/ganesha.pid
`

const READY_LINE = 'NFS SERVER INITIALIZED'

export async function startNfsServer(o: NfsServerOptions): Promise<NfsServer> {
  const missing = missingNfsServerParts()
  if (missing.length > 0) {
    throw new Error(
      `the embedded NFS server needs ${missing.join(', ')}; install them (vt setup does) or name your own server in the pool (server, export)`,
    )
  }
  const exportDir = join(o.dir, 'export')
  for (const d of ['run', 'recovery', 'export']) mkdirSync(join(o.dir, d), { recursive: true })
  writeFileSync(join(o.dir, 'ganesha.conf'), ganeshaConfig(exportDir, join(o.dir, 'recovery')))
  const log = join(o.dir, 'ganesha.log')
  const out = openSync(join(o.dir, 'daemon.out'), 'a')
  const child = spawn(
    'ip',
    ['netns', 'exec', o.netns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', START_SCRIPT, 'sh', o.dir],
    // Own session: a terminal's Ctrl-C reaches the runner, which stops the server after the agents.
    { stdio: ['ignore', out, out], detached: true, env: pathWithSbin() },
  )
  closeSync(out)
  child.on('error', () => {})
  if (child.pid !== undefined) o.onSpawn?.(child.pid)
  let exited: NfsServer['exited']
  let stopping = false
  child.on('exit', (code, signal) => {
    if (!stopping) {
      exited = { code, signal }
      process.stderr.write(
        `vt: the embedded NFS server (${o.address}, pid ${child.pid}) exited with ${signal ?? `code ${code}`}; I/O on its nfs:// disks stalls from now on\n`,
      )
    }
  })
  const stop = async () => {
    stopping = true
    await stopDaemon(child)
  }
  try {
    await waitReady(child, log, join(o.dir, 'daemon.out'), o.readyTimeoutMs ?? 30_000)
  } catch (e) {
    await stop()
    throw e
  }
  return {
    address: o.address,
    export: exportDir,
    pid: child.pid as number,
    log,
    get exited() {
      return exited
    },
    stop,
  }
}

function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}

function waitReady(child: ChildProcess, log: string, out: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const why = (what: string) => {
      const text = [tail(out), tail(log)].filter(Boolean).join('\n')
      return new Error(`the embedded NFS server (nfs-ganesha) ${what}${text ? `:\n${text}` : ''}`)
    }
    const onExit = (code: number | null, signal: string | null) => {
      clearInterval(timer)
      reject(why(`exited with ${signal ?? `code ${code}`} before it was ready`))
    }
    child.once('exit', onExit)
    const timer = setInterval(() => {
      let text = ''
      try {
        text = readFileSync(log, 'utf8')
      } catch {}
      if (text.includes(READY_LINE)) {
        clearInterval(timer)
        child.off('exit', onExit)
        resolve()
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer)
        child.off('exit', onExit)
        reject(why(`was not ready within ${timeoutMs / 1000} s`))
      }
    }, 50)
  })
}

/** SIGTERM (ganesha shuts down cleanly), SIGKILL after 5 s. rpcbind goes with the namespace. */
async function stopDaemon(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}
