// Ping-pong: a running guest visits every host of the cluster and comes back, its memory checked after each
// hop (project `two-host`, or any cluster with more hosts).
import { expect, memtestSpec, pingPong, test, verifyMemoryIntegrity } from 'vmtest-cluster'

const MiB = 1024 * 1024

test('a memtest guest ping-pongs across every host with its memory intact', async ({ cluster, createVm }) => {
  const home = cluster.hosts[0]
  const vm = await createVm({ ...(await memtestSpec({ name: 'pingpong', memoryMiB: 128 })), host: home })
  await vm.console.waitFor(/B{3}/)
  let passes = (await verifyMemoryIntegrity(vm)).passes
  const results = await pingPong(vm, cluster.hosts, {
    rounds: 2,
    parameters: { 'downtime-limit': 20_000, 'max-bandwidth': 4096 * MiB },
    after: async v => {
      const report = await verifyMemoryIntegrity(v)
      expect(report.passes).toBeGreaterThan(passes)
      passes = report.passes
    },
  })
  expect(results).toHaveLength(2 * cluster.hosts.length)
  expect(results.map(r => r.to).slice(-1)).toEqual([home.name])
  expect(vm.host).toBe(home)
})

test('a tiny Linux guest answers on every host it visits', async ({ cluster, vm }) => {
  await vm.succeed('echo "$(date +%s)" > /tmp/born')
  const born = await vm.succeed('cat /tmp/born')
  for (const host of [...cluster.hosts.slice(1), cluster.hosts[0]]) {
    await vm.migrate({ to: host })
    expect(vm.host).toBe(host)
    expect(await vm.succeed('cat /tmp/born')).toBe(born)
  }
})
