// Unit tests of OTPClient against canned answers from a local HTTP server.
// Every test runs twice: once on the ESM build and once on the CommonJS twin.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from '../src/index.mjs';
import { startCannedServer, sendJson, unusedPort } from '../test-support/canned-server.mjs';

const cjs = createRequire(import.meta.url)('../dist/index.cjs');

const OK_REQUEST = {
  success: true, message: 'OTP sent successfully.', ttl_seconds: 300, expires_at: 1900000000, rate_limit_remaining: 4,
};
const OK_VERIFY = {
  success: true, message: 'OTP verified successfully.', access_token: 'aaa.bbb.ccc', token_type: 'bearer', expires_in: 900, rate_limit_remaining: 9,
};
const CLAIMS = { sub: 'alice@example.com', iss: 'stateless-otp', aud: 'api', exp: 1900000900 };

for (const [flavour, sdk] of [['esm', esm], ['cjs', cjs]]) {
  const { OTPClient, OTPError, MemoryTokenStorage, LocalStorageTokenStorage, parseRetryAfter } = sdk;

  describe(`${flavour}: successful calls`, () => {
    let server;
    before(async () => {
      server = await startCannedServer((req, res) => {
        const path = req.url;
        if (path === '/prefix/api/v1/otp/request') return sendJson(res, 200, OK_REQUEST);
        if (path === '/prefix/api/v1/otp/verify') return sendJson(res, 200, OK_VERIFY);
        if (path === '/prefix/api/v1/token/introspect') {
          const { token } = JSON.parse(req.body);
          return sendJson(res, 200, token === 'aaa.bbb.ccc' ? { active: true, claims: CLAIMS } : { active: false, claims: null });
        }
        if (path === '/prefix/api/v1/token/verify') {
          if (req.headers.authorization === 'Bearer aaa.bbb.ccc') return sendJson(res, 200, { active: true, claims: CLAIMS });
          return sendJson(res, 401, { error: 'token_invalid', message: 'Token is invalid.' });
        }
        if (path === '/prefix/.well-known/jwks.json') return sendJson(res, 200, { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'k1' }] });
        if (path === '/prefix/health') return sendJson(res, 200, { status: 'ok', service: 'stateless-otp' });
        if (path === '/prefix/api/v1/logout') return sendJson(res, 200, { success: true, all: false });
        return sendJson(res, 404, { error: 'not_found', message: 'No such route.' });
      });
    });
    after(() => server.close());

    test('requestOTP sends the identity as JSON and maps the answer to camelCase', async () => {
      const client = new OTPClient({ baseUrl: `${server.url}/prefix/` });
      const result = await client.requestOTP('alice@example.com');
      assert.deepEqual(result, {
        success: true, message: 'OTP sent successfully.', ttlSeconds: 300, expiresAt: 1900000000, rateLimitRemaining: 4,
      });
      const req = server.requests.at(-1);
      assert.equal(req.method, 'POST');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(req.body), { identity: 'alice@example.com' });
    });

    test('a base URL with or without /api/v1 and trailing slashes names the same server (the Python SDKs were documented with /api/v1)', async () => {
      for (const given of ['/prefix', '/prefix/', '/prefix/api/v1', '/prefix/api/v1/', '/prefix/api/v1//', '  /prefix/api/v1  ']) {
        const url = given.startsWith(' ') ? `  ${server.url}${given.trim()}  ` : `${server.url}${given}`;
        const client = new OTPClient(url);
        assert.equal(client.baseUrl, `${server.url}/prefix`, given);
        const sent = await client.requestOTP('alice@example.com');
        assert.equal(sent.success, true, given);
        assert.equal(server.requests.at(-1).url, '/prefix/api/v1/otp/request', given);
        assert.deepEqual(await client.health(), { status: 'ok', service: 'stateless-otp' }, given);
        assert.equal(server.requests.at(-1).url, '/prefix/health', given);
      }
      assert.equal(sdk.normalizeBaseUrl('https://auth.example.com/api/v1/'), 'https://auth.example.com');
      assert.equal(sdk.normalizeBaseUrl('https://auth.example.com/api/v10'), 'https://auth.example.com/api/v10', 'only the exact suffix');
      assert.equal(sdk.normalizeBaseUrl('https://auth.example.com/v1'), 'https://auth.example.com/v1');
    });

    test('verifyOTP maps the answer and stores the token', async () => {
      const client = new OTPClient(`${server.url}/prefix`);
      assert.equal(client.getToken(), null);
      const result = await client.verifyOTP('alice@example.com', '012345');
      assert.deepEqual(result, {
        success: true, message: 'OTP verified successfully.', accessToken: 'aaa.bbb.ccc', tokenType: 'bearer', expiresIn: 900, rateLimitRemaining: 9,
        refreshToken: null, refreshExpiresIn: null,
      });
      assert.deepEqual(JSON.parse(server.requests.at(-1).body), { identity: 'alice@example.com', otp: '012345' });
      assert.equal(client.getToken(), 'aaa.bbb.ccc');
    });

    test('introspectToken and verifyBearer use the stored token by default', async () => {
      const client = new OTPClient(`${server.url}/prefix`);
      await client.verifyOTP('alice@example.com', '012345');
      assert.deepEqual(await client.introspectToken(), { active: true, claims: CLAIMS });
      assert.deepEqual(JSON.parse(server.requests.at(-1).body), { token: 'aaa.bbb.ccc' });
      assert.deepEqual(await client.verifyBearer(), { active: true, claims: CLAIMS });
      assert.equal(server.requests.at(-1).method, 'GET');
      assert.equal(server.requests.at(-1).headers.authorization, 'Bearer aaa.bbb.ccc');
      assert.deepEqual(await client.introspectToken('garbage'), { active: false, claims: null });
    });

    test('verifyBearer of a rejected stored token clears it; of an explicit token does not', async () => {
      const client = new OTPClient(`${server.url}/prefix`);
      client.setToken('stale.token.value');
      await assert.rejects(client.verifyBearer('other'), (err) => err.code === 'token_invalid');
      assert.equal(client.getToken(), 'stale.token.value');
      await assert.rejects(client.verifyBearer(), (err) => err instanceof OTPError && err.statusCode === 401);
      assert.equal(client.getToken(), null);
    });

    test('without a stored token, token calls fail locally with token_missing', async () => {
      const client = new OTPClient(`${server.url}/prefix`);
      const before = server.requests.length;
      for (const call of [() => client.verifyBearer(), () => client.introspectToken()]) {
        await assert.rejects(call(), (err) => err instanceof OTPError && err.code === 'token_missing' && err.statusCode === 0);
      }
      assert.equal(server.requests.length, before, 'no request was sent');
    });

    test('getJWKS and health', async () => {
      const client = new OTPClient(`${server.url}/prefix`);
      assert.deepEqual(await client.getJWKS(), { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'abc', kid: 'k1' }] });
      assert.deepEqual(await client.health(), { status: 'ok', service: 'stateless-otp' });
    });

    test('logout and clearToken forget the token', async () => {
      const client = new OTPClient(`${server.url}/prefix`);
      client.setToken('t1');
      const loggedOut = client.logout();
      assert.equal(client.getToken(), null, 'forgotten at once, before the answer');
      assert.deepEqual(await loggedOut, { success: true, all: false });
      assert.equal(server.requests.at(-1).headers.authorization, 'Bearer t1', 'no refresh token: the access token names the session');
      client.setToken('t2');
      client.clearToken();
      assert.equal(client.getToken(), null);
    });

    test('custom headers are sent with every request', async () => {
      const client = new OTPClient({ baseUrl: `${server.url}/prefix`, headers: { 'X-Tenant': 'acme' } });
      await client.health();
      assert.equal(server.requests.at(-1).headers['x-tenant'], 'acme');
    });

    test('a LocalStorageTokenStorage keeps the token in the given Storage', async () => {
      const backing = new Map();
      const storage = {
        getItem: (k) => (backing.has(k) ? backing.get(k) : null),
        setItem: (k, v) => backing.set(k, String(v)),
        removeItem: (k) => backing.delete(k),
      };
      const client = new OTPClient({ baseUrl: `${server.url}/prefix`, storage: new LocalStorageTokenStorage('my.key', storage) });
      await client.verifyOTP('alice@example.com', '012345');
      assert.equal(backing.get('my.key'), 'aaa.bbb.ccc');
      const again = new OTPClient({ baseUrl: `${server.url}/prefix`, storage: new LocalStorageTokenStorage('my.key', storage) });
      assert.equal(again.getToken(), 'aaa.bbb.ccc', 'a new client (page reload) sees the token');
      await again.logout();
      assert.equal(backing.has('my.key'), false);
    });
  });

  describe(`${flavour}: error mapping`, () => {
    let server;
    let reply;
    before(async () => {
      server = await startCannedServer((req, res) => reply(req, res));
    });
    after(() => server.close());

    async function failure(call, handler) {
      reply = handler;
      const client = new OTPClient({ baseUrl: server.url, maxRetries: 0 });
      try {
        await call(client);
      } catch (err) {
        return err;
      }
      throw new Error('the call did not fail');
    }

    test('400 otp_invalid', async () => {
      const err = await failure((c) => c.verifyOTP('a@example.com', '111111'),
        (req, res) => sendJson(res, 400, { error: 'otp_invalid', message: 'Invalid or expired OTP.' }));
      assert.ok(err instanceof OTPError);
      assert.ok(err instanceof Error);
      assert.equal(err.name, 'OTPError');
      assert.equal(err.code, 'otp_invalid');
      assert.equal(err.statusCode, 400);
      assert.equal(err.message, 'Invalid or expired OTP.');
      assert.equal(err.retryAfter, null);
      assert.equal(err.details, null);
    });

    test('422 keeps details', async () => {
      const details = [{ loc: ['body', 'identity'], msg: 'must not be empty' }];
      const err = await failure((c) => c.requestOTP(''),
        (req, res) => sendJson(res, 422, { error: 'validation_error', message: 'Invalid request.', details }));
      assert.equal(err.code, 'validation_error');
      assert.equal(err.statusCode, 422);
      assert.deepEqual(err.details, details);
    });

    test('429 reads Retry-After in seconds', async () => {
      const err = await failure((c) => c.requestOTP('a@example.com'),
        (req, res) => sendJson(res, 429, { error: 'rate_limit_exceeded', message: 'Too many OTP requests. Please wait before requesting again.' }, { 'Retry-After': '42' }));
      assert.equal(err.code, 'rate_limit_exceeded');
      assert.equal(err.statusCode, 429);
      assert.equal(err.retryAfter, 42);
    });

    test('429 reads Retry-After as an HTTP date', async () => {
      const when = new Date(Date.now() + 30_000).toUTCString();
      const err = await failure((c) => c.requestOTP('a@example.com'),
        (req, res) => sendJson(res, 429, { error: 'rate_limit_exceeded', message: 'Too many.' }, { 'Retry-After': when }));
      assert.ok(err.retryAfter >= 28 && err.retryAfter <= 31, `retryAfter ${err.retryAfter}`);
    });

    test('401 token_expired from verifyBearer', async () => {
      const err = await failure((c) => c.verifyBearer('x.y.z'),
        (req, res) => sendJson(res, 401, { error: 'token_expired', message: 'Token has expired.' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' }));
      assert.equal(err.code, 'token_expired');
      assert.equal(err.statusCode, 401);
    });

    test('a non-JSON error page becomes http_error with its status', async () => {
      const err = await failure((c) => c.requestOTP('a@example.com'), (req, res) => {
        res.writeHead(500, { 'Content-Type': 'text/html' });
        res.end('<html>boom</html>');
      });
      assert.equal(err.code, 'http_error');
      assert.equal(err.statusCode, 500);
      assert.match(err.message, /HTTP 500/);
    });

    test('an HTML 404 maps to not_found and 413 to payload_too_large', async () => {
      let err = await failure((c) => c.health(), (req, res) => { res.writeHead(404); res.end('nope'); });
      assert.equal(err.code, 'not_found');
      err = await failure((c) => c.requestOTP('a@example.com'), (req, res) => { res.writeHead(413); res.end(); });
      assert.equal(err.code, 'payload_too_large');
    });

    test('a 200 that is not a JSON object is invalid_response', async () => {
      const err = await failure((c) => c.requestOTP('a@example.com'), (req, res) => { res.writeHead(200); res.end('ok'); });
      assert.equal(err.code, 'invalid_response');
      assert.equal(err.statusCode, 200);
    });

    test('a verify answer without access_token is invalid_response and stores nothing', async () => {
      reply = (req, res) => sendJson(res, 200, { success: true, message: 'OTP verified successfully.' });
      const client = new OTPClient({ baseUrl: server.url, maxRetries: 0 });
      await assert.rejects(client.verifyOTP('a@example.com', '123456'), (err) => err.code === 'invalid_response');
      assert.equal(client.getToken(), null);
    });
  });

  describe(`${flavour}: transport failures, timeouts and retries`, () => {
    test('a closed port is network_error with statusCode 0', async () => {
      const port = await unusedPort();
      const client = new OTPClient({ baseUrl: `http://127.0.0.1:${port}`, maxRetries: 0 });
      await assert.rejects(client.requestOTP('a@example.com'), (err) => {
        assert.ok(err instanceof OTPError);
        assert.equal(err.code, 'network_error');
        assert.equal(err.statusCode, 0);
        assert.ok(err.cause, 'the underlying error is kept as cause');
        return true;
      });
    });

    test('a server that never answers hits the timeout', async () => {
      const server = await startCannedServer(() => { /* never answer */ });
      try {
        const client = new OTPClient({ baseUrl: server.url, timeout: 200, maxRetries: 0 });
        const started = Date.now();
        await assert.rejects(client.health(), (err) => err.code === 'timeout' && err.statusCode === 0);
        assert.ok(Date.now() - started < 5000);
      } finally {
        await server.close();
      }
    });

    test('idempotent calls are retried after 503 until they succeed', async () => {
      let calls = 0;
      const server = await startCannedServer((req, res) => {
        calls += 1;
        if (calls < 3) return sendJson(res, 503, { error: 'internal_error', message: 'busy' });
        return sendJson(res, 200, { status: 'ok', service: 'stateless-otp' });
      });
      try {
        const client = new OTPClient({ baseUrl: server.url, retryDelay: 10 });
        assert.deepEqual(await client.health(), { status: 'ok', service: 'stateless-otp' });
        assert.equal(calls, 3);
      } finally {
        await server.close();
      }
    });

    test('requestOTP is retried after backend_unavailable, honouring Retry-After', async () => {
      let calls = 0;
      const server = await startCannedServer((req, res) => {
        calls += 1;
        if (calls === 1) return sendJson(res, 503, { error: 'backend_unavailable', message: 'down' }, { 'Retry-After': '0' });
        return sendJson(res, 200, OK_REQUEST);
      });
      try {
        const client = new OTPClient({ baseUrl: server.url, retryDelay: 10_000 });
        const started = Date.now();
        assert.equal((await client.requestOTP('a@example.com')).success, true);
        assert.equal(calls, 2);
        assert.ok(Date.now() - started < 5000, 'Retry-After: 0 replaced the 10 s backoff');
      } finally {
        await server.close();
      }
    });

    test('requestOTP is not retried after 502 delivery_failed, nor anything after 429', async () => {
      let calls = 0;
      let answer;
      const server = await startCannedServer((req, res) => { calls += 1; answer(res); });
      try {
        const client = new OTPClient({ baseUrl: server.url, retryDelay: 1 });
        answer = (res) => sendJson(res, 502, { error: 'delivery_failed', message: 'Failed to deliver OTP. Please try again.' });
        await assert.rejects(client.requestOTP('a@example.com'), (err) => err.code === 'delivery_failed' && err.statusCode === 502);
        assert.equal(calls, 1);
        calls = 0;
        answer = (res) => sendJson(res, 429, { error: 'rate_limit_exceeded', message: 'Too many.' }, { 'Retry-After': '1' });
        await assert.rejects(client.introspectToken('t'), (err) => err.code === 'rate_limit_exceeded');
        assert.equal(calls, 1);
      } finally {
        await server.close();
      }
    });

    test('verifyOTP is not retried after a lost answer (a replay would fail)', async () => {
      let calls = 0;
      const server = await startCannedServer((req, res) => { calls += 1; res.socket.destroy(); });
      try {
        const client = new OTPClient({ baseUrl: server.url, retryDelay: 1 });
        await assert.rejects(client.verifyOTP('a@example.com', '123456'), (err) => err.code === 'network_error');
        assert.equal(calls, 1);
        calls = 0;
        await assert.rejects(client.getJWKS(), (err) => err.code === 'network_error');
        assert.equal(calls, 3, 'an idempotent call is tried 1 + maxRetries times');
      } finally {
        await server.close();
      }
    });
  });

  describe(`${flavour}: argument checks`, () => {
    test('the constructor rejects bad options with TypeError', () => {
      assert.throws(() => new OTPClient(), TypeError);
      assert.throws(() => new OTPClient({ baseUrl: '' }), TypeError);
      assert.throws(() => new OTPClient({ baseUrl: 'http://x', timeout: 0 }), TypeError);
      assert.throws(() => new OTPClient({ baseUrl: 'http://x', maxRetries: -1 }), TypeError);
      assert.throws(() => new OTPClient({ baseUrl: 'http://x', storage: {} }), TypeError);
      assert.throws(() => new LocalStorageTokenStorage('k', undefined), TypeError);
    });

    test('a numeric code is refused before any request (leading zeros would be lost)', async () => {
      const client = new OTPClient({ baseUrl: 'http://127.0.0.1:9', maxRetries: 0 });
      await assert.rejects(client.verifyOTP('a@example.com', 12345), TypeError);
      await assert.rejects(client.requestOTP(undefined), TypeError);
    });

    test('MemoryTokenStorage is the default and is per client', () => {
      const a = new OTPClient('http://127.0.0.1:9');
      const b = new OTPClient('http://127.0.0.1:9');
      assert.ok(a.storage instanceof MemoryTokenStorage);
      a.setToken('x');
      assert.equal(b.getToken(), null);
    });

    test('parseRetryAfter', () => {
      assert.equal(parseRetryAfter('120'), 120);
      assert.equal(parseRetryAfter(null), null);
      assert.equal(parseRetryAfter('soon'), null);
      assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 0), 10);
      assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 60_000), 0);
    });
  });
}
