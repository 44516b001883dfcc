/**
 * extract-token (header, cookie, query), check-csrf and the forwarding
 * helpers, table-driven, no network. Errors by code, never by message.
 */
import t from 'tap'
import { extractTokenFrom, cookieValues, queryValues } from '../../../src/pipeline/extract-token.js'
import { checkOrigin } from '../../../src/pipeline/check-csrf.js'
import { forwardedQuery, stripTokenCookies } from '../../../src/proxy/forward-token.js'
import type { CompiledRoute } from '../../../src/pipeline/route-table.js'
import type { TokenPolicies } from '../../../src/pipeline/token-policy.js'

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn()
    return undefined
  } catch (err) {
    return (err as { code?: string }).code
  }
}

t.test('cookie and query parsing', async (t) => {
  const cookies: Array<[string[], string[]]> = [
    [['jg=abc'], ['abc']],
    [['a=1; jg=abc; b=2'], ['abc']],
    [['a=1;jg=abc'], ['abc']],
    [['jg="abc"'], ['abc']],
    [['JG=abc'], []],
    [['xjg=abc; jgx=def'], []],
    [['jg='], []],
    [['jg=a', 'jg=b'], ['a', 'b']],
    [['jg=a=b'], ['a=b']]
  ]
  for (const [headers, expected] of cookies) t.same(cookieValues(headers, 'jg'), expected, JSON.stringify(headers))
  const queries: Array<[string, string[]]> = [
    ['', []],
    ['?', []],
    ['?access_token=abc', ['abc']],
    ['?x=1&access_token=abc', ['abc']],
    ['?access%5Ftoken=abc', ['abc']],
    ['?access_token', []],
    ['?access_token=', []],
    ['?access_token=a&access_token=b', ['a', 'b']],
    ['?access_token=a%2Eb', ['a.b']],
    ['?access_token=%E0%A4%A', ['%E0%A4%A']]
  ]
  for (const [query, expected] of queries) t.same(queryValues(query, 'access_token'), expected, query)
})

t.test('one token among the sources a route accepts', async (t) => {
  const names = { cookie: 'jg', query: 'access_token' }
  const carriers = (authorization: string[], cookie: string[], query: string) => ({ authorization, cookie, query })
  t.same(extractTokenFrom(carriers([], [], ''), names), undefined)
  t.same(extractTokenFrom(carriers(['Bearer a.b.c'], [], ''), names), { token: 'a.b.c', source: 'header' })
  t.same(extractTokenFrom(carriers([], ['jg=a.b.c'], ''), names), { token: 'a.b.c', source: 'cookie' })
  t.same(extractTokenFrom(carriers([], [], '?access_token=a.b.c'), names), { token: 'a.b.c', source: 'query' })
  t.same(extractTokenFrom(carriers([], ['jg=a.b.c'], '?access_token=a.b.c'), {}), undefined, 'sources the route does not accept are ignored')
  const refused: Array<[string, ReturnType<typeof carriers>, string]> = [
    ['header + cookie', carriers(['Bearer a'], ['jg=a'], ''), 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['cookie + query', carriers([], ['jg=a'], '?access_token=a'), 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['cookie twice', carriers([], ['jg=a; jg=a'], ''), 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['two Authorization', carriers(['Bearer a', 'Bearer a'], [], ''), 'JOTGATE_TOKEN_AMBIGUOUS'],
    ['a cookie outside the b64token alphabet', carriers([], ['jg=a"b'], ''), 'JOTGATE_TOKEN_MALFORMED'],
    ['a query token with a space', carriers([], [], '?access_token=a+b'), 'JOTGATE_TOKEN_MALFORMED'],
    ['another scheme with a cookie', carriers(['Basic eA=='], ['jg=a'], ''), 'JOTGATE_TOKEN_MALFORMED']
  ]
  for (const [label, c, code] of refused) t.equal(codeOf(() => extractTokenFrom(c, names)), code, label)
})

t.test('origin check', async (t) => {
  const trusted = new Set(['https://app.example'])
  const cases: Array<[string, Record<string, string>, boolean, string | undefined]> = [
    ['own origin', { host: 'gw.example', origin: 'http://gw.example' }, false, undefined],
    ['own origin, default port in Host', { host: 'gw.example:80', origin: 'http://gw.example' }, false, undefined],
    ['own origin, upper-case Host', { host: 'GW.example', origin: 'http://gw.example' }, false, undefined],
    ['trusted', { host: 'gw.example', origin: 'https://app.example' }, false, undefined],
    ['Referer of our origin', { host: 'gw.example', referer: 'http://gw.example/page?x' }, false, undefined],
    ['foreign', { host: 'gw.example', origin: 'https://evil.example' }, false, 'JOTGATE_CSRF'],
    ['none', { host: 'gw.example' }, false, 'JOTGATE_CSRF'],
    ['null', { host: 'gw.example', origin: 'null' }, false, 'JOTGATE_CSRF'],
    ['garbage Referer', { host: 'gw.example', referer: 'not a url' }, false, 'JOTGATE_CSRF'],
    ['Origin wins over Referer', { host: 'gw.example', origin: 'https://evil.example', referer: 'http://gw.example/' }, false, 'JOTGATE_CSRF'],
    ['proxy headers ignored without trustProxy', { host: 'gw.internal', origin: 'https://gw.example', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gw.example' }, false, 'JOTGATE_CSRF'],
    ['proxy headers with trustProxy', { host: 'gw.internal', origin: 'https://gw.example', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gw.example' }, true, undefined],
    ['nearest proxy wins', { host: 'gw.internal', origin: 'https://gw.example', 'x-forwarded-proto': 'http, https', 'x-forwarded-host': 'evil.example, gw.example' }, true, undefined]
  ]
  for (const [label, headers, trustProxy, code] of cases) t.equal(codeOf(() => checkOrigin(headers, trusted, trustProxy)), code, label)
})

t.test('the token never travels upstream', async (t) => {
  const route = (over: Partial<CompiledRoute> = {}) => ({ index: 0, auth: 'required', forwardAuthorization: false, ...over }) as CompiledRoute
  const policies = { tokenCookies: ['jg', 'rt'], forRoute: () => ({ query: 'access_token' }) } as unknown as TokenPolicies
  t.equal(forwardedQuery('?a=1&access_token=x&b=2', route(), policies), '?a=1&b=2')
  t.equal(forwardedQuery('?access_token=x', route(), policies), '')
  t.equal(forwardedQuery('?access_token=x', route({ auth: 'none' }), policies), '?access_token=x')
  t.equal(forwardedQuery('?access_token=x', route({ forwardAuthorization: true }), policies), '?access_token=x')
  t.equal(forwardedQuery('?q=%ZZ&access_token=x', route(), policies), '?q=%ZZ', 'undecodable neighbours kept as they came')
  const headers: Record<string, string | string[] | undefined> = { cookie: 'a=1; jg=x; rt=y;b=2' }
  stripTokenCookies(headers, route(), policies)
  t.equal(headers.cookie, 'a=1; b=2')
  const only: Record<string, string | string[] | undefined> = { cookie: 'jg=x' }
  stripTokenCookies(only, route({ auth: 'none' }), policies)
  t.equal(only.cookie, undefined, 'removed on auth: none routes too')
  const kept: Record<string, string | string[] | undefined> = { cookie: 'jg=x' }
  stripTokenCookies(kept, route({ forwardAuthorization: true }), policies)
  t.equal(kept.cookie, 'jg=x')
})

t.test('config checks of token sources, CORS and websocket routes', async (t) => {
  const { loadConfigObject } = await import('../../../src/config/load.js')
  const { ConfigError } = await import('../../../src/config/problems.js')
  const base = { tokens: { issuer: 'https://i.example', audience: ['api'], keys: [{ kid: 'h', alg: 'HS256', secret: 'x'.repeat(32) }] }, store: { type: 'memory' } }
  const paths = (extra: Record<string, unknown>) => {
    try {
      const { warnings } = loadConfigObject({ ...base, ...extra }, '/')
      return { problems: [] as string[], warnings: warnings.map((w) => w.code) }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      return { problems: err.problems.map((p) => p.path), warnings: [] }
    }
  }
  const route = (over: Record<string, unknown>) => ({ routes: [{ path: '/', upstream: 'http://127.0.0.1:1', ...over }] })
  t.same(paths({ cors: { origins: ['https://app.example', '*'] } }).problems, [], 'origins and * are fine')
  t.same(paths({ cors: { origins: ['https://app.example/'] } }).problems, ['cors.origins[0]'], 'an origin has no path')
  t.same(paths({ cors: { origins: ['HTTPS://App.example'] } }).problems, ['cors.origins[0]'], 'origins are compared as browsers serialize them')
  t.same(paths({ cors: { origins: ['*'], credentials: true } }).problems, ['cors.origins'], '* with credentials')
  t.same(paths({ cors: { origins: ['https://a.example'], headers: ['bad header'] } }).problems, ['cors.headers[0]'])
  t.same(paths(route({ cors: { origins: ['ftp://x.example'] } })).problems, ['routes[0].cors.origins[0]'])
  t.same(paths(route({ tokenSources: { cookie: { name: 'bad;name' } } })).problems, ['routes[0].tokenSources.cookie.name'])
  t.same(paths(route({ tokenSources: { query: { name: 'a&b' } } })).problems, ['routes[0].tokenSources.query.name'])
  t.ok(paths(route({ tokenSources: { query: {} } })).warnings.includes('JOTGATE_W_QUERY_TOKEN'), 'query tokens warn')
  t.same(paths(route({ websocket: true, methods: ['POST'] })).problems, ['routes[0].methods'], 'a websocket route takes GET')
  t.same(paths({ ...route({ websocket: true }), tokens: { ...base.tokens, sources: { cookie: {}, query: {} } } }).problems, [], 'defaults')
})
