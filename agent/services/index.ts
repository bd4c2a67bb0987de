// Every service implementation, by name. Adding a service: one line here (and one in
// src/protocol/registry.ts). tsc fails when a service of the registry has no implementation here.
import type { ServiceName } from '../../src/protocol/registry.ts'
import type { ServiceModule } from '../service.ts'
import { consoleService } from './console.ts'
import { execService } from './exec.ts'
import { factsService } from './facts.ts'
import { faultsService } from './faults.ts'
import { filesService } from './files.ts'
import { migrationService } from './migration.ts'
import { networkService } from './network.ts'
import { sessionService } from './session.ts'
import { spawnService } from './spawn.ts'
import { storageService } from './storage.ts'
import { syncService } from './sync.ts'
import { vmService } from './vm.ts'

export const serviceModules: { [N in ServiceName]: ServiceModule<N> } = {
  facts: factsService,
  exec: execService,
  files: filesService,
  spawn: spawnService,
  session: sessionService,
  migration: migrationService,
  faults: faultsService,
  network: networkService,
  vm: vmService,
  sync: syncService,
  storage: storageService,
  console: consoleService,
}
