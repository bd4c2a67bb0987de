// Template eviction: the least recently used templates beyond the newest few go, unless used in the last hour
// or just built; a use bumps a template's age; leftovers of an interrupted eviction are removed.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { evictTemplates } from '../../agent/vm/templates.ts'

const key = (i: number) => i.toString(16).padStart(20, '0')

test('evictTemplates keeps the newest, the recently used and the one just built; removes the rest', t => {
  const root = mkdtempSync(join(tmpdir(), 'vt-evict-'))
  t.after(() => rmSync(root, { recursive: true, force: true }))
  const hour = 3600_000
  // Twelve templates, template i last used i hours and a minute ago.
  for (let i = 0; i < 12; i++) {
    const dir = join(root, key(i))
    mkdirSync(dir)
    writeFileSync(join(dir, 'ram'), 'x')
    const when = new Date(Date.now() - i * hour - 60_000)
    utimesSync(dir, when, when)
  }
  mkdirSync(join(root, `.evicted-${key(99)}-1`))
  writeFileSync(join(root, `${key(3)}.lock`), '')
  const removed = evictTemplates(root, key(11), { keep: 4, recentMs: 2.5 * hour })
  // Kept: the 4 newest (0..3), 0..2 are recent anyway, and 11 (just built).
  assert.deepEqual(removed.sort(), [4, 5, 6, 7, 8, 9, 10].map(key))
  assert.deepEqual(
    readdirSync(root).sort(),
    [key(0), key(1), key(2), key(3), `${key(3)}.lock`, key(11)].sort(),
    'the interrupted eviction is cleaned up, locks stay',
  )
  assert.ok(existsSync(join(root, key(11), 'ram')))
})

test('evictTemplates on a missing cache does nothing', () => {
  assert.deepEqual(evictTemplates(join(tmpdir(), 'vt-no-such-cache-dir')), [])
})
