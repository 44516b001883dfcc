/**
 * The demo's "legacy service": it knows nothing of tokens and shows what
 * jotgate told it about the caller through headers.
 */
import { createServer, type Server } from 'node:http'

export function createDemoUpstream (): Server {
  return createServer((req, res) => {
    const identity = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-')))
    res.setHeader('content-type', 'application/json')
    res.end(`${JSON.stringify({ service: 'demo-upstream', method: req.method, path: req.url, identity }, null, 2)}\n`)
  })
}
