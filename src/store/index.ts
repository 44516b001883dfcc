import type { Logger } from 'pino'
import type { GatewayConfig } from '../config/schema.js'
import { createMemoryStore } from './memory.js'
import { createRedisStore } from './redis.js'
import { createReplicaStore } from './replica.js'
import { createRevoker } from './revoker.js'
import type { Store } from './types.js'

export type { Store, RefreshRecord, RevocationSubject, SpendResult } from './types.js'
export { StoreUnavailableError } from './types.js'

export interface StoreOptions {
  log: Logger
  /** false for one-shot commands: publish revocations but do not follow the feed. */
  follow?: boolean
}

/** The store the config names, with the revocation replica when `store.replica` is on. */
export function createStore (config: GatewayConfig, options: StoreOptions): Store {
  if (config.store.type === 'memory') return createMemoryStore()
  const redis = createRedisStore(config.store)
  if (!config.store.replica) return redis
  // Events stay in the stream as long as the longest revocation they carry.
  const retentionMs = createRevoker(config, redis).sessionTtl * 1000
  return createReplicaStore(redis, redis.createFeed(retentionMs), options.log, { follow: options.follow ?? true })
}
