// QMP and migration errors are one family (VtError) whose code and QEMU's class/description are data: they
// survive the agent → wire → controller trip without anyone parsing a message.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  CommandNotFoundError,
  commandError,
  QmpConnectError,
  QmpDisconnectedError,
  QmpEventTimeoutError,
  QmpTimeoutError,
} from '../../agent/qmp/index.ts'
import { MigrationError } from '../../src/migration/errors.ts'
import { ErrorCodes, fromErrorData, toErrorData, VtError, type VtRemoteError } from '../../src/protocol/errors.ts'
import { decodeJson, encodeJson } from '../../src/protocol/wire.ts'

/** What the controller gets for an error thrown in a service on host h1 (the agent's path, then the wire's). */
function overTheWire(err: unknown): VtRemoteError {
  const data = toErrorData(err, { host: 'h1', service: 'vm', call: 'qmp' })
  return fromErrorData(decodeJson(encodeJson(data)))
}

test('a rejected QMP command keeps its code, class, description and command across the wire', () => {
  const local = commandError('device_del', { id: 'nope' }, 'DeviceNotFound', "Device 'nope' not found")
  assert.ok(local instanceof VtError)
  assert.equal(local.code, ErrorCodes.qmpCommand)
  assert.deepEqual(local.qmp, { class: 'DeviceNotFound', desc: "Device 'nope' not found", command: 'device_del' })
  const remote = overTheWire(local)
  assert.equal(remote.name, 'DeviceNotFoundError')
  assert.equal(remote.code, 'QMP_COMMAND')
  assert.deepEqual(remote.qmp, local.qmp)
  assert.deepEqual(remote.data.qmp, local.qmp)
  assert.equal(
    remote.message,
    `h1: vm.qmp: QMP device_del {"id":"nope"} failed: DeviceNotFound: Device 'nope' not found`,
  )
  // Known classes stay their own subclass locally.
  assert.ok(
    commandError('x', undefined, 'CommandNotFound', 'The command x has not been found') instanceof CommandNotFoundError,
  )
})

test('every QMP failure has its stable code, locally and after the wire', () => {
  const cases: [Error, string][] = [
    [new QmpTimeoutError('query-status', undefined, 200), 'QMP_TIMEOUT'],
    [new QmpDisconnectedError('query-name', undefined, 'QEMU closed the QMP connection'), 'QMP_DISCONNECTED'],
    [new QmpConnectError('cannot connect'), 'QMP_CONNECT'],
    [new QmpEventTimeoutError('STOP', 100), 'QMP_EVENT_TIMEOUT'],
  ]
  for (const [err, code] of cases) {
    assert.equal((err as VtError).code, code, err.name)
    const remote = overTheWire(err)
    assert.equal(remote.code, code, err.name)
    assert.equal(remote.name, err.name)
    assert.equal(remote.qmp, undefined)
  }
  assert.equal(new QmpConnectError('closed early', { retry: true }).retry, true)
  assert.equal(new QmpConnectError('bad greeting').retry, false)
})

test('a MigrationError keeps QEMU’s words from a remote QMP failure as fields, and travels itself', () => {
  const remote = overTheWire(
    commandError('migrate-set-capabilities', {}, 'GenericError', "Capability 'warp-drive' not found"),
  )
  const err = new MigrationError({
    message: remote.message,
    phase: 'configure',
    from: 'a',
    to: 'b',
    qemuError: remote.qmp?.desc,
    qmp: remote.qmp,
    cause: remote,
  })
  assert.equal(err.code, ErrorCodes.migrationFailed)
  assert.equal(err.qemuError, "Capability 'warp-drive' not found")
  assert.equal(err.qmp?.class, 'GenericError')
  assert.equal(err.cause, remote)
  // E.g. from a worker to the runner's main process: still code and class, and the cause's as well.
  const back = fromErrorData(decodeJson(encodeJson(toErrorData(err))))
  assert.equal(back.name, 'MigrationError')
  assert.equal(back.code, 'MIGRATION_FAILED')
  assert.equal(back.qmp?.desc, "Capability 'warp-drive' not found")
  assert.equal(back.data.cause?.code, 'QMP_COMMAND')
  assert.equal(back.data.cause?.qmp?.command, 'migrate-set-capabilities')
})

test('a peer’s malformed or oversized qmp field is dropped or bounded, never trusted as is', () => {
  const bad = fromErrorData({ name: 'X', message: 'm', qmp: { class: 1, desc: 'd', command: 'c' } })
  assert.equal(bad.qmp, undefined)
  const big = fromErrorData({
    name: 'X',
    message: 'm',
    qmp: { class: 'C'.repeat(500), desc: 'd'.repeat(100_000), command: 'c' },
  })
  assert.equal(big.qmp?.class.length, 100)
  assert.ok((big.qmp?.desc.length ?? 0) <= 8192)
})
