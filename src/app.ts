/**
 * buildGateway: the one adapter that knows Fastify. It builds the public
 * server (never listening) and the admin server around the current
 * generation; `start` in src/server.ts listens and handles signals.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { errorBody, gatewayError, isGatewayError, wwwAuthenticate, type GatewayError } from './errors.js'
import type { LoadedConfig } from './config/load.js'
import { toMs } from './config/duration.js'
import { requestLineWriter, RequestLogger, type AnsweredRequest } from './log.js'
import { ConfigError } from './config/problems.js'
import { tokenPolicies } from './pipeline/token-policy.js'
import { normalizeTarget } from './pipeline/normalize-path.js'
import { createGeneration, kContext, kPathError, kRefusal, kTarget, type Generation } from './generation.js'
import { registerProxy, PROXIED_METHODS } from './proxy/register.js'
import { registerCors } from './proxy/cors.js'
import { attachWebSockets } from './proxy/websocket.js'
import { writeRefusal } from './proxy/ws-http.js'
import { requestIdOf } from './proxy/forwarded-headers.js'
import { registerAuthRoutes } from './auth/routes.js'
import { buildAdmin } from './admin/server.js'
import { createStore } from './store/index.js'
import { createMetrics, type Metrics } from './admin/metrics.js'
import type { Store } from './store/types.js'

export interface GatewayOptions {
  logger: Logger
  /** Defaults to the store the config names. */
  store?: Store
  /** Clock for token time checks (ms since the epoch); tests inject one. */
  now?: () => number
}

export interface GatewayState {
  shuttingDown: boolean
}

export interface Gateway {
  app: FastifyInstance
  admin: FastifyInstance | undefined
  store: Store
  metrics: Metrics
  state: GatewayState
  generation: () => Generation
  /**
   * Swaps in a new config once its outside keys are fetched; throws (keeping
   * the old one) when it cannot be built.
   */
  reload: (loaded: LoadedConfig) => Promise<void>
  close: () => Promise<void>
}

// reg-name or IPv4, or an IPv6 literal, with an optional port (RFC 3986 section 3.2.2).
const HOST = /^(?:(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/

export async function buildGateway (loaded: LoadedConfig, options: GatewayOptions): Promise<Gateway> {
  const { config } = loaded
  const log = options.logger
  const metrics = createMetrics()
  const store = metrics.instrumentStore(options.store ?? createStore(config, { log }))
  const deps = {
    store,
    log,
    ...(options.now === undefined ? {} : { now: options.now }),
    onFailOpen: (cause: unknown) => {
      metrics.failOpen()
      log.warn({ reason: 'store-fail-open', err: cause }, 'store unavailable; token accepted (store.onError: allow)')
    },
    onJwksFetch: metrics.jwksFetch,
    verificationCounts: metrics.verifications
  }
  let current = createGeneration(config, deps)
  await current.start()
  const generation = () => current
  let reloading: Promise<void> = Promise.resolve()
  const state: GatewayState = { shuttingDown: false }
  const server = config.server

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One line per request is written by our onResponse hook instead.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: (root, bindings) => new RequestLogger(root as Logger, bindings) as unknown as FastifyBaseLogger,
    requestIdHeader: false,
    // With trustProxy the client address is the one the nearest proxy
    // appended (the last X-Forwarded-For entry); anything left of it is hearsay.
    trustProxy: server.trustProxy ? (_address: string, hop: number) => hop === 0 : false,
    genReqId: (req) => requestIdOf(req.headers['x-request-id']),
    // Node would answer a missing Host with an empty 400; we refuse it ourselves, in JSON.
    http: { maxHeaderSize: server.maxHeaderBytes, requireHostHeader: false },
    requestTimeout: toMs(server.requestTimeout),
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    // CONTRACT step 1: the path is normalized once, here, before routing;
    // the same path is then matched (by us and by Fastify) and forwarded.
    rewriteUrl: (req) => {
      try {
        const target = normalizeTarget(req.url ?? '')
        req[kTarget] = target
        return target.path + target.query
      } catch (err) {
        req[kPathError] = isGatewayError(err) ? err : gatewayError('JOTGATE_BAD_PATH', { cause: err })
        req[kTarget] = { path: '/', query: '' }
        return '/'
      }
    },
    // Fastify refuses a path whose escapes are not UTF-8 before any hook
    // runs (normalization refuses them too; this keeps the answer ours).
    frameworkErrors: (err, request, reply) => {
      sendRefusal(request, reply, gatewayError(err.code === 'FST_ERR_BAD_URL' ? 'JOTGATE_BAD_PATH' : 'JOTGATE_BAD_REQUEST', { reason: err.code, cause: err }))
    },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      const refusal = err.code === 'HPE_HEADER_OVERFLOW'
        ? gatewayError('JOTGATE_HEADERS_TOO_LARGE', { cause: err })
        : gatewayError(err.code === 'HPE_INVALID_URL' ? 'JOTGATE_BAD_PATH' : 'JOTGATE_BAD_REQUEST', { reason: 'http-parse', cause: err })
      const body = JSON.stringify(errorBody(refusal))
      log.info({ code: refusal.code, reason: err.code }, 'refused unparseable request')
      metrics.request('(none)', '(unparsed)', refusal.statusCode, refusal.code, 0)
      if (socket.writable) {
        socket.write(`HTTP/1.1 ${refusal.statusCode} ${errorBody(refusal).error}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
      }
      socket.destroy()
    }
  })

  app.addHook('onRequest', (request, _reply, done) => {
    const pathError = request.raw[kPathError]
    if (pathError !== undefined) {
      done(pathError)
      return
    }
    // RFC 9112 section 3.2: an HTTP/1.1 request without Host, or with one
    // that is not a host[:port], is a 400 (it would reach X-Forwarded-Host).
    const host = request.headers.host
    if (host === undefined ? request.raw.httpVersion === '1.1' : !HOST.test(host)) done(gatewayError('JOTGATE_BAD_REQUEST', { reason: 'host-invalid' }))
    else done()
  })

  // Every answer, HTTP, WebSocket upgrade or CONNECT, is counted in the
  // metrics and (unless log.requests is off) written as one request line.
  const requestLine = requestLineWriter(log)
  const answered: AnsweredRequest = (reqId, method, route, status, refusal, ms, websocket = false) => {
    metrics.request(route, method, status, refusal?.code, ms / 1000)
    if (!current.config.log.requests || !requestLine.enabled()) return
    requestLine.write({ reqId, method, route, status, code: refusal?.code ?? null, reason: refusal?.reason ?? null, ms: Math.round(ms * 100) / 100, websocket })
  }

  // CONNECT (RFC 9110 section 9.3.6) would open a tunnel; Node hands it to
  // a 'connect' listener or drops the socket. It gets the documented 405
  // instead, and the connection is closed: no tunnel, no forwarding.
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy())
    const refusal = gatewayError('JOTGATE_METHOD_NOT_ALLOWED', { reason: 'method-connect', headers: { allow: [...PROXIED_METHODS].join(', ') } })
    const reqId = requestIdOf(req.headers['x-request-id'])
    answered(reqId, 'CONNECT', '(none)', refusal.statusCode, refusal, 0)
    writeRefusal(socket, refusal, false, reqId)
  })

  app.setErrorHandler((err: FastifyError, request, reply) => sendRefusal(request, reply, toGatewayError(err, log)))
  app.setNotFoundHandler((request, reply) => {
    // Methods the proxy does not forward (TRACE, PROPFIND, ...) land here.
    const method = !PROXIED_METHODS.has(request.method) && current.routes.match(request.raw[kTarget]?.path ?? '/') !== undefined
    sendRefusal(request, reply, method
      ? gatewayError('JOTGATE_METHOD_NOT_ALLOWED', { reason: 'method-not-proxied', headers: { allow: [...PROXIED_METHODS].join(', ') } })
      : gatewayError('JOTGATE_ROUTE_NOT_FOUND', { reason: 'no-route' }))
  })

  app.addHook('onResponse', (request, reply, done) => {
    const ctx = request[kContext]
    // Label: the configured route, the gateway's own endpoint, never the raw path.
    const proxied = ctx !== undefined || request.raw[kPathError] !== undefined
    const route = ctx?.route?.label ?? (proxied || request.routeOptions.url === undefined ? '(none)' : request.routeOptions.url)
    answered(request.id, request.method, route, reply.statusCode, request[kRefusal], reply.elapsedTime)
    done()
  })

  // CORS first: its hook answers preflights before any token is asked for.
  // Installed only when the config answers CORS somewhere: @fastify/cors
  // works on every request it sees (options normalized, Vary updated) and
  // a gateway without CORS should not pay for it (see README, Performance).
  const corsInstalled = tokenPolicies(config).anyCors
  if (corsInstalled) await registerCors(app, { generation })
  await registerAuthRoutes(app, { auth: config.auth, store, generation, onLogin: metrics.login, ...(options.now === undefined ? {} : { now: options.now }) })
  await app.register(async (scope) => { await registerProxy(scope, { server, generation, onUpstream: metrics.upstream }) })
  const webSockets = attachWebSockets(app, { generation, store, log, metrics, answered, state, ...(options.now === undefined ? {} : { now: options.now }) })

  const admin = config.admin === undefined ? undefined : buildAdmin({ config: config.admin, logger: log, store, state, generation, metrics })

  return {
    app,
    admin,
    store,
    metrics,
    state,
    generation,
    reload (next) {
      // Reloads apply in the order they were asked for: a slow earlier one
      // never lands after a later one.
      const run = reloading.then(async () => {
        if (!corsInstalled && tokenPolicies(next.config).anyCors) {
          throw new ConfigError([{ path: 'cors', message: 'CORS was off when jotgate started; turning it on takes a restart' }])
        }
        const fresh = createGeneration(next.config, deps)
        await fresh.start()
        const old = current
        current = fresh
        old.close()
        await webSockets.recheck(fresh)
      })
      reloading = run.catch(() => {})
      return run
    },
    async close () {
      state.shuttingDown = true
      current.close()
      await app.close()
      if (admin !== undefined) await admin.close()
      await store.close()
    }
  }
}

function toGatewayError (err: FastifyError, log: Logger): GatewayError {
  if (isGatewayError(err)) return err
  const status = err.statusCode ?? 500
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || (status >= 400 && status < 500)) {
    return gatewayError('JOTGATE_BAD_REQUEST', { reason: err.code ?? 'bad-request', cause: err })
  }
  log.error({ err }, 'unexpected error')
  return gatewayError('JOTGATE_INTERNAL', { reason: 'internal', cause: err })
}

/** Sends a refusal: the JSON body of CONTRACT section 6 and, on 401/403, the RFC 6750 challenge. */
export function sendRefusal (request: FastifyRequest, reply: FastifyReply, err: GatewayError): FastifyReply {
  request[kRefusal] = err
  // An ambiguous or malformed token was sent, whatever carried it (cookie, query).
  const presented = err.code === 'JOTGATE_TOKEN_AMBIGUOUS' || err.code === 'JOTGATE_TOKEN_MALFORMED' ||
    (err.code !== 'JOTGATE_TOKEN_MISSING' && (request[kContext]?.token !== undefined || hasAuthorization(request)))
  const challenge = wwwAuthenticate(err, presented)
  if (challenge !== undefined) reply.header('www-authenticate', challenge)
  if (err.headers !== undefined) reply.headers(err.headers)
  if (err.cause !== undefined && err.statusCode >= 500) request.log.warn({ code: err.code, err: err.cause }, 'refusal cause')
  else if (err.cause !== undefined) request.log.debug({ code: err.code, err: err.cause }, 'refusal cause')
  return reply.code(err.statusCode).header('x-request-id', request.id).type('application/json').send(errorBody(err))
}

function hasAuthorization (request: FastifyRequest): boolean {
  return request.headers.authorization !== undefined
}
