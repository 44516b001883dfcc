/**
 * The logger: pino JSON, one line per event. Redaction is the second line
 * of defence; the first is that no code logs a token, password, secret or
 * refresh token on purpose.
 */
import { pino, type Logger, type DestinationStream } from 'pino'
import { createRequire } from 'node:module'

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
  // Asynchronous writes to stdout: under load lines queue while one write is
  // in flight and go out together (one syscall per batch, not per request).
  // The shutdown path flushes before the process exits.
  const stream = destination ?? (human
    ? prettyStream()
    : pino.destination({ dest: 1, sync: false }))
  const log = pino(options, stream)
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
