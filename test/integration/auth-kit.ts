/**
 * Shared pieces of the auth-*.test.ts files: users files with real hashes,
 * gateways with `auth` configured, HTTP calls to the token endpoints and a
 * JWT decoder independent of the code under test.
 */
import { randomBytes, scrypt } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import { hashPassword } from '../../src/auth/password.js'
import { startGateway, type TestGateway, type StartOptions } from '../helpers/gateway.js'
import { REDIS_URL, uniquePrefix } from '../helpers/redis.js'
import { claims, mint } from '../helpers/zoo.js'
import type { TapTest } from '../security/kit.js'

export interface UserSpec {
  username: string
  password: string
  claims?: Record<string, unknown>
  /**
   * Default scrypt (hashPassword, ln=17); with `cost`, scrypt with ln=cost
   * made here in the same format. bcrypt variants use bcryptjs with `cost`.
   */
  hash?: 'scrypt' | '2a' | '2b' | '2y'
  cost?: number
}

/** `$scrypt$ln=<ln>,r=8,p=1$<salt>$<key>`, the format of hashPassword, with another cost. */
export async function scryptHash (password: string, ln: number): Promise<string> {
  const salt = randomBytes(16)
  const key = await new Promise<Buffer>((resolve, reject) => {
    scrypt(password, salt, 32, { N: 2 ** ln, r: 8, p: 1, maxmem: 256 * 1024 * 1024 }, (err, k) => { err === null ? resolve(k) : reject(err) })
  })
  const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '')
  return `$scrypt$ln=${ln},r=8,p=1$${b64(salt)}$${b64(key)}`
}

const dir = mkdtempSync(join(tmpdir(), 'jotgate-auth-'))
let n = 0

/** Writes a users file (absolute path) with hashes made once here. */
export async function usersFile (users: UserSpec[]): Promise<string> {
  const entries = await Promise.all(users.map(async (u) => {
    let password: string
    if (u.hash === undefined || u.hash === 'scrypt') {
      password = u.cost === undefined ? await hashPassword(u.password) : await scryptHash(u.password, u.cost)
    } else {
      const h = await bcrypt.hash(u.password, u.cost ?? 4)
      password = `$${u.hash}$${h.slice(4)}`
    }
    return { username: u.username, password, ...(u.claims === undefined ? {} : { claims: u.claims }) }
  }))
  const file = join(dir, `users-${process.pid}-${n++}.json`)
  writeFileSync(file, JSON.stringify({ users: entries }))
  return file
}

/** A store config on the shared Redis with its own prefix (pass the same one to share it). */
export function storeConfig (prefix: string, url = REDIS_URL): Record<string, unknown> {
  return { type: 'redis', url, keyPrefix: prefix }
}

export { uniquePrefix }

export interface AuthGatewayOptions extends Omit<StartOptions, 'config'> {
  auth: Record<string, unknown>
  routes?: unknown[]
  tokens?: Record<string, unknown>
  store?: never
  storeConfig?: Record<string, unknown>
  server?: Record<string, unknown>
}

/** A gateway with `auth` set; `tokens` entries are merged over the default tokens section. */
export async function authGateway (options: AuthGatewayOptions): Promise<TestGateway> {
  const { auth, routes, tokens, storeConfig: store, server, ...rest } = options
  const config: Record<string, unknown> = { auth, routes: routes ?? [] }
  if (tokens !== undefined) {
    const { baseConfig } = await import('../helpers/gateway.js')
    config.tokens = { ...(baseConfig().tokens as Record<string, unknown>), ...tokens }
  }
  if (store !== undefined) config.store = store
  if (server !== undefined) config.server = { host: '127.0.0.1', port: 0, ...server }
  return startGateway({ ...rest, config })
}

export interface Answer {
  status: number
  headers: Headers
  /** Parsed JSON body, or undefined (204, not JSON). */
  body: Record<string, unknown> | undefined
  text: string
}

export interface CallOptions {
  token?: string
  form?: boolean
  headers?: Record<string, string>
  method?: string
  /** Raw body, sent as is (with headers.content-type if given). */
  raw?: string | Buffer
}

/** Calls `path` on the gateway; `body` is sent as JSON (or a form with `form: true`). */
export async function call (base: string, path: string, body?: Record<string, unknown>, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  let payload: string | Buffer | undefined = options.raw
  if (body !== undefined) {
    if (options.form === true) {
      headers['content-type'] ??= 'application/x-www-form-urlencoded'
      payload = new URLSearchParams(body as Record<string, string>).toString()
    } else {
      headers['content-type'] ??= 'application/json'
      payload = JSON.stringify(body)
    }
  }
  const res = await fetch(`${base}${path}`, { method: options.method ?? 'POST', headers, ...(payload === undefined ? {} : { body: payload }) })
  const text = await res.text()
  let parsed: Record<string, unknown> | undefined
  try { parsed = JSON.parse(text) as Record<string, unknown> } catch { parsed = undefined }
  return { status: res.status, headers: res.headers, body: parsed, text }
}

export interface Pair {
  access_token: string
  token_type: string
  expires_in: number
  refresh_token: string
  refresh_expires_in: number
}

/** Logs in and returns the pair; throws with the answer when not 200. */
export async function login (base: string, username: string, password: string, extra: Record<string, unknown> = {}, options: CallOptions = {}): Promise<Pair> {
  const res = await call(base, '/auth/login', { username, password, ...extra }, options)
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${res.text}`)
  return res.body as unknown as Pair
}

export async function refresh (base: string, refreshToken: string): Promise<Answer> {
  return call(base, '/auth/refresh', { refresh_token: refreshToken })
}

/** The decoded header and payload of a compact JWS (no verification). */
export function decode (token: string): { header: Record<string, unknown>, payload: Record<string, unknown> } {
  const [h, p] = token.split('.') as [string, string]
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The median of `values`. */
export function median (values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/**
 * `rounds` admin revocations (POST /revocations), alternately through A and
 * B, each followed at once by the revoked token on the other instance:
 * accepted before (positive control), refused as revoked right after the
 * call returned (CONTRACT section 5).
 */
export async function revokeAcross (t: TapTest, a: TestGateway, b: TestGateway, rounds: number): Promise<void> {
  const send = async (gw: TestGateway, token: string) => {
    const r = await fetch(`${gw.url}/orders/1`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
    return { status: r.status, code: (await r.json() as { code?: string }).code }
  }
  for (let i = 0; i < rounds; i++) {
    const payload = claims()
    const token = mint({ payload })
    const [from, to, names] = i % 2 === 0 ? [a, b, 'through A, refused by B'] : [b, a, 'through B, refused by A']
    t.equal((await send(to, token)).status, 200, 'positive control')
    const r = await fetch(`${from.adminUrl!}/revocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jti: payload.jti, exp: payload.exp }),
      signal: AbortSignal.timeout(5000)
    })
    await r.arrayBuffer()
    t.equal(r.status, 201, 'revocation written')
    t.same(await send(to, token), { status: 401, code: 'JOTGATE_TOKEN_REVOKED' }, `revoked ${names} at once`)
  }
}

/**
 * The users of the topology tests (Cluster, Sentinel): alice (scrypt,
 * roles ops) and bob (bcrypt); `fastFile` has both with bcrypt cost 4
 * only, for tests that make many failed logins.
 */
export async function topologyUsers (): Promise<{ file: string, fastFile: string }> {
  return {
    file: await usersFile([
      { username: 'alice', password: 'alice-pw', claims: { roles: ['ops'] } },
      { username: 'bob', password: 'bob-pw', hash: '2b' }
    ]),
    fastFile: await usersFile([{ username: 'alice', password: 'alice-pw', hash: '2b' }, { username: 'bob', password: 'bob-pw', hash: '2b' }])
  }
}
