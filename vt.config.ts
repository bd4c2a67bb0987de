// vt's own example projects: `npx vt test` runs examples/ on embedded clusters.
import { defineConfig } from 'vmtest-cluster'

export default defineConfig({
  testDir: 'examples',
  timeout: 120_000,
  projects: [
    {
      name: 'two-host',
      testMatch: ['hosts.vt.ts', 'migration.vt.ts', 'ping-pong.vt.ts', 'storage-migration.vt.ts', 'vm.vt.ts'],
      cluster: { hosts: 2 },
    },
    {
      name: 'network',
      testMatch: ['network.vt.ts', 'faults.vt.ts'],
      cluster: { hosts: 2, networks: { lan: { subnet: '10.77.0.0/24' } } },
    },
  ],
})
