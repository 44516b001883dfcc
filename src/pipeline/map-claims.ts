/**
 * Step 7: claims of the verified token become request headers.
 *
 * A mapping names a claim or a dotted path (`address.country`). The path
 * walks own properties of plain objects only, never the prototype; segments
 * `__proto__`, `constructor` and `prototype` never resolve. A value that is
 * absent (undefined) at any step gives no header. Otherwise the value is
 * encoded as follows, and the result is always visible ASCII (0x20-0x7E):
 *
 * 1. Refused first: a value holding a C0 control (0x00-0x1F, TAB, CR and LF
 *    included) or DEL (0x7F) anywhere (the string, an array element, an
 *    object's nested string or key) refuses the request with 400
 *    JOTGATE_CLAIM_UNSAFE, reason `control-char`: this is what stops header
 *    injection and splitting. A lone UTF-16 surrogate (not text, cannot be
 *    UTF-8) is refused the same way, reason `lone-surrogate`.
 * 2. A string goes as it is when it is printable ASCII, does not begin or end
 *    with a space (HTTP parsers trim those) and does not begin with `utf-8''`
 *    (any case). Any other string goes as `utf-8''` followed by its UTF-8
 *    bytes percent-encoded, like an RFC 8187 ext-value: every byte except
 *    A-Z a-z 0-9 - _ . ! ~ becomes %XX. Receivers decode a value that begins
 *    with `utf-8''`; every other value is the string itself.
 * 3. A number, boolean or null goes as JSON: `42`, `1.5`, `true`, `null`.
 * 4. An array of strings, each non-empty, without `,` and without a leading
 *    or trailing space, is joined with `,` and then goes by rule 2 (so
 *    `["a","Zoë"]` becomes `utf-8''a%2CZo%C3%AB`). `[]` gives an empty value.
 * 5. Any other value (an object, a mixed array, an array whose strings hold a
 *    comma) goes as JSON text with every character above 0x7E escaped as
 *    \uXXXX, so it is pure ASCII and JSON.parse gives the value back.
 *    Values JSON cannot hold (NaN, functions, cycles) are refused, reason
 *    `not-json`; nesting deeper than 64 levels, reason `too-deep`.
 */
import { gatewayError } from '../errors.js'

/** Claims -> lower-case header name -> value. Throws JOTGATE_CLAIM_UNSAFE. */
export type HeaderMapper = (claims: Readonly<Record<string, unknown>>) => Record<string, string>

const ENCODED_PREFIX = "utf-8''"
const MAX_DEPTH = 64
// Reaching these through a claim path is prototype access, never a claim.
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype'])
const NON_ASCII = /[\u007f-\uffff]/g
// encodeURIComponent leaves these unescaped but RFC 8187 attr-char excludes them.
const NOT_ATTR_CHAR = /['()*]/g

/**
 * Built once at boot.
 * @param mapping header name -> claim path: `claimHeaders` merged with the route's `headers`, the route winning
 */
export function createHeaderMapper (mapping: Readonly<Record<string, string>>): HeaderMapper {
  // Keyed by lower-case name so a route's `x-user-id` replaces a global `X-User-Id`.
  const byName = new Map<string, string[]>()
  for (const [name, claimPath] of Object.entries(mapping)) byName.set(name.toLowerCase(), claimPath.split('.'))
  const entries: Array<{ header: string, path: string[] }> = []
  for (const [header, path] of byName) {
    if (!path.some((segment) => FORBIDDEN_SEGMENTS.has(segment))) entries.push({ header, path })
  }

  return (claims) => {
    const headers: Record<string, string> = Object.create(null)
    for (const { header, path } of entries) {
      const value = encodeClaimValue(resolve(claims, path))
      if (value !== undefined) headers[header] = value
    }
    return headers
  }
}

/** The header value of a claim value (rules in the file comment); undefined for undefined. */
export function encodeClaimValue (value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') return encodeText(value)
  if (isStringList(value)) return encodeText(value.join(','))
  return toAsciiJson(value, 0)
}

function resolve (claims: unknown, path: readonly string[]): unknown {
  let value = claims
  for (const segment of path) {
    if (!isPlainObject(value) || !Object.hasOwn(value, segment)) return undefined
    value = value[segment]
  }
  return value
}

function encodeText (text: string): string {
  if (checkText(text) && !needsEncoding(text)) return text
  return ENCODED_PREFIX + encodeURIComponent(text).replace(NOT_ATTR_CHAR, percentEncode)
}

function needsEncoding (ascii: string): boolean {
  return ascii.startsWith(' ') || ascii.endsWith(' ') ||
    ascii.slice(0, ENCODED_PREFIX.length).toLowerCase() === ENCODED_PREFIX
}

/** Throws on a control character or a lone surrogate; true when `text` is printable ASCII. */
function checkText (text: string): boolean {
  let ascii = true
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) throw unsafe('control-char')
    if (c < 0x7f) continue
    ascii = false
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1) // NaN past the end
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) throw unsafe('lone-surrogate')
      i++
    }
  }
  return ascii
}

function isStringList (value: unknown): value is string[] {
  if (!Array.isArray(value)) return false
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i]
    if (typeof item !== 'string' || item === '' || item.includes(',') ||
      item.startsWith(' ') || item.endsWith(' ')) return false
  }
  return true
}

function toAsciiJson (value: unknown, depth: number): string {
  if (typeof value === 'string') {
    checkText(value)
    return JSON.stringify(value).replace(NON_ASCII, unicodeEscape)
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw unsafe('not-json')
    return JSON.stringify(value)
  }
  if (typeof value === 'boolean' || value === null) return String(value)
  if (depth >= MAX_DEPTH) throw unsafe('too-deep')
  if (Array.isArray(value)) {
    const items: string[] = []
    for (let i = 0; i < value.length; i++) items.push(value[i] === undefined ? 'null' : toAsciiJson(value[i], depth + 1))
    return `[${items.join(',')}]`
  }
  if (isPlainObject(value)) {
    const members: string[] = []
    for (const key of Object.keys(value)) {
      if (value[key] !== undefined) members.push(`${toAsciiJson(key, depth)}:${toAsciiJson(value[key], depth + 1)}`)
    }
    return `{${members.join(',')}}`
  }
  throw unsafe('not-json')
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function unicodeEscape (c: string): string {
  return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')
}

function percentEncode (c: string): string {
  return '%' + c.charCodeAt(0).toString(16).toUpperCase()
}

function unsafe (reason: string) {
  return gatewayError('JOTGATE_CLAIM_UNSAFE', { reason })
}
