// Browser harness: a static file server rooted at sdk/javascript (so the
// example page can import ../../src/index.mjs) and Debian's Chromium driven
// through playwright-core. No browser is downloaded: /usr/bin/chromium is used.
import http from 'node:http';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const sdkRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

/**
 * Serves sdk/javascript on 127.0.0.1:`port` (0 = any free port). Requests
 * that `api` handles (it returns true) are answered by it instead, which the
 * canned page test uses to put a fake API on the same origin.
 * @param {number} port
 * @param {(req: http.IncomingMessage, body: string, res: http.ServerResponse) => boolean} [api]
 */
export async function startStaticServer(port, api) {
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (api && api(req, body, res)) return;
      const pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      const file = normalize(join(sdkRoot, pathname));
      const inside = file === sdkRoot || file.startsWith(sdkRoot + sep);
      if (!inside || file.includes(`${sep}node_modules${sep}`) || !existsSync(file) || !statSync(file).isFile()) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not found');
        return;
      }
      res.writeHead(200, { 'Content-Type': MIME[extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(readFileSync(file));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * Why the browser cannot run here, or null when it can.
 * @returns {Promise<{reason: string|null, chromium?: import('playwright-core').BrowserType}>}
 */
export async function findChromium() {
  if (!existsSync(CHROMIUM)) return { reason: `${CHROMIUM} is missing (apt-get install chromium)` };
  try {
    const { chromium } = await import('playwright-core');
    return { reason: null, chromium };
  } catch {
    return { reason: 'playwright-core is not installed (run `npm ci` in sdk/javascript)' };
  }
}

/** Launches headless Chromium; the caller closes it. */
export async function launch(chromium) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** Saves a screenshot under sdk/javascript/test-results/ and returns its path. */
export async function screenshot(page, name) {
  const dir = join(sdkRoot, 'test-results');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Signs in through the example page the way a person does: type the
 * identity, press "Send code", type the code, press "Verify", and wait for
 * the claims to show the identity as `sub`.
 * @param {import('playwright-core').Page} page
 * @param {string} identity
 * @param {(identity: string) => Promise<string>} getCode
 */
export async function signInThroughPage(page, identity, getCode) {
  await page.fill('#identity', identity);
  await page.click('#send');
  await waitOrExplain(page, 'the page to say the code was sent',
    () => /Code sent/.test(document.getElementById('status').textContent));
  const code = await getCode(identity);
  await page.fill('#code', code);
  await page.click('#verify');
  await waitOrExplain(page, `the claims to show sub ${identity}`,
    (sub) => document.getElementById('claims').textContent.includes(`"sub": ${JSON.stringify(sub)}`), identity);
}

/** Waits for `predicate` in the page; on timeout fails with the page's status line. */
export async function waitOrExplain(page, what, predicate, arg = null) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: 10_000 });
  } catch (err) {
    const status = await page.textContent('#status').catch(() => '(unreadable)');
    throw new Error(`timed out waiting for ${what}; the page's status says: ${JSON.stringify(status)}`, { cause: err });
  }
}
