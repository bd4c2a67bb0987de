// Host-side network faults and how to undo them. Each fault is self-contained (its own nftables table, or its
// own htb class + filter) so that healing one never touches another, and a record holds all an undo needs.
import { randomBytes } from 'node:crypto'
import { ErrorNames, VtError } from '../../src/protocol/errors.ts'
import { routeDevice, tool } from './cmd.ts'

export type FaultRecord =
  | { fault: 'partition'; table: string; peers: string[] }
  | { fault: 'dropFrames'; table: string; bridge: string }
  | { fault: 'slowLink'; dev: string; minor: string; peer: string; rate: string }

const nft = (args: string[], input?: string) => tool('nft', args, input)
const tc = (...args: string[]) => tool('tc', args)

function tableName(): string {
  return `vtf_${randomBytes(5).toString('hex')}`
}

/** Drops everything this host sends to or receives from `peers` (input, output and forwarded). */
export async function applyPartition(peers: string[]): Promise<FaultRecord> {
  const table = tableName()
  const set = `{ ${peers.join(', ')} }`
  const script = `table inet ${table} {
  chain vt_input { type filter hook input priority -10; policy accept; ip saddr ${set} drop; }
  chain vt_output { type filter hook output priority -10; policy accept; ip daddr ${set} drop; }
  chain vt_forward { type filter hook forward priority -10; policy accept; ip saddr ${set} drop; ip daddr ${set} drop; }
}
`
  await nft(['-f', '-'], script)
  return { fault: 'partition', table, peers }
}

/** Drops frames between MACs of `a` and MACs of `b` crossing this host's bridge or its own stack. */
export async function applyDropFrames(bridge: string, a: string[], b: string[]): Promise<FaultRecord> {
  const table = tableName()
  const A = `{ ${a.join(', ')} }`
  const B = `{ ${b.join(', ')} }`
  const rules = `ether saddr ${A} ether daddr ${B} drop; ether saddr ${B} ether daddr ${A} drop;`
  const script = `table bridge ${table} {
  chain vt_forward { type filter hook forward priority -10; policy accept; ${rules} }
  chain vt_input { type filter hook input priority -10; policy accept; ${rules} }
  chain vt_output { type filter hook output priority -10; policy accept; ${rules} }
}
`
  await nft(['-f', '-'], script)
  return { fault: 'dropFrames', table, bridge }
}

const RATE_UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1000 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  bps: 1,
  kbps: 1000,
  mbps: 1e6,
  gbps: 1e9,
}

function rateBytes(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)([a-z]+)$/i.exec(rate)
  const unit = m ? RATE_UNITS[m[2].toLowerCase()] : undefined
  if (!m || unit === undefined) throw new VtError(ErrorNames.badRequest, `"${rate}" is not a tc rate like "20mbit"`)
  return Number(m[1]) * unit
}

/** Handles of the htb classes on `dev` ('1:1', '1:2', ...); tc prints no JSON for classes. */
async function htbClasses(dev: string): Promise<string[]> {
  const text = await tc('class', 'show', 'dev', dev)
  return [...text.matchAll(/^class htb (\S+)/gm)].map(m => m[1])
}

/**
 * Shapes what this host sends to `peer` to `rate`: an htb root on the route's interface (default class
 * unlimited), one class per slow link with a tbf leaf, and a u32 filter on the destination address.
 */
export async function applySlowLink(peer: string, rate: string): Promise<FaultRecord> {
  const bytes = rateBytes(rate)
  const { dev } = await routeDevice(peer)
  const qdiscs = JSON.parse((await tc('-j', 'qdisc', 'show', 'dev', dev)) || '[]') as { kind: string; root?: boolean }[]
  const root = qdiscs.find(q => q.root)
  if (root?.kind !== 'htb') {
    try {
      await tc('qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1')
    } catch (e) {
      throw missing(e, 'htb (sch_htb)', rate)
    }
    await tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '100gbit')
  }
  const used = new Set(await htbClasses(dev))
  let minor = ''
  for (let n = 2; n < 0xfff0; n++) {
    if (!used.has(`1:${n.toString(16)}`)) {
      minor = n.toString(16)
      break
    }
  }
  const record: FaultRecord = { fault: 'slowLink', dev, minor, peer, rate }
  try {
    await tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', `1:${minor}`, 'htb', 'rate', rate, 'ceil', rate)
    const burst = Math.max(16_000, Math.ceil(bytes / 50))
    await tc(
      'qdisc',
      'add',
      'dev',
      dev,
      'parent',
      `1:${minor}`,
      'handle',
      `${minor}:`,
      'tbf',
      'rate',
      rate,
      'burst',
      String(burst),
      'latency',
      '400ms',
    ).catch(e => {
      throw missing(e, 'tbf (sch_tbf)', rate)
    })
    await tc(
      'filter',
      'add',
      'dev',
      dev,
      'parent',
      '1:',
      'protocol',
      'ip',
      'prio',
      String(Number.parseInt(minor, 16)),
      'u32',
      'match',
      'ip',
      'dst',
      `${peer}/32`,
      'flowid',
      `1:${minor}`,
    ).catch(e => {
      throw missing(e, 'the u32 classifier (cls_u32)', rate)
    })
  } catch (e) {
    await undoFault(record).catch(() => {})
    throw e
  }
  return record
}

function missing(e: unknown, what: string, rate: string): Error {
  const msg = (e as Error).message
  if (/unknown|not found|No such file/i.test(msg)) {
    return new VtError(
      ErrorNames.badRequest,
      `slowLink(${rate}) needs ${what}, which this host's kernel lacks: ${msg}`,
      { code: 'KERNEL_FEATURE' },
    )
  }
  return e as Error
}

export async function undoFault(r: FaultRecord): Promise<void> {
  if (r.fault === 'partition') await nft(['delete', 'table', 'inet', r.table]).catch(ignoreGone)
  else if (r.fault === 'dropFrames') await nft(['delete', 'table', 'bridge', r.table]).catch(ignoreGone)
  else {
    const prio = String(Number.parseInt(r.minor, 16))
    await tc('filter', 'del', 'dev', r.dev, 'parent', '1:', 'prio', prio).catch(() => {})
    await tc('qdisc', 'del', 'dev', r.dev, 'parent', `1:${r.minor}`).catch(() => {})
    await tc('class', 'del', 'dev', r.dev, 'classid', `1:${r.minor}`).catch(() => {})
    const rest = (await htbClasses(r.dev).catch(() => [])).filter(c => c !== '1:1')
    if (rest.length === 0) await tc('qdisc', 'del', 'dev', r.dev, 'root').catch(() => {})
  }
}

function ignoreGone(e: unknown): void {
  if (!/No such file|does not exist/i.test((e as Error).message)) throw e
}
