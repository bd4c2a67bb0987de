// Entry of a worker process (forked by the main process with an IPC channel): registers the same loaders as the
// CLI (tsx; the user's .ts files as ES modules) so that vt's sources, the config and specs load as TypeScript,
// then runs the worker.
import { registerLoaders } from '../loader/register.js'

registerLoaders()
const { runWorkerProcess } = await import('./workerMain.ts')
runWorkerProcess()
