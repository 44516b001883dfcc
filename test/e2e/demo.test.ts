/**
 * `npm run demo` as a newcomer runs it (built tree, no Redis): the printed
 * flow works end to end and Ctrl-C stops it cleanly.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'

t.test('the demo serves the login -> call -> refresh -> logout flow it prints', async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, JOTGATE_PORT: '0', JOTGATE_ADMIN_PORT: '0', LOG_LEVEL: 'warn' }
  delete env.REDIS_URL
  const child = spawn(process.execPath, ['dist/demo/main.js'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let err = ''
  child.stderr.on('data', (c: Buffer) => { err += String(c) })
  const deadline = Date.now() + 15000
  while (!/Stop with Ctrl-C/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const base = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(err)?.[1]
  t.ok(base, 'the demo prints the gateway address')
  t.match(err, /store: memory/, 'memory store without REDIS_URL')

  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'alice', password: 'wonderland', client_id: 'web' })
  })
  t.equal(login.status, 200)
  const pair = await login.json() as { access_token: string, refresh_token: string, token_type: string }
  t.equal(pair.token_type, 'Bearer')

  const pub = await fetch(`${base}/public/hello`)
  t.equal(pub.status, 200)
  const api = await fetch(`${base}/api/orders`, { headers: { authorization: `Bearer ${pair.access_token}` } })
  const seen = await api.json() as { path: string, identity: Record<string, string> }
  t.equal(seen.identity['x-user-id'], 'alice')
  const admin = await fetch(`${base}/admin/stats`, { headers: { authorization: `Bearer ${pair.access_token}` } })
  t.equal((await admin.json() as { path: string }).path, '/internal/admin/stats')

  const refreshed = await fetch(`${base}/auth/refresh`, { method: 'POST', body: new URLSearchParams({ refresh_token: pair.refresh_token }) })
  t.equal(refreshed.status, 200)
  const next = await refreshed.json() as { access_token: string }
  const logout = await fetch(`${base}/auth/logout`, { method: 'POST', headers: { authorization: `Bearer ${next.access_token}` } })
  t.equal(logout.status, 204)
  const after = await fetch(`${base}/api/orders`, { headers: { authorization: `Bearer ${next.access_token}` } })
  t.equal(after.status, 401)
  t.equal((await after.json() as { code: string }).code, 'JOTGATE_TOKEN_REVOKED')

  child.kill('SIGINT')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'Ctrl-C stops the demo cleanly')
})
