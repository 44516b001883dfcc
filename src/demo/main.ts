/**
 * `npm run demo`: a demo upstream and jotgate in front of it, with a demo
 * user, then the curl lines to try. Keys and the users file are made in a
 * temporary folder at each start: no private key is ever committed.
 */
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { loadConfigFile } from '../config/load.js'
import { ConfigError, formatProblem } from '../config/problems.js'
import { hashPassword } from '../auth/password.js'
import { createLogger } from '../log.js'
import { runGateway } from '../server.js'
import { createDemoUpstream } from './upstream.js'

const DEMO_USER = { username: 'alice', password: 'wonderland' }

async function main (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-demo-'))
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  writeFileSync(join(dir, 'demo-es256.key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  const hash = await hashPassword(DEMO_USER.password)
  writeFileSync(join(dir, 'users.yaml'), `users:\n  - username: ${DEMO_USER.username}\n    password: "${hash}"\n    claims: { roles: [admin], name: Alice }\n  - username: bob\n    password: "${hash}"\n    claims: { roles: [user] }\n`)

  const upstream = createDemoUpstream()
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  const env = {
    ...process.env,
    JOTGATE_DEMO_DIR: dir,
    DEMO_UPSTREAM_PORT: String((upstream.address() as AddressInfo).port),
    JOTGATE_DEMO_STORE: process.env.REDIS_URL === undefined ? 'memory' : 'redis'
  }
  const file = resolve(dirname(fileURLToPath(import.meta.url)), '../../config/demo.yaml')
  let loaded
  try {
    loaded = loadConfigFile(file, env)
  } catch (err) {
    if (err instanceof ConfigError) for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`)
    throw err
  }
  // Human-readable lines on a terminal (LOG_FORMAT=json keeps JSON); piped output stays JSON.
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'info', pretty: process.stdout.isTTY === true && process.env.LOG_FORMAT !== 'json' })
  const running = await runGateway(loaded, log, env)
  const base = `http://127.0.0.1:${running.ports.server}`
  process.stderr.write(`
jotgate demo: gateway on ${base}, admin on http://127.0.0.1:${running.ports.admin}
store: ${loaded.config.store.type}${loaded.config.store.type === 'memory' ? ' (set REDIS_URL to use Redis)' : ''}; demo users alice / bob, password "${DEMO_USER.password}"

  # log in (JSON or form body); keep the tokens in shell variables
  curl -s -X POST ${base}/auth/login -H 'content-type: application/json' \\
    -d '{"username":"alice","password":"${DEMO_USER.password}","client_id":"web"}' | tee /tmp/jotgate-demo.json
  ACCESS=$(node -pe 'require("/tmp/jotgate-demo.json").access_token')
  REFRESH=$(node -pe 'require("/tmp/jotgate-demo.json").refresh_token')

  curl -s ${base}/public/hello                                   # no token needed
  curl -s ${base}/api/orders -H "Authorization: Bearer $ACCESS"    # identity headers reach the upstream
  curl -s ${base}/admin/stats -H "Authorization: Bearer $ACCESS"   # roles [admin] required (bob gets 403)
  curl -s -X POST ${base}/auth/refresh -d "refresh_token=$REFRESH" # new pair; the old refresh token is spent
  curl -s -X POST ${base}/auth/logout -H "Authorization: Bearer $ACCESS" -i   # 204 (use the newest access token)
  curl -s ${base}/.well-known/jwks.json

  # in a browser: log in, call /api, open a WebSocket through jotgate, log out
  open ${base}/public/app

Stop with Ctrl-C.
`)
  const stop = (signal: string) => {
    running.shutdown(signal).finally(() => { upstream.close(); process.exit(0) })
  }
  process.once('SIGINT', () => stop('SIGINT'))
  process.once('SIGTERM', () => stop('SIGTERM'))
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`)
  process.exit(1)
})
