// Guest networks on the embedded two-host cluster (project `network`, which declares `lan` in vt.config.ts):
// VMs on different hosts share one L2 segment, a host's own processes join it, and a TCP connection from a
// client VM survives its server migrating to the other host and back.
import { expect, test } from 'vmtest-cluster'

test('VMs on two hosts talk over the lan; a host joins with attach', async ({ cluster, createVm }) => {
  const [a, b] = cluster.hosts
  const lan = cluster.network('lan')
  const server = await createVm({ host: a, nics: [{ network: 'lan', ip: '10.77.0.10/24' }] })
  const client = await createVm({ host: b, nics: [{ network: 'lan' }] })
  expect(server.ip('lan')).toBe('10.77.0.10')
  expect(client.ip('lan')).toMatch(/^10\.77\.0\.\d+$/)
  expect(client.mac('lan')).not.toBe(server.mac('lan'))
  await client.succeed(`ping -c 1 -W 5 ${server.ip('lan')}`)
  // The MTU leaves room for the VXLAN header, so full-size packets cross without fragmentation.
  const mtu = Number(await client.succeed('cat /sys/class/net/eth0/mtu'))
  expect(mtu).toBe(lan.mtu)
  await client.succeed(`ping -c 1 -W 5 -s ${mtu - 28} ${server.ip('lan')}`)
  // A host-side client: host a's own processes reach the VM on host b.
  await lan.attach(a, { ip: '10.77.0.1/24' })
  await a.succeed(`busybox ping -c 1 -W 5 ${client.ip('lan')}`)
  // A partition on the guest network: the two VMs lose each other, host a still reaches both; then it heals.
  const cut = await lan.partition([server], [client])
  await client.fail(`ping -c 2 -W 1 ${server.ip('lan')}`)
  await a.succeed(`busybox ping -c 1 -W 5 ${server.ip('lan')}`)
  await cut.heal()
  await client.succeed(`ping -c 1 -W 5 ${server.ip('lan')}`)
})

test('a client keeps its TCP connection while the server migrates there and back', async ({ cluster, createVm }) => {
  const [a, b] = cluster.hosts
  const server = await createVm({ host: a, nics: [{ network: 'lan' }] })
  const client = await createVm({ host: b, nics: [{ network: 'lan' }] })
  // The server streams a counter, one line every 50 ms, to whoever connects; the client logs what it gets.
  await server.succeed('(i=0; while :; do i=$((i+1)); echo $i; usleep 50000; done | nc -l -p 5000) >/dev/null 2>&1 &')
  await server.waitUntilSucceeds('netstat -ltn | grep -q :5000')
  // (nc's stdin never ends: at its end, busybox nc would half-close the connection.)
  await client.succeed(
    `(sleep 100000 | nc ${server.ip('lan')} 5000 > /tmp/stream; echo $? > /tmp/nc.exit) >/dev/null 2>&1 &`,
  )
  const last = async () => Number((await client.succeed('tail -n 1 /tmp/stream')).trim() || 0)
  await client.waitUntilSucceeds('test "$(wc -l < /tmp/stream)" -gt 5')
  for (const to of [b, a]) {
    const before = await last()
    const result = await server.migrate({ to })
    expect(result.status).toBe('completed')
    await expect.poll(last, { timeout: 20_000 }).toBeGreaterThan(before + 10)
  }
  // Same connection all along: nc never exited, and the counter has no gap or restart.
  await client.fail('test -e /tmp/nc.exit')
  const lines = (await client.succeed('cat /tmp/stream')).trim().split('\n').map(Number)
  expect(lines.every((n, i) => n === i + 1)).toBe(true)
})

test('several networks, and a VM with a NIC on each', async ({ cluster, createVm }) => {
  const [a, b] = cluster.hosts
  const backend = await cluster.createNetwork('backend', { subnet: '10.88.0.0/24' })
  const gateway = await createVm({ host: a, nics: [{ network: 'lan' }, { network: 'backend', ip: '10.88.0.1' }] })
  const db = await createVm({ host: b, nics: [{ network: 'backend' }] })
  expect(gateway.ip('backend')).toBe('10.88.0.1')
  expect(gateway.mac('lan')).not.toBe(gateway.mac('backend'))
  await db.succeed(`ping -c 1 -W 5 ${gateway.ip('backend')}`)
  // The segments are separate: the db VM has no address on lan, and lan's subnet is not reachable from it.
  expect(() => db.ip('lan')).toThrow(/has no NIC on network lan/)
  await db.fail(`ping -c 1 -W 1 ${gateway.ip('lan')}`)
  expect(backend.vni).not.toBe(cluster.network('lan').vni)
})

test('a network name that does not exist is a clear error listing those that do', async ({ cluster }) => {
  expect(() => cluster.network('wan')).toThrow(/no network named "wan" in this cluster \(networks: lan\)/)
})
