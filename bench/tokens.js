/**
 * Keys and tokens for the benchmark, made with node:crypto directly (as the
 * test zoo does), independently of the code under test. Keys are generated
 * at start and written to a temporary directory; nothing is committed.
 */
import { createHmac, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, timingSafeEqual, verify as cryptoVerify } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const ISSUER = 'https://jotgate.bench'
export const AUDIENCE = 'api'
/** The algorithms the issue names, in table order. */
export const ALGS = /** @type {const} */ (['HS256', 'RS256', 'ES256', 'EdDSA'])

/**
 * @typedef {typeof ALGS[number]} Alg
 * @typedef {{ kid: string, alg: Alg, signKey: import('node:crypto').KeyObject | Buffer, config: Record<string, unknown> }} BenchKey
 */

/**
 * One key per algorithm: an HS256 secret and verify-only public keys
 * (jotgate never needs a private key to verify).
 * @param {string} dir where the public key files go
 * @returns {Record<Alg, BenchKey>}
 */
export function generateKeys (dir) {
  const secret = randomBytes(32)
  /** @param {Alg} alg @param {{ privateKey: import('node:crypto').KeyObject, publicKey: import('node:crypto').KeyObject }} pair */
  const asymmetric = (alg, pair) => {
    const kid = alg.toLowerCase()
    const file = join(dir, `${kid}.pub.pem`)
    writeFileSync(file, pair.publicKey.export({ type: 'spki', format: 'pem' }))
    return { kid, alg, signKey: pair.privateKey, config: { kid, alg, publicKeyFile: file } }
  }
  return {
    HS256: { kid: 'hs256', alg: 'HS256', signKey: secret, config: { kid: 'hs256', alg: 'HS256', secretBase64: secret.toString('base64') } },
    RS256: asymmetric('RS256', generateKeyPairSync('rsa', { modulusLength: 2048 })),
    ES256: asymmetric('ES256', generateKeyPairSync('ec', { namedCurve: 'P-256' })),
    EdDSA: asymmetric('EdDSA', generateKeyPairSync('ed25519'))
  }
}

const b64 = (/** @type {unknown} */ value) => Buffer.from(JSON.stringify(value)).toString('base64url')

/**
 * Signs `input` for the key's algorithm. The asymmetric ones use the
 * callback form so that 10,000 RSA signatures run on the libuv pool.
 * @param {BenchKey} key
 * @param {string} input
 * @returns {Promise<string>}
 */
function signInput (key, input) {
  const data = Buffer.from(input)
  if (key.alg === 'HS256') return Promise.resolve(createHmac('sha256', /** @type {Buffer} */ (key.signKey)).update(data).digest('base64url'))
  const hash = key.alg === 'EdDSA' ? null : 'sha256'
  /** @type {import('node:crypto').KeyObject | import('node:crypto').SignKeyObjectInput} */
  const signKey = key.alg === 'ES256'
    ? { key: /** @type {import('node:crypto').KeyObject} */ (key.signKey), dsaEncoding: 'ieee-p1363' }
    : /** @type {import('node:crypto').KeyObject} */ (key.signKey)
  return new Promise((resolve, reject) => {
    cryptoSign(hash, data, signKey, (err, sig) => { if (err) reject(err); else resolve(sig.toString('base64url')) })
  })
}

/**
 * Claims like the ones jotgate issues: iss, sub, aud, exp, iat, nbf, jti,
 * sid and a roles claim mapped to a header. Valid for two hours, so a
 * token signed at start outlives any run.
 * @param {string} sub
 */
export function claims (sub) {
  const t = Math.floor(Date.now() / 1000)
  return {
    iss: ISSUER, aud: AUDIENCE, sub, iat: t, nbf: t, exp: t + 7200,
    jti: randomBytes(12).toString('base64url'), sid: randomBytes(12).toString('base64url'), roles: ['user']
  }
}

/**
 * `count` tokens signed with `key`, each with its own jti, sid and sub.
 * @param {BenchKey} key
 * @param {number} count
 * @param {string} tag distinguishes the subjects of separate sets
 * @returns {Promise<{ token: string, jti: string, exp: number }[]>}
 */
export async function signTokens (key, count, tag) {
  const header = b64({ alg: key.alg, typ: 'JWT', kid: key.kid })
  /** @type {{ token: string, jti: string, exp: number }[]} */
  const out = []
  const BATCH = 256
  for (let start = 0; start < count; start += BATCH) {
    const batch = []
    for (let i = start; i < Math.min(count, start + BATCH); i++) {
      const c = claims(`${tag}-${i}`)
      const input = `${header}.${b64(c)}`
      batch.push(signInput(key, input).then((sig) => ({ token: `${input}.${sig}`, jti: c.jti, exp: c.exp })))
    }
    out.push(...await Promise.all(batch))
  }
  return out
}

/**
 * The jotgate config for the benchmark: real Redis with a unique prefix
 * (revocation is always checked), one issuer with the four keys, a single
 * route `/` with auth required, an admin listener for POST /revocations.
 * @param {{ keys: Record<Alg, BenchKey>, upstream: string, redisUrl: string, keyPrefix: string, logLevel: string, replica?: boolean, requestLines?: boolean }} options
 */
export function gatewayConfig ({ keys, upstream, redisUrl, keyPrefix, logLevel, replica = false, requestLines = true }) {
  return {
    server: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    store: { type: 'redis', url: redisUrl, keyPrefix, replica },
    tokens: {
      issuer: ISSUER,
      audience: [AUDIENCE],
      keys: Object.values(keys).map((k) => k.config)
    },
    routes: [{ path: '/', upstream, auth: 'required' }],
    log: { level: logLevel, requests: requestLines }
  }
}

/**
 * What one signature check costs with node:crypto alone on this machine
 * (µs, median of batches), to read the distinct-token rows against.
 * @param {Record<Alg, BenchKey>} keys
 * @param {Record<string, { distinct: string[] }>} tokens
 */
export function verifyCosts (keys, tokens) {
  /** @type {Record<string, number>} */
  const out = {}
  for (const alg of ALGS) {
    const key = keys[alg]
    const sample = (tokens[alg]?.distinct ?? []).slice(0, 200)
    const publicKey = alg === 'HS256' ? undefined : createPublicKey(/** @type {import('node:crypto').KeyObject} */ (key.signKey))
    const check = (/** @type {string} */ token) => {
      const dot = token.lastIndexOf('.')
      const data = Buffer.from(token.slice(0, dot))
      const sig = Buffer.from(token.slice(dot + 1), 'base64url')
      if (alg === 'HS256') return timingSafeEqual(createHmac('sha256', /** @type {Buffer} */ (key.signKey)).update(data).digest(), sig)
      if (alg === 'ES256') return cryptoVerify('sha256', data, { key: /** @type {import('node:crypto').KeyObject} */ (publicKey), dsaEncoding: 'ieee-p1363' }, sig)
      return cryptoVerify(alg === 'EdDSA' ? null : 'sha256', data, /** @type {import('node:crypto').KeyObject} */ (publicKey), sig)
    }
    const batches = []
    for (let b = 0; b < 5; b++) {
      const t0 = performance.now()
      for (const token of sample) if (!check(token)) throw new Error(`${alg}: own token does not verify`)
      batches.push((performance.now() - t0) * 1000 / Math.max(1, sample.length))
    }
    batches.sort((a, b) => a - b)
    out[alg] = Math.round(/** @type {number} */ (batches[2]) * 10) / 10
  }
  return out
}
