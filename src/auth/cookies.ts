/**
 * Token cookies for browsers (`auth.cookies`): login and refresh can set
 * the access and refresh tokens as HttpOnly cookies (scripts cannot read
 * them), Secure and SameSite by default; logout clears them. The access
 * cookie is named by `tokens.sources.cookie.name`, the name routes read;
 * the refresh cookie's Path is `auth.basePath`, so only the token
 * endpoints ever receive it.
 */
import type { GatewayConfig } from '../config/schema.js'
import type { TokenPair } from './sessions.js'

export interface TokenCookies {
  /** The access cookie's name. */
  access: string
  /** The refresh cookie's name. */
  refresh: string
  /** Set-Cookie values for a new pair. */
  set: (pair: TokenPair) => string[]
  /** Set-Cookie values that delete both cookies. */
  clear: () => string[]
}

/** Undefined when `auth.cookies` is not configured. */
export function createTokenCookies (config: GatewayConfig): TokenCookies | undefined {
  const auth = config.auth
  const settings = auth?.cookies
  const access = config.tokens.sources?.cookie?.name
  if (auth === undefined || settings === undefined || access === undefined) return undefined
  const common = [
    'HttpOnly',
    ...(settings.secure ? ['Secure'] : []),
    `SameSite=${settings.sameSite === 'strict' ? 'Strict' : 'Lax'}`,
    ...(settings.domain === undefined ? [] : [`Domain=${settings.domain}`])
  ].join('; ')
  const cookie = (name: string, value: string, path: string, maxAge: number) => `${name}=${value}; Path=${path}; Max-Age=${maxAge}; ${common}`
  return {
    access,
    refresh: settings.refreshName,
    set: (pair) => [
      cookie(access, pair.access_token, settings.path, pair.expires_in),
      cookie(settings.refreshName, pair.refresh_token, auth.basePath, pair.refresh_expires_in)
    ],
    clear: () => [cookie(access, '', settings.path, 0), cookie(settings.refreshName, '', auth.basePath, 0)]
  }
}
