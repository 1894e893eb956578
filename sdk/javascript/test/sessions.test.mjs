// Sessions against canned answers: the refresh token kept with the access
// token, one refresh on token_expired then one retry, one refresh in flight
// for concurrent callers (a shared promise), across "tabs" (two clients on
// one Storage under a Web Lock, re-reading the storage first), the typed
// session_revoked, and logout. Every test runs on the ESM source and on the
// CommonJS twin. The real server: e2e.test.mjs and browser.e2e.test.mjs.
import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from '../src/index.mjs';
import { startCannedServer, sendJson } from '../test-support/canned-server.mjs';

const cjs = createRequire(import.meta.url)('../dist/index.cjs');

const REFRESH_DELAY_MS = 200;

/**
 * A canned server with a chain of sessions tokens: refresh token `ort1_<n>`
 * rotates to `ort1_<n+1>` with access token `access.<n+1>`; access tokens
 * listed in `expired` answer 401 token_expired; `revoked` refresh tokens
 * answer 401 session_revoked.
 */
function sessionServer() {
  const state = { expired: new Set(), revoked: new Set() };
  const handler = (req, res) => {
    if (req.url === '/api/v1/otp/verify') {
      return sendJson(res, 200, {
        success: true, message: 'OTP verified successfully.', access_token: 'access.0', token_type: 'bearer',
        expires_in: 900, rate_limit_remaining: 9, refresh_token: 'ort1_0', refresh_expires_in: 604800,
      });
    }
    if (req.url === '/api/v1/token/verify') {
      const token = (req.headers.authorization || '').replace(/^Bearer /, '');
      if (state.expired.has(token)) return sendJson(res, 401, { error: 'token_expired', message: 'Token has expired.' });
      return sendJson(res, 200, { active: true, claims: { sub: 'a@example.com', token } });
    }
    if (req.url === '/api/v1/token/refresh') {
      const spent = JSON.parse(req.body).refresh_token;
      const n = Number(spent.replace('ort1_', ''));
      setTimeout(() => {
        if (state.revoked.has(spent)) return sendJson(res, 401, { error: 'session_revoked', message: 'Session revoked.' });
        return sendJson(res, 200, {
          success: true, access_token: `access.${n + 1}`, token_type: 'bearer', expires_in: 900,
          refresh_token: `ort1_${n + 1}`, refresh_expires_in: 604800,
        });
      }, REFRESH_DELAY_MS);
      return undefined;
    }
    if (req.url === '/api/v1/logout') return sendJson(res, 200, { success: true, all: JSON.parse(req.body || '{}').all === true });
    return sendJson(res, 404, { error: 'not_found', message: 'No such route.' });
  };
  return { state, handler };
}

/** A Storage over a Map, as two tabs of one origin share localStorage. */
function sharedStorage() {
  const backing = new Map();
  return {
    backing,
    getItem: (k) => (backing.has(k) ? backing.get(k) : null),
    setItem: (k, v) => backing.set(k, String(v)),
    removeItem: (k) => backing.delete(k),
  };
}

/** A Web Locks stand-in: exclusive locks by name, in request order. */
function fakeLocks() {
  const tails = new Map();
  const names = [];
  return {
    names,
    request(name, callback) {
      names.push(name);
      const previous = tails.get(name) || Promise.resolve();
      const run = previous.then(() => callback());
      tails.set(name, run.catch(() => {}));
      return run;
    },
  };
}

for (const [flavour, sdk] of [['esm', esm], ['cjs', cjs]]) {
  const { OTPClient, OTPError, LocalStorageTokenStorage } = sdk;

  describe(`${flavour}: sessions`, () => {
    let server;
    let state;
    before(async () => {
      const canned = sessionServer();
      state = canned.state;
      server = await startCannedServer(canned.handler);
    });
    after(() => server.close());
    beforeEach(() => {
      server.requests.length = 0;
      state.expired.clear();
      state.revoked.clear();
    });
    const refreshes = () => server.requests.filter((r) => r.url === '/api/v1/token/refresh');

    test('verifyOTP keeps the refresh token with the access token (LocalStorage: key and key.refresh)', async () => {
      const storage = sharedStorage();
      const client = new OTPClient({ baseUrl: server.url, storage: new LocalStorageTokenStorage('k', storage) });
      const verified = await client.verifyOTP('a@example.com', '123456');
      assert.equal(verified.refreshToken, 'ort1_0');
      assert.equal(verified.refreshExpiresIn, 604800);
      assert.equal(storage.backing.get('k'), 'access.0');
      assert.equal(storage.backing.get('k.refresh'), 'ort1_0');
      const reloaded = new OTPClient({ baseUrl: server.url, storage: new LocalStorageTokenStorage('k', storage) });
      assert.equal(reloaded.getRefreshToken(), 'ort1_0', 'a reloaded page has the session');
    });

    test('20 concurrent callers with an expired access token make one refresh request, then retry', async () => {
      const client = new OTPClient(server.url);
      client.setToken('access.0', 'ort1_0');
      state.expired.add('access.0');
      const results = await Promise.all(Array.from({ length: 20 }, () => client.verifyBearer()));
      for (const info of results) assert.equal(info.claims.token, 'access.1');
      assert.equal(refreshes().length, 1);
      assert.deepEqual(JSON.parse(refreshes()[0].body), { refresh_token: 'ort1_0' });
      assert.equal(client.getToken(), 'access.1');
      assert.equal(client.getRefreshToken(), 'ort1_1');
    });

    test('concurrent refresh() calls share one request and its answer; a later one spends the successor', async () => {
      const client = new OTPClient(server.url);
      client.setToken('access.0', 'ort1_0');
      const all = await Promise.all([client.refresh(), client.refresh(), client.refresh()]);
      for (const r of all) assert.deepEqual(r, all[0]);
      assert.equal(all[0].refreshToken, 'ort1_1');
      assert.equal(all[0].expiresIn, 900);
      assert.equal(refreshes().length, 1);
      assert.equal((await client.refresh()).refreshToken, 'ort1_2');
      assert.equal(refreshes().length, 2);
    });

    test('two tabs on one storage refreshing at once: one request under the Web Lock, both end with the same tokens', async () => {
      const locks = fakeLocks();
      const hadNavigator = Object.prototype.hasOwnProperty.call(globalThis, 'navigator');
      const previous = globalThis.navigator;
      Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true });
      try {
        const storage = sharedStorage();
        const tab = () => new OTPClient({ baseUrl: `${server.url}/`, storage: new LocalStorageTokenStorage('k', storage) });
        const [one, two] = [tab(), tab()];
        one.setToken('access.0', 'ort1_0');
        state.expired.add('access.0');
        const [a, b] = await Promise.all([one.verifyBearer(), two.verifyBearer()]);
        assert.equal(refreshes().length, 1, 'the second tab re-read the storage inside the lock');
        assert.equal(a.claims.token, 'access.1');
        assert.equal(b.claims.token, 'access.1');
        assert.equal(one.getRefreshToken(), two.getRefreshToken());
        assert.deepEqual(locks.names, [`stateless-otp-refresh:${server.url}`, `stateless-otp-refresh:${server.url}`]);
        // An explicit refresh in a tab that finds the token rotated by the other.
        const fromOne = one.refresh();
        const fromTwo = two.refresh();
        const [r1, r2] = await Promise.all([fromOne, fromTwo]);
        assert.equal(refreshes().length, 2);
        assert.equal(r1.refreshToken, 'ort1_2');
        assert.deepEqual(r2, { accessToken: 'access.2', tokenType: 'bearer', expiresIn: null, refreshToken: 'ort1_2', refreshExpiresIn: null });
      } finally {
        if (hadNavigator) globalThis.navigator = previous;
        else delete globalThis.navigator;
      }
    });

    test('session_revoked is a typed 401 for every waiting caller and forgets the tokens', async () => {
      const client = new OTPClient(server.url);
      client.setToken('access.0', 'ort1_0');
      state.expired.add('access.0');
      state.revoked.add('ort1_0');
      const outcomes = await Promise.allSettled([client.verifyBearer(), client.verifyBearer(), client.refresh()]);
      for (const o of outcomes) {
        assert.equal(o.status, 'rejected');
        assert.ok(o.reason instanceof OTPError);
        assert.equal(o.reason.code, 'session_revoked');
        assert.equal(o.reason.statusCode, 401);
      }
      assert.equal(refreshes().length, 1);
      assert.equal(client.getToken(), null);
      assert.equal(client.getRefreshToken(), null);
      await assert.rejects(client.refresh(), (err) => err.code === 'token_missing' && err.statusCode === 0);
      assert.equal(refreshes().length, 1, 'no token, no request');
    });

    test('an expired token without a refresh token is token_expired, without a refresh', async () => {
      const client = new OTPClient(server.url);
      client.setToken('access.0');
      state.expired.add('access.0');
      await assert.rejects(client.verifyBearer(), (err) => err.code === 'token_expired');
      assert.equal(refreshes().length, 0);
    });

    test('a storage without refresh methods (an earlier version\'s) keeps the refresh token in the client', async () => {
      let kept = null;
      const storage = { get: () => kept, set: (t) => { kept = t; }, clear: () => { kept = null; } };
      const client = new OTPClient({ baseUrl: server.url, storage });
      await client.verifyOTP('a@example.com', '123456');
      assert.equal(client.getRefreshToken(), 'ort1_0');
      assert.equal((await client.refresh()).accessToken, 'access.1');
      assert.equal(kept, 'access.1');
    });

    test('logout sends the refresh token, forgets both at once; {all: true} with only an access token sends it as the bearer', async () => {
      const client = new OTPClient(server.url);
      client.setToken('access.0', 'ort1_0');
      const done = client.logout();
      assert.equal(client.getToken(), null);
      assert.equal(client.getRefreshToken(), null);
      assert.deepEqual(await done, { success: true, all: false });
      const sent = server.requests.at(-1);
      assert.equal(sent.url, '/api/v1/logout');
      assert.deepEqual(JSON.parse(sent.body), { refresh_token: 'ort1_0', all: false });
      assert.equal(sent.headers.authorization, undefined);

      client.setToken('access.0');
      assert.deepEqual(await client.logout({ all: true }), { success: true, all: true });
      assert.equal(server.requests.at(-1).headers.authorization, 'Bearer access.0');
      assert.deepEqual(JSON.parse(server.requests.at(-1).body), { all: true });

      const before = server.requests.length;
      assert.deepEqual(await client.logout(), { success: true, all: false });
      assert.equal(server.requests.length, before, 'nothing stored: no request');
      await assert.rejects(client.logout({ all: true }), (err) => err.code === 'token_missing');
    });

    test('a logout during a refresh ends the successor', async () => {
      const client = new OTPClient(server.url);
      client.setToken('access.0', 'ort1_0');
      const refreshing = client.refresh();
      await client.logout();
      await refreshing;
      assert.deepEqual(JSON.parse(server.requests.at(-1).body), { refresh_token: 'ort1_1', all: false });
      assert.equal(client.getToken(), null);
      assert.equal(client.getRefreshToken(), null);
    });
  });
}
