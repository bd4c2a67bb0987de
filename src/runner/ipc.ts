// Messages between the main process (dispatcher) and a worker process, over Node's fork IPC channel.
// Everything here is plain JSON: Buffers travel as base64, Dates as epoch milliseconds.

import type { ClusterConnectionInfo } from '../config/cluster.ts'
import type { ConfigOverrides } from '../config/types.ts'
import type { SyncToMain, SyncToWorker } from '../sync/transport.ts'
import type { Location, Progress, TestError, TestStatus } from './reporterApi.ts'

/** What a worker needs to rebuild the same config the main process resolved. */
export interface SerializedConfig {
  configFile: string
  /** CLI overrides, applied on top of the config file exactly as in the main process. */
  overrides: ConfigOverrides
}

export type { ConfigOverrides }

// ---------- main → worker ----------

export interface InitMessage {
  type: 'init'
  workerIndex: number
  parallelIndex: number
  projectId: string
  workerHash: string
  /** Index into project.repeatEach; part of the worker hash. */
  repeatEachIndex: number
  config: SerializedConfig
  /** Set when the project has a cluster that the main process started or resolved. */
  cluster?: ClusterConnectionInfo
}

export interface RunMessage {
  type: 'run'
  /** Absolute path of the spec file. */
  file: string
  entries: { testId: string; retry: number }[]
}

/**
 * Tear down worker-scoped fixtures and exit. Sent between groups normally; sent while a test runs on
 * interruption (Ctrl-C, global timeout, max failures): the running test ends as 'interrupted', its test-scoped
 * fixtures are still torn down, then the worker fixtures, then the worker exits.
 */
export interface StopMessage {
  type: 'stop'
}

/** `vt test --debug`: the user pressed Enter, the paused test goes on (see DebugPauseMessage). */
export interface DebugResumeMessage {
  type: 'debugResume'
}

/** The answer to a ClusterRequestMessage. */
export interface ClusterReplyMessage {
  type: 'clusterReply'
  id: string
  error?: string
}

/** Answers of the run's sync server (src/sync): replies and arrivals at a barrier the worker waits at. */
export type MainToWorker =
  | InitMessage
  | RunMessage
  | StopMessage
  | DebugResumeMessage
  | SyncToWorker
  | ClusterReplyMessage

// ---------- worker → main ----------

export interface ReadyMessage {
  type: 'ready'
}

export interface TestBeginMessage {
  type: 'testBegin'
  testId: string
  startWallTime: number
}

export interface StepBeginMessage {
  type: 'stepBegin'
  testId: string
  stepId: string
  parentStepId?: string
  title: string
  category: string
  location?: Location
  wallTime: number
}

export interface StepEndMessage {
  type: 'stepEnd'
  testId: string
  stepId: string
  wallTime: number
  error?: TestError
}

/** Long work in a step (or the test itself, without `stepId`) reports how far it has come; throttled. */
export interface ProgressMessage {
  type: 'progress'
  testId: string
  stepId?: string
  progress: Progress
}

export interface OutputMessage {
  type: 'stdout' | 'stderr'
  testId?: string
  /** utf8 text, or base64 when `binary` is set. */
  text: string
  binary?: boolean
}

export interface AttachMessage {
  type: 'attach'
  testId: string
  name: string
  contentType: string
  path?: string
  /** base64 */
  body?: string
}

export interface TestEndMessage {
  type: 'testEnd'
  testId: string
  duration: number
  status: TestStatus
  errors: TestError[]
  expectedStatus: 'passed' | 'failed' | 'skipped'
  annotations: { type: string; description?: string }[]
  timeout: number
}

/**
 * A test group finished (or stopped early). Tests of the group that did not run are listed in `remaining` so
 * the dispatcher can hand them to another worker.
 */
export interface DoneMessage {
  type: 'done'
  /** Errors not tied to a test: file load failure in the worker, a worker fixture that failed to set up. */
  fatalErrors: TestError[]
  /** Test ids of the group that were neither run nor reported (to reschedule elsewhere). */
  remaining: string[]
  /**
   * The worker wants to be replaced: a test failed and `reuseWorkerAfterFailure` is off, or its worker
   * fixtures are broken. The dispatcher then sends 'stop' and starts a fresh worker for the remaining tests.
   */
  unusable: boolean
}

/** Errors from tearing down worker-scoped fixtures, sent right before the worker exits after 'stop'. */
export interface TeardownErrorsMessage {
  type: 'teardownErrors'
  errors: TestError[]
}

/**
 * `vt test --debug` / `--keep-on-failure`: a test paused at `test.debug()` or after failing, with its fixtures
 * (cluster sessions, VMs) alive. The main process tells the user how to reach them and answers 'debugResume';
 * a 'stop' (Ctrl-C) ends the pause too. Tokens are not sent: the main process has them.
 */
export interface DebugPauseMessage {
  type: 'debugPause'
  testId: string
  /** The test's title path, for the user. */
  title: string
  reason: 'test.debug()' | 'failure'
  location: Location
  /** The failure's message, for a pause after a failure. */
  error?: string
  hosts: {
    name: string
    url: string
    address?: string
    /** The worker's session on the agent: it owns the VMs. */
    session: { id: string; secret: string }
    vms: { name: string; status: string }[]
  }[]
}

/** Asks the main process, which started the project's embedded cluster, to restart one host's agent. */
export interface ClusterRequestMessage {
  type: 'cluster'
  id: string
  op: 'restartAgent'
  host: string
}

export type WorkerToMain =
  | ClusterRequestMessage
  | ReadyMessage
  | TestBeginMessage
  | StepBeginMessage
  | StepEndMessage
  | ProgressMessage
  | OutputMessage
  | AttachMessage
  | TestEndMessage
  | DoneMessage
  | TeardownErrorsMessage
  | DebugPauseMessage
  /** Barriers and keys: requests to the run's sync server (src/sync). */
  | SyncToMain
