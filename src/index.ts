// The public entry point: `import { test, expect, defineConfig } from 'vt'`.
export { test } from '../fixtures/index.ts'
export { expect } from './expect/index.ts'
export { defineConfig } from './config/types.ts'
export type { Config, ProjectConfig, FullConfig, FullProject, UseOptions } from './config/types.ts'
export type { ClusterConfig, RemoteHostConfig } from './cluster/config.ts'
export type { Reporter, TestResult, TestStep, TestError, FullResult, Attachment } from './runner/reporterApi.ts'
export type { Suite, TestCase } from './runner/model.ts'
export type { TestInfo, WorkerInfo, Fixtures, TestType } from './runner/testType.ts'
