/**
 * Key material of `tokens.keys`: read, parsed into node:crypto KeyObjects
 * and checked against the algorithm each key pins. Problems carry the key
 * path of the offending setting, for `jotgate check` and start-up.
 */
import { readFileSync } from 'node:fs'
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject } from 'node:crypto'
import type { Algorithm, KeyConfig } from '../config/schema.js'
import type { ConfigProblem } from '../config/problems.js'

export interface KeyMaterial {
  kid: string
  alg: Algorithm
  sign: boolean
  /** Public key or HMAC secret: what verifies. */
  verifyKey: KeyObject
  /** Private key or HMAC secret, when the config holds one: what signs. */
  signKey?: KeyObject
}

/** Minimum HMAC secret length in bytes: the hash output size (RFC 7518 section 3.2). */
const HS_MIN_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 }
const EC_CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/

export function checkKeyMaterial (keys: readonly KeyConfig[]): ConfigProblem[] {
  return loadKeyMaterial(keys).problems
}

export function loadKeyMaterial (keys: readonly KeyConfig[]): { keys: KeyMaterial[], problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const out: KeyMaterial[] = []
  keys.forEach((key, i) => {
    const path = `tokens.keys[${i}]`
    const loaded = key.alg.startsWith('HS') ? loadSecret(key, path, problems) : loadAsymmetric(key, path, problems)
    if (loaded === undefined) return
    if (key.sign === true && loaded.signKey === undefined) {
      problems.push({ path: `${path}.sign`, message: 'a signing key needs privateKeyFile (or an HMAC secret)' })
      return
    }
    out.push({ kid: key.kid, alg: key.alg, sign: key.sign === true, ...loaded })
  })
  return { keys: out, problems }
}

type Loaded = Pick<KeyMaterial, 'verifyKey' | 'signKey'>

function loadSecret (key: KeyConfig, path: string, problems: ConfigProblem[]): Loaded | undefined {
  const sources = [key.secret, key.secretBase64, key.secretFile].filter((s) => s !== undefined)
  if (key.privateKeyFile !== undefined || key.publicKeyFile !== undefined) {
    problems.push({ path, message: `${key.alg} takes secret, secretBase64 or secretFile, not key files` })
    return undefined
  }
  if (sources.length !== 1) {
    problems.push({ path, message: `${key.alg} needs exactly one of secret, secretBase64 or secretFile` })
    return undefined
  }
  let bytes: Buffer
  let field = 'secret'
  if (key.secret !== undefined) {
    bytes = Buffer.from(key.secret, 'utf8')
  } else if (key.secretBase64 !== undefined) {
    field = 'secretBase64'
    if (!BASE64.test(key.secretBase64)) {
      problems.push({ path: `${path}.secretBase64`, message: 'is not base64 or base64url' })
      return undefined
    }
    bytes = Buffer.from(key.secretBase64, 'base64')
  } else {
    field = 'secretFile'
    const read = readFile(key.secretFile!, `${path}.secretFile`, problems)
    if (read === undefined) return undefined
    bytes = read
  }
  const min = HS_MIN_BYTES[key.alg]!
  if (bytes.length < min) {
    problems.push({ path: `${path}.${field}`, message: `is ${bytes.length} bytes; ${key.alg} needs at least ${min} (RFC 7518 section 3.2)` })
    return undefined
  }
  const secret = createSecretKey(bytes)
  return { verifyKey: secret, signKey: secret }
}

function loadAsymmetric (key: KeyConfig, path: string, problems: ConfigProblem[]): Loaded | undefined {
  if (key.secret !== undefined || key.secretBase64 !== undefined || key.secretFile !== undefined) {
    problems.push({ path, message: `${key.alg} takes privateKeyFile or publicKeyFile, not a secret` })
    return undefined
  }
  if ((key.privateKeyFile === undefined) === (key.publicKeyFile === undefined)) {
    problems.push({ path, message: `${key.alg} needs exactly one of privateKeyFile or publicKeyFile` })
    return undefined
  }
  const isPrivate = key.privateKeyFile !== undefined
  const field = isPrivate ? 'privateKeyFile' : 'publicKeyFile'
  const pem = readFile((isPrivate ? key.privateKeyFile : key.publicKeyFile)!, `${path}.${field}`, problems)
  if (pem === undefined) return undefined
  let verifyKey: KeyObject
  let signKey: KeyObject | undefined
  try {
    if (isPrivate) {
      signKey = createPrivateKey(pem)
      verifyKey = createPublicKey(signKey)
    } else {
      verifyKey = createPublicKey(pem)
    }
  } catch (err) {
    problems.push({ path: `${path}.${field}`, message: `is not a readable ${isPrivate ? 'private' : 'public'} key in PEM form (${(err as Error).message})` })
    return undefined
  }
  const mismatch = keyMismatch(key.alg, verifyKey)
  if (mismatch !== undefined) {
    problems.push({ path: `${path}.${field}`, message: mismatch })
    return undefined
  }
  return signKey === undefined ? { verifyKey } : { verifyKey, signKey }
}

/** Why `key` cannot serve `alg`, or undefined when it can. */
export function keyMismatch (alg: Algorithm, key: KeyObject): string | undefined {
  if (alg.startsWith('HS')) return key.type === 'secret' ? undefined : `is a ${key.type} key; ${alg} needs a secret`
  const type = key.asymmetricKeyType
  const details = key.asymmetricKeyDetails ?? {}
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    if (type !== 'rsa' && !(alg.startsWith('PS') && type === 'rsa-pss')) return `is a ${type} key; ${alg} needs an RSA key`
    // RFC 7518 section 3.3: keys of 2048 bits or larger MUST be used.
    if ((details.modulusLength ?? 0) < 2048) return `is a ${details.modulusLength}-bit RSA key; at least 2048 bits are required`
    return undefined
  }
  if (alg.startsWith('ES')) {
    if (type !== 'ec') return `is a ${type} key; ${alg} needs an EC key`
    if (details.namedCurve !== EC_CURVES[alg]) return `is on curve ${details.namedCurve}; ${alg} needs ${EC_CURVES[alg]}`
    return undefined
  }
  if (alg === 'EdDSA' && type !== 'ed25519') return `is a ${type} key; EdDSA needs an Ed25519 key`
  return undefined
}

function readFile (file: string, path: string, problems: ConfigProblem[]): Buffer | undefined {
  try {
    return readFileSync(file)
  } catch (err) {
    problems.push({ path, message: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})` })
    return undefined
  }
}
