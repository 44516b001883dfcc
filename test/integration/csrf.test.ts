/**
 * CSRF defence for cookie-borne tokens (issue 7): an unsafe method whose
 * token came from a cookie must come from the gateway's own origin or one
 * its CORS settings trust (Origin, else Referer); a cross-site POST is
 * refused with 403 JOTGATE_CSRF and the upstream sees nothing.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway, baseConfig } from '../helpers/gateway.js'
import { mint, claims } from '../helpers/zoo.js'
import { send } from '../helpers/http.js'

const TRUSTED = 'https://app.example'

t.test('cookie-authenticated unsafe requests need a trusted origin', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({
    name: 'csrf',
    config: {
      tokens: { ...baseConfig().tokens as object, sources: { cookie: { name: 'jg' } } },
      cors: { origins: [TRUSTED, 'https://other.example'], credentials: true },
      routes: [
        { path: '/strict', upstream: up.url, cors: { origins: [] } },
        { path: '/', upstream: up.url }
      ]
    }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const token = mint({ payload: claims({ sub: 'alice' }) })
  const cookie: [string, string] = ['Cookie', `jg=${token}`]
  const own = new URL(gw.url).origin

  const answer = async (method: string, path: string, headers: Array<[string, string]>) => {
    const before = up.seen.length
    const res = await send(gw.url, method, path, headers, method === 'GET' ? undefined : '{"amount":100}')
    return { res, reached: up.seen.length - before }
  }
  const refused = async (method: string, path: string, headers: Array<[string, string]>, label: string) => {
    const { res, reached } = await answer(method, path, headers)
    t.equal(res.status, 403, `${label}: 403`)
    t.equal(res.json?.code, 'JOTGATE_CSRF', `${label}: JOTGATE_CSRF`)
    t.equal(res.headers['www-authenticate'], undefined, `${label}: no bearer challenge (the token is not at fault)`)
    t.equal(reached, 0, `${label}: upstream saw nothing`)
  }
  const passed = async (method: string, path: string, headers: Array<[string, string]>, label: string) => {
    const { res, reached } = await answer(method, path, headers)
    t.equal(res.status, 200, `${label}: 200`)
    t.equal(reached, 1, `${label}: upstream reached`)
    t.equal(up.seen.at(-1)?.headers['x-user-id'], 'alice', `${label}: with identity`)
  }

  t.test('a cross-site POST is refused', async () => {
    await refused('POST', '/transfer', [cookie, ['Origin', 'https://evil.example']], 'cross-site POST')
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      await refused(method, '/transfer', [cookie, ['Origin', 'https://evil.example']], `cross-site ${method}`)
    }
    await refused('POST', '/transfer', [cookie], 'POST without Origin or Referer')
    await refused('POST', '/transfer', [cookie, ['Origin', 'null']], 'opaque origin (sandboxed frame, data: URL)')
    await refused('POST', '/transfer', [cookie, ['Referer', 'https://evil.example/page']], 'cross-site Referer without Origin')
    await refused('POST', '/transfer', [cookie, ['Origin', `${own}.evil.example`]], 'an origin that merely starts like ours')
    await refused('POST', '/transfer', [cookie, ['Origin', own.replace('http:', 'https:')]], 'our host under another scheme')
  })

  t.test('same-origin and trusted origins pass', async () => {
    await passed('POST', '/transfer', [cookie, ['Origin', own]], 'same origin')
    await passed('POST', '/transfer', [cookie, ['Referer', `${own}/app`]], 'same-origin Referer when Origin is missing')
    await passed('POST', '/transfer', [cookie, ['Origin', TRUSTED]], 'an origin the CORS settings allow')
    await passed('POST', '/transfer', [cookie, ['Origin', 'https://other.example']], 'another allowed origin')
  })

  t.test('safe methods and non-cookie tokens are not subject to the check', async () => {
    await passed('GET', '/data', [cookie, ['Origin', 'https://evil.example']], 'cross-site GET')
    await passed('POST', '/transfer', [['Authorization', `Bearer ${token}`], ['Origin', 'https://evil.example']], 'a header token (never sent by a browser on its own)')
  })

  t.test("a route's own cors replaces the trusted origins", async () => {
    await refused('POST', '/strict/x', [cookie, ['Origin', TRUSTED]], 'trusted by the gateway, not by this route')
    await passed('POST', '/strict/x', [cookie, ['Origin', own]], 'same origin on that route')
  })
})

t.test('behind a trusted proxy, the origin the browser used is X-Forwarded-Proto and -Host', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({
    name: 'csrf-proxy',
    config: {
      server: { host: '127.0.0.1', port: 0, trustProxy: true },
      tokens: { ...baseConfig().tokens as object, sources: { cookie: { name: 'jg' } } },
      routes: [{ path: '/', upstream: up.url }]
    }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const token = mint({ payload: claims({ sub: 'alice' }) })
  const headers = (origin: string): Array<[string, string]> => [['Cookie', `jg=${token}`], ['Origin', origin], ['X-Forwarded-Proto', 'https'], ['X-Forwarded-Host', 'api.example']]
  const ok = await send(gw.url, 'POST', '/x', headers('https://api.example'), '{}')
  t.equal(ok.status, 200, 'the public origin passes')
  const bad = await send(gw.url, 'POST', '/x', headers('http://api.example'), '{}')
  t.equal(bad.status, 403)
  t.equal(bad.json?.code, 'JOTGATE_CSRF', 'the same host over plain http is another origin')
})
