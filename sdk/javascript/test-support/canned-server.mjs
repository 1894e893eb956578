// A tiny HTTP server on 127.0.0.1 (free port) for unit tests: each request
// is recorded and answered by the test's handler. It stands in for the
// network, not for the product: the end-to-end suites use the real server.
import http from 'node:http';

/**
 * @param {(req: {method: string, url: string, headers: object, body: string}, res: http.ServerResponse) => void} handler
 * @returns {Promise<{url: string, requests: Array<{method: string, url: string, headers: object, body: string}>, close(): Promise<void>}>}
 */
export async function startCannedServer(handler) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const record = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(record);
      handler(record, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Writes a JSON answer. */
export function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A port on 127.0.0.1 where nothing listens (bound, read, released). */
export async function unusedPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
