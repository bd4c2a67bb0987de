// What a failed migration leaves in the source QEMU, and putting it back so that the next migration of the same
// VM starts clean: the capabilities and parameters the attempt set (QEMU keeps them: a failed postcopy attempt
// left postcopy-ram on, and the next migration failed with "RAM postcopy is disabled but have 16 byte advise";
// a stale multifd with "Broken pipe"), and the migration itself. migrate_cancel shuts only the main channel down:
// multifd channels blocked on a peer that stopped reading (a stopped or partitioned destination) keep the source
// in 'cancelling' until TCP gives up, and until QEMU's cleanup has run the migration's yank instance stays
// registered, so a new `migrate` fails with "duplicate yank instance". `yank` cuts every migration channel loose.
import type { MigrateParameters, MigrationCapabilityStatus } from '../protocol/qmp.ts'
import type { MigrationSide } from './types.ts'

const ACTIVE = new Set(['setup', 'active', 'postcopy-active', 'pre-switchover', 'device', 'wait-unplug', 'cancelling'])
/** A cancel that has not ended after this long is stuck on a channel: yank. */
const YANK_AFTER_MS = 1000
const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms))

export function isActive(status: string | undefined): boolean {
  return ACTIVE.has(status ?? 'none')
}

/**
 * The capabilities to set for an attempt: the requested ones, plus every one the source has on that the request
 * does not mention, turned off (left on by an earlier failed attempt, or by hand through vm.qmp) — except
 * `return-path`, which stays on (on both sides: see keepReturnPath).
 */
export function capabilitiesFor(
  requested: Record<string, boolean>,
  current: readonly MigrationCapabilityStatus[],
): MigrationCapabilityStatus[] {
  const caps = { ...requested }
  for (const c of current) if (c.state && !(c.capability in caps)) caps[c.capability] = c.capability === 'return-path'
  return Object.entries(caps).map(([capability, state]) => ({ capability, state }))
}

/**
 * QEMU 7.2 never joins the source's return-path thread of a migration that failed or was cancelled, so its
 * `rp_thread_created` stays set: every later migration from that QEMU sends OPEN_RETURN_PATH and a PING although
 * nothing reads the reply. The destination's PONG sits unread in the source's socket, and when the source closes
 * it after 'completed', Linux sends a reset that drops the RAM still in flight: the destination fails with "error
 * while loading state section id 2(ram)" (Input/output error), the more often the slower it reads. An attempt
 * that had a return path (postcopy-ram or return-path on) therefore leaves `return-path` on in the source, and
 * capabilitiesFor keeps it on for both sides of every later attempt: each has its own return path, which reads
 * the replies.
 */
export async function keepReturnPath(src: MigrationSide, attempt: readonly MigrationCapabilityStatus[]): Promise<void> {
  const hadOne = attempt.some(c => c.state && (c.capability === 'postcopy-ram' || c.capability === 'return-path'))
  if (hadOne)
    await src.execute('migrate-set-capabilities', { capabilities: [{ capability: 'return-path', state: true }] })
}

/** What the source had before an attempt changed it, and how to put it back after a failure. */
export interface SourceSettings {
  capabilities: MigrationCapabilityStatus[]
  parameters: MigrateParameters
}

export async function readSettings(src: MigrationSide): Promise<SourceSettings> {
  const [capabilities, parameters] = await Promise.all([
    src.execute('query-migrate-capabilities'),
    src.execute('query-migrate-parameters'),
  ])
  return { capabilities, parameters }
}

/** Restores the capabilities and the parameters an attempt set (only those) to their values before it. */
export async function restoreSettings(
  src: MigrationSide,
  before: SourceSettings,
  changed: { capabilities: readonly string[]; parameters: readonly string[] },
): Promise<void> {
  const was = new Map(before.capabilities.map(c => [c.capability, c.state]))
  const capabilities = changed.capabilities.map(capability => ({ capability, state: was.get(capability) ?? false }))
  if (capabilities.length) await src.execute('migrate-set-capabilities', { capabilities })
  const old = before.parameters as Record<string, unknown>
  const parameters = Object.fromEntries(changed.parameters.filter(k => old[k] !== undefined).map(k => [k, old[k]]))
  if (Object.keys(parameters).length) await src.execute('migrate-set-parameters', parameters as MigrateParameters)
}

async function yankRegistered(src: MigrationSide): Promise<boolean> {
  const instances = await src.execute('query-yank').catch(() => [])
  return instances.some(i => i.type === 'migration')
}

/**
 * Waits until the source has really left a migration that is ending (cancelled, failed): its status is no longer
 * active and QEMU's cleanup has released the migration's channels (its yank instance is gone). Still there after
 * YANK_AFTER_MS, the channels are yanked. Resolves with the last migration info, or a reason when `deadline` (performance.now()) passed.
 */
export async function leaveMigration(
  src: MigrationSide,
  deadline: number,
): Promise<{ status: string; errorDesc?: string; stuck?: string }> {
  const since = performance.now()
  let yanked = false
  for (;;) {
    const info = await src.execute('query-migrate')
    const status = info.status ?? 'none'
    if (!isActive(status) && !(await yankRegistered(src))) return { status, errorDesc: info['error-desc'] }
    if (performance.now() > deadline) {
      return {
        status,
        stuck: isActive(status)
          ? `the source QEMU is still in migration state '${status}'${yanked ? ' after yank' : ''}`
          : `the source QEMU has not released the channels of its migration ('${status}')`,
      }
    }
    if (!yanked && performance.now() - since > YANK_AFTER_MS) {
      yanked = true
      await src.execute('yank', { instances: [{ type: 'migration' }] }).catch(() => {})
    }
    await sleep(25)
  }
}
