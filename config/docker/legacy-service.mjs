// The sample "legacy service" of docker-compose.yml: it knows nothing about
// tokens. Port 3000 is its API: it answers with what jotgate told it about
// the caller (X-User-*, X-Request-Id, X-Forwarded-*). Port 3001 is its old
// login endpoint, which jotgate asks on POST /auth/login (auth.delegate);
// no route forwards to it. The one user is alice, password $DEMO_PASSWORD.
import { createServer } from 'node:http'
import { createHash, timingSafeEqual } from 'node:crypto'

const password = process.env.DEMO_PASSWORD ?? ''
if (password.length < 8) {
  console.error('set DEMO_PASSWORD (8 characters or more)')
  process.exit(1)
}
const users = new Map([['alice', { id: 'u-1001', email: 'alice@example.com', roles: ['admin', 'user'], password }]])
const digest = (s) => createHash('sha256').update(s).digest()

const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(`${JSON.stringify(body, null, 2)}\n`)
}

createServer((req, res) => {
  const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-')))
  json(res, 200, { service: 'legacy', method: req.method, path: req.url, headers })
}).listen(3000, '0.0.0.0')

createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/login') return json(res, 404, { error: 'not found' })
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk) => { body += chunk; if (body.length > 4096) req.destroy() })
  req.on('end', () => {
    let creds
    try { creds = JSON.parse(body) } catch { return json(res, 400, { error: 'bad json' }) }
    const user = users.get(String(creds.username))
    const given = digest(String(creds.password ?? ''))
    if (user === undefined || !timingSafeEqual(given, digest(user.password))) return json(res, 401, { error: 'invalid credentials' })
    json(res, 200, { id: user.id, email: user.email, roles: user.roles })
  })
}).listen(3001, '0.0.0.0')

process.on('SIGTERM', () => process.exit(0))
