/**
 * Parsing config text with `${VAR}` and `${VAR:-default}` taken from the
 * environment (CONTRACT section 2).
 *
 * Each reference is masked with an inert marker before the YAML is parsed
 * and filled in on the parsed scalars, never spliced into the text: a value
 * holding ` #`, `"`, `\`, `: `, `&` or a newline stays exactly what the
 * variable holds instead of being read as YAML (spliced, an admin token
 * `abc #1` silently became `abc`, and `"${JWT_SECRET}"` turned `\n` in the
 * secret into a newline). References in comments are ignored. An unquoted
 * scalar is typed after substitution, so `port: ${PORT:-8080}` is a number
 * and `trustProxy: ${TP:-false}` a boolean, as if the value had been typed
 * there; an empty value stays an empty string (`token: ${ADMIN_TOKEN:-}`).
 */
import { randomBytes } from 'node:crypto'
import { isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml'
import { pointerToPath, type ConfigProblem } from './problems.js'

/** `${NAME}`, `${NAME:-default}`, and `$${...}` which stays a literal `${...}`. */
const REFERENCE = /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g
const INTEGER = /^[-+]?[0-9]+$/
const DECIMAL = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/
const BOOLEAN: Record<string, boolean> = { true: true, True: true, TRUE: true, false: false, False: false, FALSE: false }

interface Reference { whole: string, name: string, fallback: string | undefined }

export interface ParsedText {
  raw: unknown
  problems: ConfigProblem[]
}

/** Parses YAML (or JSON) text, filling in environment references. */
export function parseConfigText (text: string, env: NodeJS.ProcessEnv): ParsedText {
  // Letters and digits only: inert in plain, quoted and flow scalars alike.
  const tag = `jotgateenv${randomBytes(6).toString('hex')}r`
  const refs: Reference[] = []
  const masked = text.replace(REFERENCE, (whole: string, name: string, fallback: string | undefined) => {
    refs.push({ whole, name, fallback })
    return `${tag}${refs.length - 1}x`
  })
  const marker = new RegExp(`${tag}([0-9]+)x`, 'g')
  const doc = parseDocument(masked, { prettyErrors: true, uniqueKeys: true })
  const error = doc.errors[0]
  if (error !== undefined) {
    const message = error.message.split('\n')[0]!.replace(marker, (_m, i: string) => refs[Number(i)]!.whole)
    return { raw: undefined, problems: [{ path: '', message: `not valid YAML or JSON: ${message}` }] }
  }
  const problems: ConfigProblem[] = []

  const fill = (value: string, pointer: string[]): string => value.replace(marker, (_m, i: string) => {
    const ref = refs[Number(i)]!
    if (ref.whole.startsWith('$$')) return ref.whole.slice(1)
    const set = env[ref.name]
    if (set !== undefined && (set !== '' || ref.fallback === undefined)) return set
    if (ref.fallback !== undefined) return ref.fallback
    problems.push({
      path: pointerToPath(pointer.map((p) => `/${p.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')),
      message: `environment variable ${ref.name} is not set and has no default (set it, or write \${${ref.name}:-default})`
    })
    return ''
  })

  const walk = (node: unknown, pointer: string[]): void => {
    if (isScalar(node)) {
      if (typeof node.value !== 'string' || !node.value.includes(tag)) return
      const value = fill(node.value, pointer)
      node.value = node.type === 'PLAIN' || node.type === undefined ? typed(value) : value
    } else if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        walk(pair.key, pointer)
        const key = isScalar(pair.key) ? String(pair.key.value) : '?'
        walk(pair.value, [...pointer, key])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...pointer, String(i)]))
    }
  }
  walk(doc.contents, [])
  return { raw: doc.toJS({ maxAliasCount: 100 }), problems }
}

/** An unquoted value as YAML's core schema would type it: number, boolean, else string. */
function typed (value: string): string | number | boolean {
  if (value in BOOLEAN) return BOOLEAN[value]!
  if (INTEGER.test(value) || DECIMAL.test(value)) return Number(value)
  return value
}
