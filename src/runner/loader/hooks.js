// Module resolve hook (runs in Node's loader thread, before tsx exists there: plain JS). The user's TypeScript
// files load as ES modules whatever their package.json's "type" says, so a spec in a project made by
// `npm init -y` ("type": "commonjs") imports the same vt module instances as the runner does; loaded as CommonJS,
// it would get a second copy of vt and its test() calls would land nowhere. Registered before tsx, so tsx asks
// this hook first and keeps the format it returns.
const typescript = /\.(ts|tsx)$/

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context)
  if (!result.url.startsWith('file:')) return result
  const { pathname } = new URL(result.url)
  if (!typescript.test(pathname) || pathname.includes('/node_modules/')) return result
  return { ...result, format: 'module' }
}
