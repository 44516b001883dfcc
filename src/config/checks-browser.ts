/**
 * Cross-field checks of the browser-facing settings: token sources,
 * login cookies, CORS and WebSocket routes (README "Browsers and
 * WebSockets"). Called by checkConfig.
 */
import type { CorsConfig, GatewayConfig } from './schema.js'

type Add = (path: string, message: string) => void
type Warn = (code: string, path: string, message: string) => void

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// RFC 6265 section 4.1.1: a cookie name is an RFC 2616 token.
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// Unreserved characters only, so the name is the same encoded or not.
const QUERY_NAME = /^[A-Za-z0-9\-._~]+$/
const DOMAIN = /^\.?[A-Za-z0-9.-]+$/

export function checkBrowserSettings (config: GatewayConfig, add: Add, warn: Warn): void {
  const { tokens, auth } = config
  checkSources(tokens.sources, 'tokens.sources', add, warn)
  if (config.cors !== undefined) checkCors(config.cors, 'cors', add)
  config.routes.forEach((route, i) => {
    const path = `routes[${i}]`
    checkSources(route.tokenSources, `${path}.tokenSources`, add, warn)
    if (route.cors !== undefined) checkCors(route.cors, `${path}.cors`, add)
    if (route.websocket && route.methods !== undefined && !route.methods.includes('GET')) {
      add(`${path}.methods`, 'must include GET on a websocket route (the upgrade request is a GET)')
    }
  })

  const cookies = auth?.cookies
  if (cookies !== undefined) {
    const access = tokens.sources?.cookie?.name
    if (access === undefined) add('auth.cookies', 'needs tokens.sources.cookie (the cookie login sets is the one routes read the token from)')
    if (!COOKIE_NAME.test(cookies.refreshName)) add('auth.cookies.refreshName', 'is not a valid cookie name')
    if (cookies.refreshName === access) add('auth.cookies.refreshName', 'must differ from tokens.sources.cookie.name')
    if (cookies.domain !== undefined && !DOMAIN.test(cookies.domain)) add('auth.cookies.domain', 'must be a host name like example.com')
    // RFC 6265bis section 4.1.3: __Secure- needs Secure; __Host- also Path=/ and no Domain.
    for (const [key, name] of [['tokens.sources.cookie.name', access], ['auth.cookies.refreshName', cookies.refreshName]] as const) {
      if (name === undefined) continue
      if ((name.startsWith('__Secure-') || name.startsWith('__Host-')) && !cookies.secure) add(key, `${name.split('-')[0]}- cookies need auth.cookies.secure: true`)
      if (name.startsWith('__Host-') && cookies.domain !== undefined) add(key, '__Host- cookies cannot have auth.cookies.domain')
    }
    if (access?.startsWith('__Host-') === true && cookies.path !== '/') add('auth.cookies.path', 'must be / with a __Host- cookie')
    if (cookies.refreshName.startsWith('__Host-')) add('auth.cookies.refreshName', '__Host- needs Path=/, but the refresh cookie lives under auth.basePath')
    if (!cookies.secure) warn('JOTGATE_W_COOKIE_INSECURE', 'auth.cookies.secure', 'false: token cookies are sent over plain http too')
  }
  for (const [id, client] of Object.entries(auth?.clients ?? {})) {
    if (client.cookies === true && cookies === undefined) add(`auth.clients[${JSON.stringify(id)}].cookies`, 'needs auth.cookies')
  }
}

function checkSources (sources: GatewayConfig['tokens']['sources'], path: string, add: Add, warn: Warn): void {
  if (sources?.cookie !== undefined && !COOKIE_NAME.test(sources.cookie.name)) add(`${path}.cookie.name`, 'is not a valid cookie name')
  if (sources?.query !== undefined) {
    if (!QUERY_NAME.test(sources.query.name)) add(`${path}.query.name`, 'must use only letters, digits and - . _ ~')
    warn('JOTGATE_W_QUERY_TOKEN', `${path}.query`, 'tokens in URLs can end up in access logs and browser history; use it for WebSocket clients only')
  }
}

function checkCors (cors: CorsConfig, path: string, add: Add): void {
  cors.origins.forEach((origin, i) => {
    if (origin !== '*' && !isOrigin(origin)) add(`${path}.origins[${i}]`, 'must be * or an origin like https://app.example.com (scheme, host, optional port; no path)')
  })
  if (cors.credentials && cors.origins.includes('*')) add(`${path}.origins`, 'cannot hold * with credentials: true (browsers refuse it); list the origins')
  cors.headers.forEach((h, i) => { if (!HEADER_NAME.test(h)) add(`${path}.headers[${i}]`, 'is not a valid header name') })
  cors.exposeHeaders.forEach((h, i) => { if (!HEADER_NAME.test(h)) add(`${path}.exposeHeaders[${i}]`, 'is not a valid header name') })
}

/** `scheme://host[:port]` exactly as a browser serializes it in `Origin`. */
function isOrigin (value: string): boolean {
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value
  } catch {
    return false
  }
}
