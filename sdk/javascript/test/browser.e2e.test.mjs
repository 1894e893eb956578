// End-to-end in a real browser: the example page (examples/browser/) served
// on OTP_BROWSER_PORT signs in against the REAL server at OTP_BASE_URL, in
// Debian's Chromium driven by playwright-core. The server must have been
// started with CORS_ORIGINS=http://127.0.0.1:<OTP_BROWSER_PORT>. Skips with a
// message when something is missing; fails instead under OTP_E2E_REQUIRE_ALL=1.
// With OTP_RATE_LIMIT_REQUESTS set it also checks, from the page, that a 429's
// Retry-After reaches the SDK across origins (CORS must expose it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { env, skipUnless, serverNeeds, randomIdentity, readDeliveredCode } from '../test-support/e2e-env.mjs';
import { findChromium, launch, screenshot, signInThroughPage, startStaticServer } from '../test-support/browser.mjs';

const { reason: noBrowser, chromium } = await findChromium();
const skip = skipUnless([
  ...serverNeeds(),
  [env.browserPort > 0, 'OTP_BROWSER_PORT is unset (the port the server\'s CORS_ORIGINS allows)'],
  [noBrowser === null, noBrowser],
]);

test('a person signs in through the browser example against the server', { skip, timeout: 90_000 }, async () => {
  const site = await startStaticServer(env.browserPort);
  const browser = await launch(chromium);
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const api = env.baseUrl.replace(/\/+$/, '');
    await page.goto(`${site.origin}/examples/browser/index.html?api=${encodeURIComponent(api)}`);
    assert.equal(await page.textContent('#api'), api);

    const identity = randomIdentity('js-browser');
    await signInThroughPage(page, identity, (who) => readDeliveredCode(who));
    const claims = JSON.parse(await page.textContent('#claims'));
    assert.equal(claims.sub, identity);
    assert.ok(claims.exp > Date.now() / 1000);
    const shot = await screenshot(page, 'browser.png');
    console.error(`screenshot: ${shot}`);

    // The token sits in localStorage, so a reload is still signed in.
    await page.reload();
    await page.waitForFunction((sub) => document.getElementById('claims').textContent.includes(sub), identity, { timeout: 10_000 });

    // Cross-origin, a 429's Retry-After is readable only when the server
    // exposes it through CORS; check that the SDK sees it in the browser.
    if (env.rateLimitRequests > 0) {
      const outcome = await page.evaluate(async ({ base, who, max }) => {
        const { OTPClient, OTPError } = await import('@stateless-otp/client');
        const client = new OTPClient({ baseUrl: base, maxRetries: 0 });
        for (let i = 0; i < max; i += 1) await client.requestOTP(who);
        try {
          await client.requestOTP(who);
          return { thrown: false };
        } catch (err) {
          return { thrown: err instanceof OTPError, code: err.code, statusCode: err.statusCode, retryAfter: err.retryAfter };
        }
      }, { base: api, who: randomIdentity('js-browser-limit'), max: env.rateLimitRequests });
      assert.equal(outcome.thrown, true);
      assert.equal(outcome.code, 'rate_limit_exceeded');
      assert.equal(outcome.statusCode, 429);
      assert.equal(typeof outcome.retryAfter, 'number', 'Retry-After is exposed to the page (Access-Control-Expose-Headers)');
      assert.ok(outcome.retryAfter > 0);
    } else if (env.requireAll) {
      assert.fail('OTP_E2E_REQUIRE_ALL=1 but OTP_RATE_LIMIT_REQUESTS is unset');
    }
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    await site.close();
  }
});
