/**
 * `jotgate keys generate --alg ALG [--kid K] --out DIR`: writes a new key
 * (or HMAC secret) for `tokens.keys` and prints its kid and config entry.
 */
import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto'
import { access, mkdir, open, unlink } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { parseArgs, promisify } from 'node:util'
import { Document } from 'yaml'
import { ALGORITHMS, type Algorithm } from '../config/schema.js'
import { jwkThumbprint } from '../keys/jwk.js'
import type { CliIo } from './io.js'

/** RFC 7518 asks for at least 2048 bits; 3072 gives ~128-bit security (NIST SP 800-57). */
export const DEFAULT_RSA_BITS = 3072
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }
const HS_SECRET_BYTES = 64
/** The kid becomes a file name: no separators, and no leading dot ('.', '..', hidden files). */
const KID_PATTERN = /^(?!\.)[A-Za-z0-9._-]{1,128}$/

const HELP = `usage: jotgate keys generate --alg ALG [--kid K] --out DIR

Writes DIR/<kid>.key.pem (PKCS#8, mode 0600) and DIR/<kid>.pub.pem (SPKI, 0644),
or DIR/<kid>.secret (${HS_SECRET_BYTES} random bytes, 0600) for HS*. Existing files are never overwritten.
  RS*, PS*  RSA ${DEFAULT_RSA_BITS} bits (a safer default than the 2048-bit minimum)
  ES256/384/512  P-256 / P-384 / P-521;  EdDSA  Ed25519
Without --kid: the RFC 7638 thumbprint of the public key, or a random id for HS*.
Prints the kid, then the entry to paste into tokens.keys (its file path is DIR as
given; in the config, relative paths are read from the config file's folder).`

const OPTIONS = {
  alg: { type: 'string' }, kid: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' }
} as const
const generatePair = promisify(generateKeyPair)

interface Output { file: string, data: Buffer | string, mode: number }

export async function run (args: string[], io: CliIo): Promise<number> {
  let values
  try {
    ({ values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }))
  } catch (err) {
    return error(io, 2, (err as Error).message)
  }
  if (values.help === true) {
    io.stdout(HELP)
    return 0
  }
  const alg = values.alg
  if (alg === undefined) return error(io, 2, '--alg is required')
  if (!isAlgorithm(alg)) return error(io, 2, `--alg must be one of ${ALGORITHMS.join(', ')}`)
  if (values.out === undefined || values.out === '') return error(io, 2, '--out DIR is required')
  if (values.kid !== undefined && !KID_PATTERN.test(values.kid)) {
    return error(io, 2, '--kid must be 1 to 128 of A-Z a-z 0-9 . _ - and not start with a dot')
  }
  const dir = values.out

  let kid: string
  let outputs: Output[]
  let entry: Record<string, unknown>
  if (alg.startsWith('HS')) {
    kid = values.kid ?? randomBytes(16).toString('base64url')
    const file = join(dir, `${kid}.secret`)
    outputs = [{ file, data: randomBytes(HS_SECRET_BYTES), mode: 0o600 }]
    entry = { kid, alg, secretFile: file, sign: true }
  } else {
    const { publicKey, privateKey } = await generate(alg)
    kid = values.kid ?? jwkThumbprint(publicKey)
    const keyFile = join(dir, `${kid}.key.pem`)
    outputs = [
      { file: keyFile, data: privateKey.export({ type: 'pkcs8', format: 'pem' }), mode: 0o600 },
      { file: join(dir, `${kid}.pub.pem`), data: publicKey.export({ type: 'spki', format: 'pem' }), mode: 0o644 }
    ]
    entry = { kid, alg, privateKeyFile: keyFile, sign: true }
  }

  const problem = await writeAll(dir, outputs)
  if (problem !== undefined) return error(io, 1, problem)
  // Two lines on stdout so scripts can take the kid with `head -1`.
  io.stdout(kid)
  io.stdout(`- ${flowYaml(entry)}`)
  return 0
}

function isAlgorithm (value: string): value is Algorithm {
  return (ALGORITHMS as readonly string[]).includes(value)
}

async function generate (alg: Algorithm): Promise<{ publicKey: KeyObject, privateKey: KeyObject }> {
  if (alg === 'EdDSA') return await generatePair('ed25519', {})
  const curve = EC_CURVES[alg]
  if (curve !== undefined) return await generatePair('ec', { namedCurve: curve })
  return await generatePair('rsa', { modulusLength: DEFAULT_RSA_BITS })
}

/** Writes every file or none; returns what went wrong. */
async function writeAll (dir: string, outputs: Output[]): Promise<string | undefined> {
  for (const { file } of outputs) {
    if (await exists(file)) return refused(file)
  }
  try {
    await makeDir(dir)
  } catch (err) {
    return `cannot create ${dir} (${errorCode(err)})`
  }
  for (const [i, output] of outputs.entries()) {
    try {
      await writeExclusive(output)
    } catch (err) {
      // Leave no half-written pair behind (e.g. a private key without its public key).
      for (const { file } of outputs.slice(0, i)) await unlink(file).catch(() => undefined)
      return errorCode(err) === 'EEXIST' ? refused(output.file) : `cannot write ${output.file} (${errorCode(err)})`
    }
  }
  return undefined
}

const refused = (file: string): string => `${file} already exists; refusing to overwrite it`

/** 'wx' fails instead of following a file or symlink planted since the check. */
async function writeExclusive ({ file, data, mode }: Output): Promise<void> {
  const handle = await open(file, 'wx', mode)
  try {
    // The umask may have narrowed `mode`; the public key must still be readable.
    await handle.chmod(mode)
    await handle.writeFile(data)
  } finally {
    await handle.close()
  }
}

/**
 * `mkdir -p` by hand: Node's `{ recursive: true }` spins forever at 100% CPU
 * where mkdir answers ENOENT under an existing parent (e.g. under /proc).
 */
async function makeDir (dir: string): Promise<void> {
  const missing: string[] = []
  for (let current = resolve(dir); !(await exists(current)); current = dirname(current)) {
    missing.unshift(current)
    if (dirname(current) === current) break
  }
  for (const path of missing) {
    await mkdir(path).catch((err: unknown) => { if (errorCode(err) !== 'EEXIST') throw err })
  }
}

const exists = async (file: string): Promise<boolean> => await access(file).then(() => true, () => false)

/** A YAML flow mapping, quoting whatever needs it (a numeric kid, a path with a comma). */
function flowYaml (entry: Record<string, unknown>): string {
  const doc = new Document(entry)
  const contents = doc.contents as { flow?: boolean } | null
  if (contents !== null) contents.flow = true
  return doc.toString({ lineWidth: 0 }).trimEnd()
}

const errorCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err)

/** One line on stderr; exit code 2 for usage errors, 1 for failures. */
function error (io: CliIo, code: 1 | 2, message: string): number {
  io.stderr(`error: ${message}`)
  return code
}
