import t from 'tap'
import { createHeaderStripper } from '../../../src/pipeline/sanitize-headers.js'

const stripper = createHeaderStripper(['X-User-*', 'X-Client-Id', 'x-jwt-*'], ['X-Tenant', 'x-email'])

t.test('matches', async (t) => {
  const cases: Array<[string, boolean]> = [
    ['x-user-id', true],
    ['x-user-', true], // the prefix alone is a header of the family too
    ['x-user-roles', true],
    ['x-client-id', true],
    ['x-jwt-claims', true],
    ['x-tenant', true],
    ['x-email', true],
    ['x-user', false],
    ['x-client-id-extra', false],
    ['x-clientid', false],
    ['x-tenants', false],
    ['authorization', false],
    ['host', false],
    ['content-type', false]
  ]
  for (const [name, expected] of cases) t.equal(stripper.matches(name), expected, name)
})

t.test('strip deletes matching headers in place and keeps the rest', async (t) => {
  const headers: Record<string, unknown> = {
    host: 'example.test',
    authorization: 'Bearer abc',
    'x-user-id': 'forged',
    'x-user-roles': ['admin', 'root'],
    'x-client-id': 'forged',
    'x-jwt-claims': '{}',
    'x-tenant': 'forged',
    'x-email': 'forged',
    'x-request-id': 'r1',
    accept: '*/*'
  }
  stripper.strip(headers)
  t.strictSame(headers, {
    host: 'example.test',
    authorization: 'Bearer abc',
    'x-request-id': 'r1',
    accept: '*/*'
  })
})

t.test('case does not matter in patterns, names or keys', async (t) => {
  const headers: Record<string, unknown> = { 'x-USER-id': 'forged', 'X-Client-ID': 'forged', 'X-TENANT': 'forged', Accept: 'x' }
  stripper.strip(headers)
  t.strictSame(headers, { Accept: 'x' })
  t.ok(createHeaderStripper(['x-user-*'], []).matches('x-user-id'))
  t.ok(createHeaderStripper([], ['X-USER-ID']).matches('x-user-id'))
})

t.test('nothing configured strips nothing', async (t) => {
  const empty = createHeaderStripper([], [])
  const headers: Record<string, unknown> = { 'x-user-id': 'a' }
  empty.strip(headers)
  t.strictSame(headers, { 'x-user-id': 'a' })
})

t.test('underscore spellings of stripped names go too; other names with _ stay', async (t) => {
  const headers: Record<string, unknown> = { X_User_Id: 'forged', x_tenant: 'forged', 'x-user_roles': 'forged', x_trace_id: 'kept', accept: 'x' }
  stripper.strip(headers)
  t.strictSame(headers, { x_trace_id: 'kept', accept: 'x' })
})

t.test('names passed to strip go in the same pass, whatever their case', async (t) => {
  const headers: Record<string, unknown> = { 'keep-alive': '5', TE: 'trailers', 'x-original-url': '/admin', 'x-user-id': 'forged', accept: 'x' }
  stripper.strip(headers, new Set(['keep-alive', 'te', 'x-original-url']))
  t.strictSame(headers, { accept: 'x' })
})
