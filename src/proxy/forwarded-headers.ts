/**
 * X-Forwarded-For, -Proto and -Host (CONTRACT step 7). With trustProxy off
 * the incoming values are replaced, so a client cannot pose as another
 * address (oauth2-proxy GHSA-7x63-xv5r-3p2x); with it on, ours are appended
 * to what the proxy in front sent.
 */
import { randomUUID } from 'node:crypto'

export interface ForwardedInput {
  remoteAddress: string | undefined
  host: string | undefined
  proto: 'http' | 'https'
}

type Headers = Record<string, string | string[] | number | undefined>

export function setForwardedHeaders (headers: Headers, input: ForwardedInput, trustProxy: boolean): void {
  setOne(headers, 'x-forwarded-for', input.remoteAddress ?? '', trustProxy)
  setOne(headers, 'x-forwarded-proto', input.proto, trustProxy)
  setOne(headers, 'x-forwarded-host', input.host ?? '', trustProxy)
  // RFC 7239 `Forwarded` carries the same claims; without trust it is a spoof.
  if (!trustProxy) delete headers.forwarded
}

function setOne (headers: Headers, name: string, value: string, trustProxy: boolean): void {
  const incoming = headers[name]
  if (trustProxy && incoming !== undefined && incoming !== '') {
    const prior = Array.isArray(incoming) ? incoming.join(', ') : String(incoming)
    headers[name] = value === '' ? prior : `${prior}, ${value}`
  } else if (value === '') {
    delete headers[name]
  } else {
    headers[name] = value
  }
}

// X-Request-Id is kept when it is 1 to 128 visible ASCII characters.
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/

/** The request's id: the incoming X-Request-Id when usable, else a new UUID. */
export function requestIdOf (incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
}
