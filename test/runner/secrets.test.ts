// Secret redaction: strings, buffers (a secret anywhere, several times, one inside another), plain data in
// place, attachment files, and the config as reporters get it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, test } from 'node:test'
import type { FullConfig } from '../../src/config/types.ts'
import { configForReporters } from '../../src/runner/main/redact.ts'
import {
  clearSecrets,
  REDACTED,
  redactBuffer,
  redactDeep,
  redactFile,
  redactString,
  registerSecret,
} from '../../src/util/secrets.ts'

afterEach(clearSecrets)

test('strings and buffers lose every occurrence; longer secrets win over ones they contain', () => {
  assert.equal(registerSecret('abc'), false, 'too short to be a secret')
  registerSecret('token-1234')
  registerSecret('token-12345678')
  assert.equal(redactString('a token-12345678 b token-1234 c'), `a ${REDACTED} b ${REDACTED} c`)
  assert.equal(redactString('abc stays'), 'abc stays')
  const bin = Buffer.concat([Buffer.from([0xff, 0]), Buffer.from('token-1234token-1234'), Buffer.from([0xfe])])
  const out = redactBuffer(bin)
  assert.deepEqual(out, Buffer.concat([Buffer.from([0xff, 0]), Buffer.from(REDACTED + REDACTED), Buffer.from([0xfe])]))
  const clean = Buffer.from('nothing here')
  assert.equal(redactBuffer(clean), clean, 'a clean buffer is returned as is, not copied')
})

test('plain data is redacted in place, cycles included', () => {
  registerSecret('s3cr3t-value')
  const data: Record<string, unknown> = { a: 'x s3cr3t-value', list: ['s3cr3t-value', 1], when: new Date(0) }
  data.self = data
  redactDeep(data)
  assert.deepEqual(data.a, `x ${REDACTED}`)
  assert.deepEqual(data.list, [REDACTED, 1])
  assert.ok(data.when instanceof Date)
})

test('attachment files are rewritten in place only when they hold a secret', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-secrets-'))
  try {
    const leaky = path.join(dir, 'leaky.log')
    const clean = path.join(dir, 'clean.log')
    fs.writeFileSync(leaky, 'line one\nkey=s3cr3t-value\n')
    fs.writeFileSync(clean, 'nothing\n')
    assert.equal(redactFile(leaky), 'clean', 'nothing registered yet')
    registerSecret('s3cr3t-value')
    assert.equal(redactFile(leaky), 'redacted')
    assert.equal(fs.readFileSync(leaky, 'utf8'), `line one\nkey=${REDACTED}\n`)
    assert.equal(redactFile(clean), 'clean')
    assert.equal(redactFile(path.join(dir, 'missing')), 'unreadable')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('reporters get the config with token values replaced and the runner keeps its own', () => {
  const project = (cluster: unknown) => ({ id: 'p', name: 'p', cluster }) as unknown as FullConfig['projects'][0]
  const config = {
    projects: [
      project({ hosts: 1, token: { value: 'literal-token' } }),
      project({ hosts: [{ name: 'a', url: 'ws://127.0.0.1:1', token: { value: 'host-token' } }], token: { env: 'T' } }),
      project(undefined),
    ],
  } as unknown as FullConfig
  const shown = configForReporters(config)
  const text = JSON.stringify(shown)
  assert.doesNotMatch(text, /literal-token|host-token/)
  assert.match(text, /"token":\{"env":"T"\}/)
  assert.deepEqual(config.projects[0].cluster?.token, { value: 'literal-token' })
})
