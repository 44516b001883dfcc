/**
 * src/log-stream.ts: stdout in per-turn batches of whole lines, at most
 * PIPE_BUF bytes per write, nothing lost when the pipe is full for a
 * while, a bounded backlog with a count of what was dropped.
 */
import t from 'tap'
import { setImmediate as tick } from 'node:timers/promises'
import { createLogStream } from '../../src/log-stream.js'

const line = (i: number, size = 100) => `${JSON.stringify({ i, pad: 'x'.repeat(Math.max(0, size - 20)) })}\n`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('the lines of one turn go out together, in order, after the turn', async (t) => {
  const writes: string[] = []
  const stream = createLogStream({ write: (_fd, d) => { writes.push(d.toString()); return Buffer.byteLength(d) }, flushOnExit: false })
  for (let i = 0; i < 10; i++) stream.write(line(i))
  t.same(writes, [], 'nothing written during the turn')
  await tick()
  t.equal(writes.length, 1, 'one write for ten lines')
  t.equal(writes[0], Array.from({ length: 10 }, (_, i) => line(i)).join(''), 'all of them, in order')
})

t.test('writes hold whole lines and at most PIPE_BUF bytes, unless one line is longer', async (t) => {
  const writes: string[] = []
  const stream = createLogStream({ write: (_fd, d) => { writes.push(d.toString()); return Buffer.byteLength(d) }, flushOnExit: false })
  const sent = [...Array.from({ length: 100 }, (_, i) => line(i)), line(100, 10_000), line(101)]
  for (const l of sent) stream.write(l)
  await tick()
  t.equal(writes.join(''), sent.join(''), 'every byte, in order')
  t.ok(writes.every((w) => w.endsWith('\n')), 'every write ends at a line end')
  t.ok(writes.every((w) => w.length <= 4096 || w === sent[100]), 'at most 4096 bytes, but for the one longer line written alone')
  t.ok(writes.length >= 4, `${writes.length} writes`)
})

t.test('a full pipe (EAGAIN, short writes) loses nothing', async (t) => {
  const out: string[] = []
  let calls = 0
  const stream = createLogStream({
    write: (_fd, d) => {
      calls++
      if (calls === 1) throw Object.assign(new Error('full'), { code: 'EAGAIN' })
      const buf = Buffer.from(d)
      const n = calls === 2 ? Math.floor(buf.length / 2) : buf.length
      out.push(buf.subarray(0, n).toString())
      return n
    },
    flushOnExit: false
  })
  const sent = Array.from({ length: 20 }, (_, i) => line(i))
  for (const l of sent) stream.write(l)
  for (let i = 0; i < 20 && out.join('') !== sent.join(''); i++) await sleep(25)
  t.equal(out.join(''), sent.join(''), 'everything arrived after the retries')
  t.equal(stream.dropped(), 0)
})

t.test('a pipe that never drains: bounded backlog, dropped lines counted and reported once it drains', async (t) => {
  const out: string[] = []
  let full = true
  const stream = createLogStream({
    write: (_fd, d) => {
      if (full) throw Object.assign(new Error('full'), { code: 'EAGAIN' })
      out.push(d.toString())
      return Buffer.byteLength(d)
    },
    maxBacklog: 10_000,
    flushOnExit: false
  })
  for (let i = 0; i < 100; i++) stream.write(line(i))
  await tick()
  for (let i = 100; i < 300; i++) stream.write(line(i))
  t.ok(stream.dropped() >= 190, `lines beyond the backlog are dropped (${stream.dropped()})`)
  full = false
  for (let i = 0; i < 20 && !out.join('').includes('log lines dropped'); i++) await sleep(25)
  const text = out.join('')
  t.ok(text.startsWith(line(0)), 'what was kept comes first, in order')
  const report = text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { msg?: string, dropped?: number }).find((l) => l.msg?.startsWith('log lines dropped'))
  t.equal(report?.dropped, stream.dropped(), 'a line says how many were dropped')
})

t.test('flush writes what is pending at once', async (t) => {
  const writes: string[] = []
  const stream = createLogStream({ write: (_fd, d) => { writes.push(d.toString()); return Buffer.byteLength(d) }, flushOnExit: false })
  stream.write(line(1))
  let called = false
  stream.flush(() => { called = true })
  t.same(writes, [line(1)], 'written synchronously')
  t.ok(called, 'callback called')
  await tick()
  t.equal(writes.length, 1, 'nothing written twice')
})
