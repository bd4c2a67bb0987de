// vt's own example projects: `npx vt test` runs examples/ on embedded clusters.
import { defineConfig } from 'vmtest-cluster'

export default defineConfig({
  testDir: 'examples',
  timeout: 120_000,
  projects: [
    {
      name: 'two-host',
      testMatch: [
        'hosts.vt.ts',
        'migration.vt.ts',
        'ping-pong.vt.ts',
        'snapshots.vt.ts',
        'storage-migration.vt.ts',
        'stress.vt.ts',
        'vm.vt.ts',
      ],
      cluster: { hosts: 2 },
      grepInvert: /@stress/,
    },
    {
      name: 'network',
      testMatch: ['network.vt.ts', 'faults.vt.ts'],
      cluster: { hosts: 2, networks: { lan: { subnet: '10.77.0.0/24' } } },
    },
    {
      // examples/storage.vt.ts: pools and images (a dir pool: a directory per host; an nfs pool on the embedded
      // cluster's own NFS server, which needs network namespaces: root).
      name: 'storage',
      testMatch: ['storage.vt.ts'],
      cluster: { hosts: 2, storage: { pools: { local: { type: 'dir' }, shared: { type: 'nfs' } } } },
    },
    {
      // examples/multinode.vt.ts: role groups, vt-sync and stages over four hosts (tiny 128M TCG guests).
      name: 'four-host',
      testMatch: ['multinode.vt.ts'],
      timeout: 240_000,
      cluster: { hosts: 4, networks: { lan: { subnet: '10.78.0.0/24' } } },
    },
    {
      // examples/debian.vt.ts: a real Debian 12 guest (qemu-guest-agent), built on first use (`vt image build debian`).
      name: 'debian',
      testMatch: ['debian.vt.ts'],
      use: { image: 'debian', memory: '512M' },
      timeout: 600_000,
      cluster: { hosts: 1 },
    },
    // Long migration stress on four hosts (examples/stress.vt.ts, tagged @stress): not part of the default run
    // nor CI; `VT_STRESS=1 npx vt test --project stress` runs it.
    ...(process.env.VT_STRESS
      ? [{ name: 'stress', testMatch: ['stress.vt.ts'], grep: /@stress/, cluster: { hosts: 4 }, timeout: 3_600_000 }]
      : []),
  ],
})
