// Public surface of vt's QMP client.

export type { ExecuteOptions, QmpConnectOptions, WaitForEventOptions } from './client.ts'
export { QmpClient } from './client.ts'
export * from './errors.ts'
export type * from './types.ts'
