/**
 * A generation: everything compiled from one frozen config (route table,
 * key table, verifier with its cache, header mappers). Requests read the
 * current generation once; a reload builds a new one and swaps the
 * reference, so in-flight requests finish on the one they started with.
 */
import type { Logger } from 'pino'
import type { GatewayConfig } from './config/schema.js'
import { toSeconds } from './config/duration.js'
import { createKeyTable, type KeyTable } from './keys/key-table.js'
import type { RemoteIssuerOptions } from './keys/jwks-source.js'
import { compileRoutes, type RouteTable } from './pipeline/route-table.js'
import { createTokenVerifier, type TokenVerifier, type VerificationCounts } from './pipeline/verify-token.js'
import { createRevocationCheck } from './pipeline/check-revocation.js'
import { createPipeline, type Pipeline } from './pipeline/index.js'
import { createHeaderStripper, type HeaderStripper } from './pipeline/sanitize-headers.js'
import type { NormalizedTarget } from './pipeline/normalize-path.js'
import type { RequestContext } from './pipeline/context.js'
import type { GatewayError } from './errors.js'
import type { Store } from './store/types.js'

export const kContext = Symbol('jotgate.context')
export const kTarget = Symbol('jotgate.target')
export const kPathError = Symbol('jotgate.pathError')
export const kRefusal = Symbol('jotgate.refusal')

declare module 'fastify' {
  interface FastifyRequest {
    [kContext]?: RequestContext
    [kRefusal]?: GatewayError
  }
}
declare module 'node:http' {
  interface IncomingMessage {
    [kTarget]?: NormalizedTarget
    [kPathError]?: GatewayError
  }
}

export interface Generation {
  config: GatewayConfig
  keys: KeyTable
  routes: RouteTable
  verifyToken: TokenVerifier
  pipeline: Pipeline
  stripHeaders: HeaderStripper
  /** Fetches the keys of outside issuers (resolves whatever the outcome). */
  start: () => Promise<void>
  /** Why this generation cannot serve every issuer yet; empty when it can. */
  problems: () => string[]
  /** Stops background key refreshes. */
  close: () => void
}

export interface GenerationDeps {
  store: Store
  log: Logger
  now?: () => number
  /** Called when a request passes with the store down and onError: allow. */
  onFailOpen?: (cause: unknown) => void
  /** Told about every JWKS fetch (metrics). */
  onJwksFetch?: RemoteIssuerOptions['onFetch']
  /** Where token verifications are counted (metrics); every generation adds to it. */
  verificationCounts?: VerificationCounts
}

export function createGeneration (config: GatewayConfig, deps: GenerationDeps): Generation {
  const keys = createKeyTable(config, {
    log: deps.log,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.onJwksFetch === undefined ? {} : { onFetch: deps.onJwksFetch })
  })
  const routes = compileRoutes(config)
  const verifyToken = createTokenVerifier({
    keys,
    clockTolerance: toSeconds(config.tokens.clockTolerance),
    maxLifetime: toSeconds(config.tokens.maxLifetime),
    maxTokenBytes: config.tokens.maxTokenBytes,
    cacheSize: config.tokens.cacheSize,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.verificationCounts === undefined ? {} : { counts: deps.verificationCounts })
  })
  const onFailOpen = deps.onFailOpen ?? ((cause: unknown) => deps.log.warn({ reason: 'store-fail-open', err: cause }, 'store unavailable; token accepted (store.onError: allow)'))
  const checkRevocation = createRevocationCheck(deps.store, config.store.onError, onFailOpen)
  const mapped = [
    ...Object.keys(config.claimHeaders),
    ...config.routes.flatMap((r) => Object.keys(r.headers ?? {}))
  ]
  return {
    config,
    keys,
    routes,
    verifyToken,
    pipeline: createPipeline({ routes, verifyToken, checkRevocation }),
    stripHeaders: createHeaderStripper(config.stripHeaders, mapped),
    start: async () => { await Promise.all(keys.remotes.map((r) => r.start())) },
    problems: () => keys.remotes.map((r) => r.problem()).filter((p): p is string => p !== undefined),
    close: () => { for (const r of keys.remotes) r.close() }
  }
}
