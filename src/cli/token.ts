/**
 * `jotgate token sign` and `jotgate token verify`, for scripts and tests.
 */
import type { CliIo } from './io.js'
import { loadForCli, parseFlags } from './args.js'
import { toSeconds } from '../config/duration.js'
import { DURATION_PATTERN } from '../config/schema.js'
import { createKeyTable } from '../keys/key-table.js'
import { createTokenSigner, randomId } from '../keys/signer.js'
import { createTokenVerifier } from '../pipeline/verify-token.js'
import { createRevocationCheck } from '../pipeline/check-revocation.js'
import { createStore } from '../store/index.js'
import { isGatewayError } from '../errors.js'
import { createLogger } from '../log.js'

const DURATION = new RegExp(DURATION_PATTERN)

export async function run (args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args
  if (sub === 'sign') return sign(rest, io)
  if (sub === 'verify') return verify(rest, io)
  io.stderr('usage: jotgate token sign|verify --config FILE ...')
  return 2
}

async function sign (args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    config: { type: 'string', short: 'c' },
    sub: { type: 'string' },
    claim: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    aud: { type: 'string', multiple: true },
    kid: { type: 'string' }
  }, io)
  if (flags === undefined) return 2
  const { sub, claim = [], ttl, aud, kid } = flags.values
  if (sub === undefined) { io.stderr('error: --sub is required'); return 2 }
  const ttlValue = ttl === undefined ? undefined : (/^[0-9]+$/.test(ttl) ? Number(ttl) : ttl)
  if (typeof ttlValue === 'string' && !DURATION.test(ttlValue)) { io.stderr('error: --ttl must be a duration like 30s, 10m, 1h'); return 2 }
  const claims: Record<string, unknown> = {}
  for (const c of claim) {
    const eq = c.indexOf('=')
    if (eq < 1) { io.stderr(`error: --claim ${c}: expected key=value`); return 2 }
    const raw = c.slice(eq + 1)
    try { claims[c.slice(0, eq)] = JSON.parse(raw) } catch { claims[c.slice(0, eq)] = raw }
  }
  const loaded = loadForCli(flags.values.config, io)
  if (loaded === undefined) return 1
  const { tokens } = loaded.config
  const table = createKeyTable(loaded.config)
  const key = kid === undefined ? table.signing : table.local.find((k) => k.kid === kid)
  if (key === undefined || key.signKey === undefined) {
    io.stderr(kid === undefined ? 'tokens.keys: no key has sign: true (use --kid)' : `--kid ${kid}: no key with private material has this kid`)
    return 1
  }
  const now = Math.floor(Date.now() / 1000)
  const audience = aud ?? tokens.audience?.slice(0, 1)
  const payload: Record<string, unknown> = {
    iss: tokens.issuer,
    ...(audience === undefined || audience.length === 0 ? {} : { aud: audience.length === 1 ? audience[0] : audience }),
    iat: now,
    nbf: now,
    exp: now + toSeconds(ttlValue ?? tokens.accessTtl),
    jti: randomId(),
    ...claims,
    sub
  }
  io.stdout(createTokenSigner(key)(payload))
  return 0
}

async function verify (args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, { config: { type: 'string', short: 'c' } }, io, true)
  if (flags === undefined) return 2
  const token = flags.positionals[0]
  if (token === undefined || flags.positionals.length > 1) { io.stderr('usage: jotgate token verify --config FILE TOKEN'); return 2 }
  const loaded = loadForCli(flags.values.config, io)
  if (loaded === undefined) return 1
  const { config } = loaded
  const keys = createKeyTable(config, { log: createLogger({ level: 'silent' }) })
  await Promise.all(keys.remotes.map((r) => r.start()))
  const verifyToken = createTokenVerifier({
    keys,
    clockTolerance: toSeconds(config.tokens.clockTolerance),
    maxLifetime: toSeconds(config.tokens.maxLifetime),
    maxTokenBytes: config.tokens.maxTokenBytes,
    cacheSize: 0
  })
  const store = createStore(config, { log: createLogger({ level: 'silent' }), follow: false })
  try {
    const verified = await verifyToken(token)
    // Revocation is checked when the store answers; otherwise say so on stderr.
    let storeUp = true
    try { await store.ready(1000) } catch { storeUp = false }
    if (storeUp) await createRevocationCheck(store, 'allow', () => { storeUp = false })(verified)
    if (!storeUp) io.stderr('warning: store unreachable, revocation not checked')
    let text: string
    try {
      text = JSON.stringify(verified.claims)
    } catch {
      // Claims nested deeper than the JSON serializer's stack allows.
      io.stderr('JOTGATE_TOKEN_MALFORMED')
      return 1
    }
    io.stdout(text)
    return 0
  } catch (err) {
    if (!isGatewayError(err)) throw err
    io.stderr(err.code)
    return 1
  } finally {
    for (const r of keys.remotes) r.close()
    await store.close()
  }
}
