/**
 * The token zoo: keys made at load time with generateKeyPairSync (no
 * private key is committed) and tokens signed here with node:crypto
 * directly, independently of the code under test.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign, constants, type KeyObject } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const ISSUER = 'https://jotgate.test'
export const AUDIENCE = 'api'

export type Alg = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA'

export interface ZooKey {
  kid: string
  alg: Alg
  /** Private key or HMAC secret. */
  signKey: KeyObject | Buffer
  publicPem?: string
  /** The `tokens.keys` entry for this key. */
  config: Record<string, unknown>
}

export const keyDir = mkdtempSync(join(tmpdir(), 'jotgate-zoo-'))

function asymmetric (kid: string, alg: Alg, pair: { privateKey: KeyObject, publicKey: KeyObject }, sign = false): ZooKey {
  const privFile = join(keyDir, `${kid}.key.pem`)
  const pubFile = join(keyDir, `${kid}.pub.pem`)
  writeFileSync(privFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string
  writeFileSync(pubFile, publicPem)
  // The signing key is configured with its private key, the others verify-only.
  const config = sign ? { kid, alg, privateKeyFile: privFile, sign: true } : { kid, alg, publicKeyFile: pubFile }
  return { kid, alg, signKey: pair.privateKey, publicPem, config }
}

function hmac (kid: string, alg: Alg, bytes: number): ZooKey {
  const secret = randomBytes(bytes)
  return { kid, alg, signKey: secret, config: { kid, alg, secretBase64: secret.toString('base64') } }
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
export const KEYS: Record<string, ZooKey> = {
  es256: asymmetric('es256', 'ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' }), true),
  es384: asymmetric('es384', 'ES384', generateKeyPairSync('ec', { namedCurve: 'P-384' })),
  es512: asymmetric('es512', 'ES512', generateKeyPairSync('ec', { namedCurve: 'P-521' })),
  rs256: asymmetric('rs256', 'RS256', rsa),
  rs384: asymmetric('rs384', 'RS384', rsa),
  rs512: asymmetric('rs512', 'RS512', rsa),
  ps256: asymmetric('ps256', 'PS256', rsa),
  ps384: asymmetric('ps384', 'PS384', rsa),
  ps512: asymmetric('ps512', 'PS512', rsa),
  eddsa: asymmetric('eddsa', 'EdDSA', generateKeyPairSync('ed25519')),
  hs256: hmac('hs256', 'HS256', 32),
  hs384: hmac('hs384', 'HS384', 48),
  hs512: hmac('hs512', 'HS512', 64)
}

/** Every zoo key as `tokens.keys` entries (es256 signs). */
export const keyConfigs = (): Record<string, unknown>[] => Object.values(KEYS).map((k) => k.config)

export const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** Signs `header.payload` with node:crypto for `alg`. */
export function signInput (alg: string, key: KeyObject | Buffer, input: string): string {
  const data = Buffer.from(input)
  if (alg.startsWith('HS')) return createHmac(`sha${alg.slice(2)}`, key as Buffer).update(data).digest('base64url')
  const hash = `sha${alg.slice(2)}`
  if (alg === 'EdDSA') return cryptoSign(null, data, key as KeyObject).toString('base64url')
  if (alg.startsWith('ES')) return cryptoSign(hash, data, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' }).toString('base64url')
  if (alg.startsWith('PS')) {
    return cryptoSign(hash, data, { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }).toString('base64url')
  }
  return cryptoSign(hash, data, key as KeyObject).toString('base64url')
}

export const now = (): number => Math.floor(Date.now() / 1000)

/** Standard valid claims; `overrides` with value undefined remove a claim. */
export function claims (overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const t = now()
  const base: Record<string, unknown> = {
    iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: t, nbf: t, exp: t + 600,
    jti: randomBytes(8).toString('hex'), sid: randomBytes(8).toString('hex'), roles: ['user']
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete base[k]
    else base[k] = v
  }
  return base
}

export interface MintOptions {
  key?: ZooKey
  header?: Record<string, unknown>
  payload?: Record<string, unknown>
  /** Overrides the header alg (the signature is still made with the key's alg unless signAlg is set). */
  signAlg?: string
}

/** A signed token: the key's alg and kid in the header unless overridden. */
export function mint ({ key = KEYS.es256!, header = {}, payload = claims(), signAlg }: MintOptions = {}): string {
  const h: Record<string, unknown> = { alg: key.alg, typ: 'JWT', kid: key.kid, ...header }
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k]
  const input = `${b64(h)}.${b64(payload)}`
  return `${input}.${signInput(signAlg ?? key.alg, key.signKey, input)}`
}

/** The zoo: named tokens for every refusal code, plus a good one. */
export function zoo () {
  const t = now()
  const rsaPublicPem = Buffer.from(KEYS.rs256!.publicPem!)
  const noneToken = `${b64({ alg: 'none', typ: 'JWT', kid: 'es256' })}.${b64(claims())}.`
  return {
    good: mint(),
    expired: mint({ payload: claims({ iat: t - 7200, nbf: t - 7200, exp: t - 3600 }) }),
    notYetValid: mint({ payload: claims({ nbf: t + 3600, exp: t + 4000 }) }),
    iatFuture: mint({ payload: claims({ iat: t + 3600, exp: t + 4000 }) }),
    wrongIssuer: mint({ payload: claims({ iss: 'https://evil.test' }) }),
    noIssuer: mint({ payload: claims({ iss: undefined }) }),
    wrongAudience: mint({ payload: claims({ aud: 'other' }) }),
    noExp: mint({ payload: claims({ exp: undefined }) }),
    expString: mint({ payload: claims({ exp: String(t + 600) }) }),
    tooLong: mint({ payload: claims({ iat: t, exp: t + 48 * 3600 }) }),
    unknownKid: mint({ header: { kid: 'nope' } }),
    algNone: noneToken,
    algNoneSigned: mint({ header: { alg: 'none' } }),
    algMismatch: mint({ header: { alg: 'ES384' }, signAlg: 'ES256' }),
    algCase: mint({ header: { alg: 'es256' } }),
    // HS256 with the RSA public key as the HMAC secret (CVE-2015-9235 family).
    hsWithPublicKey: mint({ key: { ...KEYS.rs256!, alg: 'HS256', signKey: rsaPublicPem }, header: { alg: 'HS256', kid: 'rs256' } }),
    badSignature: tamper(mint()),
    crit: mint({ header: { crit: ['exp'] } }),
    jwe: mint({ header: { enc: 'A256GCM' } }),
    b64false: mint({ header: { b64: false, crit: ['b64'] } }),
    padded: `${mint()}=`,
    garbage: 'not-a-token',
    twoSegments: `${b64({ alg: 'ES256' })}.${b64(claims())}`
  }
}

/** Flips one bit in the middle of the signature. */
export function tamper (token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  const sig = Buffer.from(s, 'base64url')
  sig[Math.floor(sig.length / 2)]! ^= 1
  return `${h}.${p}.${sig.toString('base64url')}`
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 over a socket, for requests that fetch() would normalize or
// refuse to send: dot segments, `\`, `#`, absolute and asterisk forms,
// repeated headers, oversized headers.
import { createConnection } from 'node:net'

/** One response read off a raw socket. */
export interface RawResponse {
  status: number
  /** Lower-case name -> every value, in order. */
  headers: Record<string, string[]>
  body: string
  /** `body` parsed as JSON when it parses, else undefined. */
  json: { statusCode?: number, code?: string, [k: string]: unknown } | undefined
}

/**
 * Writes `text` (a whole request, CRLF line ends, ideally with
 * `Connection: close`) to the server at `url` and reads one response.
 */
export async function rawRequest (url: string, text: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: hostname, port: Number(port) })
    const chunks: Buffer[] = []
    let settled = false
    const done = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (err !== undefined) return reject(err)
      try { resolve(parseRawResponse(Buffer.concat(chunks))) } catch (e) { reject(e as Error) }
    }
    const timer = setTimeout(() => done(new Error(`no complete response within ${timeoutMs} ms`)), timeoutMs)
    socket.on('connect', () => socket.write(text))
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      if (isCompleteResponse(Buffer.concat(chunks))) done()
    })
    socket.on('end', () => done())
    socket.on('close', () => done())
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server may answer and reset before we finish writing (431).
      if (chunks.length > 0 || err.code === 'ECONNRESET' || err.code === 'EPIPE') done()
      else done(err)
    })
  })
}

/** Builds `METHOD target HTTP/1.1` with Host and `Connection: close` (unless given) and `headers` in order. */
export function rawText (target: string, headers: ReadonlyArray<readonly [string, string]> = [], method = 'GET', body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`]
  const names = headers.map(([n]) => n.toLowerCase())
  if (!names.includes('host')) lines.push('Host: jotgate.test')
  if (!names.includes('connection')) lines.push('Connection: close')
  for (const [n, v] of headers) lines.push(`${n}: ${v}`)
  if (body !== '') lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  return `${lines.join('\r\n')}\r\n\r\n${body}`
}

function headEnd (buf: Buffer): number {
  return buf.indexOf('\r\n\r\n')
}

/** Drops interim 1xx responses (100 Continue) in front of the final one. */
function skipInterim (buf: Buffer): Buffer {
  while (/^HTTP\/1\.[01] 1\d\d /.test(buf.subarray(0, 13).toString('latin1'))) {
    const end = headEnd(buf)
    if (end === -1) break
    buf = buf.subarray(end + 4)
  }
  return buf
}

function isCompleteResponse (whole: Buffer): boolean {
  const buf = skipInterim(whole)
  const end = headEnd(buf)
  if (end === -1) return false
  const head = buf.subarray(0, end).toString('latin1')
  const body = buf.subarray(end + 4)
  const length = /\r\ncontent-length: *(\d+)/i.exec(head)
  if (length !== null) return body.length >= Number(length[1])
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return body.includes('0\r\n\r\n')
  return false
}

function parseRawResponse (whole: Buffer): RawResponse {
  const buf = skipInterim(whole)
  const end = headEnd(buf)
  if (end === -1) throw new Error(`incomplete response: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`)
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? NaN)
  const headers: Record<string, string[]> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    ;(headers[name] ??= []).push(line.slice(colon + 1).trim())
  }
  let bodyBuf = buf.subarray(end + 4)
  if (headers['transfer-encoding']?.some((v) => /chunked/i.test(v)) === true) bodyBuf = dechunk(bodyBuf)
  else if (headers['content-length'] !== undefined) bodyBuf = bodyBuf.subarray(0, Number(headers['content-length'][0]))
  const body = bodyBuf.toString('utf8')
  let json: RawResponse['json']
  try { json = JSON.parse(body) as RawResponse['json'] } catch { json = undefined }
  return { status, headers, body, json }
}

function dechunk (buf: Buffer): Buffer {
  const out: Buffer[] = []
  let i = 0
  while (i < buf.length) {
    const lineEnd = buf.indexOf('\r\n', i)
    if (lineEnd === -1) break
    const size = parseInt(buf.subarray(i, lineEnd).toString('latin1'), 16)
    if (!(size > 0)) break
    out.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
    i = lineEnd + 2 + size + 2
  }
  return Buffer.concat(out)
}

// ---------------------------------------------------------------------------
// Exact spellings, for the attack catalogue (test/security): tokens whose
// segments are not JSON.stringify's output, and raw exchanges that may end
// without any HTTP answer.

/** base64url of bytes, or of a string's UTF-8 (never re-serialized). */
export const b64Bytes = (value: Buffer | string): string => Buffer.from(value).toString('base64url')

/**
 * A token signed over exactly these header and payload bytes (JSON text
 * with duplicate names, `1e400`, invalid UTF-8, ...), with `key` (default
 * es256) and `signAlg` (default the key's).
 */
export function mintRaw (header: Buffer | string, payload: Buffer | string, key: ZooKey = KEYS.es256!, signAlg: string = key.alg): string {
  const input = `${b64Bytes(header)}.${b64Bytes(payload)}`
  return `${input}.${signInput(signAlg, key.signKey, input)}`
}

/** What a raw exchange gave: every byte read until the server closed (or the timeout). */
export interface RawExchange {
  bytes: Buffer
  /** True when the server closed the connection before `timeoutMs`. */
  closed: boolean
}

/** Writes `text` and collects every byte until the server closes the connection or `timeoutMs` pass. */
export async function rawExchange (url: string, text: string | Buffer, timeoutMs = 2000): Promise<RawExchange> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port) })
    const chunks: Buffer[] = []
    let closed = false
    const timer = setTimeout(() => socket.destroy(), timeoutMs)
    socket.on('connect', () => socket.write(text))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('end', () => { closed = true })
    socket.on('error', () => { closed = true })
    socket.on('close', () => { clearTimeout(timer); resolve({ bytes: Buffer.concat(chunks), closed }) })
  })
}
