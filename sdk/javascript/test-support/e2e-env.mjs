// The end-to-end environment contract shared with the Rust harness:
//   OTP_BASE_URL             the running server (required for e2e)
//   OTP_CODES_URL            webhook receiver: GET /codes/{identity} -> {"otp": "..."}
//   OTP_RATE_LIMIT_REQUESTS  the server's RATE_REQUEST_OTP_MAX
//   OTP_UNREACHABLE_URL      a URL where nothing listens
//   OTP_BROWSER_PORT         (browser test) the port to serve the example page on
//   OTP_SHORT_TTL_BASE_URL   a second server, same receiver, whose access tokens
//                            live OTP_SHORT_ACCESS_TTL seconds (session tests)
//   OTP_E2E_REQUIRE_ALL=1    a missing piece is a failure, not a skip
import { randomBytes } from 'node:crypto';

export const env = {
  baseUrl: process.env.OTP_BASE_URL || '',
  codesUrl: (process.env.OTP_CODES_URL || '').replace(/\/+$/, ''),
  rateLimitRequests: Number(process.env.OTP_RATE_LIMIT_REQUESTS || '0'),
  unreachableUrl: process.env.OTP_UNREACHABLE_URL || '',
  browserPort: Number(process.env.OTP_BROWSER_PORT || '0'),
  shortTtlBaseUrl: (process.env.OTP_SHORT_TTL_BASE_URL || '').replace(/\/+$/, ''),
  shortAccessTtl: Number(process.env.OTP_SHORT_ACCESS_TTL || '0'),
  requireAll: process.env.OTP_E2E_REQUIRE_ALL === '1',
};

/**
 * Returns a skip reason (string) when something the suite needs is missing,
 * or false when the suite can run. Under OTP_E2E_REQUIRE_ALL=1 a missing
 * piece throws instead, so the run fails with the same message.
 * @param {Array<[boolean, string]>} needs pairs of (present?, what is missing)
 */
export function skipUnless(needs) {
  const missing = needs.filter(([present]) => !present).map(([, what]) => what);
  if (missing.length === 0) return false;
  const reason = `end-to-end suite skipped: ${missing.join('; ')}`;
  if (env.requireAll) throw new Error(`OTP_E2E_REQUIRE_ALL=1 but ${missing.join('; ')}`);
  console.error(reason);
  return reason;
}

/** The needs every server suite shares. */
export function serverNeeds() {
  return [
    [env.baseUrl !== '', 'OTP_BASE_URL is unset (start otp-server and point OTP_BASE_URL at it)'],
    [env.codesUrl !== '', 'OTP_CODES_URL is unset (the webhook receiver that records delivered codes)'],
  ];
}

/** The needs of the session suites (a server with short-lived access tokens). */
export function shortTtlNeeds() {
  return [
    ...serverNeeds(),
    [env.shortTtlBaseUrl !== '' && env.shortAccessTtl > 0,
      'OTP_SHORT_TTL_BASE_URL / OTP_SHORT_ACCESS_TTL are unset (a server with a short ACCESS_TOKEN_TTL)'],
  ];
}

/**
 * How many requests the server's `POST /api/v1/token/refresh` has answered
 * (any status): the sum of `http_requests_total{route="/api/v1/token/refresh",…}`
 * on its `/metrics`.
 * @param {string} baseUrl
 * @returns {Promise<number>}
 */
export async function refreshRequests(baseUrl) {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return text.split('\n')
    .filter((l) => l.startsWith('http_requests_total{') && l.includes('route="/api/v1/token/refresh"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh identity so tests never share rate limits or codes. */
export function randomIdentity(prefix = 'js') {
  return `${prefix}-${randomBytes(6).toString('hex')}@example.com`;
}

/**
 * Reads the last code delivered to `identity` from the webhook receiver,
 * polling while the receiver answers 404 (delivery is asynchronous).
 * @param {string} identity
 * @param {{attempts?: number, delayMs?: number}} [opts]
 * @returns {Promise<string>}
 */
export async function readDeliveredCode(identity, { attempts = 50, delayMs = 100 } = {}) {
  const url = `${env.codesUrl}/codes/${encodeURIComponent(identity)}`;
  for (let i = 0; i < attempts; i += 1) {
    const res = await fetch(url);
    if (res.status === 200) {
      const body = await res.json();
      if (typeof body.otp !== 'string') throw new Error(`codes endpoint answered without "otp": ${Object.keys(body)}`);
      return body.otp;
    }
    await res.arrayBuffer();
    if (res.status !== 404) throw new Error(`codes endpoint answered HTTP ${res.status}`);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  throw new Error(`no code was delivered to ${identity} within ${(attempts * delayMs) / 1000} s`);
}

/** A code of the same length that differs from `code` in every digit. */
export function wrongCodeFor(code) {
  return [...code].map((d) => String((Number(d) + 1) % 10)).join('');
}
