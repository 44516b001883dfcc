/**
 * The logger: pino JSON, one line per event. Redaction is the second line
 * of defence; the first is that no code logs a token, password, secret or
 * refresh token on purpose.
 */
import { pino, type Logger, type DestinationStream } from 'pino'

export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie',
  'password', '*.password', 'secret', '*.secret', 'token', '*.token',
  'access_token', '*.access_token', 'refresh_token', '*.refresh_token',
  'config.admin.token', 'config.tokens.keys[*].secret', 'config.tokens.keys[*].secretBase64'
]

export interface LoggerOptions {
  level?: string
  destination?: DestinationStream
}

/** LOG_LEVEL wins over the config's level, so an operator can turn it up without an edit. */
export function createLogger ({ level, destination }: LoggerOptions = {}): Logger {
  const options = {
    level: process.env.LOG_LEVEL ?? level ?? 'info',
    base: { service: 'jotgate' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}

/** First and last characters of a token: enough to correlate, useless to replay. */
export function tokenHint (token: string): string {
  return token.length <= 16 ? '[short]' : `${token.slice(0, 6)}...${token.slice(-4)}`
}
