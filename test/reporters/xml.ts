// A strict XML 1.0 well-formedness checker and tiny DOM for the tests: the JUnit reporter's output must parse
// here (balanced tags, quoted unique attributes, only defined entities, only legal characters, one root).
import { execFileSync, spawnSync } from 'node:child_process'

export interface XmlElement {
  name: string
  attributes: Record<string, string>
  children: XmlElement[]
  text: string
}

const legalChar = /^[\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u
const nameRe = /^[A-Za-z_:][\w.:-]*/

function decode(text: string, where: number): string {
  return text.replace(/&([^;]*);?/g, (all, body: string) => {
    if (!all.endsWith(';')) throw new Error(`bare & at ${where}`)
    if (body === 'amp') return '&'
    if (body === 'lt') return '<'
    if (body === 'gt') return '>'
    if (body === 'quot') return '"'
    if (body === 'apos') return "'"
    const m = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(body)
    if (!m) throw new Error(`undefined entity &${body}; at ${where}`)
    const code = m[1].startsWith('x') ? Number.parseInt(m[1].slice(1), 16) : Number.parseInt(m[1], 10)
    const ch = String.fromCodePoint(code)
    if (!legalChar.test(ch)) throw new Error(`character reference to illegal char ${code} at ${where}`)
    return ch
  })
}

export function parseXml(xml: string): XmlElement {
  if (!legalChar.test(xml)) {
    const bad = [...xml].findIndex(ch => !legalChar.test(ch))
    throw new Error(`illegal XML character U+${xml.codePointAt(bad)?.toString(16)} at ${bad}`)
  }
  let i = 0
  const skipWs = () => {
    while (i < xml.length && /\s/.test(xml[i])) i++
  }
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>')
    if (end < 0) throw new Error('unterminated XML declaration')
    i = end + 2
  }
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  while (i < xml.length) {
    if (!stack.length) {
      skipWs()
      if (i >= xml.length) break
      if (root) throw new Error(`content after the root element at ${i}`)
      if (xml[i] !== '<') throw new Error(`text outside the root element at ${i}`)
    }
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i)
      if (end < 0) throw new Error('unterminated comment')
      i = end + 3
      continue
    }
    if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i)
      if (end < 0 || !stack.length) throw new Error(`bad CDATA at ${i}`)
      stack[stack.length - 1].text += xml.slice(i + 9, end)
      i = end + 3
      continue
    }
    if (xml.startsWith('</', i)) {
      const m = nameRe.exec(xml.slice(i + 2))
      if (!m) throw new Error(`bad end tag at ${i}`)
      const open = stack.pop()
      if (!open || open.name !== m[0]) throw new Error(`</${m[0]}> at ${i} does not close <${open?.name}>`)
      i += 2 + m[0].length
      skipWs()
      if (xml[i] !== '>') throw new Error(`bad end tag at ${i}`)
      i++
      if (!stack.length) root = open
      continue
    }
    if (xml[i] === '<') {
      const m = nameRe.exec(xml.slice(i + 1))
      if (!m) throw new Error(`bad start tag at ${i}`)
      const el: XmlElement = { name: m[0], attributes: {}, children: [], text: '' }
      i += 1 + m[0].length
      for (;;) {
        const before = i
        skipWs()
        if (xml.startsWith('/>', i)) {
          i += 2
          if (stack.length) stack[stack.length - 1].children.push(el)
          else root = el
          break
        }
        if (xml[i] === '>') {
          i++
          if (stack.length) stack[stack.length - 1].children.push(el)
          stack.push(el)
          break
        }
        if (i === before) throw new Error(`missing whitespace before attribute at ${i}`)
        const a = nameRe.exec(xml.slice(i))
        if (!a) throw new Error(`bad attribute at ${i}`)
        i += a[0].length
        skipWs()
        if (xml[i] !== '=') throw new Error(`attribute ${a[0]} without value at ${i}`)
        i++
        skipWs()
        const q = xml[i]
        if (q !== '"' && q !== "'") throw new Error(`unquoted attribute ${a[0]} at ${i}`)
        const end = xml.indexOf(q, i + 1)
        if (end < 0) throw new Error(`unterminated attribute ${a[0]}`)
        const raw = xml.slice(i + 1, end)
        if (raw.includes('<')) throw new Error(`< in attribute ${a[0]} at ${i}`)
        if (a[0] in el.attributes) throw new Error(`duplicate attribute ${a[0]} at ${i}`)
        el.attributes[a[0]] = decode(raw, i)
        i = end + 1
      }
      continue
    }
    const next = xml.indexOf('<', i)
    const raw = xml.slice(i, next < 0 ? xml.length : next)
    if (raw.includes(']]>')) throw new Error(`]]> in text at ${i}`)
    stack[stack.length - 1].text += decode(raw, i)
    i = next < 0 ? xml.length : next
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`)
  if (!root) throw new Error('no root element')
  return root
}

/** All descendants (and the element itself) with this tag name, in document order. */
export function findAll(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = []
  const visit = (e: XmlElement) => {
    if (e.name === name) out.push(e)
    e.children.forEach(visit)
  }
  visit(el)
  return out
}

/**
 * Validates a JUnit report against test/reporters/junit.xsd with xmllint (package libxml2-utils). Returns false
 * when xmllint is missing locally; under CI a missing xmllint is an error, because .ci/run installs it.
 */
export function validateJUnitSchema(xml: string): boolean {
  try {
    execFileSync('xmllint', ['--version'], { stdio: 'ignore' })
  } catch {
    if (process.env.CI) throw new Error('xmllint is missing: CI must install libxml2-utils (see .ci/run)')
    return false
  }
  const schema = new URL('./junit.xsd', import.meta.url).pathname
  const r = spawnSync('xmllint', ['--noout', '--schema', schema, '-'], { input: xml, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`JUnit XML does not match junit.xsd:\n${r.stderr}\n${xml.slice(0, 4000)}`)
  return true
}
