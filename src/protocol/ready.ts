// How a local `vt agent` process says it is listening: one JSON line on stdout, `{"vtAgentReady":{...}}`.
// The agent writes it with `readyLine`; whoever started the process reads it with `parseReadyLine`
// (src/cluster/localAgent.ts). Shared so that both ends agree on one format.

export interface AgentReady {
  url: string
  pid: number
  name: string
}

export function readyLine(ready: AgentReady): string {
  return `${JSON.stringify({ vtAgentReady: ready })}\n`
}

/**
 * The ready record of one line of agent output: undefined when the line is not a ready line, an Error when it
 * claims to be one but is malformed.
 */
export function parseReadyLine(line: string): AgentReady | Error | undefined {
  if (!line.includes('"vtAgentReady"')) return undefined
  let ready: AgentReady | undefined
  try {
    ready = (JSON.parse(line) as { vtAgentReady?: AgentReady }).vtAgentReady
  } catch {}
  return ready?.url ? ready : new Error(`printed a malformed ready line: ${line}`)
}
