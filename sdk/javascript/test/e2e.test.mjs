// End-to-end: the SDK (ESM and CommonJS) against a REAL running otp-server
// whose webhook delivery lands in a receiver we can read codes from. The
// environment contract is in test-support/e2e-env.mjs. Skips with a message
// when OTP_BASE_URL is unset; fails instead under OTP_E2E_REQUIRE_ALL=1.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as esm from '../src/index.mjs';
import {
  env, skipUnless, serverNeeds, shortTtlNeeds, randomIdentity, readDeliveredCode, wrongCodeFor, refreshRequests, sleep,
} from '../test-support/e2e-env.mjs';
import { unusedPort } from '../test-support/canned-server.mjs';

const cjs = createRequire(import.meta.url)('../dist/index.cjs');
const skip = skipUnless(serverNeeds());
const skipSessions = skipUnless(shortTtlNeeds());

/** Asserts that `promise` rejects with an OTPError of `code` and `status`. */
async function rejectsWith(promise, OTPError, code, status) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof OTPError, `expected OTPError, got ${err && err.name}: ${err && err.message}`);
    assert.equal(err.code, code, `code (message: ${err.message})`);
    assert.equal(err.statusCode, status);
    return true;
  });
}

describe('README example (examples/login.mjs) against the server', { skip }, () => {
  test('a full login stores a token whose sub is the identity', async () => {
    const { login } = await import('../examples/login.mjs');
    const identity = randomIdentity('js-readme');
    const client = await login(env.baseUrl, identity, (who) => readDeliveredCode(who));
    const token = client.getToken();
    assert.equal(typeof token, 'string');
    assert.equal(token.split('.').length, 3, 'a JWT');
    const info = await client.introspectToken();
    assert.equal(info.active, true);
    assert.equal(info.claims.sub, identity);
  });
});

for (const [flavour, sdk] of [['esm', esm], ['cjs', cjs]]) {
  const { OTPClient, OTPError } = sdk;
  const newClient = (opts = {}) => new OTPClient({ baseUrl: env.baseUrl, timeout: 5000, ...opts });

  describe(`${flavour}: SDK against the server`, { skip }, () => {
    test('the base URL the Python service documented (…/api/v1/) signs in against this server', async () => {
      const client = newClient({ baseUrl: `${env.baseUrl}/api/v1/` });
      const identity = randomIdentity(`js-apiv1-${flavour}`);
      assert.equal((await client.requestOTP(identity)).success, true);
      const verified = await client.verifyOTP(identity, await readDeliveredCode(identity));
      assert.equal(verified.tokenType, 'bearer');
      assert.equal((await client.verifyBearer()).claims.sub, identity);
      assert.equal((await client.health()).status, 'ok');
    });

    test('full login: request, read the delivered code, verify, verifyBearer shows sub', async () => {
      const client = newClient();
      const identity = randomIdentity(`js-${flavour}`);
      const sent = await client.requestOTP(identity);
      assert.equal(sent.success, true);
      assert.equal(sent.message, 'OTP sent successfully.');
      assert.ok(Number.isInteger(sent.ttlSeconds) && sent.ttlSeconds > 0);
      assert.ok(sent.expiresAt > Date.now() / 1000, 'expiresAt is in the future');
      assert.equal(typeof sent.rateLimitRemaining, 'number');

      const code = await readDeliveredCode(identity);
      const verified = await client.verifyOTP(identity, code);
      assert.equal(verified.success, true);
      assert.equal(verified.message, 'OTP verified successfully.');
      assert.equal(verified.tokenType, 'bearer');
      assert.ok(verified.expiresIn > 0);
      assert.equal(client.getToken(), verified.accessToken, 'the token is stored');

      const bearer = await client.verifyBearer();
      assert.equal(bearer.active, true);
      assert.equal(bearer.claims.sub, identity);
      assert.ok(bearer.claims.exp > Date.now() / 1000);

      const introspected = await client.introspectToken(verified.accessToken);
      assert.deepEqual(introspected, bearer);

      await client.logout();
      assert.equal(client.getToken(), null);
    });

    test('a wrong code is otp_invalid (400)', async () => {
      const client = newClient();
      const identity = randomIdentity(`js-${flavour}-wrong`);
      await client.requestOTP(identity);
      const code = await readDeliveredCode(identity);
      await rejectsWith(client.verifyOTP(identity, wrongCodeFor(code)), OTPError, 'otp_invalid', 400);
      assert.equal(client.getToken(), null, 'nothing stored after a failure');
    });

    test('a replayed code is otp_invalid (400)', async () => {
      const identity = randomIdentity(`js-${flavour}-replay`);
      const first = newClient();
      await first.requestOTP(identity);
      const code = await readDeliveredCode(identity);
      await first.verifyOTP(identity, code);
      await rejectsWith(newClient().verifyOTP(identity, code), OTPError, 'otp_invalid', 400);
    });

    test('the send limit answers rate_limit_exceeded (429) with a numeric retryAfter', async (t) => {
      if (!(env.rateLimitRequests > 0)) {
        const why = 'OTP_RATE_LIMIT_REQUESTS is unset';
        if (env.requireAll) throw new Error(`OTP_E2E_REQUIRE_ALL=1 but ${why}`);
        t.skip(why);
        return;
      }
      const client = newClient();
      const identity = randomIdentity(`js-${flavour}-limit`);
      let remaining = Infinity;
      for (let i = 0; i < env.rateLimitRequests; i += 1) {
        const sent = await client.requestOTP(identity);
        assert.ok(sent.rateLimitRemaining < remaining, 'rateLimitRemaining goes down');
        remaining = sent.rateLimitRemaining;
      }
      assert.equal(remaining, 0);
      await assert.rejects(client.requestOTP(identity), (err) => {
        assert.ok(err instanceof OTPError);
        assert.equal(err.code, 'rate_limit_exceeded');
        assert.equal(err.statusCode, 429);
        assert.equal(typeof err.retryAfter, 'number');
        assert.ok(err.retryAfter > 0, `retryAfter ${err.retryAfter}`);
        return true;
      });
    });

    test('verifyBearer of garbage is token_invalid (401); introspect of garbage is inactive', async () => {
      const client = newClient();
      await rejectsWith(client.verifyBearer('not.a.token'), OTPError, 'token_invalid', 401);
      assert.deepEqual(await client.introspectToken('not.a.token'), { active: false, claims: null });
      assert.deepEqual(await client.introspectToken('garbage'), { active: false, claims: null });
    });

    test('a bad identity is validation_error (422) with details', async () => {
      const client = newClient();
      await assert.rejects(client.requestOTP('   '), (err) => {
        assert.ok(err instanceof OTPError);
        assert.equal(err.code, 'validation_error');
        assert.equal(err.statusCode, 422);
        assert.ok(Array.isArray(err.details) && err.details.length > 0, 'details lists the offending field');
        return true;
      });
    });

    test('getJWKS and health answer', async () => {
      const client = newClient();
      const jwks = await client.getJWKS();
      assert.ok(Array.isArray(jwks.keys));
      assert.deepEqual(await client.health(), { status: 'ok', service: 'stateless-otp' });
    });

    test('an unreachable server is network_error (statusCode 0)', async () => {
      const url = env.unreachableUrl || `http://127.0.0.1:${await unusedPort()}`;
      const client = new OTPClient({ baseUrl: url, timeout: 5000, maxRetries: 0 });
      await rejectsWith(client.requestOTP(randomIdentity('js-unreachable')), OTPError, 'network_error', 0);
    });
  });
}

// Sessions (issue 14) against the server whose access tokens live
// OTP_SHORT_ACCESS_TTL seconds.
for (const [flavour, sdk] of [['esm', esm], ['cjs', cjs]]) {
  const { OTPClient, OTPError } = sdk;
  const newClient = () => new OTPClient({ baseUrl: env.shortTtlBaseUrl, timeout: 5000 });

  describe(`${flavour}: sessions against the server`, { skip: skipSessions }, () => {
    test('sign in, refresh, use the new token, expire and refresh once for 8 callers, log out, refused', async () => {
      const client = newClient();
      const identity = randomIdentity(`js-session-${flavour}`);
      await client.requestOTP(identity);
      const verified = await client.verifyOTP(identity, await readDeliveredCode(identity));
      assert.match(verified.refreshToken, /^ort1_/);
      assert.equal(client.getRefreshToken(), verified.refreshToken);

      const fresh = await client.refresh();
      assert.notEqual(fresh.refreshToken, verified.refreshToken);
      assert.notEqual(fresh.accessToken, verified.accessToken);
      assert.equal(fresh.expiresIn, env.shortAccessTtl);
      assert.equal((await client.verifyBearer()).claims.sub, identity);

      await sleep(env.shortAccessTtl * 1000 + 1200);
      await rejectsWith(client.verifyBearer(client.getToken()), OTPError, 'token_expired', 401);
      const before = await refreshRequests(env.shortTtlBaseUrl);
      const all = await Promise.all(Array.from({ length: 8 }, () => client.verifyBearer()));
      for (const info of all) assert.equal(info.claims.sub, identity);
      assert.equal(await refreshRequests(env.shortTtlBaseUrl) - before, 1, 'eight callers, one refresh request');

      const spent = client.getRefreshToken();
      assert.deepEqual(await client.logout(), { success: true, all: false });
      assert.equal(client.getToken(), null);
      const other = newClient();
      other.setToken('unused.after.logout', spent);
      await rejectsWith(other.refresh(), OTPError, 'session_revoked', 401);
      assert.equal(other.getRefreshToken(), null, 'the dead session is forgotten');
    });

    test('logout({all: true}) on one device ends the other device\'s session', async () => {
      const identity = randomIdentity(`js-everywhere-${flavour}`);
      const [phone, laptop] = [newClient(), newClient()];
      let previous = null;
      for (const device of [phone, laptop]) {
        await device.requestOTP(identity);
        let code = await readDeliveredCode(identity);
        for (let i = 0; code === previous && i < 50; i += 1) {
          await sleep(100);
          code = await readDeliveredCode(identity);
        }
        await device.verifyOTP(identity, code);
        previous = code;
      }
      assert.deepEqual(await phone.logout({ all: true }), { success: true, all: true });
      await rejectsWith(laptop.refresh(), OTPError, 'session_revoked', 401);
    });
  });
}
