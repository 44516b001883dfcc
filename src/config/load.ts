/**
 * Loading a config: read -> parse, filling in `${VAR}` -> defaults ->
 * validate (every error, with its key path) -> cross-field checks ->
 * resolve relative paths -> deep-freeze.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { ConfigSchema, type GatewayConfig } from './schema.js'
import { ConfigError, pointerToPath, type ConfigProblem, type ConfigWarning } from './problems.js'
import { checkConfig } from './checks.js'
import { parseConfigText } from './substitute.js'
import { describeSchemaError } from './messages.js'

export interface LoadedConfig {
  config: GatewayConfig
  warnings: ConfigWarning[]
  /** Absolute path of the file it came from ('' when built from an object). */
  file: string
}

/** Default config location when neither --config nor $JOTGATE_CONFIG is given. */
export const DEFAULT_CONFIG_FILE = 'config/gateway.yaml'

export function resolveConfigFile (flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.JOTGATE_CONFIG ?? DEFAULT_CONFIG_FILE)
}

/** Reads and validates a config file; throws ConfigError listing every problem. */
export function loadConfigFile (file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }])
  }
  const { raw, problems } = parseConfigText(text, env)
  if (problems.length > 0) throw new ConfigError(problems)
  return loadConfigObject(raw ?? {}, dirname(resolve(file)), resolve(file))
}

/** Validates an already parsed config; relative paths resolve against `baseDir`. */
export function loadConfigObject (raw: unknown, baseDir: string, file = ''): LoadedConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError([{ path: '', message: 'the config must be a mapping (YAML object)' }])
  }
  const value = Value.Default(ConfigSchema, structuredClone(raw))
  const problems = schemaProblems(value)
  if (problems.length > 0) throw new ConfigError(problems)
  const config = value as GatewayConfig
  resolvePaths(config, baseDir)
  const warnings: ConfigWarning[] = []
  problems.push(...checkConfig(config, warnings))
  if (problems.length > 0) throw new ConfigError(problems)
  return { config: deepFreeze(config), warnings, file }
}

function schemaProblems (value: unknown): ConfigProblem[] {
  const seen = new Set<string>()
  const out: ConfigProblem[] = []
  for (const error of Value.Errors(ConfigSchema, value)) {
    const path = pointerToPath(error.path) || '(root)'
    // One problem per key: the first error there is the one that explains it.
    if (seen.has(path)) continue
    seen.add(path)
    out.push({ path, message: describeSchemaError(error) })
  }
  return out
}

function resolvePaths (config: GatewayConfig, baseDir: string): void {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p))
  for (const key of config.tokens.keys) {
    if (key.privateKeyFile !== undefined) key.privateKeyFile = abs(key.privateKeyFile)
    if (key.publicKeyFile !== undefined) key.publicKeyFile = abs(key.publicKeyFile)
    if (key.secretFile !== undefined) key.secretFile = abs(key.secretFile)
  }
  if (config.auth?.users !== undefined) config.auth.users.file = abs(config.auth.users.file)
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child)
  }
  return value
}
