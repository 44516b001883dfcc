import type { GatewayConfig } from '../config/schema.js'
import { createMemoryStore } from './memory.js'
import { createRedisStore } from './redis.js'
import type { Store } from './types.js'

export type { Store, RefreshRecord, RevocationSubject, SpendResult } from './types.js'
export { StoreUnavailableError } from './types.js'

/** The store the config names. */
export function createStore (config: GatewayConfig['store']): Store {
  return config.type === 'memory' ? createMemoryStore() : createRedisStore(config)
}
