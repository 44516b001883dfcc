/**
 * Credential sources: who a username/password pair is. `users` reads a
 * users file of password hashes; `delegate` asks a legacy login endpoint.
 * Both answer the same way: the subject and its claims, or undefined.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import type { AuthConfig } from '../config/schema.js'
import { toMs } from '../config/duration.js'
import type { ConfigProblem } from '../config/problems.js'
import { pointerToPath } from '../config/problems.js'
import { gatewayError } from '../errors.js'
import { walk } from '../pipeline/authorize-route.js'
import { dummyHash, verifyPassword } from './password.js'

export interface Identity {
  sub: string
  claims: Record<string, unknown>
}

/** Resolves to the identity, or undefined when the credentials are wrong. */
export type CredentialSource = (username: string, password: string) => Promise<Identity | undefined>

const UsersFileSchema = Type.Object({
  users: Type.Array(Type.Object({
    username: Type.String({ minLength: 1, maxLength: 256 }),
    password: Type.String({ pattern: '^\\$(scrypt|2a|2b|2y)\\$' }),
    claims: Type.Record(Type.String(), Type.Unknown(), { default: {} })
  }, { additionalProperties: false }))
}, { additionalProperties: false })
type UsersFile = Static<typeof UsersFileSchema>

/** Reads and validates a users file; problems are named `auth.users.file: ...`. */
export function readUsersFile (file: string): { users?: UsersFile['users'], problems: ConfigProblem[] } {
  const path = 'auth.users.file'
  let raw: unknown
  try {
    raw = Value.Default(UsersFileSchema, parseYaml(readFileSync(file, 'utf8')))
  } catch (err) {
    return { problems: [{ path, message: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message.split('\n')[0]})` }] }
  }
  const problems = [...Value.Errors(UsersFileSchema, raw)].slice(0, 10).map((e) => ({
    path,
    message: `${pointerToPath(e.path) || '(root)'} ${e.path.endsWith('/password') ? 'must be a jotgate hash-password or bcrypt hash' : e.message.toLowerCase()}`
  }))
  if (problems.length > 0) return { problems }
  const seen = new Set<string>()
  for (const u of (raw as UsersFile).users) {
    if (seen.has(u.username)) problems.push({ path, message: `duplicate username ${JSON.stringify(u.username)}` })
    seen.add(u.username)
  }
  return problems.length > 0 ? { problems } : { users: (raw as UsersFile).users, problems }
}

export function createCredentialSource (auth: AuthConfig): CredentialSource {
  return auth.delegate !== undefined ? delegateSource(auth.delegate) : usersSource(auth.users!.file)
}

function usersSource (file: string): CredentialSource {
  const { users } = readUsersFile(file)
  const list = users ?? []
  const byName = new Map(list.map((u) => [u.username, u]))
  // An unknown user costs one hash verification too: no enumeration by
  // timing. It is checked against the hash of a user of the file (chosen by
  // a keyed hash of the name, so always the same one for a name): the same
  // algorithm and cost as a real user's, whatever mix of scrypt parameters
  // and bcrypt costs the file holds. A fixed scrypt dummy would make an
  // unknown name slower, or faster, than a bcrypt user or a user hashed with
  // other scrypt parameters. An empty file falls back to the dummy hash.
  const pickKey = randomBytes(32)
  const standIn = (username: string): Promise<string> => {
    if (list.length === 0) return dummyHash()
    const index = createHmac('sha256', pickKey).update(username).digest().readUInt32BE(0) % list.length
    return Promise.resolve(list[index]!.password)
  }
  return async (username, password) => {
    const user = byName.get(username)
    const ok = await verifyPassword(password, user?.password ?? await standIn(username))
    return ok && user !== undefined ? { sub: user.username, claims: { ...user.claims } } : undefined
  }
}

function delegateSource (delegate: NonNullable<AuthConfig['delegate']>): CredentialSource {
  const timeout = toMs(delegate.timeout)
  const subject = delegate.subject.split('.')
  const mapping = Object.entries(delegate.claims).map(([claim, field]) => [claim, field.split('.')] as const)
  return async (username, password) => {
    let res: Response
    try {
      res = await fetch(delegate.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ username, password }),
        signal: AbortSignal.timeout(timeout),
        redirect: 'error'
      })
    } catch (cause) {
      throw gatewayError('JOTGATE_CREDENTIALS_UNAVAILABLE', { reason: 'delegate-unreachable', cause })
    }
    if (res.status >= 400 && res.status < 500) { await res.body?.cancel(); return undefined }
    if (res.status < 200 || res.status >= 300) {
      await res.body?.cancel()
      throw gatewayError('JOTGATE_CREDENTIALS_UNAVAILABLE', { reason: `delegate-status-${res.status}` })
    }
    let body: unknown
    try {
      body = await readJson(res, DELEGATE_BODY_LIMIT)
    } catch (cause) {
      throw gatewayError('JOTGATE_CREDENTIALS_UNAVAILABLE', { reason: 'delegate-body', cause })
    }
    const sub = walk(body, subject)
    // An empty subject would be an identity shared by every such login.
    if ((typeof sub !== 'string' || sub === '') && (typeof sub !== 'number' || !Number.isFinite(sub))) {
      throw gatewayError('JOTGATE_CREDENTIALS_UNAVAILABLE', { reason: 'delegate-no-subject' })
    }
    const claims: Record<string, unknown> = {}
    for (const [claim, field] of mapping) {
      const value = walk(body, field)
      if (value !== undefined) claims[claim] = value
    }
    return { sub: String(sub), claims }
  }
}

/** Largest answer read from the login service: it is held in memory whole. */
const DELEGATE_BODY_LIMIT = 1024 * 1024

/** The JSON body of `res`, refusing (and abandoning) one larger than `limit` bytes. */
async function readJson (res: Response, limit: number): Promise<unknown> {
  const declared = Number(res.headers.get('content-length') ?? 0)
  if (declared > limit) {
    await res.body?.cancel()
    throw new Error(`login service answer of ${declared} bytes exceeds ${limit}`)
  }
  const chunks: Uint8Array[] = []
  let size = 0
  if (res.body !== null) {
    const reader = res.body.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > limit) {
        await reader.cancel()
        throw new Error(`login service answer exceeds ${limit} bytes`)
      }
      chunks.push(value)
    }
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}
