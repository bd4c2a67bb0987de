// Every public type is exported by name from the package entry (src/index.ts): the TypeScript compiler walks
// the types reachable from its exports (fixtures, their methods' parameters and results, properties) and every
// named type declared in this repository that it meets must be one of the entry's exports.
import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import ts from 'typescript'

const root = path.join(import.meta.dirname, '../..')
const entry = path.join(root, 'src/index.ts')
const named = ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Class | ts.SymbolFlags.Enum

function reachableButNotExported(): Map<string, string> {
  const host = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} }
  const config = ts.getParsedCommandLineOfConfigFile(path.join(root, 'tsconfig.json'), {}, host)!
  const program = ts.createProgram([entry], config.options)
  const checker = program.getTypeChecker()
  const exported = new Set<ts.Symbol>()
  const starts: [ts.Type, string][] = []
  for (const e of checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)!)!)) {
    const s = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e
    exported.add(s)
    const decl = s.declarations?.[0]
    if (!decl) continue
    if (s.flags & named) starts.push([checker.getDeclaredTypeOfSymbol(s), e.name])
    if (s.flags & ts.SymbolFlags.Value) starts.push([checker.getTypeOfSymbolAtLocation(s, decl), e.name])
  }
  const ours = (d: ts.Declaration) => {
    const f = d.getSourceFile().fileName
    return f.startsWith(root) && !f.includes('/node_modules/')
  }
  const missing = new Map<string, string>()
  const note = (sym: ts.Symbol | undefined, via: string) => {
    const d = sym && sym.flags & named ? sym.declarations?.[0] : undefined
    if (sym && d && ours(d) && !exported.has(sym))
      missing.set(`${sym.name} (${path.relative(root, d.getSourceFile().fileName)})`, via)
  }
  const seen = new Set<ts.Type>()
  const typeArguments = (t: ts.Type) => [
    ...(t.aliasTypeArguments ?? []),
    ...(t.flags & ts.TypeFlags.Object && (t as ts.ObjectType).objectFlags & ts.ObjectFlags.Reference
      ? checker.getTypeArguments(t as ts.TypeReference)
      : []),
  ]
  const visit = (t: ts.Type, via: string, depth: number) => {
    if (seen.has(t) || depth > 12) return
    seen.add(t)
    note(t.aliasSymbol, via)
    note(t.getSymbol(), via)
    for (const a of typeArguments(t)) visit(a, via, depth + 1)
    // A library's type (Node's, zod's, jest's): only its type arguments can be ours.
    const decl = t.aliasSymbol?.declarations?.[0] ?? t.getSymbol()?.declarations?.[0]
    if (decl && !ours(decl)) return
    if (t.isUnionOrIntersection()) for (const m of t.types) visit(m, via, depth + 1)
    if (!(t.flags & ts.TypeFlags.Object)) return
    for (const p of checker.getPropertiesOfType(t)) {
      const pd = p.valueDeclaration ?? p.declarations?.[0]
      if (p.name.startsWith('_') || p.name.startsWith('#') || (pd && !ours(pd))) continue
      if (pd && ts.getCombinedModifierFlags(pd) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue
      visit(checker.getTypeOfSymbol(p), `${via}.${p.name}`, depth + 1)
    }
    // Constructors are left out: users get Vm, Host, Cluster... from fixtures and factories, never by `new`.
    for (const sig of t.getCallSignatures()) {
      for (const p of sig.getParameters()) visit(checker.getTypeOfSymbol(p), `${via}(${p.name})`, depth + 1)
      visit(sig.getReturnType(), `${via}()`, depth + 1)
    }
  }
  for (const [t, name] of starts) visit(t, name, 0)
  return missing
}

test('every named type reachable from the public API is exported from src/index.ts', () => {
  const missing = reachableButNotExported()
  assert.deepEqual(
    [...missing].map(([type, via]) => `${type}, reached through ${via}`),
    [],
    'export these from src/index.ts (export type { ... }), or make the member that exposes them private',
  )
})

test('the types users type their fixtures with are among the exports', async () => {
  const names = Object.keys(await import('../../src/index.ts'))
  for (const value of ['test', 'expect', 'defineConfig', 'Vm', 'VmCommandError', 'ExecFailedError', 'MigrationError'])
    assert.ok(names.includes(value), `${value} is exported as a value`)
  // Types vanish at runtime: check them at compile time instead (tsc runs over this file).
  type Public = import('../../src/index.ts').Vm &
    import('../../src/index.ts').Host &
    import('../../src/index.ts').Cluster &
    import('../../src/index.ts').VmSpec &
    import('../../src/index.ts').MigrationResult &
    import('../../src/index.ts').MigrateOptions<import('../../src/index.ts').Host> &
    import('../../src/index.ts').HostFacts
  assert.equal(typeof ({} as Public), 'object')
})
