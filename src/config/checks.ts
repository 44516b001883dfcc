/**
 * Cross-field checks that a schema cannot express. Each problem names the key
 * path it concerns and says how to fix it; risky but legal settings become
 * coded warnings logged at start.
 */
import type { GatewayConfig } from './schema.js'
import type { ConfigProblem, ConfigWarning } from './problems.js'
import { toMs } from './duration.js'
import { checkKeyMaterial } from '../keys/material.js'
import { readUsersFile } from '../auth/credentials.js'
import { checkBrowserSettings } from './checks-browser.js'

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const WILDCARD = new Set(['0.0.0.0', '::', '[::]'])
const GLOB_HEADER = /^[!#$%&'+.^_`|~0-9A-Za-z-]+\*?$/

export function checkConfig (config: GatewayConfig, warnings: ConfigWarning[]): ConfigProblem[] {
  const problems: ConfigProblem[] = []
  const add = (path: string, message: string) => problems.push({ path, message })
  const warn = (code: string, path: string, message: string) => warnings.push({ code, path, message })

  const { tokens, store, server, admin, auth } = config
  const verifies = tokens.keys.length > 0 || tokens.trustedIssuers.length > 0

  if (tokens.keys.length > 0 && tokens.issuer === undefined) {
    add('tokens.issuer', 'is required when tokens.keys is set (the `iss` of the tokens these keys sign)')
  }
  const signers = tokens.keys.filter((k) => k.sign === true)
  if (signers.length > 1) add('tokens.keys', 'only one key may have sign: true')
  if (auth !== undefined && signers.length !== 1) {
    add('tokens.keys', 'exactly one key needs sign: true when auth is configured (it signs the tokens login issues)')
  }
  const kids = new Set<string>()
  tokens.keys.forEach((key, i) => {
    if (kids.has(key.kid)) add(`tokens.keys[${i}].kid`, `duplicate kid ${JSON.stringify(key.kid)}`)
    kids.add(key.kid)
  })
  problems.push(...checkKeyMaterial(tokens.keys))

  const issuers = new Set<string>()
  tokens.trustedIssuers.forEach((ti, i) => {
    const path = `tokens.trustedIssuers[${i}]`
    if (issuers.has(ti.issuer)) add(`${path}.issuer`, 'duplicate issuer (one entry per issuer)')
    issuers.add(ti.issuer)
    if (ti.audience === undefined) warn('JOTGATE_W_AUDIENCE_UNCHECKED', `${path}.audience`, 'not set: the `aud` of this issuer\'s tokens is not checked')
    if (ti.jwksUri?.startsWith('http://') === true || (ti.discovery === true && ti.issuer.startsWith('http://'))) {
      warn('JOTGATE_W_JWKS_PLAIN_HTTP', path, 'keys fetched over plain http can be replaced in transit')
    }
    if (toMs(ti.cooldown) < 100) add(`${path}.cooldown`, 'must be at least 100ms (it bounds fetches caused by unknown kids)')
    if (toMs(ti.fetchTimeout) < 100) add(`${path}.fetchTimeout`, 'must be at least 100ms')
    if ((ti.jwksUri === undefined) === (ti.discovery !== true)) add(path, 'needs exactly one of jwksUri or discovery: true')
    if (ti.jwksUri !== undefined && !isHttpUrl(ti.jwksUri)) add(`${path}.jwksUri`, 'must be an http(s) URL')
    if (ti.discovery === true && !isHttpUrl(ti.issuer)) add(`${path}.issuer`, 'must be an http(s) URL when discovery is true')
    if (ti.issuer === tokens.issuer) add(`${path}.issuer`, 'is already tokens.issuer (own tokens are verified with tokens.keys)')
    if (ti.algorithms.some((a) => a.startsWith('HS'))) add(`${path}.algorithms`, 'HS* needs a shared secret; outside issuers must use asymmetric algorithms')
  })

  if (tokens.audience === undefined && verifies) {
    warn('JOTGATE_W_AUDIENCE_UNCHECKED', 'tokens.audience', 'not set: the `aud` claim of tokens is not checked')
  }
  if (toMs(tokens.clockTolerance) > 300_000) {
    warn('JOTGATE_W_CLOCK_TOLERANCE', 'tokens.clockTolerance', 'over 5 minutes: expired tokens stay usable that much longer')
  }
  const accessTtls: [string, string | number][] = [['tokens.accessTtl', tokens.accessTtl]]
  for (const [id, client] of Object.entries(auth?.clients ?? {})) {
    if (client.accessTtl !== undefined) accessTtls.push([`auth.clients[${JSON.stringify(id)}].accessTtl`, client.accessTtl])
  }
  for (const [path, ttl] of accessTtls) {
    if (toMs(ttl) > toMs(tokens.maxLifetime)) add(path, 'is longer than tokens.maxLifetime, so issued tokens would be refused')
    else if (toMs(ttl) > 3_600_000) warn('JOTGATE_W_ACCESS_TTL', path, 'over 1 hour: a stolen access token stays usable that long unless revoked')
  }

  if (store.type === 'memory' && server.workers > 1) {
    add('server.workers', 'needs a shared store: with store.type memory every worker would keep its own revocations')
  }
  if (store.type === 'memory') {
    warn('JOTGATE_W_MEMORY_STORE', 'store.type', 'memory: revocations and refresh tokens live in this process only (one instance, lost on restart)')
  }
  if (store.onError === 'allow') {
    warn('JOTGATE_W_FAIL_OPEN', 'store.onError', 'allow: while the store is down, revoked tokens are accepted')
  }
  if (toMs(store.commandTimeout) > 900) {
    // Auto-pipelined commands can wait for the batch before them to time out,
    // so a request may take twice this long while Redis hangs.
    warn('JOTGATE_W_COMMAND_TIMEOUT', 'store.commandTimeout', 'over 900ms: with Redis hung, requests may take over 2 s to fail')
  }
  if (store.sentinels !== undefined && store.name === undefined) add('store.name', 'is required with store.sentinels (the Sentinel master name)')
  if (store.sentinels !== undefined && store.cluster !== undefined) add('store', 'use either sentinels or cluster, not both')
  if (store.type === 'memory' && (store.sentinels !== undefined || store.cluster !== undefined)) {
    add('store.type', 'memory ignores sentinels and cluster; use type: redis')
  }
  if (store.type === 'redis' && store.sentinels === undefined && store.cluster === undefined && !/^rediss?:\/\//.test(store.url)) {
    add('store.url', 'must be a redis:// or rediss:// URL')
  }

  // A wildcard address (0.0.0.0, ::) takes the port on every interface, so it
  // collides with any host on the same port (EADDRINUSE at start).
  if (admin !== undefined && admin.port !== 0 && admin.port === server.port &&
    (admin.host === server.host || WILDCARD.has(admin.host) || WILDCARD.has(server.host))) {
    add('admin.port', 'must differ from server.port')
  }

  for (const [name, claim] of Object.entries(config.claimHeaders)) {
    if (!HEADER_NAME.test(name)) add(`claimHeaders[${JSON.stringify(name)}]`, 'is not a valid header name')
    if (!isClaimPath(claim)) add(`claimHeaders[${JSON.stringify(name)}]`, 'must name a claim or a dotted path like address.country')
  }
  config.stripHeaders.forEach((h, i) => {
    if (!GLOB_HEADER.test(h)) add(`stripHeaders[${i}]`, 'must be a header name, optionally ending with * (a prefix)')
  })

  config.routes.forEach((route, i) => {
    const path = `routes[${i}]`
    if (!isHttpUrl(route.upstream)) add(`${path}.upstream`, 'must be an http(s) URL')
    else if (/[?#]/.test(route.upstream)) add(`${path}.upstream`, 'must not hold a query or fragment')
    if (!isCleanPath(route.path)) add(`${path}.path`, 'must be a normalized path (no //, no . or .. segments, no ? or #, no %)')
    if (route.rewrite !== undefined && !isCleanPath(route.rewrite)) add(`${path}.rewrite`, 'must be a normalized path (no //, no . or .. segments, no ? or #, no %)')
    if (route.auth !== 'none' && !verifies) add(`${path}.auth`, `${route.auth} needs tokens.keys or tokens.trustedIssuers to verify tokens`)
    if (route.auth === 'none' && (route.require !== undefined || route.headers !== undefined)) {
      add(`${path}.auth`, 'none cannot be combined with require or headers (there is no identity)')
    }
    for (const [name, claim] of Object.entries(route.headers ?? {})) {
      if (!HEADER_NAME.test(name)) add(`${path}.headers[${JSON.stringify(name)}]`, 'is not a valid header name')
      if (!isClaimPath(claim)) add(`${path}.headers[${JSON.stringify(name)}]`, 'must name a claim or a dotted path')
    }
    if (route.forwardAuthorization && route.auth !== 'none') {
      warn('JOTGATE_W_FORWARD_AUTHORIZATION', `${path}.forwardAuthorization`, 'true: the upstream receives the bearer token and could replay it')
    }
    if (auth !== undefined && (pathCovers(auth.basePath, route.path) || route.path === auth.basePath)) {
      warn('JOTGATE_W_ROUTE_SHADOWED', `${path}.path`, `overlaps auth.basePath ${auth.basePath}; the token endpoints take precedence`)
    }
  })

  if (auth !== undefined) {
    if ((auth.users === undefined) === (auth.delegate === undefined)) add('auth', 'needs exactly one of users or delegate')
    if (auth.delegate !== undefined && !isHttpUrl(auth.delegate.url)) add('auth.delegate.url', 'must be an http(s) URL')
    if (auth.users !== undefined) problems.push(...readUsersFile(auth.users.file).problems)
    if (store.type === 'memory') warn('JOTGATE_W_MEMORY_SESSIONS', 'auth', 'refresh tokens and rate limits are kept in memory')
  }
  checkBrowserSettings(config, add, warn)
  return problems
}

function isHttpUrl (value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.username === '' && url.password === ''
  } catch {
    return false
  }
}

function isCleanPath (p: string): boolean {
  if (p === '/') return true
  if (/[?#%\\]|\/\/|[\x00-\x20\x7f]/.test(p)) return false
  return !p.split('/').slice(1).some((s) => s === '.' || s === '..')
}

function isClaimPath (p: string): boolean {
  return p.split('.').every((s) => s.length > 0)
}

/** True when `prefix` matches `path` on segment boundaries. */
function pathCovers (prefix: string, path: string): boolean {
  return path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)
}
