/**
 * The token never travels upstream unless the route says
 * `forwardAuthorization: true`, whatever carried it: the Authorization
 * header (register.ts), a token cookie, or a query parameter. Shared by
 * the HTTP proxy and the WebSocket upgrade.
 */
import type { CompiledRoute } from '../pipeline/route-table.js'
import type { TokenPolicies } from '../pipeline/token-policy.js'
import { decodeQueryPart } from '../pipeline/extract-token.js'

type Headers = Record<string, string | string[] | number | undefined>

/**
 * Removes token cookies from the forwarded Cookie header. Browsers attach
 * them to every request of their path, `auth: none` routes included, so
 * they go on every route without forwardAuthorization.
 */
export function stripTokenCookies (headers: Headers, route: CompiledRoute, policies: TokenPolicies): void {
  if (route.forwardAuthorization || policies.tokenCookies.length === 0 || headers.cookie === undefined) return
  const names = policies.tokenCookies
  const kept: string[] = []
  const values = Array.isArray(headers.cookie) ? headers.cookie : [String(headers.cookie)]
  for (const value of values) {
    for (const pair of value.split(';')) {
      const eq = pair.indexOf('=')
      const name = (eq === -1 ? pair : pair.slice(0, eq)).trim()
      if (pair.trim() !== '' && !names.includes(name)) kept.push(pair.trim())
    }
  }
  if (kept.length === 0) delete headers.cookie
  else headers.cookie = kept.join('; ')
}

/**
 * The query to forward: as it came (CONTRACT step 1), minus the token
 * parameter on routes that read one (an `auth: none` route reads none).
 */
export function forwardedQuery (query: string, route: CompiledRoute, policies: TokenPolicies): string {
  const name = route.auth === 'none' || route.forwardAuthorization ? undefined : policies.forRoute(route).query
  if (name === undefined || query.length <= 1) return query
  const kept = query.slice(1).split('&').filter((pair) => {
    const eq = pair.indexOf('=')
    return decodeQueryPart(eq === -1 ? pair : pair.slice(0, eq)) !== name
  })
  return kept.length === 0 ? '' : `?${kept.join('&')}`
}
