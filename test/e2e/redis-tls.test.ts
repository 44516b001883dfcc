/**
 * `store.url: rediss://...`: the built CLI against a redis-server that
 * speaks only TLS (no plain port), with a certificate signed by a private
 * CA made here with openssl. The CA is given the way an operator gives it,
 * NODE_EXTRA_CA_CERTS: then the gateway is ready and revocations hold;
 * without it the certificate is refused, the gateway is not ready and
 * refuses with 503 (TLS is verified, not merely switched on).
 */
import t from 'tap'
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { Redis } from 'ioredis'
import { startUpstream } from '../helpers/upstream.js'
import { freePort, uniquePrefix } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, KEYS, claims, mint } from '../helpers/zoo.js'
import { CLI, assertBuilt, listening, poll, spawnCli } from './cli-process.js'

assertBuilt()

// openssl (on every machine of this project's kind) makes the test CA;
// where it is missing the file says why and skips.
const opensslMissing = spawnSync('openssl', ['version']).error !== undefined
if (opensslMissing) t.plan(0, 'openssl not found: the TLS store test needs it to make a test CA')
else await run()

async function run (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jotgate-redis-tls-'))
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=jotgate test CA')
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1')
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n')
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext')

  const tlsPort = await freePort()
  const redis: ChildProcess = spawn('redis-server', [
    '--port', '0', '--tls-port', String(tlsPort), '--bind', '127.0.0.1',
    '--tls-cert-file', join(dir, 'server.pem'), '--tls-key-file', join(dir, 'server.key'),
    '--tls-ca-cert-file', join(dir, 'ca.pem'), '--tls-auth-clients', 'no',
    '--save', '', '--appendonly', 'no', '--dir', dir
  ], { stdio: 'ignore' })
  const upstream = await startUpstream()
  t.teardown(async () => {
    await upstream.close()
    if (redis.exitCode === null) {
      const exited = new Promise((resolve) => redis.once('exit', resolve))
      process.kill(redis.pid!, 'SIGKILL')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })
  await poll(async () => {
    const probe = new Redis({ host: '127.0.0.1', port: tlsPort, tls: { ca: readFileSync(join(dir, 'ca.pem')) }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try { await probe.connect(); return (await probe.ping()) === 'PONG' } catch { return false } finally { probe.disconnect() }
  }, 5000, 'redis-server answers on its TLS port')

  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, stringify({
    server: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    store: { type: 'redis', url: `rediss://127.0.0.1:${tlsPort}`, keyPrefix: uniquePrefix('redis-tls'), commandTimeout: '500ms' },
    tokens: { issuer: ISSUER, audience: [AUDIENCE], keys: [KEYS.es256!.config] },
    routes: [{ path: '/api', upstream: upstream.url }]
  }))

  t.test('with the CA trusted: ready, and a revocation holds', async (t) => {
    const gateway = spawnCli(process.execPath, [CLI, 'start', '--config', file], { env: { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') } })
    t.teardown(() => gateway.signal('SIGKILL'))
    const { port, adminPort } = await listening(gateway)
    await poll(async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200, 5000, 'ready over TLS')
    const payload = claims()
    const token = mint({ payload })
    t.equal((await fetch(`http://127.0.0.1:${port}/api/x`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'a token passes')
    const revoked = await fetch(`http://127.0.0.1:${adminPort}/revocations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jti: payload.jti, exp: payload.exp }) })
    t.equal(revoked.status, 201, 'revocation written to the TLS Redis')
    const seen = upstream.seen.length
    const res = await fetch(`http://127.0.0.1:${port}/api/x`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(res.status, 401)
    t.equal((await res.json() as { code: string }).code, 'JOTGATE_TOKEN_REVOKED', 'refused as revoked')
    t.equal(upstream.seen.length, seen, 'the upstream saw nothing')
  })

  t.test('without the CA: the certificate is refused, not ready, 503', async (t) => {
    const gateway = spawnCli(process.execPath, [CLI, 'start', '--config', file], { env: { NODE_EXTRA_CA_CERTS: '' } })
    t.teardown(() => gateway.signal('SIGKILL'))
    const { port, adminPort } = await listening(gateway)
    t.equal((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status, 503, 'not ready')
    const seen = upstream.seen.length
    const res = await fetch(`http://127.0.0.1:${port}/api/x`, { headers: { authorization: `Bearer ${mint()}` } })
    t.equal(res.status, 503)
    t.equal((await res.json() as { code: string }).code, 'JOTGATE_STORE_UNAVAILABLE')
    t.equal(upstream.seen.length, seen, 'the upstream saw nothing')
  })
}
