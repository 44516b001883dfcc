/**
 * Per-route token policy, compiled once per config: which sources besides
 * the Authorization header a route reads the token from, and which
 * origins it trusts for cookie-authenticated requests (CSRF). A route's
 * `tokenSources` and `cors` replace the gateway's.
 */
import type { CorsConfig, GatewayConfig, TokenSourcesConfig } from '../config/schema.js'
import type { SourceNames } from './extract-token.js'
import type { CompiledRoute } from './route-table.js'

export interface TokenPolicy extends SourceNames {
  /** Origins, besides the request's own, trusted to send cookie-authenticated unsafe requests. */
  trustedOrigins: ReadonlySet<string>
  /** The CORS settings in force (undefined or no origins: CORS off). */
  cors: CorsConfig | undefined
}

export interface TokenPolicies {
  /** For the token endpoints and unmatched paths. */
  gateway: TokenPolicy
  forRoute: (route: CompiledRoute) => TokenPolicy
  /** Every cookie that can carry a token (access or refresh): never forwarded upstream. */
  tokenCookies: readonly string[]
  /** Whether X-Forwarded-Proto / -Host tell the request's own origin. */
  trustProxy: boolean
  /** Whether the gateway or any route answers CORS at all. */
  anyCors: boolean
}

// Keyed by the frozen config object: compiled on first use, once per generation.
const compiled = new WeakMap<GatewayConfig, TokenPolicies>()

export function tokenPolicies (config: GatewayConfig): TokenPolicies {
  let policies = compiled.get(config)
  if (policies === undefined) {
    policies = compile(config)
    compiled.set(config, policies)
  }
  return policies
}

function compile (config: GatewayConfig): TokenPolicies {
  const gateway = policy(config.tokens.sources, config.cors)
  const routes = config.routes.map((r) => policy(r.tokenSources ?? config.tokens.sources, r.cors ?? config.cors))
  const cookies = new Set<string>()
  for (const sources of [config.tokens.sources, ...config.routes.map((r) => r.tokenSources)]) {
    if (sources?.cookie !== undefined) cookies.add(sources.cookie.name)
  }
  if (config.auth?.cookies !== undefined) cookies.add(config.auth.cookies.refreshName)
  return {
    gateway,
    forRoute: (route) => routes[route.index] ?? gateway,
    tokenCookies: [...cookies],
    trustProxy: config.server.trustProxy,
    anyCors: gateway.cors !== undefined || routes.some((p) => p.cors !== undefined)
  }
}

function policy (sources: TokenSourcesConfig | undefined, cors: CorsConfig | undefined): TokenPolicy {
  const active = cors !== undefined && cors.origins.length > 0 ? cors : undefined
  return {
    cookie: sources?.cookie?.name,
    query: sources?.query?.name,
    // `*` lets any page read answers; it never makes a page trusted to act.
    trustedOrigins: new Set((active?.origins ?? []).filter((o) => o !== '*')),
    cors: active
  }
}
