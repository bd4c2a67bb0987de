// Every service the agent serves, by name. Adding a service: write its contract in src/protocol/<name>.ts,
// add one line here, write agent/services/<name>.ts and add one line to agent/services/index.ts.
import { console } from './console.ts'
import { exec } from './exec.ts'
import { facts } from './facts.ts'
import { faults } from './faults.ts'
import { files } from './files.ts'
import { migration } from './migration.ts'
import { network } from './network.ts'
import { session } from './session.ts'
import { spawn } from './spawn.ts'
import { storage } from './storage.ts'
import { sync } from './sync.ts'
import { vm } from './vm.ts'

export const services = {
  facts,
  exec,
  files,
  spawn,
  session,
  migration,
  faults,
  network,
  vm,
  sync,
  storage,
  console,
} as const

export type Services = typeof services
export type ServiceName = keyof Services
