// Two embedded hosts (project `two-host`): run commands on both, show their distinct addresses, move a file
// from one to the other, and book capacity. With root each host lives in its own network namespace on a
// private bridge; without root both share loopback.
import { expect, test } from 'vmtest-cluster'

test('each host runs commands and has its own address', async ({ hosts }, testInfo) => {
  expect(hosts).toHaveLength(2)
  const seen = []
  for (const host of hosts) {
    const hostname = (await host.succeed('hostname')).trim()
    const addresses = (await host.succeed("ip -4 -o addr show | awk '{print $4}'")).trim().split('\n')
    seen.push({ host: host.name, address: host.address, interfaces: addresses, hostname })
    console.log(`${host.name}: ${host.address} (interfaces: ${addresses.join(', ')})`)
  }
  await testInfo.attach('addresses.json', { body: JSON.stringify(seen, null, 2), contentType: 'application/json' })
  const [a, b] = hosts
  if (a.address !== '127.0.0.1') {
    // Isolated: distinct addresses, and each host sees only its own.
    expect(a.address).not.toBe(b.address)
    expect(seen[0].interfaces).toContain(`${a.address}/24`)
    expect(seen[0].interfaces).not.toContain(`${b.address}/24`)
  }
})

test('one host reaches the other over the network', async ({ cluster }) => {
  const [a, b] = cluster.hosts
  const port = new URL(b.url).port
  const r = await a.exec(['bash', '-c', `exec 3<>/dev/tcp/${b.address}/${port} && echo connected`])
  expect(r.stdout.trim()).toBe('connected')
})

test('a file travels from one host to the other', async ({ cluster }) => {
  const [a, b] = cluster.hosts
  const src = `${a.facts.roots[0]}/greeting.txt`
  const dst = `${b.facts.roots[0]}/greeting.txt`
  await a.succeed(['sh', '-c', `echo "hello from ${a.name}" > ${src}`])
  await b.files.put(dst, await a.files.get(src))
  expect(await b.succeed(['cat', dst])).toBe(`hello from ${a.name}\n`)
  await a.files.remove(src)
})

test('select books capacity on a host that has room', async ({ cluster }) => {
  const reservation = await cluster.select({ minMemory: '256M' })
  expect(cluster.hosts).toContain(reservation.host)
  const { reserved } = await reservation.host.service('session').capacity()
  expect(reserved.memoryBytes).toBeGreaterThanOrEqual(256 * 1024 * 1024)
  await reservation.release()
})
