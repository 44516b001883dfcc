/**
 * The logger: pino JSON, one line per event. Redaction is the second line
 * of defence; the first is that no code logs a token, password, secret or
 * refresh token on purpose.
 */
import { pino, type Logger, type DestinationStream } from 'pino'
import { createRequire } from 'node:module'
import { createLogStream } from './log-stream.js'
import type { GatewayError } from './errors.js'

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  'password', '*.password', 'secret', '*.secret', 'token', '*.token',
  'access_token', '*.access_token', 'refresh_token', '*.refresh_token',
  'config.admin.token', 'config.tokens.keys[*].secret', 'config.tokens.keys[*].secretBase64'
]

export interface LoggerOptions {
  level?: string
  destination?: DestinationStream
  /** Human-readable lines (the demo on a terminal); `jotgate start` always writes JSON. */
  pretty?: boolean
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * LOG_LEVEL wins over the config's level, so an operator can turn it up
 * without an edit. An empty LOG_LEVEL counts as unset; an unknown one (a
 * typo) is ignored with a warning instead of stopping the gateway: pino
 * throws on an unknown level, and the start-up would die with a stack trace
 * on stderr before writing a single JSON line.
 */
export function createLogger ({ level, destination, pretty: human = false }: LoggerOptions = {}): Logger {
  const ignored: Array<{ source: string, value: string }> = []
  const pick = (source: string, value: string | undefined): string | undefined => {
    if (value === undefined || value.trim() === '') return undefined
    const normalized = value.trim().toLowerCase()
    if ((LOG_LEVELS as readonly string[]).includes(normalized)) return normalized
    ignored.push({ source, value: value.slice(0, 32) })
    return undefined
  }
  const options = {
    level: pick('LOG_LEVEL', process.env.LOG_LEVEL) ?? pick('level', level) ?? 'info',
    base: { service: 'jotgate' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
  // stdout in batches: the lines of one event-loop turn go out together at
  // its end (src/log-stream.ts says why not sonic-boom). The shutdown path
  // and process exit flush.
  const stream = destination ?? (human ? prettyStream() : createLogStream())
  const log = pino(options, stream)
  OWN_LOGGERS.add(log)
  for (const { source, value } of ignored) {
    log.warn({ source, value, levels: LOG_LEVELS }, `${source} ${JSON.stringify(value)} is not a log level; using ${options.level}`)
  }
  return log
}

/** pino-pretty, loaded only when asked for (the demo): a gateway never pays its memory. */
function prettyStream (): DestinationStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: object) => DestinationStream
  return pretty({ colorize: true, ignore: 'pid,hostname,service', translateTime: 'HH:MM:ss' })
}

type LogArgs = [obj: unknown, msg?: string, ...args: unknown[]]

/**
 * `request.log`: the child logger with the request id, made only when a
 * request logs something of its own. Fastify would otherwise build a pino
 * child (bindings serialized, redaction copied) for every request, and
 * most requests never use it: their one line is the access line.
 */
export class RequestLogger {
  #child: Logger | undefined
  readonly #root: Logger
  readonly #bindings: Record<string, unknown>

  constructor (root: Logger, bindings: Record<string, unknown>) {
    this.#root = root
    this.#bindings = bindings
  }

  get #log (): Logger {
    return (this.#child ??= this.#root.child(this.#bindings))
  }

  get level (): string { return this.#root.level }
  set level (level: string) { this.#log.level = level }
  fatal (...args: LogArgs): void { if (this.#root.isLevelEnabled('fatal')) call(this.#log, 'fatal', args) }
  error (...args: LogArgs): void { if (this.#root.isLevelEnabled('error')) call(this.#log, 'error', args) }
  warn (...args: LogArgs): void { if (this.#root.isLevelEnabled('warn')) call(this.#log, 'warn', args) }
  info (...args: LogArgs): void { if (this.#root.isLevelEnabled('info')) call(this.#log, 'info', args) }
  debug (...args: LogArgs): void { if (this.#root.isLevelEnabled('debug')) call(this.#log, 'debug', args) }
  trace (...args: LogArgs): void { if (this.#root.isLevelEnabled('trace')) call(this.#log, 'trace', args) }
  silent (): void {}
  child (bindings: Record<string, unknown>, options?: object): Logger {
    return this.#log.child(bindings, options)
  }
}

function call (log: Logger, level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace', args: LogArgs): void {
  (log[level] as (...a: unknown[]) => void)(...args)
}

/** The fields of the one line per request, in the order they are written. */
export interface RequestLineFields {
  reqId: string
  method: string
  route: string
  status: number
  code: string | null
  reason: string | null
  ms: number
  websocket?: boolean
}

export interface RequestLineWriter {
  /** False when the logger's level is above info: nothing to build. */
  enabled: () => boolean
  write: (fields: RequestLineFields) => void
}

/** Loggers made by createLogger: their options are ours (no mixin, hooks or formatters). */
const OWN_LOGGERS = new WeakSet<Logger>()

const sym = {
  lsCache: pino.symbols.lsCacheSym,
  time: pino.symbols.timeSym,
  chindings: pino.symbols.chindingsSym,
  end: pino.symbols.endSym,
  stream: pino.symbols.streamSym,
  messageKey: pino.symbols.messageKeySym,
  needsMetadata: pino.symbols.needsMetadataGsym
} as const

type PinoInternals = Record<symbol, unknown>

/**
 * The one line per request. Its fields are fixed and chosen here (ids,
 * route label, status, code, latency), never a header or a claim, so it
 * needs neither redaction nor serializers: the line is one template
 * string, written to the logger's own stream with pino's own level, time
 * and base fields (`pino.symbols`, which pino exposes for integrations),
 * byte for byte what `log.info(fields, 'request')` writes. Counted with
 * callgrind (main thread, HS256 repeated token, 1,500 requests after
 * 5,000 of warm-up, two runs each), a request cost 338,100 and 346,100
 * instructions without the line, 359,900 and 368,500 with it through
 * pino's general path (its property loop, shared with every other log
 * call, runs megamorphic), 349,800 and 348,900 with this template: the
 * line went from about 22,000 to about 7,000 (see README, Performance).
 * A logger not made by createLogger (a caller's own, with its own
 * formatters) gets its lines through `info` as before.
 */
export function requestLineWriter (log: Logger): RequestLineWriter {
  const enabled = () => log.isLevelEnabled('info')
  const internals = log as unknown as PinoInternals
  const stream = internals[sym.stream] as DestinationStream & PinoInternals | undefined
  const direct = OWN_LOGGERS.has(log) && stream !== undefined && stream[sym.needsMetadata] !== true &&
    internals[sym.messageKey] === 'msg' && typeof internals[sym.time] === 'function'
  if (!direct) {
    const child = log.child({}, { redact: [] })
    // As the template: `websocket` only when true.
    return { enabled, write: ({ websocket, ...fields }) => { child.info(websocket === true ? { ...fields, websocket } : fields, 'request') } }
  }
  const head = (internals[sym.lsCache] as Record<number, string>)[log.levels.values.info!]!
  const time = internals[sym.time] as () => string
  const chindings = internals[sym.chindings] as string
  const end = internals[sym.end] as string
  return {
    enabled,
    write: ({ reqId, method, route, status, code, reason, ms, websocket }) => {
      stream.write(`${head}${time()}${chindings},"reqId":${JSON.stringify(reqId)},"method":${JSON.stringify(method)},"route":${JSON.stringify(route)},"status":${status},"code":${code === null ? 'null' : JSON.stringify(code)},"reason":${reason === null ? 'null' : JSON.stringify(reason)},"ms":${Number.isFinite(ms) ? ms : 'null'}${websocket === true ? ',"websocket":true' : ''},"msg":"request"${end}`)
    }
  }
}

/** Counts one answered request and writes its request line; `ms` since it arrived. */
export type AnsweredRequest = (reqId: string, method: string, route: string, status: number, refusal: GatewayError | undefined, ms: number, websocket?: boolean) => void
