/**
 * The token front end: a compact JWS is taken apart strictly before any key
 * is chosen. Each segment must be canonical base64url (RFC 7515 section 2:
 * no padding, whitespace, `+` or `/`) of a valid UTF-8 JSON object. Lenient
 * decoders let one token have many spellings, which defeats caches and
 * denylists keyed by the token text.
 */
import { gatewayError } from '../errors.js'

export interface DecodedToken {
  header: Record<string, unknown>
  payload: Record<string, unknown>
}

const B64URL = /^[A-Za-z0-9_-]+$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Header parameters that change how the JWS is processed; we support none. */
const UNSUPPORTED_HEADER = ['crit', 'b64', 'enc', 'zip'] as const

export function decodeToken (token: string, maxBytes: number): DecodedToken {
  if (token.length > maxBytes) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'too-large' })
  const first = token.indexOf('.')
  const second = first === -1 ? -1 : token.indexOf('.', first + 1)
  if (second === -1 || token.indexOf('.', second + 1) !== -1) {
    throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'segments' })
  }
  const header = decodeSegment(token.slice(0, first), 'header')
  const payload = decodeSegment(token.slice(first + 1, second), 'payload')
  if (typeof header.alg !== 'string') throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'alg-missing' })
  // RFC 8725 section 3.1: `none` is never accepted, whatever its spelling.
  // Checked before the signature: an unsecured JWS has an empty one
  // (RFC 7515 appendix A.5), and it must be refused as an algorithm.
  if (header.alg.toLowerCase() === 'none') throw gatewayError('JOTGATE_TOKEN_ALGORITHM', { reason: 'alg-none' })
  for (const name of UNSUPPORTED_HEADER) {
    if (Object.hasOwn(header, name)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `header-${name}` })
  }
  if (header.kid !== undefined && typeof header.kid !== 'string') throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'kid-type' })

  const signature = token.slice(second + 1)
  if (signature.length === 0) throw gatewayError('JOTGATE_TOKEN_SIGNATURE', { reason: 'signature-empty' })
  if (!isCanonical(signature)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: 'signature-encoding' })
  return { header, payload }
}

function decodeSegment (segment: string, part: string): Record<string, unknown> {
  if (!isCanonical(segment)) throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${part}-encoding` })
  let value: unknown
  try {
    value = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')))
  } catch (cause) {
    throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${part}-json`, cause })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw gatewayError('JOTGATE_TOKEN_MALFORMED', { reason: `${part}-not-object` })
  }
  return value as Record<string, unknown>
}

/**
 * Canonical base64url: only the alphabet, a length that can be produced by
 * encoding (not 1 mod 4) and zero bits after the last whole byte.
 */
export function isCanonical (segment: string): boolean {
  if (segment.length === 0 || segment.length % 4 === 1 || !B64URL.test(segment)) return false
  return Buffer.from(segment, 'base64url').toString('base64url') === segment
}
