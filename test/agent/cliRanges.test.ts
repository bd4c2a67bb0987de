// `vt agent` numeric flags are checked when parsed: a lease outside what the protocol allows is refused with
// the range, before the agent starts.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Command } from 'commander'
import { addAgentCommand } from '../../agent/cli.ts'

async function parse(args: string[]): Promise<{ opts?: { maxLease?: number }; error: string }> {
  let opts: { maxLease?: number } | undefined
  let error = ''
  const program = new Command().exitOverride().configureOutput({ writeErr: s => (error += s), writeOut: () => {} })
  addAgentCommand(program, async o => {
    opts = o
    throw new Error('parsed')
  })
  for (const c of program.commands) c.exitOverride().configureOutput({ writeErr: s => (error += s) })
  // The fake action throws once the flags parsed, so parsing always ends in an error; what matters is whether
  // the action saw the options.
  await program.parseAsync(['node', 'vt', 'agent', ...args]).catch(() => {})
  return { opts, error }
}

test('--max-lease outside 2..86400 seconds is refused, naming the range', async () => {
  for (const bad of ['100000', '1', '0', '0.05']) {
    const r = await parse(['--max-lease', bad])
    assert.equal(r.opts, undefined, `--max-lease ${bad} was accepted`)
    assert.match(r.error, /option '--max-lease <seconds>' argument '.*' is invalid/)
  }
  assert.match((await parse(['--max-lease', '100000'])).error, /outside 2\.\.86400 seconds/)
  const ok = await parse(['--max-lease', '86400'])
  assert.equal(ok.opts?.maxLease, 86400)
})

test('--capacity-memory takes a size (bytes or e.g. 8G) of at least 64M; --capacity-cpus a positive integer', async () => {
  const ok = await parse(['--capacity-memory', '8G', '--capacity-cpus', '12'])
  const opts = ok.opts as { capacityMemory?: number; capacityCpus?: number } | undefined
  assert.equal(opts?.capacityMemory, 8 * 1024 ** 3)
  assert.equal(opts?.capacityCpus, 12)
  assert.match((await parse(['--capacity-memory', 'lots'])).error, /"lots" is not a size: give bytes or e\.g\. 512M/)
  assert.match(
    (await parse(['--capacity-memory', '4096'])).error,
    /"4096" is less than 64M \(a number alone is bytes\)/,
  )
  assert.match((await parse(['--capacity-cpus', '0'])).error, /"0" is not a positive integer/)
})
