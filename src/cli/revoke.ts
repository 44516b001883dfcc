/**
 * `jotgate revoke --config FILE (--jti ID --exp UNIX | --sub SUB | --sid SID)`:
 * revokes through the configured store, exactly as the admin API does.
 */
import type { CliIo } from './io.js'
import { loadForCli, parseFlags } from './args.js'
import { createStore } from '../store/index.js'
import { createRevoker } from '../store/revoker.js'
import { createLogger } from '../log.js'

export async function run (args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    config: { type: 'string', short: 'c' },
    jti: { type: 'string' },
    exp: { type: 'string' },
    sub: { type: 'string' },
    sid: { type: 'string' }
  }, io)
  if (flags === undefined) return 2
  const { jti, exp, sub, sid } = flags.values
  const chosen = [jti, sub, sid].filter((v) => v !== undefined).length
  if (chosen !== 1 || (jti !== undefined) !== (exp !== undefined) || (exp !== undefined && !/^[0-9]+$/.test(exp))) {
    io.stderr('usage: jotgate revoke --config FILE (--jti ID --exp UNIX | --sub SUB | --sid SID)')
    return 2
  }
  const loaded = loadForCli(flags.values.config, io)
  if (loaded === undefined) return 1
  if (loaded.config.store.type === 'memory') {
    // A memory store lives inside the running gateway: a new one here would
    // "revoke" into a store nobody reads.
    io.stderr('store.type: memory cannot be reached from another process; use the admin API (POST /revocations)')
    return 1
  }
  const store = createStore(loaded.config, { log: createLogger({ level: 'silent' }), follow: false })
  try {
    await store.ready(3000)
    const revoker = createRevoker(loaded.config, store)
    if (jti !== undefined) await revoker.jti(jti, Number(exp))
    else if (sid !== undefined) await revoker.sid(sid)
    else await revoker.sub(sub!)
    io.stdout('revoked')
    return 0
  } catch (err) {
    io.stderr(`store: ${(err as Error).message}`)
    return 1
  } finally {
    await store.close()
  }
}
