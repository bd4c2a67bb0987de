// How a local `vt agent` process says it is listening: one JSON line on stdout, `{"vtAgentReady":{...}}`.
// The agent writes it with `readyLine`; whoever started the process (the embedded cluster, tests, benchmarks)
// waits for it with `waitForAgentReady`.
import type { ChildProcess } from 'node:child_process'

export interface AgentReady {
  url: string
  pid: number
  name: string
}

export function readyLine(ready: AgentReady): string {
  return `${JSON.stringify({ vtAgentReady: ready })}\n`
}

export interface WaitOptions {
  /** Default 30 s. */
  timeoutMs?: number
  /** Turns the reason ('exited with code 2 before it was ready', ...) into the error message. */
  explain?: (why: string) => string
}

/**
 * Resolves with the agent's ready line, read from the child's piped stdout. Rejects when the agent exits, fails to
 * start or stays silent past the timeout. Afterwards stdout is drained so the agent never blocks on a full pipe.
 */
export function waitForAgentReady(child: ChildProcess, options: WaitOptions = {}): Promise<AgentReady> {
  const timeoutMs = options.timeoutMs ?? 30_000
  const explain = options.explain ?? (why => `vt agent ${why}`)
  const stdout = child.stdout
  if (!stdout) return Promise.reject(new Error(explain('has no piped stdout to report ready on')))
  return new Promise<AgentReady>((resolve, reject) => {
    let buffer = ''
    const cleanup = () => {
      clearTimeout(timer)
      child.off('exit', onExit)
      child.off('error', onError)
      stdout.off('data', onData)
      stdout.resume()
    }
    const fail = (why: string) => {
      cleanup()
      reject(new Error(explain(why)))
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited with ${signal ? `signal ${signal}` : `code ${code}`} before it was ready`)
    const onError = (e: Error) => fail(`could not start: ${e.message}`)
    const onData = (d: Buffer | string) => {
      buffer += d.toString()
      for (const line of buffer.split('\n')) {
        if (!line.includes('"vtAgentReady"')) continue
        let ready: AgentReady | undefined
        try {
          ready = (JSON.parse(line) as { vtAgentReady?: AgentReady }).vtAgentReady
        } catch {}
        if (!ready?.url) return fail(`printed a malformed ready line: ${line}`)
        cleanup()
        return resolve(ready)
      }
    }
    const timer = setTimeout(() => fail(`did not report ready within ${timeoutMs / 1000} s`), timeoutMs)
    child.on('exit', onExit)
    child.on('error', onError)
    stdout.on('data', onData)
  })
}
