#!/usr/bin/env node
// Entry point of the `vt` binary: registers the TypeScript loaders (tsx, and the user's .ts files as ES modules
// in any project) so that vt's own sources, the user's config and specs run without a build step, then hands
// over to the CLI.
import { registerLoaders } from '../src/runner/loader/register.js'

registerLoaders()
const { main } = await import('../src/cli/main.ts')
await main(process.argv)
