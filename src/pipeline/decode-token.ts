/**
 * The token front end: a compact JWS is taken apart strictly before any key
 * is chosen. Each segment must be canonical base64url (RFC 7515 section 2:
 * no padding, whitespace, `+` or `/`) of a valid UTF-8 JSON object. Lenient
 * decoders let one token have many spellings, which defeats caches and
 * denylists keyed by the token text. A member name repeated in one object
 * is refused too: parsers disagree on which copy wins.
 */
import { isUtf8 } from 'node:buffer'
import { gatewayError } from '../errors.js'

export interface DecodedToken {
  /** Shared by every token with the same header text: never modified. */
  header: Readonly<Record<string, unknown>>
  payload: Record<string, unknown>
  /** The third segment, canonical base64url, not empty. */
  signature: string
  /** Its bytes. */
  signatureBytes: Buffer
}

/** Header parameters that change how the JWS is processed; we support none. */
const UNSUPPORTED_HEADER = ['crit', 'b64', 'enc', 'zip'] as const

export function decodeToken (token: string, maxBytes: number): DecodedToken {
  if (token.length > maxBytes) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'too-large' })
  const first = token.indexOf('.')
  const second = first === -1 ? -1 : token.indexOf('.', first + 1)
  if (second === -1 || token.indexOf('.', second + 1) !== -1) {
    throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'segments' })
  }
  const headerText = token.slice(0, first)
  const known = knownHeaders.get(headerText)
  const header = known ?? decodeSegment(headerText, 'header')
  const payload = decodeSegment(token.slice(first + 1, second), 'payload')
  if (known === undefined) {
    checkHeader(header)
    if (knownHeaders.size >= HEADERS_KEPT) knownHeaders.clear()
    knownHeaders.set(headerText, Object.freeze(header))
  }

  const signature = token.slice(second + 1)
  if (signature.length === 0) throw gatewayError('JOTGATE_TOKEN_SIGNATURE', { reason: 'signature-empty' })
  const signatureBytes = decodeCanonical(signature)
  if (signatureBytes === undefined) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'signature-encoding' })
  return { header, payload, signature, signatureBytes }
}

/**
 * Decoded headers by their exact text. The tokens of one key share one
 * header, so a signature check (a verified-token cache miss) decodes and
 * checks only its payload. Only headers that decoded and passed
 * checkHeader are kept, frozen, at most HEADERS_KEPT of them (then the map
 * starts over): a client sending made-up headers costs what it did without
 * the map.
 */
const HEADERS_KEPT = 64
const knownHeaders = new Map<string, Readonly<Record<string, unknown>>>()

/** The checks that depend on the header alone: made once per header text kept. */
function checkHeader (header: Record<string, unknown>): void {
  if (typeof header.alg !== 'string') throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'alg-missing' })
  // RFC 8725 section 3.1: `none` is never accepted, whatever its spelling.
  // Checked before the signature: an unsecured JWS has an empty one
  // (RFC 7515 appendix A.5), and it must be refused as an algorithm.
  if (header.alg.toLowerCase() === 'none') throw gatewayError('JOTGATE_TOKEN_ALGORITHM', { reason: 'alg-none' })
  for (const name of UNSUPPORTED_HEADER) {
    if (Object.hasOwn(header, name)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `header-${name}` })
  }
  if (header.kid !== undefined && typeof header.kid !== 'string') throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'kid-type' })
}

function decodeSegment (segment: string, part: string): Record<string, unknown> {
  const bytes = decodeCanonical(segment)
  if (bytes === undefined) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${part}-encoding` })
  // Buffer's UTF-8 decoding would replace invalid sequences; they are
  // refused instead. A leading U+FEFF is kept, so JSON.parse refuses it:
  // RFC 8259 section 8.1 forbids senders to add one, and a decoder that
  // drops it silently gives the same claims a second spelling.
  if (!isUtf8(bytes)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${part}-json` })
  const text = bytes.toString('utf8')
  let value: unknown
  try {
    // V8's JSON.parse is iterative: 100k nested `[` cost time linear in the
    // text, never a stack overflow.
    value = JSON.parse(text)
  } catch (cause) {
    throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${part}-json`, cause })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${part}-not-object` })
  }
  if (countNames(text) !== countMembers(value)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'duplicate-key' })
  return value as Record<string, unknown>
}

const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * True when one object of `json` (text JSON.parse accepted) names a member
 * twice, at any depth. JSON.parse keeps the last copy, other parsers keep
 * the first: the gateway and a library behind it would read different
 * claims. RFC 7515 section 4 and RFC 7519 section 4 let a parser refuse
 * duplicates; I-JSON (RFC 7493 section 2.3) forbids them at any depth.
 * Names are compared unescaped (`"s\u0075b"` is `sub`).
 *
 * How: JSON.parse gives each object one member per distinct name, so the
 * text names more members than the parsed value holds exactly when some
 * object repeats a name. Both counts are linear and allocate nothing per
 * member (a Set of names per object cost as much as the parse itself).
 */
export function hasDuplicateName (json: string): boolean {
  return countNames(json) !== countMembers(JSON.parse(json))
}

/** Member names written in `json` (valid JSON text), at any depth. */
function countNames (json: string): number {
  // Per open container: true for an object, false for an array.
  const inObject: boolean[] = []
  let expectName = false
  let names = 0
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (c === QUOTE) {
      if (expectName) {
        names++
        expectName = false
      }
      // Skip to the closing quote; a backslash escapes the next character.
      for (i++; i < json.length && json.charCodeAt(i) !== QUOTE; i++) {
        if (json.charCodeAt(i) === BACKSLASH) i++
      }
    } else if (c === 0x7b) { // {
      inObject.push(true)
      expectName = true
    } else if (c === 0x5b) { // [
      inObject.push(false)
    } else if (c === 0x7d || c === 0x5d) { // } ]
      inObject.pop()
    } else if (c === 0x2c) { // ,
      expectName = inObject[inObject.length - 1] === true
    }
  }
  return names
}

/** Own members of every object in a JSON.parse result, at any depth (iterative: nesting is unbounded). */
function countMembers (value: unknown): number {
  let members = 0
  const pending: unknown[] = [value]
  while (pending.length > 0) {
    const v = pending.pop()
    if (Array.isArray(v)) {
      for (const item of v) if (item !== null && typeof item === 'object') pending.push(item)
    } else if (v !== null && typeof v === 'object') {
      // JSON.parse makes only own, enumerable members (`__proto__` included).
      for (const name in v) {
        members++
        const item = (v as Record<string, unknown>)[name]
        if (item !== null && typeof item === 'object') pending.push(item)
      }
    }
  }
  return members
}

/** The bytes of a canonical base64url segment (isCanonical), else undefined. */
export function decodeCanonical (segment: string): Buffer | undefined {
  return isCanonical(segment) ? Buffer.from(segment, 'base64url') : undefined
}

const BASE64URL = /^[A-Za-z0-9_-]+$/

/**
 * Whether `segment` is exactly what base64url-encoding its bytes gives
 * back: not empty, only the alphabet (no padding, `+`, `/` or
 * whitespace, which Node's decoder would accept or skip), a length an
 * encoding can produce (not 1 mod 4), and zero bits after the last whole
 * byte in its last character. Checked on the text: encoding the bytes
 * again to compare cost a string as long as the segment per check.
 */
export function isCanonical (segment: string): boolean {
  const rest = segment.length % 4
  if (rest === 1 || !BASE64URL.test(segment)) return false
  if (rest === 0) return true
  // 2 characters carry one byte and 4 spare bits, 3 carry two and 2 spare.
  return (sextet(segment.charCodeAt(segment.length - 1)) & (rest === 2 ? 0x0f : 0x03)) === 0
}

/** The value of a base64url character (one BASE64URL accepts). */
function sextet (c: number): number {
  if (c >= 97) return c - 71 // a-z: 26-51
  if (c >= 65) return c === 95 ? 63 : c - 65 // A-Z: 0-25, _: 63
  if (c >= 48) return c + 4 // 0-9: 52-61
  return 62 // -
}
