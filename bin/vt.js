#!/usr/bin/env node
// Entry point of the `vt` binary: registers tsx so that vt's own TypeScript sources, the user's config and
// specs run without a build step, then hands over to the CLI.
import { register as registerCjs } from 'tsx/cjs/api'
import { register } from 'tsx/esm/api'

// Both hooks: a user's project without "type": "module" loads .ts files as CommonJS.
registerCjs()
register()
const { main } = await import('../src/cli/main.ts')
await main(process.argv)
