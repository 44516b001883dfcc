/**
 * A fake identity provider on a loopback port: serves
 * `/.well-known/openid-configuration` and `/jwks.json` from a mutable key
 * list, counts every hit, and can be switched down (connections closed or
 * HTTP 503), slow (answers delayed) or garbage (invalid JSON,
 * `{"keys": "x"}`, or a JWKS padded past 2 MiB). Keys are made here with node:crypto and tokens signed
 * here too, independently of the code under test.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { b64, signInput } from './zoo.js'

export type ProviderDown = false | 'close' | '503'
export type ProviderGarbage = false | 'json' | 'keys' | 'huge'

export interface ProviderHits {
  discovery: number
  jwks: number
  /** Every request, whatever its path. */
  total: number
}

export interface JwksProvider {
  /** `http://127.0.0.1:<port>`: the issuer when discovery is used. */
  url: string
  issuer: string
  jwksUri: string
  /** The JWKs served, in order; mutate freely. */
  keys: Record<string, unknown>[]
  hits: ProviderHits
  /** Every request path seen, in order. */
  paths: string[]
  /** 'close': the socket is destroyed without an answer; '503': HTTP 503. */
  down: ProviderDown
  /** Milliseconds before any answer. */
  slowMs: number
  garbage: ProviderGarbage
  /** The `issuer` the discovery document names (defaults to `issuer`). */
  discoveryIssuer: string | undefined
  resetHits: () => void
  close: () => Promise<void>
  server: Server
}

export async function startJwksProvider (keys: Record<string, unknown>[] = []): Promise<JwksProvider> {
  const provider = {
    keys,
    hits: { discovery: 0, jwks: 0, total: 0 },
    paths: [] as string[],
    down: false as ProviderDown,
    slowMs: 0,
    garbage: false as ProviderGarbage,
    discoveryIssuer: undefined as string | undefined
  } as JwksProvider
  const timers = new Set<NodeJS.Timeout>()

  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    if (provider.down === 'close') { req.socket.destroy(); return }
    if (provider.down === '503') {
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"unavailable"}')
      return
    }
    const path = (req.url ?? '').split('?')[0]
    let body: string
    if (path === '/.well-known/openid-configuration') {
      body = JSON.stringify({ issuer: provider.discoveryIssuer ?? provider.issuer, jwks_uri: provider.jwksUri })
    } else if (path === '/jwks.json') {
      if (provider.garbage === 'json') body = '{"keys": [ {"kty": "RSA", '
      else if (provider.garbage === 'keys') body = '{"keys": "x"}'
      // Valid JSON holding the real keys, padded past 2 MiB.
      else if (provider.garbage === 'huge') body = JSON.stringify({ keys: provider.keys, padding: 'x'.repeat(2 << 20) })
      else body = JSON.stringify({ keys: provider.keys })
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{}')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  }

  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? ''
    provider.paths.push(req.url ?? '')
    provider.hits.total++
    if (path === '/.well-known/openid-configuration') provider.hits.discovery++
    if (path === '/jwks.json') provider.hits.jwks++
    if (provider.slowMs > 0) {
      const timer = setTimeout(() => { timers.delete(timer); if (!res.destroyed) answer(req, res) }, provider.slowMs)
      timers.add(timer)
      return
    }
    answer(req, res)
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  provider.url = `http://127.0.0.1:${port}`
  provider.issuer = provider.url
  provider.jwksUri = `${provider.url}/jwks.json`
  provider.server = server
  provider.resetHits = () => { provider.hits = { discovery: 0, jwks: 0, total: 0 }; provider.paths.length = 0 }
  provider.close = () => new Promise((resolve) => {
    for (const timer of timers) clearTimeout(timer)
    server.closeAllConnections()
    server.close(() => resolve())
  })
  return provider
}

export type ProviderKeyType = 'RSA' | 'RSA-1024' | 'P-256' | 'P-384' | 'P-521' | 'Ed25519'

export interface ProviderKey {
  kid: string
  /** The algorithm tokens are signed with. */
  alg: string
  privateKey: KeyObject
  /** The public JWK as published (kid, alg and any extra members). */
  jwk: Record<string, unknown>
}

const DEFAULT_ALG: Record<ProviderKeyType, string> = {
  RSA: 'RS256', 'RSA-1024': 'RS256', 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512', Ed25519: 'EdDSA'
}

/**
 * A fresh key pair and its public JWK. `jwk` members are merged over the
 * exported ones (`{ alg: undefined }` drops the `alg` member).
 */
export function providerKey (type: ProviderKeyType, kid: string, jwk: Record<string, unknown> = {}, alg = DEFAULT_ALG[type]): ProviderKey {
  const pair = type === 'RSA' || type === 'RSA-1024'
    ? generateKeyPairSync('rsa', { modulusLength: type === 'RSA' ? 2048 : 1024 })
    : type === 'Ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: type })
  const published: Record<string, unknown> = { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig', ...jwk }
  for (const [k, v] of Object.entries(published)) if (v === undefined) delete published[k]
  return { kid, alg, privateKey: pair.privateKey, jwk: published }
}

/** Claims of a valid token from `issuer` for `aud`. */
export function idpClaims (issuer: string, aud: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const t = Math.floor(Date.now() / 1000)
  const base: Record<string, unknown> = { iss: issuer, aud, sub: 'idp-user', iat: t, nbf: t, exp: t + 600, jti: randomBytes(8).toString('hex') }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k]
    else base[k] = v
  }
  return base
}

/** A token signed by `key` (its alg and kid in the header unless `header` overrides; undefined removes). */
export function idpToken (key: ProviderKey, payload: Record<string, unknown>, header: Record<string, unknown> = {}, signAlg = key.alg): string {
  const h: Record<string, unknown> = { alg: key.alg, typ: 'JWT', kid: key.kid, ...header }
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k]
  const input = `${b64(h)}.${b64(payload)}`
  return `${input}.${signInput(signAlg, key.privateKey, input)}`
}
