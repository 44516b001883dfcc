/**
 * The one @fastify/http-proxy registration: a catch-all whose upstream is
 * chosen per request by our own route table (first match wins on the one
 * normalized path), never by Fastify's router. The pipeline runs in
 * onRequest, before any body is read; the request body streams through.
 */
import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import { gatewayError } from '../errors.js'
import { toMs } from '../config/duration.js'
import type { GatewayConfig } from '../config/schema.js'
import { authorizationValues, headerValues } from '../pipeline/extract-token.js'
import { tokenPolicies } from '../pipeline/token-policy.js'
import { forwardedQuery, stripTokenCookies } from './forward-token.js'
import type { RequestContext } from '../pipeline/context.js'
import { setForwardedHeaders } from './forwarded-headers.js'
import { kContext, kTarget, type Generation } from '../generation.js'

type Headers = Record<string, string | string[] | number | undefined>

/** Methods the proxy forwards; others are answered 405 on a matched path. */
export const PROXIED_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/**
 * Hop-by-hop fields (RFC 9110 section 7.6.1) reply-from leaves in place
 * unless `Connection` names them; undici throws on `Keep-Alive` and
 * `Upgrade` (a 502 for a client that merely sent one). `Expect` was already
 * answered here (Node sends the 100 Continue); undici refuses it too.
 */
export const HOP_BY_HOP = ['keep-alive', 'upgrade', 'proxy-connection', 'te', 'trailer', 'expect'] as const

/**
 * Headers with which IIS, Symfony and some Spring set-ups let a client name
 * another path than the request line's: the upstream would serve a path
 * the gateway never matched (or authorized). Never forwarded.
 */
export const PATH_OVERRIDE = ['x-original-url', 'x-rewrite-url'] as const

export interface ProxyOptions {
  server: GatewayConfig['server']
  generation: () => Generation
  /** Told how long the upstream took to answer with headers (metrics). */
  onUpstream?: (route: string, seconds: number) => void
}

const kUpstreamStart = Symbol('jotgate.upstreamStart')
const kGeneration = Symbol('jotgate.generation')
declare module 'fastify' {
  interface FastifyRequest { [kUpstreamStart]?: number, [kGeneration]?: Generation }
}

export async function registerProxy (app: FastifyInstance, { server, generation, onUpstream }: ProxyOptions): Promise<void> {
  const upstreamTimeout = toMs(server.upstreamTimeout)

  // A callback hook, not an async one: with a cached token and a local
  // revocation list the whole pipeline answers synchronously, and the
  // request goes on without a promise or a microtask in between.
  app.addHook('onRequest', (request, _reply, done) => {
    let pending: void | Promise<void>
    try {
      pending = authenticate(request, generation())
    } catch (err) {
      done(err as Error)
      return
    }
    if (pending === undefined) done()
    else pending.then(() => { done() }, done)
  })

  const proxyOptions: FastifyHttpProxyOptions = {
    upstream: '',
    routes: ['/', '/*'],
    httpMethods: [...PROXIED_METHODS],
    internalRewriteLocationHeader: false,
    disableRequestLogging: true,
    undici: { headersTimeout: upstreamTimeout, bodyTimeout: upstreamTimeout },
    replyOptions: {
      // The library types its callbacks for HTTP/2 as well; this server is HTTP/1.
      getUpstream: (request) => (request as FastifyRequest)[kContext]!.route!.origin,
      rewriteRequestHeaders: (request, headers) =>
        rewriteRequestHeaders(request as FastifyRequest, headers as Headers, server.trustProxy, (request as FastifyRequest)[kGeneration]!) as typeof headers,
      rewriteHeaders: (headers, request) => corsResponseHeaders(request as FastifyRequest, headers as Headers) as typeof headers,
      onError: (reply, { error }) => {
        const code = (error as { statusCode?: number }).statusCode === 504 ? 'JOTGATE_UPSTREAM_TIMEOUT' : 'JOTGATE_UPSTREAM_UNAVAILABLE'
        reply.send(gatewayError(code, { reason: code === 'JOTGATE_UPSTREAM_TIMEOUT' ? 'upstream-timeout' : 'upstream-error', cause: error }))
      },
      onResponse: (request, reply, res) => {
        const req = request as FastifyRequest
        const start = req[kUpstreamStart]
        if (onUpstream !== undefined && start !== undefined) onUpstream(req[kContext]!.route!.label, (performance.now() - start) / 1000)
        sendUpstreamBody(req, reply as FastifyReply, res as unknown as UpstreamResponse)
      },
      // reply-from retries a GET that got 503 up to ten times by default; a
      // gateway passes the upstream's answer back unchanged instead.
      retryDelay: () => null,
      queryString: (_search, _url, request) => forwardQuery(request as FastifyRequest)
    },
    handler: (request, reply, _dest, options) => {
      const ctx = (request as FastifyRequest)[kContext]!;
      (request as FastifyRequest)[kUpstreamStart] = performance.now()
      return (reply as FastifyReply).from(ctx.route!.forwardPath(ctx.path), options)
    }
  }
  await app.register(httpProxy, proxyOptions)
}

/** What reply-from hands to onResponse (HTTP/1 through undici). */
export interface UpstreamResponse {
  statusCode: number
  headers: Headers
  stream: Readable
}

/**
 * An answer the upstream announces with a Content-Length up to this size,
 * and whose bytes have all arrived with its headers (the common case: one
 * read from the upstream), is sent in one write, headers and body
 * together. That saves the stream plumbing and a socket write per
 * response. Anything else streams: chunked bodies, event streams, larger
 * ones, and small ones still arriving (an upstream that dribbles its bytes
 * is passed on as it sends them). Node's default stream buffer size: a
 * buffered answer holds no more memory than a streamed one would.
 */
export const BUFFERED_BODY_BYTES = 16 * 1024

export function sendUpstreamBody (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): void {
  const stream = res.stream
  // HEAD, 204 and 304 answers have no body (RFC 9110 sections 9.3.2,
  // 15.3.5, 15.4.5): they are answered at once with the upstream's fields,
  // Content-Length included. undici 7 reads a 304's Content-Length as a
  // promise of a body and fails the response; that no longer reaches the client.
  if (request.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) {
    stream.on('error', noop)
    stream.resume()
    reply.send()
    return
  }
  const declared = res.headers['content-length']
  const length = typeof declared === 'string' ? Number(declared) : NaN
  if (!(length > 0 && length <= BUFFERED_BODY_BYTES)) {
    reply.send(stream)
    return
  }
  const chunks: Buffer[] = []
  const collected = (): Buffer => chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
  let received = 0
  let settled = false
  // undici hands over the headers before it parses the bytes read with
  // them, and the stream passes those bytes on in the next tick: by the
  // tick queued after that, a body that came in the same read is all here.
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk)
    received += chunk.length
    if (received < length || settled) return
    settled = true
    stream.removeListener('data', onData)
    stream.removeListener('error', onError)
    // The connection may still fail after the last byte; the answer is whole by then.
    stream.on('error', noop)
    reply.send(collected())
  }
  // Nothing was sent yet: the client gets the documented 502, not a cut-off body.
  const onError = (err: Error): void => {
    if (settled) return
    settled = true
    for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
    reply.send(gatewayError('JOTGATE_UPSTREAM_UNAVAILABLE', { reason: 'upstream-body', cause: err }))
  }
  stream.on('data', onData)
  stream.on('error', onError)
  process.nextTick(() => {
    if (settled) return
    // Still arriving: stream it from here, what came so far first.
    settled = true
    stream.pause()
    stream.removeListener('data', onData)
    stream.removeListener('error', onError)
    if (chunks.length > 0) stream.unshift(collected())
    reply.send(stream)
  })
}

function noop (): void {}

/**
 * The query goes apart from the path: reply-from screens its source for
 * `../` and decodes it, which would refuse (or 500 on) queries like
 * `?next=../x` or `?q=100%` that CONTRACT step 1 forwards as they came.
 */
function forwardQuery (request: FastifyRequest): string {
  const route = request[kContext]!.route!
  return forwardedQuery(request.raw[kTarget]!.query, route, tokenPolicies(request[kGeneration]!.config)).slice(1)
}

/** Runs the pipeline for one request; throws (or rejects) its refusal. */
function authenticate (request: FastifyRequest, gen: Generation): void | Promise<void> {
  // The whole request, header rewriting included, uses the generation it started with.
  request[kGeneration] = gen
  const raw = request.raw.rawHeaders
  // RFC 9112 section 3.2: more than one Host is a 400 (Node keeps the
  // first; a proxy in front may have used the other).
  if (countHeader(raw, 'host') > 1) throw gatewayError('JOTGATE_BAD_REQUEST', { reason: 'host-repeated' })
  const target = request.raw[kTarget]!
  const ctx: RequestContext = { method: request.method, path: target.path, headers: request.headers }
  request[kContext] = ctx
  return gen.pipeline(ctx, { authorization: authorizationValues(raw), cookie: headerValues(raw, 'cookie'), query: target.query, policies: tokenPolicies(gen.config) })
}

function rewriteRequestHeaders (
  request: FastifyRequest,
  headers: Headers,
  trustProxy: boolean,
  gen: Generation
): Headers {
  const ctx = request[kContext]!
  const route = ctx.route!
  stripIncoming(headers, gen)
  stripTokenCookies(headers, route, tokenPolicies(gen.config))
  // Set to undefined rather than deleted (undici skips undefined values): a
  // delete would turn the copied header object into a slow dictionary on
  // every authenticated request.
  if (route.auth !== 'none' && !route.forwardAuthorization && headers.authorization !== undefined) headers.authorization = undefined
  // Set last: nothing the client sent (not even a Connection header naming
  // one of these) can replace or remove what the token says.
  if (ctx.identity !== undefined) Object.assign(headers, ctx.identity)
  headers['x-request-id'] = request.id
  setForwardedHeaders(headers, { remoteAddress: request.raw.socket.remoteAddress, host: request.headers.host, proto: 'http' }, trustProxy)
  return headers
}

const NEVER_FORWARDED: ReadonlySet<string> = new Set([...HOP_BY_HOP, ...PATH_OVERRIDE])

/**
 * What no upstream gets from the client, in one pass over the incoming
 * names: hop-by-hop and path-override fields, and the identity headers of
 * step 2 (their `_` spellings included).
 */
export function stripIncoming (headers: Headers, gen: Generation): void {
  gen.stripHeaders.strip(headers, NEVER_FORWARDED)
}

/**
 * On a route where the gateway answers CORS, the upstream's own
 * Access-Control-* headers are dropped: they could allow origins (with
 * credentials) that the gateway's settings refuse.
 */
function corsResponseHeaders (request: FastifyRequest, headers: Headers): Headers {
  const gen = request[kGeneration]
  const route = request[kContext]?.route
  if (gen === undefined || route === undefined || tokenPolicies(gen.config).forRoute(route).cors === undefined) return headers
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase().startsWith('access-control-')) delete headers[name]
  }
  return headers
}

export function countHeader (rawHeaders: readonly string[], lowerCaseName: string): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === lowerCaseName.length && rawHeaders[i]!.toLowerCase() === lowerCaseName) n++
  }
  return n
}
