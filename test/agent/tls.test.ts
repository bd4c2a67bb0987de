// TLS and mutual TLS against a real agent, with certificates made by openssl for the test: the client trusts
// the agent through the CA; with --tls-ca the agent refuses a client without a certificate.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { assertNoLeak, startTestAgent, type TestAgent } from './helpers.ts'

let dir: string
const agents: TestAgent[] = []

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
}

before(async () => {
  const { mkdtempSync } = await import('node:fs')
  const os = await import('node:os')
  dir = mkdtempSync(join(os.tmpdir(), 'vt-tls-test-'))
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=vt test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  )
  for (const [name, san] of [
    ['agent', 'subjectAltName=IP:127.0.0.1'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    )
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(dir, `${name}.ext`), `${san}\n`)
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    )
  }
})

after(async () => {
  for (const a of agents) {
    await a.dispose()
    assertNoLeak(a)
  }
  const { rmSync } = await import('node:fs')
  rmSync(dir, { recursive: true, force: true })
})

test('wss: the client trusts the agent through the CA', async () => {
  const agent = await startTestAgent({
    extraArgs: ['--tls-cert', join(dir, 'agent.crt'), '--tls-key', join(dir, 'agent.key')],
  })
  agents.push(agent)
  assert.match(agent.url, /^wss:\/\/127\.0\.0\.1:\d+$/)
  const c = await agent.connect({ tls: { ca: join(dir, 'ca.crt') } })
  assert.equal(await c.service('facts').ping('over tls'), 'over tls')
  await c.close()
  // Without the CA the certificate is not trusted.
  await assert.rejects(
    agent.connect({ tls: {}, reconnect: false }),
    /testhost|cannot connect.*(self-signed|unable to verify|certificate)/i,
  )
})

test('mutual TLS: a client without a certificate is refused; with one it connects (and still needs the token)', async () => {
  const agent = await startTestAgent({
    extraArgs: [
      '--tls-cert',
      join(dir, 'agent.crt'),
      '--tls-key',
      join(dir, 'agent.key'),
      '--tls-ca',
      join(dir, 'ca.crt'),
    ],
  })
  agents.push(agent)
  await assert.rejects(
    agent.connect({ tls: { ca: join(dir, 'ca.crt') }, reconnect: false }),
    /cannot connect|closed|socket hang up|certificate/i,
  )
  const tls = { ca: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key') }
  const c = await agent.connect({ tls })
  assert.equal(await c.service('facts').ping(1), 1)
  await c.close()
  await assert.rejects(agent.connect({ tls, token: 'a-wrong-token-of-some-length' }), /wrong token/)
})
