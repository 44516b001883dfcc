/**
 * Step 2: identity headers a client sends are removed before anything else,
 * whatever the route. Otherwise a client could forge `X-User-Id` on a route
 * that does not map it, or on an `optional` route when it sends no token,
 * and the upstream would trust it.
 */

/** Removes spoofable identity headers from an incoming request. */
export interface HeaderStripper {
  /** True when the (lower-case) header name must be removed. */
  matches (lowerCaseName: string): boolean
  /**
   * Deletes in place, in one pass over the names, every key that matches,
   * that matches once `_` is read as `-`, or that `alsoDrop` names.
   */
  strip (headers: Record<string, unknown>, alsoDrop?: ReadonlySet<string>): void
}

/**
 * Built once at boot.
 * @param patterns header names, optionally ending with `*` meaning a prefix (`X-User-*`)
 * @param exact extra names to strip: every `claimHeaders` name and every route's `headers` name
 */
export function createHeaderStripper (patterns: readonly string[], exact: readonly string[]): HeaderStripper {
  const names = new Set<string>()
  const prefixes: string[] = []
  for (const pattern of patterns) {
    const lower = pattern.toLowerCase()
    if (lower.endsWith('*')) prefixes.push(lower.slice(0, -1))
    else names.add(lower)
  }
  for (const name of exact) names.add(name.toLowerCase())

  function matches (lowerCaseName: string): boolean {
    if (names.has(lowerCaseName)) return true
    for (const prefix of prefixes) {
      if (lowerCaseName.startsWith(prefix)) return true
    }
    return false
  }

  return {
    matches,
    strip (headers, alsoDrop) {
      // Node gives lower-case keys already; lower-casing again costs little and
      // keeps a hand-built headers object from slipping a forged name through.
      // CGI-style upstreams (WSGI, Rack, PHP) read `X_User_Id` and `X-User-Id`
      // as the same HTTP_X_USER_ID, so a client could smuggle an identity
      // header past a dash-only list (oauth2-proxy GHSA-vjrc-mh2v-45x6).
      for (const key of Object.keys(headers)) {
        const name = key.toLowerCase()
        if (alsoDrop?.has(name) === true || matches(name) || (name.includes('_') && matches(name.replaceAll('_', '-')))) delete headers[key]
      }
    }
  }
}
