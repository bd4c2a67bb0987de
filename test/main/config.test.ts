// Config loading: validation messages name the key path, the file and the line; defaults and CLI overrides.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { ConfigError, loadConfig, resolveConfigFile, resolveWorkers } from '../../src/config/load.ts'
import { findKeyLine, formatKeyPath } from '../../src/config/schema.ts'

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'vt-config-'))
  dirs.push(dir)
  writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}')
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    writeFileSync(path.join(dir, name), text)
  }
  return dir
}

async function configError(source: string): Promise<ConfigError> {
  const dir = project({ 'vt.config.ts': source })
  try {
    await loadConfig(path.join(dir, 'vt.config.ts'), {})
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`)
    return e
  }
  assert.fail('the config loaded without an error')
}

describe('config validation', () => {
  test('an unknown key names its path, the file and the line, and suggests the right key', async () => {
    const e = await configError(`export default {
  testDir: 'specs',
  projects: [
    { name: 'a' },
    { name: 'b', tmeout: 5 },
  ],
}
`)
    assert.equal(e.issues.length, 1)
    assert.deepEqual(e.issues[0].path, ['projects', 1, 'tmeout'])
    assert.equal(e.issues[0].line, 5)
    assert.match(e.message, /vt\.config\.ts:5: projects\[1\]\.tmeout: unknown key \(did you mean "timeout"\?\)/)
    assert.match(e.message, /valid keys: .*retries/)
  })

  test('a wrong type names the expected type and the value it got', async () => {
    const e = await configError(`export default {
  retries: 'two',
  workers: true,
}
`)
    const byPath = new Map(e.issues.map(i => [formatKeyPath(i.path), i]))
    assert.match(byPath.get('retries')!.message, /expected a number, got a string \("two"\)/)
    assert.equal(byPath.get('retries')!.line, 2)
    assert.match(byPath.get('workers')!.message, /expected a number or a string, got boolean true/)
    assert.equal(byPath.get('workers')!.line, 3)
  })

  test('unknown keys inside the cluster slot are reported with the full path', async () => {
    const e = await configError(`export default {
  projects: [{ name: 'two-host', cluster: { hosts: 2, isolaton: 'none' } }],
}
`)
    assert.deepEqual(e.issues[0].path, ['projects', 0, 'cluster', 'isolaton'])
    assert.match(e.message, /projects\[0\]\.cluster\.isolaton: unknown key \(did you mean "isolation"\?\)/)
  })

  test('a union of shapes reports which shapes were allowed', async () => {
    const e = await configError(`export default { testMatch: 7 }\n`)
    assert.match(e.message, /testMatch: expected a string or a RegExp or an array, got number 7/)
  })

  test('range errors keep the key path', async () => {
    const e = await configError(`export default { repeatEach: 0, shard: { current: 3, total: 2 } }\n`)
    const paths = e.issues.map(i => formatKeyPath(i.path))
    assert.ok(paths.includes('repeatEach'), paths.join(', '))
    assert.ok(paths.includes('shard'), paths.join(', '))
  })

  test('a guest network with a bad subnet or key is refused with file:line and its path', async () => {
    const e = await configError(`export default {
  projects: [
    { name: 'n', cluster: {
      hosts: 2,
      networks: { lan: { subnet: '10.77.0.0' }, wan: { subnet: '10.78.0.0/24', vni: 0 } },
    } },
  ],
}
`)
    assert.match(
      e.message,
      /vt\.config\.ts:5: projects\[0\]\.cluster\.networks\.lan\.subnet: .*like '10\.77\.0\.0\/24'/,
    )
    assert.match(e.message, /projects\[0\]\.cluster\.networks\.wan\.vni/)
  })

  test('a storage pool of an unknown type or with a bad name is refused with file:line and its path', async () => {
    const e = await configError(`export default {
  projects: [
    { name: 's', cluster: {
      hosts: 2,
      storage: { pools: { local: { type: 'dir' }, fast: { type: 'ramdisk' }, 'bad/name': { type: 'dir' } } },
    } },
  ],
}
`)
    assert.match(
      e.message,
      /vt\.config\.ts:5: projects\[0\]\.cluster\.storage\.pools\.fast\.type: an unknown pool type: the types are dir, nfs/,
    )
    assert.match(e.message, /pools\["bad\/name"\]: a pool name: .*got "bad\/name"/)
  })

  test('cluster numbers and timeouts outside their range are refused at load, naming the range', async () => {
    for (const lease of [100000, 0.05, 0, -1]) {
      const e = await configError(`export default {
  projects: [
    { name: 'c', cluster: {
      hosts: 2,
      leaseSeconds: ${lease},
    } },
  ],
}
`)
      assert.equal(e.issues.length, 1, e.message)
      assert.equal(e.issues[0].line, 5)
      assert.match(
        e.message,
        new RegExp(
          `vt\\.config\\.ts:5: projects\\[0\\]\\.cluster\\.leaseSeconds: must be between 2 and 86400 seconds .*got number ${lease}`,
        ),
      )
    }
    const hosts = await configError(`export default { cluster: { hosts: 40 } }\n`)
    assert.match(hosts.message, /cluster\.hosts: must be between 1 and 16 embedded hosts .*got number 40/)
    // Node fires longer timers at once, so a huge timeout would fail every test immediately.
    const timeout = await configError(`export default {\n  timeout: 1e10,\n}\n`)
    assert.match(timeout.message, /vt\.config\.ts:2: timeout: must be between 0 \(no timeout\) and 2147483647 ms/)
    // The limits themselves load.
    const dir = project({
      'vt.config.ts': `export default { timeout: 2147483647, cluster: { hosts: 16, leaseSeconds: 86400 } }\n`,
    })
    const config = await loadConfig(path.join(dir, 'vt.config.ts'), {})
    assert.equal(config.projects[0].cluster?.leaseSeconds, 86400)
  })

  test('cluster capacity: sizes, per-host lists, remote hosts and more memory than the machine, with file:line', async () => {
    const bad = await configError(`export default {
  projects: [
    { name: 'c', cluster: {
      hosts: 2,
      capacity: { memory: 'lots', cpus: 0 },
    } },
  ],
}
`)
    assert.match(bad.message, /vt\.config\.ts:5: projects\[0\]\.cluster\.capacity\.memory: a size like '4G'/)
    assert.match(bad.message, /projects\[0\]\.cluster\.capacity\.cpus: must be at least 1 vCPU/)
    const mib = await configError(`export default { cluster: { hosts: 2, capacity: { memory: 4096 } } }\n`)
    assert.match(
      mib.message,
      /cluster\.capacity\.memory: a size like '4G' or '512M' \(a number is bytes\), at least 64M/,
    )
    const tooMuch = await configError(`export default {
  cluster: {
    hosts: 4,
    capacity: {
      memory: '64T',
    },
  },
}
`)
    assert.match(
      tooMuch.message,
      /vt\.config\.ts:5: cluster\.capacity\.memory: 4 hosts × 65536 GiB = 262144 GiB, more than this machine's [\d.]+ GiB \(embedded hosts share one machine\)/,
    )
    const list = await configError(`export default { cluster: { hosts: 1, capacity: [{ cpus: 2 }, { cpus: 2 }] } }\n`)
    assert.match(list.message, /cluster\.capacity\[1\]: there are 1 embedded host: give at most 1 entries/)
    const remote = await configError(
      `export default { cluster: { hosts: [{ name: 'a', url: 'wss://a:7070' }], capacity: { cpus: 2 } } }\n`,
    )
    assert.match(remote.message, /cluster\.capacity: is for embedded hosts \(hosts: N\); a remote agent offers/)
    const dir = project({
      'vt.config.ts': `export default { cluster: { hosts: 2, capacity: [{ memory: '1G', cpus: 2 }, { cpus: 3 }] } }\n`,
    })
    const config = await loadConfig(path.join(dir, 'vt.config.ts'), {})
    assert.deepEqual(config.projects[0].cluster?.capacity, [{ memory: '1G', cpus: 2 }, { cpus: 3 }])
  })

  test('duplicate project names, unknown dependencies and cycles are errors', async () => {
    assert.match(
      (await configError(`export default { projects: [{ name: 'a' }, { name: 'a' }] }`)).message,
      /projects\[1\]\.name: duplicate project name "a"/,
    )
    assert.match(
      (await configError(`export default { projects: [{ name: 'a', dependencies: ['nope'] }] }`)).message,
      /projects\[0\]\.dependencies\[0\]: unknown project "nope"; projects: "a"/,
    )
    assert.match(
      (
        await configError(
          `export default { projects: [{ name: 'a', dependencies: ['b'] }, { name: 'b', dependencies: ['a'] }] }`,
        )
      ).message,
      /dependency cycle: a → b → a/,
    )
  })

  test('a config without a default export, or not an object, is a clear error', async () => {
    assert.match((await configError('export const x = 1\n')).message, /has no default export/)
    assert.match((await configError('export default [1]\n')).message, /must be an object .* got an array/)
  })

  test('a config that throws while loading names the file', async () => {
    assert.match(
      (await configError("throw new Error('kaboom')\n")).message,
      /failed to load config file .*vt\.config\.ts:\n.*kaboom/,
    )
  })
})

describe('config resolution', () => {
  test('defaults: one unnamed project, testDir and rootDir = config dir, **/*.vt.ts', async () => {
    const dir = project({ 'vt.config.ts': 'export default {}\n' })
    const config = await loadConfig(path.join(dir, 'vt.config.ts'), {})
    assert.equal(config.rootDir, dir)
    assert.equal(config.projects.length, 1)
    const [p] = config.projects
    assert.equal(p.id, 'project-0')
    assert.equal(p.testDir, dir)
    assert.equal(p.testMatch, '**/*.vt.ts')
    assert.equal(p.outputDir, path.join(dir, 'test-results'))
    assert.equal(p.timeout, 30_000)
    assert.equal(config.workers, Math.max(1, Math.floor(availableParallelism() / 2)))
  })

  test('the default reporter is list locally and dot under CI', async () => {
    const dir = project({ 'vt.config.ts': 'export default {}\n' })
    const saved = process.env.CI
    try {
      for (const [ci, want] of [
        [undefined, 'list'],
        ['true', 'dot'],
        ['1', 'dot'],
        ['false', 'list'],
      ] as const) {
        if (ci === undefined) delete process.env.CI
        else process.env.CI = ci
        const config = await loadConfig(path.join(dir, 'vt.config.ts'), {})
        assert.deepEqual(config.reporter, [[want]], `CI=${ci}`)
      }
    } finally {
      if (saved === undefined) delete process.env.CI
      else process.env.CI = saved
    }
  })

  test('projects inherit top-level settings, use objects merge, CLI overrides win', async () => {
    const dir = project({
      'vt.config.ts': `export default {
  testDir: 'specs', retries: 2, timeout: 1000, use: { memory: '256M', image: 'tiny' },
  projects: [{ name: 'a', use: { memory: '512M' } }, { name: 'b', testDir: 'other', retries: 0 }],
}
`,
    })
    const config = await loadConfig(path.join(dir, 'vt.config.ts'), { timeout: 5, outputDir: '/tmp/out', workers: 3 })
    const [a, b] = config.projects
    assert.deepEqual(a.use, { memory: '512M', image: 'tiny' })
    assert.equal(a.testDir, path.join(dir, 'specs'))
    assert.equal(b.testDir, path.join(dir, 'other'))
    assert.equal(a.retries, 2)
    assert.equal(b.retries, 0)
    assert.equal(a.timeout, 5)
    assert.equal(b.outputDir, '/tmp/out')
    assert.equal(config.workers, 3)
  })

  test('loading twice gives equal results (the worker rebuilds the same config)', async () => {
    const dir = project({ 'vt.config.ts': "export default { projects: [{ name: 'x', grep: /a/ }] }\n" })
    const one = await loadConfig(path.join(dir, 'vt.config.ts'), { retries: 1 })
    const two = await loadConfig(path.join(dir, 'vt.config.ts'), { retries: 1 })
    assert.deepEqual(one, two)
  })

  test('a directory without a config runs with defaults there', async () => {
    const dir = project({})
    assert.equal(resolveConfigFile(dir), dir)
    const config = await loadConfig(dir, {})
    assert.equal(config.configFile, '')
    assert.equal(config.projects[0].testDir, dir)
  })

  test('resolveConfigFile finds vt.config.* in a directory, accepts a file and rejects a missing path', () => {
    const dir = project({ 'sub/vt.config.mts': 'export default {}\n' })
    assert.equal(resolveConfigFile(dir, 'sub'), path.join(dir, 'sub', 'vt.config.mts'))
    assert.equal(resolveConfigFile(path.join(dir, 'sub')), path.join(dir, 'sub', 'vt.config.mts'))
    assert.throws(() => resolveConfigFile(dir, 'missing.ts'), /config file not found: .*missing\.ts/)
  })

  test('workers: numbers and percentages of the cores, never below 1', () => {
    assert.equal(resolveWorkers(3), 3)
    assert.equal(resolveWorkers('4'), 4)
    assert.equal(resolveWorkers('100%'), availableParallelism())
    assert.equal(resolveWorkers('1%'), 1)
    assert.throws(() => resolveWorkers('lots'), /workers must be/)
  })
})

test('findKeyLine walks nested keys in order', () => {
  const src = `export default {\n  timeout: 1,\n  projects: [\n    { name: 'a', timeout: 2 },\n  ],\n}\n`
  assert.equal(findKeyLine(src, ['timeout']), 2)
  assert.equal(findKeyLine(src, ['projects', 0, 'timeout']), 4)
  assert.equal(findKeyLine(src, ['nothing']), undefined)
})
