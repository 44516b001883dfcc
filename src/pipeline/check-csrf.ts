/**
 * CSRF defence for cookie-borne tokens. A browser attaches cookies to
 * requests that other sites make it send, so a token that came from a
 * cookie proves nothing about who wrote the request. Two layers: the
 * cookies login sets are SameSite (strict by default), and here an unsafe
 * method (not GET, HEAD, OPTIONS) or a WebSocket upgrade (cross-site
 * WebSocket hijacking) carrying a cookie token must come from the
 * request's own origin or a trusted one, read from `Origin` (or, when a
 * browser omitted it, `Referer`); no origin at all is refused too (OWASP
 * CSRF cheat sheet, "verifying origin with standard headers").
 */
import { gatewayError } from '../errors.js'
import type { RequestContext } from './context.js'

type Headers = Readonly<Record<string, string | string[] | undefined>>

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Throws 403 JOTGATE_CSRF when a cookie-authenticated request needs an
 * origin check and fails it.
 * @param trusted origins (`scheme://host[:port]`) trusted besides the request's own
 */
export function checkCsrf (ctx: RequestContext, trusted: ReadonlySet<string>, trustProxy: boolean): void {
  if (ctx.tokenSource !== 'cookie') return
  if (SAFE_METHODS.has(ctx.method) && ctx.websocket !== true) return
  checkOrigin(ctx.headers, trusted, trustProxy)
}

/** Throws 403 JOTGATE_CSRF unless the request comes from its own origin or a trusted one. */
export function checkOrigin (headers: Headers, trusted: ReadonlySet<string>, trustProxy: boolean): void {
  const origin = originOf(headers)
  if (origin === undefined) throw gatewayError('JOTGATE_CSRF', { reason: 'origin-missing' })
  if (origin === ownOrigin(headers, trustProxy) || trusted.has(origin)) return
  throw gatewayError('JOTGATE_CSRF', { reason: 'origin-untrusted' })
}

/** The origin a browser declared: `Origin`, else the origin of `Referer`; `null` and garbage count as none. */
function originOf (headers: Headers): string | undefined {
  const origin = single(headers.origin)
  if (origin !== undefined) return origin === 'null' ? undefined : origin.toLowerCase()
  const referer = single(headers.referer)
  if (referer === undefined) return undefined
  try {
    const url = new URL(referer)
    return url.origin === 'null' ? undefined : url.origin
  } catch {
    return undefined
  }
}

/**
 * `scheme://host` of the request itself. The Host header is written by the
 * browser, never by the page that caused the request, so comparing it to
 * Origin is sound; behind a trusted proxy its X-Forwarded-Proto/-Host
 * (last entry: the nearest proxy's) describe what the browser used.
 */
function ownOrigin (headers: Headers, trustProxy: boolean): string | undefined {
  let proto = 'http'
  let host = single(headers.host)
  if (trustProxy) {
    proto = last(headers['x-forwarded-proto']) ?? proto
    host = last(headers['x-forwarded-host']) ?? host
  }
  if (host === undefined || host === '') return undefined
  host = host.toLowerCase()
  // Origin omits a default port; Host may carry it.
  if ((proto === 'http' && host.endsWith(':80')) || (proto === 'https' && host.endsWith(':443'))) host = host.slice(0, host.lastIndexOf(':'))
  return `${proto.toLowerCase()}://${host}`
}

function single (value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

function last (value: string | string[] | undefined): string | undefined {
  const joined = Array.isArray(value) ? value.join(',') : value
  if (joined === undefined) return undefined
  const entry = joined.split(',').at(-1)!.trim()
  return entry === '' ? undefined : entry
}
