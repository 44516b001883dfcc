/**
 * Step 1: the request target becomes the one path that is both matched
 * against the routes and forwarded upstream (RFC 3986 section 6.2.2). If the
 * gateway matched one spelling and the upstream resolved another
 * (`/public/%2e%2e/admin`, `/public/..%2fadmin`, `/public\..\admin`), a public
 * route would front a protected one. So the path is decoded exactly once,
 * and whatever different servers may read differently is refused, not
 * repaired.
 */
import { gatewayError } from '../errors.js'
import type { GatewayError } from '../errors.js'

/** The normalized request target. */
export interface NormalizedTarget {
  /** Starts with `/`; no dot segments, no empty segments, no `%XX` of an unreserved character. */
  path: string
  /** `''` or the query from its `?` on, exactly as received. */
  query: string
}

const SLASH = 0x2f
const DOT = 0x2e
const PERCENT = 0x25
const BACKSLASH = 0x5c
const HEX_DIGITS = '0123456789ABCDEF'
const ABSOLUTE_FORM = /^https?:\/\//i

// RFC 3986 section 2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
const UNRESERVED = new Uint8Array(256)
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c)
  if (/[A-Za-z0-9\-._~]/.test(ch)) UNRESERVED[c] = 1
}

// Printable characters of the WHATWG URL path percent-encode set. undici
// sends `/a"b` as `/a%22b`, so the raw form is encoded here, once: the path
// matched is then the path forwarded, and `"` and `%22` are one path.
const ENCODE = new Uint8Array(128)
for (const ch of '"<>^`{}') ENCODE[ch.charCodeAt(0)] = 1

function refuse (reason: string): GatewayError {
  return gatewayError('JOTGATE_BAD_PATH', { reason })
}

function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const lower = c | 0x20
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10
  return -1
}

/** A raw character that may not appear in a path (or, for C0 and DEL, anywhere). */
function checkRaw (c: number): void {
  if (c < 0x20 || c === 0x7f) throw refuse('control-char')
  if (c === 0x20 || c > 0x7e) throw refuse('bad-char')
  // Windows and some frameworks read `\` as `/` (`/public\..\admin`).
  if (c === BACKSLASH) throw refuse('backslash')
}

/**
 * Takes the raw request-target (`req.url` as Node gives it: origin-form
 * `/a/b?x`, absolute-form `http://host:8080/a?x`, or `*`) and returns the one
 * normalized path and the untouched query.
 * @throws GatewayError `JOTGATE_BAD_PATH` (400) with a `reason` id on refusal
 */
export function normalizeTarget (target: string): NormalizedTarget {
  if (target.length === 0) throw refuse('empty')
  // A fragment is never sent by a client; one that is could be cut by one hop and not by the next.
  if (target.indexOf('#') !== -1) throw refuse('fragment')
  let start = 0
  if (target.charCodeAt(0) !== SLASH) {
    if (target === '*') throw refuse('asterisk-form')
    start = skipAuthority(target)
  }
  const q = target.indexOf('?', start)
  const end = q === -1 ? target.length : q
  const query = q === -1 ? '' : target.slice(q)
  // The query is forwarded verbatim, so a raw CR/LF in it would split the upstream request line.
  for (let i = 1; i < query.length; i++) {
    const c = query.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) throw refuse('control-char')
  }
  return { path: start === end ? '/' : normalizePath(target, start, end), query }
}

/** Absolute form (RFC 9112 section 3.2.2): where the path begins after `http(s)://authority`. */
function skipAuthority (target: string): number {
  const scheme = ABSOLUTE_FORM.exec(target)
  if (scheme === null) throw refuse('not-origin-form')
  let i = scheme[0].length
  for (; i < target.length; i++) {
    const c = target.charCodeAt(i)
    if (c === SLASH || c === 0x3f) break
    if (c <= 0x20 || c >= 0x7f || c === BACKSLASH) throw refuse('bad-authority')
  }
  // RFC 9110 section 4.2.1: an http URI with an empty host must be rejected.
  if (i === scheme[0].length) throw refuse('bad-authority')
  return i
}

/** `s.slice(start, end)` normalized; `s[start]` is `/`. */
function normalizePath (s: string, start: number, end: number): string {
  // Fast path: nothing to decode, no dot or empty segment, nothing to refuse.
  let i = start + 1
  for (; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c <= 0x20 || c >= 0x7f || c === PERCENT || c === BACKSLASH || ENCODE[c] === 1) break
    if ((c === SLASH || c === DOT) && s.charCodeAt(i - 1) === SLASH) break
    if (c === DOT && s.charCodeAt(i - 1) === DOT) break
  }
  if (i === end) return start === 0 && end === s.length ? s : s.slice(start, end)

  // RFC 3986 section 5.2.4 (remove_dot_segments) on a stack of segments,
  // except that a `..` above the root is refused rather than dropped.
  const segments: string[] = []
  let decoded = ''
  let run = start + 1
  let trailingSlash = false
  for (i = start + 1; i <= end; i++) {
    const c = i === end ? SLASH : s.charCodeAt(i)
    if (c === SLASH) {
      const segment = decoded + s.slice(run, i)
      decoded = ''
      run = i + 1
      if (segment === '..') {
        if (segments.pop() === undefined) throw refuse('above-root')
      } else if (segment !== '.' && segment !== '') {
        // `..;` is `..` to Tomcat and Jetty (path parameters); a segment
        // that begins or ends with `..` is refused rather than guessed at.
        if (segment.startsWith('..') || segment.endsWith('..')) throw refuse('dot-dot-segment')
        segments.push(segment)
      }
      if (i === end) trailingSlash = segment === '' || segment === '.' || segment === '..'
    } else if (c === PERCENT) {
      const hi = i + 2 < end ? hexValue(s.charCodeAt(i + 1)) : -1
      const lo = hi === -1 ? -1 : hexValue(s.charCodeAt(i + 2))
      if (lo === -1) throw refuse('bad-percent')
      const byte = (hi << 4) | lo
      if (byte === SLASH || byte === BACKSLASH) throw refuse('encoded-slash')
      if (byte < 0x20 || byte === 0x7f) throw refuse('control-char')
      // Decoded once: `%25` stays `%25`, so `%252e` can never become a dot later.
      decoded += s.slice(run, i) + (UNRESERVED[byte] === 1
        ? String.fromCharCode(byte)
        : '%' + HEX_DIGITS[hi]! + HEX_DIGITS[lo]!)
      i += 2
      run = i + 1
    } else {
      checkRaw(c)
      if (ENCODE[c] === 1) {
        decoded += s.slice(run, i) + '%' + HEX_DIGITS[c >> 4]! + HEX_DIGITS[c & 15]!
        run = i + 1
      }
    }
  }
  if (segments.length === 0) return '/'
  const path = '/' + segments.join('/') + (trailingSlash ? '/' : '')
  // Percent-escapes must spell UTF-8: servers disagree on what other bytes mean.
  if (path.includes('%')) {
    try {
      decodeURIComponent(path)
    } catch {
      throw refuse('not-utf8')
    }
  }
  return path
}
