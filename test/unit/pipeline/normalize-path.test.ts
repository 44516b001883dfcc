import t from 'tap'
import { normalizeTarget } from '../../../src/pipeline/normalize-path.js'

// [request target, normalized path, query]
const accepted: Array<[string, string, string]> = [
  ['/', '/', ''],
  ['/a/b', '/a/b', ''],
  ['/a/b/', '/a/b/', ''],
  ['/Admin/CaseKept', '/Admin/CaseKept', ''],
  ['/static/app.min.js', '/static/app.min.js', ''],
  ['/a/./b', '/a/b', ''],
  ['/a/b/../c', '/a/c', ''],
  ['/a/b/..', '/a/', ''],
  ['/a/b/.', '/a/b/', ''],
  ['/a/..', '/', ''],
  ['/.', '/', ''],
  ['/a/.b/.c', '/a/.b/.c', ''],
  ['/a/b.c./d', '/a/b.c./d', ''],
  ['//admin', '/admin', ''],
  ['//a///b//', '/a/b/', ''],
  ['/a/..//', '/', ''],
  ['/public/%2e%2e/admin', '/admin', ''],
  ['/public/%2E%2E/admin', '/admin', ''],
  ['/public/.%2e/admin', '/admin', ''],
  ['/a/%2e/b', '/a/b', ''],
  ['/%61dmin', '/admin', ''],
  ['/%41%7a%30%2D%5f%7E', '/Az0-_~', ''],
  ['/a%2eb', '/a.b', ''],
  ['/a%3bb', '/a%3Bb', ''],
  ['/a;b', '/a;b', ''],
  ['/a;v=1/b', '/a;v=1/b', ''],
  // What HTTP clients percent-encode (WHATWG path percent-encode set) is encoded once here.
  ['/a"b<c>d', '/a%22b%3Cc%3Ed', ''],
  ['/{x}/^`', '/%7Bx%7D/%5E%60', ''],
  ['/a|b[c]', '/a|b[c]', ''],
  // Decoded once: `%25` is not unreserved, so `%252e` stays literal; only the
  // hex digits of an encoding are upper-cased (RFC 3986 6.2.2.1), not the `2e` after it.
  ['/%252e%252e/admin', '/%252e%252e/admin', ''],
  ['/%25%2e', '/%25.', ''],
  ['/caf%c3%a9', '/caf%C3%A9', ''],
  ['/a%20b', '/a%20b', ''],
  ['/a?b=%2F..', '/a', '?b=%2F..'],
  ['/a/../b?x=/../%2e%2e&y=%0a', '/b', '?x=/../%2e%2e&y=%0a'],
  ['/a?', '/a', '?'],
  ['/a??b', '/a', '??b'],
  ['/?x', '/', '?x'],
  ['http://evil/admin?x=1', '/admin', '?x=1'],
  ['HTTP://h', '/', ''],
  ['https://h:8443//a/./b/', '/a/b/', ''],
  ['HttpS://user@h:1?q', '/', '?q'],
  ['http://h/a/%2e%2e/x', '/x', '']
]

// [request target, reason]
const refused: Array<[string, string]> = [
  ['', 'empty'],
  ['*', 'asterisk-form'],
  ['/a#x', 'fragment'],
  ['/a?b#c', 'fragment'],
  ['a/b', 'not-origin-form'],
  ['ftp://h/a', 'not-origin-form'],
  ['http:/a', 'not-origin-form'],
  ['http:///admin', 'bad-authority'],
  ['http://ev\\il/a', 'bad-authority'],
  ['/%2e%2e/admin', 'above-root'],
  // Tomcat/Jetty read `..;` as `..`; other `..`-edged segments are refused too.
  ['/public/..;/admin', 'dot-dot-segment'],
  ['/a/...', 'dot-dot-segment'],
  ['/a/..b/.c', 'dot-dot-segment'],
  ['/a/b../c', 'dot-dot-segment'],
  ['/public/%E0%A4', 'not-utf8'],
  ['/admin/%C0%AE%C0%AE/x', 'not-utf8'],
  ['/%FF', 'not-utf8'],
  ['/..', 'above-root'],
  ['/a/../..', 'above-root'],
  ['/a/../../b', 'above-root'],
  ['/public/..%2fadmin', 'encoded-slash'],
  ['/public/..%2Fadmin', 'encoded-slash'],
  ['/public/..%5cadmin', 'encoded-slash'],
  ['/a%5Cb', 'encoded-slash'],
  ['/a\\b', 'backslash'],
  ['/public\\..\\admin', 'backslash'],
  ['/admin%00', 'control-char'],
  ['/admin%0d%0a', 'control-char'],
  ['/a%1F', 'control-char'],
  ['/a%7F', 'control-char'],
  ['/a%7f', 'control-char'],
  ['/a\x00b', 'control-char'],
  ['/a\r\nb', 'control-char'],
  ['/a\x7fb', 'control-char'],
  ['/a?x=\r\nHost: evil', 'control-char'],
  ['/a b', 'bad-char'],
  ['/caf\u00e9', 'bad-char'],
  ['/%', 'bad-percent'],
  ['/a%4', 'bad-percent'],
  ['/a%4?x', 'bad-percent'],
  ['/a%zz', 'bad-percent'],
  ['/a%g1', 'bad-percent'],
  ['/a%2', 'bad-percent']
]

t.test('accepted targets', async t => {
  for (const [target, path, query] of accepted) {
    t.strictSame(normalizeTarget(target), { path, query }, JSON.stringify(target))
  }
})

t.test('refused targets', async t => {
  for (const [target, reason] of refused) {
    t.throws(() => normalizeTarget(target), { code: 'JOTGATE_BAD_PATH', statusCode: 400, reason },
      `${JSON.stringify(target)} refused: ${reason}`)
  }
})

t.test('normalization is idempotent', async t => {
  for (const [target] of accepted) {
    const { path } = normalizeTarget(target)
    t.equal(normalizeTarget(path).path, path, JSON.stringify(target))
  }
})

t.test('the fast path returns the target itself', async t => {
  const target = '/api/v1/users/42'
  t.equal(normalizeTarget(target).path, target)
})
