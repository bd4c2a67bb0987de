// Public surface of vt's QMP client: the client layer (client.ts) over the protocol layer (protocol.ts).

export type * from '../../src/protocol/qmp.ts'
export type { ExecuteOptions, QmpConnectOptions, WaitForEventOptions } from './client.ts'
export { QmpClient } from './client.ts'
export * from './errors.ts'
