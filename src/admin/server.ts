/**
 * The admin listener: liveness, readiness and revocations, on its own port
 * so that it is never reachable through the proxied routes.
 */
import { timingSafeEqual, createHash } from 'node:crypto'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config/schema.js'
import { errorBody, gatewayError, isGatewayError, type GatewayError } from '../errors.js'
import type { Store } from '../store/types.js'
import type { Generation } from '../generation.js'
import type { GatewayState } from '../app.js'
import { registerRevocationRoute } from './revocations.js'
import type { Metrics } from './metrics.js'

export interface AdminOptions {
  config: NonNullable<GatewayConfig['admin']>
  logger: Logger
  store: Store
  state: GatewayState
  generation: () => Generation
  metrics: Metrics
}

export function buildAdmin ({ config, logger, store, state, generation, metrics }: AdminOptions): FastifyInstance {
  const admin = Fastify({ loggerInstance: logger.child({ listener: 'admin' }) as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true, bodyLimit: 4096 })
  const send = (reply: FastifyReply, err: GatewayError) => reply.code(err.statusCode).send(errorBody(err))

  admin.setErrorHandler((err, _request, reply) => {
    if (isGatewayError(err)) return send(reply, err)
    const status = (err as { statusCode?: number }).statusCode ?? 500
    return send(reply, gatewayError(status < 500 ? 'JOTGATE_BAD_REQUEST' : 'JOTGATE_INTERNAL', { cause: err }))
  })
  admin.setNotFoundHandler((_request, reply) => send(reply, gatewayError('JOTGATE_ROUTE_NOT_FOUND')))

  // One line per admin request: a refused write must leave a trace.
  admin.addHook('onResponse', async (request, reply) => {
    request.log.info({ method: request.method, route: request.routeOptions.url ?? '(none)', status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100 }, 'admin request')
  })

  admin.get('/healthz', async () => ({ status: 'ok' }))
  admin.get('/readyz', async (_request, reply) => {
    const reasons = readinessProblems(state, store, generation())
    if (reasons.length > 0) return reply.code(503).send({ status: 'unavailable', reasons })
    return { status: 'ready' }
  })

  admin.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  // Writes need the admin token when one is configured (compared in constant time).
  const expected = config.token === '' ? undefined : digest(config.token)
  admin.addHook('onRequest', async (request) => {
    if (expected === undefined || request.method === 'GET' || request.method === 'HEAD') return
    const header = request.headers.authorization ?? ''
    const match = /^bearer +(\S+) *$/i.exec(header)
    if (match === null || !timingSafeEqual(digest(match[1]!), expected)) {
      throw gatewayError('JOTGATE_ADMIN_UNAUTHORIZED', { reason: 'admin-token' })
    }
  })
  registerRevocationRoute(admin, { store, generation })
  return admin
}

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** Why the gateway is not ready; empty when it is. */
export function readinessProblems (state: GatewayState, store: Store, gen: Generation): string[] {
  const reasons: string[] = []
  if (state.shuttingDown) reasons.push('shutting down')
  if (!store.isHealthy()) reasons.push('store unreachable')
  reasons.push(...gen.problems())
  return reasons
}
