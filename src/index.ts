// The public entry point: `import { test, expect, defineConfig } from 'vmtest-cluster'`. Inside this repository
// 'vt' is an alias of it (tsconfig.json paths) for tests written before the package got its npm name.
// Every type a user can reach from these exports is exported here too, by name, so users can type their own
// helpers and fixtures (test/setup/exports.test.ts walks the public types and fails on one left out).
// `fc` is fast-check, the one copy vt's `test.prop` uses: specs need no second import and versions cannot drift.
export { default as fc } from 'fast-check'
export type { ClusterTestFixtures, ClusterWorkerFixtures } from '../fixtures/cluster.ts'
export type { GroupTestFixtures, Placement, RoleSpec, Roles, VmGroup, VmGroupImpl } from '../fixtures/group.ts'
export type { BaseImageSpec, ImageTestFixtures, ImageWorkerFixtures } from '../fixtures/images.ts'
export { test } from '../fixtures/index.ts'
export type { Accel, CreateVmSpec, VmTestFixtures, VmWorkerFixtures, VmWorkerOwnFixtures } from '../fixtures/vm.ts'
export type { AgentRestarter } from './cluster/agentRestart.ts'
export type {
  AgentClient,
  AgentClientOptions,
  ClientState,
  LinkStateEvent,
  Listener,
  ServiceEventName,
} from './cluster/client.ts'
export type { Cluster, Reservation, SelectOptions } from './cluster/cluster.ts'
export type { Fault, FaultHandle, Faults, FaultTargetVm, HostGroup } from './cluster/faults.ts'
export type { ExecOptions, ExecOutput, Host, HostFiles, HostProcess } from './cluster/host.ts'
export { ExecFailedError } from './cluster/host.ts'
export type {
  GuestNic,
  MacRegistry,
  Network,
  NetworkAddress,
  NetworkMember,
  NetworkOptions,
} from './cluster/network.ts'
export { StageError, type StageFn, type StageResults, type Stages } from './cluster/stages.ts'
export type {
  CapacityConfig,
  ClusterConfig,
  ClusterConnectionInfo,
  NetworkConfig,
  PoolConfig,
  RemoteHostConfig,
} from './config/cluster.ts'
export type {
  Config,
  FullConfig,
  FullProject,
  ProjectConfig,
  RedactSource,
  ReporterDescription,
  UseOptions,
} from './config/types.ts'
export { defineConfig } from './config/types.ts'
export type { AsyncMatchers, PollMatchers, PollOptions, VtExpect } from './expect/index.ts'
export { expect } from './expect/index.ts'
export * from './migration/index.ts'
export type { EventPayload, ServiceClient, ServiceContract } from './protocol/contract.ts'
export type { ErrorData, QmpErrorInfo } from './protocol/errors.ts'
export { ErrorCodes, VtError, VtRemoteError } from './protocol/errors.ts'
export type { HostFacts } from './protocol/facts.ts'
export type { FileStat } from './protocol/files.ts'
export type {
  MigrateParameters,
  MigrationInfo,
  MigrationStats,
  QmpArgs,
  QmpReturn,
  SocketAddress,
  SocketAddressInet,
  SocketAddressUnix,
} from './protocol/qmp.ts'
export type { Capacity, CapacityStatus, Reservation as ReservationInfo } from './protocol/session.ts'
export type { ProcessInfo } from './protocol/spawn.ts'
export type {
  CheckResult,
  ImageFormat,
  PoolCapacity,
  PoolDef,
  PoolType,
  SnapshotInfo,
  VolumeInfo,
  VolumeRef,
} from './protocol/storage.ts'
export type { Arrival, Participant, SyncFailure, SyncReply } from './protocol/sync.ts'
export type {
  DiskSpec,
  NicSpec,
  RestorePhases,
  VmCreateOptions,
  VmInfo,
  VmQmpEvent,
  VmRestoreInfo,
  VmSnapshotInfo,
  VmSpec,
  VmStatus,
} from './protocol/vm.ts'
export { type ApiStepContext, type ApiStepOptions, apiStep, reportProgress } from './runner/apiStep.ts'
export type {
  Annotation,
  DescribeMode,
  FixturesWithLocation,
  Hook,
  HookType,
  Modifier,
  ModifierType,
  Suite,
  SuiteType,
  TestCase,
} from './runner/model.ts'
export type { PropArbitraries, PropOptions, PropValues } from './runner/prop/declare.ts'
export type {
  Attachment,
  FullResult,
  Location,
  Progress,
  Reporter,
  TestError,
  TestResult,
  TestStatus,
  TestStep,
} from './runner/reporterApi.ts'
export type {
  ConditionFn,
  DescribeFunction,
  FixtureOptionsBase,
  Fixtures,
  HookFunction,
  ModifierFunction,
  SlowFunction,
  StepOptions,
  SuiteFunction,
  TestBody,
  TestDeclaration,
  TestDetails,
  TestFixtureValue,
  TestInfo,
  TestType,
  Use,
  WorkerFixtureValue,
  WorkerInfo,
} from './runner/testType.ts'
export type { DiskUser } from './storage/copy.ts'
export type { CopyOptions, CreateOptions, Image, Pool } from './storage/pool.ts'
export type { OnProgress, StorageProgress } from './storage/progress.ts'
export { type BarrierOptions, SyncError, type WaitOptions } from './sync/api.ts'
export type { RoleBook } from './sync/hostBridge.ts'
export type { VmExecOptions, VmExecResult } from './vm/index.ts'
export { Vm, VmCommandError, VmConsole, VmSnapshot } from './vm/index.ts'
