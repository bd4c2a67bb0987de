// Multi-node coordination on four embedded hosts (project `four-host`, which declares the guest network `lan`):
// a LAVA-style role group (1 server + 3 clients, one per host) running the Avocado RFC's netperf-like case from
// guest scripts with vt-sync (the server's address passed with send/wait, everybody meeting at barriers, a host
// script and the spec in the last one), and a CERN-style staged run over four VMs on four hosts, once in one
// test and once as a serial group of tests on worker-scoped VMs.
import { expect, test, type Vm } from 'vt'

test.describe('netperf-like, 1 server + 3 clients', () => {
  test.use({ roles: { server: { count: 1 }, client: { count: 3 } }, memory: '128M', accel: 'tcg' })

  test('clients stream to the server once it is up', async ({ cluster, group }) => {
    const [server] = group.server
    // Four VMs on four hosts (placed by capacity).
    expect(new Set(group.all.map(vm => vm.host.name)).size).toBe(4)
    const serverScript = `
      ip=$(ip -o -4 addr show eth0 | awk '{ print $4 }' | cut -d/ -f1)
      for p in 5001 5002 5003; do (nc -l -p $p > /tmp/recv.$p) & done
      vt-sync send server-ip "$ip"
      vt-sync barrier server-up 4 --timeout 120
      vt-sync wait-all result 3 --timeout 120 > /dev/null
      wait
      vt-sync barrier done 6 --timeout 120
      wc -c /tmp/recv.*`
    const clientScript = (i: number) => `
      set -e
      ip=$(vt-sync wait server-ip --timeout 120)
      vt-sync barrier server-up 4 --timeout 120
      read t0 _ < /proc/uptime
      dd if=/dev/zero bs=64k count=32 2>/dev/null | nc "$ip" ${5001 + i}
      read t1 _ < /proc/uptime
      vt-sync send result "client${i} sent 2 MiB from $t0 to $t1 s of uptime"
      vt-sync barrier done 6 --timeout 120
      vt-sync role`
    const runs = [
      server.exec(serverScript, { timeout: 150_000 }),
      ...group.client.map((c, i) => c.exec(clientScript(i), { timeout: 150_000 })),
    ]
    // A script on a host takes part too: it waits for the address and meets everyone at the end.
    const monitor = cluster.hosts[0].exec(
      'vt-sync wait server-ip --timeout 120 && vt-sync barrier done 6 --timeout 120 && vt-sync role',
      { env: group.env(server) },
    )
    const results = await cluster.waitAll('result', 3, { timeout: 120_000 })
    expect(results.map(r => r.split(' ')[0]).sort()).toEqual(['client0', 'client1', 'client2'])
    await cluster.barrier('done', { parties: 6, timeout: 120_000 })
    const [s, ...clients] = await Promise.all(runs)
    expect(s.exitCode).toBe(0)
    // Every client's stream reached the server (busybox nc may drop the tail at the sender's EOF).
    for (const p of [5001, 5002, 5003]) expect(s.stdout).toMatch(new RegExp(`\\b[1-9]\\d* /tmp/recv\\.${p}\\n`))
    clients.forEach((c, i) => {
      expect(c.exitCode).toBe(0)
      expect(c.stdout.trim()).toBe(`client ${i}`)
    })
    const m = await monitor
    expect(m.exitCode).toBe(0)
    expect(m.stdout).toBe(`${await cluster.wait('server-ip')}\nserver 0\n`)
  })
})

test.describe('CERN-style stages over four VMs on four hosts', () => {
  test.use({ roles: { node: { count: 4 } }, memory: '128M', accel: 'tcg' })

  test('init, run and finalize, each on every node at once', async ({ cluster, group }) => {
    expect(new Set(group.all.map(vm => vm.host.name)).size).toBe(4)
    const results = await cluster.stages(group.all, {
      init: vm => vm.succeed('mkdir -p /tmp/suite && echo prepared > /tmp/suite/state && hostname'),
      // Every node is past init when run starts: the run stage checks it with a barrier of its own.
      run: async (vm, i) =>
        vm.succeed(`vt-sync barrier all-initialized 4 --timeout 60 && echo run-${i} >> /tmp/suite/state`),
      finalize: vm => vm.succeed('cat /tmp/suite/state'),
    })
    expect(results.finalize).toEqual([0, 1, 2, 3].map(i => `prepared\nrun-${i}\n`))
  })

  test('finalize runs after a failed stage', async ({ cluster, group }) => {
    let finalized = 0
    const e = await cluster
      .stages(group.all, {
        init: (vm, i) => (i === 2 ? vm.succeed('exit 3') : vm.succeed('true')),
        run: () => {
          throw new Error('run must not start after a failed init')
        },
        finalize: async () => {
          finalized++
        },
      })
      .catch(e => e)
    expect(e.message).toMatch(/^stage "init" failed on 1 node\(s\):\n {2}node2-w\d+: .*exit code 3/)
    expect(finalized).toBe(4)
  })
})

test.describe
  .serial('stages as tests of a serial group, on worker VMs', () => {
    const vms: Vm[] = []

    test('init', async ({ cluster, createWorkerVm }) => {
      vms.push(
        ...(await Promise.all(
          cluster.hosts.map(host => createWorkerVm({ host, memory: '128M', accel: 'tcg', name: `stage-${host.name}` })),
        )),
      )
      await cluster.stages(vms, { init: vm => vm.succeed('echo init > /tmp/log') })
    })

    test('run', async ({ cluster }) => {
      await cluster.stages(vms, { run: vm => vm.succeed('echo run >> /tmp/log') })
    })

    test('finalize', async ({ cluster }) => {
      const { finalize } = await cluster.stages(vms, { finalize: vm => vm.succeed('cat /tmp/log') })
      expect(finalize).toEqual(vms.map(() => 'init\nrun\n'))
    })
  })
