// `use: { trace }` (and `vt test --trace`): when the console log and QMP transcript of a test's VMs are attached
// to its result, with Playwright's names. The default keeps them for failed tests only.
export const traceModes = ['off', 'on', 'retain-on-failure', 'on-first-retry'] as const

export type TraceMode = (typeof traceModes)[number]

export const defaultTraceMode: TraceMode = 'retain-on-failure'

export function isTraceMode(value: unknown): value is TraceMode {
  return typeof value === 'string' && (traceModes as readonly string[]).includes(value)
}

/** Whether a test with this outcome keeps its VMs' logs under `mode`. */
export function keepsTrace(mode: TraceMode, failed: boolean, retry: number): boolean {
  if (mode === 'on') return true
  if (mode === 'retain-on-failure') return failed
  if (mode === 'on-first-retry') return retry === 1
  return false
}
