// Entry of a worker process (forked by the main process with an IPC channel): registers tsx so that vt's
// sources, the config and specs load as TypeScript, then runs the worker.
import { register as registerCjs } from 'tsx/cjs/api'
import { register } from 'tsx/esm/api'

registerCjs()
register()
const { runWorkerProcess } = await import('./workerMain.ts')
runWorkerProcess()
