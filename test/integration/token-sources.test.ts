/**
 * Token sources beyond the Authorization header (issue 7): a cookie and a
 * query parameter, each opt-in; two tokens through any two sources are a
 * 401 JOTGATE_TOKEN_AMBIGUOUS; the token never reaches the upstream (the
 * cookie and the parameter are removed) unless forwardAuthorization.
 */
import t from 'tap'
import { startUpstream } from '../helpers/upstream.js'
import { startGateway } from '../helpers/gateway.js'
import { mint, claims, zoo } from '../helpers/zoo.js'
import { send } from '../helpers/http.js'

t.test('cookie and query tokens', async (t) => {
  const up = await startUpstream()
  const gw = await startGateway({
    name: 'token-sources',
    config: {
      tokens: { ...(await import('../helpers/gateway.js')).baseConfig().tokens as object, sources: { cookie: { name: 'jg' }, query: {} } },
      routes: [
        { path: '/hdr', upstream: up.url, tokenSources: {} },
        { path: '/fwd', upstream: up.url, forwardAuthorization: true },
        { path: '/open', upstream: up.url, auth: 'none' },
        { path: '/', upstream: up.url }
      ]
    }
  })
  t.teardown(async () => { await gw.close(); await up.close() })
  const token = mint({ payload: claims({ sub: 'alice' }) })

  const through = async (path: string, headers: Array<[string, string]>, label: string) => {
    const before = up.seen.length
    const res = await send(gw.url, 'GET', path, headers)
    t.equal(res.status, 200, `${label}: 200`)
    t.equal(up.seen.length, before + 1, `${label}: upstream reached once`)
    return up.seen.at(-1)!
  }
  const refused = async (path: string, headers: Array<[string, string]>, status: number, code: string, label: string) => {
    const before = up.seen.length
    const res = await send(gw.url, 'GET', path, headers)
    t.equal(res.status, status, `${label}: ${status}`)
    t.equal(res.json?.code, code, `${label}: ${code}`)
    t.equal(up.seen.length, before, `${label}: upstream saw nothing`)
    return res
  }

  t.test('a cookie token authenticates; the upstream gets identity, other cookies, never the token cookie', async (t) => {
    const seen = await through('/x', [['Cookie', `a=1; jg=${token}; b=2`]], 'cookie')
    t.equal(seen.headers['x-user-id'], 'alice')
    t.equal(seen.headers.cookie, 'a=1; b=2', 'only the token cookie removed')
    const only = await through('/x', [['Cookie', `jg=${token}`]], 'cookie alone')
    t.equal(only.headers.cookie, undefined, 'no empty Cookie header left')
    const quoted = await through('/x', [['Cookie', `jg="${token}"`]], 'quoted cookie value (RFC 6265)')
    t.equal(quoted.headers['x-user-id'], 'alice')
  })

  t.test('a query token authenticates and is removed from the forwarded query', async (t) => {
    const seen = await through(`/x?y=1&access_token=${token}&z=a+b`, [], 'query')
    t.equal(seen.headers['x-user-id'], 'alice')
    t.equal(seen.url, '/x?y=1&z=a+b', 'the rest of the query as it came')
    t.equal((await through(`/x?access_token=${token}`, [], 'query alone')).url, '/x')
    const encoded = await through(`/x?access%5Ftoken=${token}&q=%41`, [], 'encoded parameter name')
    t.equal(encoded.url, '/x?q=%41', 'a name that decodes to the parameter is the parameter')
  })

  t.test('two tokens through any sources: 401 JOTGATE_TOKEN_AMBIGUOUS, even identical', async (t) => {
    const other = mint({ payload: claims({ sub: 'mallory' }) })
    const cases: Array<[string, string, Array<[string, string]>]> = [
      ['header + cookie', '/x', [['Authorization', `Bearer ${token}`], ['Cookie', `jg=${token}`]]],
      ['header + query', `/x?access_token=${token}`, [['Authorization', `Bearer ${token}`]]],
      ['cookie + query', `/x?access_token=${other}`, [['Cookie', `jg=${token}`]]],
      ['two cookies of that name', '/x', [['Cookie', `jg=${token}; jg=${token}`]]],
      ['two Cookie headers', '/x', [['Cookie', `jg=${token}`], ['Cookie', `jg=${other}`]]],
      ['two parameters', `/x?access_token=${token}&access_token=${token}`, []]
    ]
    for (const [label, path, headers] of cases) {
      const res = await refused(path, headers, 401, 'JOTGATE_TOKEN_AMBIGUOUS', label)
      t.equal(res.headers['www-authenticate'], 'Bearer realm="jotgate", error="invalid_token"', `${label}: challenge`)
    }
  })

  t.test('a source the route does not accept is no token', async (t) => {
    await refused('/hdr/x', [['Cookie', `jg=${token}`]], 401, 'JOTGATE_TOKEN_MISSING', 'cookie on a header-only route')
    await refused(`/hdr/x?access_token=${token}`, [], 401, 'JOTGATE_TOKEN_MISSING', 'query on a header-only route')
    await refused('/x', [['Cookie', `other=${token}`]], 401, 'JOTGATE_TOKEN_MISSING', 'another cookie name')
    const seen = await through('/hdr/x', [['Authorization', `Bearer ${token}`], ['Cookie', `jg=${token}; k=v`]], 'header token with an unread cookie')
    t.equal(seen.headers.cookie, 'k=v', 'token cookies never go upstream, read or not')
  })

  t.test('cookie and query tokens are verified like any other', async (t) => {
    const z = zoo()
    await refused('/x', [['Cookie', `jg=${z.expired}`]], 401, 'JOTGATE_TOKEN_EXPIRED', 'expired cookie')
    await refused(`/x?access_token=${z.badSignature}`, [], 401, 'JOTGATE_TOKEN_SIGNATURE', 'forged query token')
    await refused('/x', [['Cookie', 'jg=a b']], 401, 'JOTGATE_TOKEN_MALFORMED', 'a cookie that is no b64token')
    await refused('/x', [['Cookie', 'jg=; k=v']], 401, 'JOTGATE_TOKEN_MISSING', 'an empty (cleared) cookie is no token')
  })

  t.test('forwardAuthorization keeps the token where it came; auth: none drops token cookies only', async (t) => {
    const fwd = await through(`/fwd/x?access_token=${token}`, [], 'forwarded query')
    t.equal(fwd.url, `/fwd/x?access_token=${token}`)
    const fwdCookie = await through('/fwd/x', [['Cookie', `jg=${token}`]], 'forwarded cookie')
    t.equal(fwdCookie.headers.cookie, `jg=${token}`)
    const open = await through(`/open/x?access_token=${token}`, [['Cookie', `jg=${token}; k=v`]], 'auth: none')
    t.equal(open.url, `/open/x?access_token=${token}`, 'the query of an auth: none route goes as it came')
    t.equal(open.headers.cookie, 'k=v', 'a browser attaches token cookies everywhere: removed on auth: none routes too')
    t.equal(open.headers['x-user-id'], undefined, 'no identity on auth: none')
  })
})
