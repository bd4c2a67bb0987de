// Registers the loaders every vt process (the CLI, workers) needs before it imports TypeScript: our resolve hook
// (./hooks.js: the user's .ts files are ES modules) and then tsx, for ESM and CommonJS, so that vt's sources, the
// config and the specs run without a build step.
import { register } from 'node:module'
import { register as registerCjs } from 'tsx/cjs/api'
import { register as registerEsm } from 'tsx/esm/api'

export function registerLoaders() {
  // Hooks chain last-registered-first: tsx runs first and defers to ours for the format of .ts files.
  register('./hooks.js', import.meta.url)
  registerCjs()
  registerEsm()
}
