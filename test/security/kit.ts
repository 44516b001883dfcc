/**
 * Shared by the attack catalogue (test/security/*.test.ts): calls through a
 * real gateway in front of a recording upstream, and assertions that say
 * what the upstream saw, or that it saw nothing. Every case carries `src`,
 * where the attack comes from: an RFC section, a CVE or advisory, or the
 * tool whose playbook holds it. Positive controls go through the same
 * gateway and route as the attacks next to them.
 */
import t from 'tap'
import type { TestGateway } from '../helpers/gateway.js'
import type { SeenRequest, Upstream } from '../helpers/upstream.js'
import { rawRequest, rawText, type RawResponse, type zoo } from '../helpers/zoo.js'

/** The `t` of a subtest (tap's plugin-built type). */
export type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]
export type HeaderList = Array<readonly [string, string]>

export const INVALID_TOKEN = 'Bearer realm="jotgate", error="invalid_token"'

/** One attack: a token, the code it must be refused with, and where it comes from. */
export interface TokenCase {
  name: string
  src: string
  token: string
  code: string
}

export interface Answer {
  status: number
  challenge: string | null
  body: { statusCode?: number, code?: string } | undefined
  text: string
}

/** GET `path` with `Authorization: Bearer <token>` (none when undefined). */
export async function call (gw: TestGateway, token: string | undefined, path = '/orders'): Promise<Answer> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  const res = await fetch(`${gw.url}${path}`, { headers })
  const text = await res.text()
  let body: Answer['body']
  try { body = JSON.parse(text) as Answer['body'] } catch { body = undefined }
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body, text }
}

/** A 401 with `code`, the invalid_token challenge, and nothing upstream. */
export async function refused (t: TapTest, gw: TestGateway, up: Upstream, token: string, code: string, label: string, path?: string): Promise<void> {
  const before = up.seen.length
  const res = await call(gw, token, path)
  t.equal(res.status, 401, `${label}: status`)
  t.equal(res.body?.statusCode, 401, `${label}: statusCode`)
  t.equal(res.body?.code, code, `${label}: code`)
  t.equal(res.challenge, INVALID_TOKEN, `${label}: challenge`)
  t.equal(up.seen.length, before, `${label}: upstream saw nothing`)
}

/** Every case refused as it says; the label names its source. */
export async function refuseAll (t: TapTest, gw: TestGateway, up: Upstream, cases: readonly TokenCase[]): Promise<void> {
  for (const c of cases) await refused(t, gw, up, c.token, c.code, `${c.name} [${c.src}]`)
}

/** Accepted: the upstream saw the request once, with X-User-Id `sub` and without the token. */
export async function accepted (t: TapTest, gw: TestGateway, up: Upstream, token: string, sub: string, label: string, path?: string): Promise<SeenRequest> {
  const before = up.seen.length
  const res = await call(gw, token, path)
  t.equal(res.status, 200, `${label}: status (${res.text.slice(0, 120)})`)
  t.equal(up.seen.length, before + 1, `${label}: upstream saw it once`)
  t.equal(up.seen.at(-1)?.headers['x-user-id'], sub, `${label}: X-User-Id from the token`)
  t.equal(up.seen.at(-1)?.headers.authorization, undefined, `${label}: token not forwarded`)
  return up.seen.at(-1)!
}

/** A raw request (exact bytes of target and headers) through `gw`. */
export async function sendRaw (gw: TestGateway, target: string, headers: HeaderList = [], method = 'GET', body = ''): Promise<RawResponse> {
  return rawRequest(gw.url, rawText(target, headers, method, body))
}

/** A raw request refused with `status` and `code` (checked unless HEAD), nothing upstream. */
export async function refusedRaw (t: TapTest, gw: TestGateway, up: Upstream, target: string, headers: HeaderList, status: number, code: string, label: string, method = 'GET'): Promise<RawResponse> {
  const before = up.seen.length
  const res = await sendRaw(gw, target, headers, method)
  t.equal(res.status, status, `${label}: status ${status}`)
  if (method !== 'HEAD') {
    t.equal(res.json?.statusCode, status, `${label}: statusCode`)
    t.equal(res.json?.code, code, `${label}: ${code}`)
  }
  t.equal(up.seen.length, before, `${label}: upstream saw nothing`)
  return res
}

/** A raw request forwarded once; returns what the upstream saw. */
export async function throughRaw (t: TapTest, gw: TestGateway, up: Upstream, target: string, headers: HeaderList, label: string, method = 'GET', body = ''): Promise<SeenRequest> {
  const before = up.seen.length
  const res = await sendRaw(gw, target, headers, method, body)
  t.equal(res.status, 200, `${label}: status (${res.body.slice(0, 100)})`)
  t.equal(up.seen.length, before + 1, `${label}: upstream saw it once`)
  return up.seen.at(-1)!
}

// ---------------------------------------------------------------------------
// The zoo of test/helpers/zoo.ts, split by family: each family file refuses
// its share, and algorithms.test.ts checks that every zoo token has one.

export type Family = 'algorithms' | 'key-selection' | 'claims-time' | 'encoding'
export type ZooName = Exclude<keyof ReturnType<typeof zoo>, 'good'>

export const ZOO_CASES: Record<ZooName, { family: Family, code: string, src: string }> = {
  algNone: { family: 'algorithms', code: 'JOTGATE_TOKEN_ALGORITHM', src: 'RFC 8725 section 2.1; CVE-2015-9235' },
  algNoneSigned: { family: 'algorithms', code: 'JOTGATE_TOKEN_ALGORITHM', src: 'RFC 8725 section 3.1' },
  algMismatch: { family: 'algorithms', code: 'JOTGATE_TOKEN_ALGORITHM', src: 'RFC 8725 section 3.1' },
  algCase: { family: 'algorithms', code: 'JOTGATE_TOKEN_ALGORITHM', src: 'RFC 7515 section 4.1.1 (case-sensitive)' },
  // Header HS256, kid rs256 whose key is pinned to RS256: alg-mismatch.
  hsWithPublicKey: { family: 'algorithms', code: 'JOTGATE_TOKEN_ALGORITHM', src: 'CVE-2015-9235; CVE-2016-10555' },
  badSignature: { family: 'algorithms', code: 'JOTGATE_TOKEN_SIGNATURE', src: 'RFC 7515 section 5.2 step 8' },
  unknownKid: { family: 'key-selection', code: 'JOTGATE_TOKEN_KEY_UNKNOWN', src: 'RFC 7515 section 4.1.4' },
  crit: { family: 'key-selection', code: 'JOTGATE_TOKEN_MALFORMED', src: 'RFC 7515 section 4.1.11' },
  jwe: { family: 'key-selection', code: 'JOTGATE_TOKEN_MALFORMED', src: 'RFC 7516 section 4.1.2; RFC 8725 section 3.11' },
  b64false: { family: 'key-selection', code: 'JOTGATE_TOKEN_MALFORMED', src: 'RFC 7797 section 3' },
  expired: { family: 'claims-time', code: 'JOTGATE_TOKEN_EXPIRED', src: 'RFC 7519 section 4.1.4' },
  notYetValid: { family: 'claims-time', code: 'JOTGATE_TOKEN_NOT_YET_VALID', src: 'RFC 7519 section 4.1.5' },
  iatFuture: { family: 'claims-time', code: 'JOTGATE_TOKEN_NOT_YET_VALID', src: 'RFC 7519 section 4.1.6' },
  wrongIssuer: { family: 'claims-time', code: 'JOTGATE_TOKEN_ISSUER', src: 'RFC 8725 section 3.8' },
  noIssuer: { family: 'claims-time', code: 'JOTGATE_TOKEN_ISSUER', src: 'RFC 8725 section 3.8' },
  wrongAudience: { family: 'claims-time', code: 'JOTGATE_TOKEN_AUDIENCE', src: 'RFC 8725 section 3.9' },
  noExp: { family: 'claims-time', code: 'JOTGATE_TOKEN_MALFORMED', src: 'CONTRACT section 3 step 4 (exp required)' },
  expString: { family: 'claims-time', code: 'JOTGATE_TOKEN_MALFORMED', src: 'RFC 7519 section 2 (NumericDate)' },
  tooLong: { family: 'claims-time', code: 'JOTGATE_TOKEN_LIFETIME', src: 'CONTRACT section 2 (maxLifetime)' },
  padded: { family: 'encoding', code: 'JOTGATE_TOKEN_MALFORMED', src: 'RFC 7515 section 2 (base64url without padding)' },
  garbage: { family: 'encoding', code: 'JOTGATE_TOKEN_MALFORMED', src: 'RFC 7515 section 7.1' },
  twoSegments: { family: 'encoding', code: 'JOTGATE_TOKEN_MALFORMED', src: 'RFC 7515 section 7.1' }
}

/** The zoo tokens of `family` as cases. */
export function zooCases (z: ReturnType<typeof zoo>, family: Family): TokenCase[] {
  return (Object.keys(ZOO_CASES) as ZooName[])
    .filter((name) => ZOO_CASES[name].family === family)
    .map((name) => ({ name: `zoo ${name}`, src: ZOO_CASES[name].src, token: z[name], code: ZOO_CASES[name].code }))
}

/** Re-spells a token's base64url segment `index` with the standard alphabet (`-` -> `+`, `_` -> `/`). */
export function toStandardB64 (token: string, index: number): string {
  const parts = token.split('.')
  const std = parts[index]!.replace(/-/g, '+').replace(/_/g, '/')
  if (std === parts[index]) throw new Error(`segment ${index} has no - or _ to re-spell`)
  parts[index] = std
  return parts.join('.')
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
