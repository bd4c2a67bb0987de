// The files `vt init` writes: a project with a two-host embedded cluster, one example spec and the scripts to
// run it. Kept in one place so the e2e test (test/e2e/init.test.ts) runs exactly what users get.

export interface InitOptions {
  /** The npm name of the new project. */
  name: string
  /** The npm name of vt's package, which the files import. */
  vtPackage: string
}

export function initFiles({ name, vtPackage }: InitOptions): Record<string, string> {
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: { test: 'vt test', 'test:list': 'vt test --list', report: 'vt show-report', doctor: 'vt doctor' },
  }
  return {
    'package.json': `${JSON.stringify(pkg, null, 2)}\n`,
    'vt.config.ts': `// vt's config: where the specs are and the cluster each project runs on.
import { defineConfig } from '${vtPackage}'

export default defineConfig({
  testDir: 'tests',
  // Booting a VM takes seconds without KVM: give tests room.
  timeout: 120_000,
  reporter: [['list'], ['html']],
  projects: [
    {
      name: 'two-host',
      // Two hosts, each a local \`vt agent\` started by \`vt test\` (in its own network namespace as root).
      // Machines of your own: cluster: { hosts: [{ name, url }], token: { env: 'VT_TOKEN' } }.
      cluster: { hosts: 2 },
    },
  ],
})
`,
    'tests/example.vt.ts': `import { expect, test } from '${vtPackage}'

test('both hosts run commands', async ({ cluster }) => {
  expect(cluster.hosts).toHaveLength(2)
  for (const host of cluster.hosts) {
    expect(await host.succeed(['uname', '-s'])).toBe('Linux\\n')
  }
})

test('a VM boots on the second host and runs a command', async ({ cluster, createVm }) => {
  const vm = await createVm({ host: cluster.hosts[1], memory: '128M' })
  expect(vm.host).toBe(cluster.hosts[1])
  await test.step('run a command in the guest', async () => {
    expect(await vm.succeed('echo "hello from $(uname -s)"')).toBe('hello from Linux\\n')
  })
})
`,
    '.gitignore': 'node_modules/\ntest-results/\nvt-report/\nblob-report/\n',
  }
}
