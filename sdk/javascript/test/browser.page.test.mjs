// The browser example page in real Chromium against canned API answers
// served from the page's own origin: checks the page's wiring (ESM import
// map, forms, error display, localStorage, logout) without an otp-server.
// The real server is exercised by browser.e2e.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findChromium, launch, screenshot, signInThroughPage, startStaticServer, waitOrExplain } from '../test-support/browser.mjs';

const { reason: noBrowser, chromium } = await findChromium();
if (noBrowser !== null) {
  if (process.env.OTP_E2E_REQUIRE_ALL === '1') throw new Error(`OTP_E2E_REQUIRE_ALL=1 but ${noBrowser}`);
  console.error(`browser page test skipped: ${noBrowser}`);
}

const GOOD_CODE = '024680';
const TOKEN = 'canned.header.signature';

function cannedApi() {
  let identity = null;
  return (req, body, res) => {
    const json = (status, value, headers = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(value));
      return true;
    };
    if (req.url === '/api/v1/otp/request') {
      ({ identity } = JSON.parse(body));
      return json(200, { success: true, message: 'OTP sent successfully.', ttl_seconds: 300, expires_at: 1900000000, rate_limit_remaining: 4 });
    }
    if (req.url === '/api/v1/otp/verify') {
      const { otp } = JSON.parse(body);
      if (otp !== GOOD_CODE) return json(400, { error: 'otp_invalid', message: 'Invalid or expired OTP.' });
      return json(200, { success: true, message: 'OTP verified successfully.', access_token: TOKEN, token_type: 'bearer', expires_in: 900, rate_limit_remaining: 9 });
    }
    if (req.url === '/api/v1/token/verify') {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(401, { error: 'token_invalid', message: 'Token is invalid.' });
      return json(200, { active: true, claims: { sub: identity, exp: 1900000900, amr: ['otp'] } });
    }
    if (req.url === '/api/v1/logout') return json(200, { success: true, all: false });
    return false;
  };
}

test('the example page signs in, shows errors, survives a reload and logs out (canned API)', { skip: noBrowser || false, timeout: 90_000 }, async () => {
  const site = await startStaticServer(0, cannedApi());
  const browser = await launch(chromium);
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // No ?api=: the page talks to its own origin.
    await page.goto(`${site.origin}/examples/browser/index.html`);
    assert.equal(await page.textContent('#claims'), '(not signed in)');

    await page.fill('#identity', 'carol@example.com');
    await page.click('#send');
    await waitOrExplain(page, 'the code to be sent', () => /Code sent/.test(document.getElementById('status').textContent));
    await page.fill('#code', '111111');
    await page.click('#verify');
    await waitOrExplain(page, 'the error to show', () => /otp_invalid/.test(document.getElementById('status').textContent));
    assert.equal(await page.getAttribute('#status', 'class'), 'error');
    assert.match(await page.textContent('#status'), /Invalid or expired OTP\./);

    await signInThroughPage(page, 'carol@example.com', async () => GOOD_CODE);
    assert.equal(await page.evaluate(() => localStorage.getItem('stateless-otp.token')), TOKEN);
    await screenshot(page, 'browser-page.png');

    await page.reload();
    await waitOrExplain(page, 'the claims after a reload', () => document.getElementById('claims').textContent.includes('carol@example.com'));

    await page.click('#logout');
    await waitOrExplain(page, 'the logout', () => document.getElementById('claims').textContent === '(not signed in)');
    assert.equal(await page.evaluate(() => localStorage.getItem('stateless-otp.token')), null);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    await site.close();
  }
});
