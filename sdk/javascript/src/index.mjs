/**
 * @stateless-otp/client — JavaScript SDK for the stateless-otp REST API.
 *
 * One file, zero runtime dependencies. It runs in Node.js >= 18 and in
 * browsers: it needs only `fetch` and `AbortController`. This file is the
 * source and the browser's ESM entry; `dist/index.cjs` is its CommonJS twin,
 * generated from it by `scripts/build.mjs` (never edit the twin by hand).
 * In Node, `import` and `require` both reach that one CommonJS copy (through
 * the `dist/index.mjs` wrapper for `import`), so there is only one `OTPError`
 * class and `instanceof` holds whichever way a module loaded the SDK.
 *
 * The method names and result shapes are those of the earlier Python
 * service's JavaScript SDK, so code written against it keeps working.
 */

/** Version of this SDK (kept equal to package.json's `version`). */
export const VERSION = '0.2.0';

/** Default per-attempt timeout in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10000;

/** Default number of retries for retryable failures (see `OTPClient`). */
export const DEFAULT_MAX_RETRIES = 2;

/** Default base delay in milliseconds between retries (doubled each time). */
export const DEFAULT_RETRY_DELAY_MS = 250;

/** Longest wait between two retries, whatever `Retry-After` asks for. */
const MAX_RETRY_WAIT_MS = 5000;

/**
 * How long a tab keeps the refresh lock after it stored the new tokens.
 * Web Storage writes reach the other tabs' copies asynchronously (another
 * renderer process), and the lock can be granted to a waiting tab before
 * the write has arrived there; holding the lock a moment longer lets that
 * tab's re-read see the rotated token. The refreshing tab does not wait.
 */
const LOCK_SETTLE_MS = 100;

/**
 * Every `code` an `OTPError` can carry. The first fourteen come from the
 * server's error bodies; the last four are raised by the SDK itself and
 * always have `statusCode` 0 (no HTTP answer) or the status of an answer
 * that was not one of the server's JSON error bodies.
 */
export const ErrorCode = Object.freeze({
  VALIDATION_ERROR: 'validation_error',
  OTP_INVALID: 'otp_invalid',
  RATE_LIMIT_EXCEEDED: 'rate_limit_exceeded',
  DELIVERY_FAILED: 'delivery_failed',
  BACKEND_UNAVAILABLE: 'backend_unavailable',
  TOKEN_MISSING: 'token_missing',
  TOKEN_INVALID: 'token_invalid',
  TOKEN_EXPIRED: 'token_expired',
  SESSION_REVOKED: 'session_revoked',
  REQUEST_TIMEOUT: 'request_timeout',
  PAYLOAD_TOO_LARGE: 'payload_too_large',
  UNSUPPORTED_MEDIA_TYPE: 'unsupported_media_type',
  NOT_FOUND: 'not_found',
  METHOD_NOT_ALLOWED: 'method_not_allowed',
  INTERNAL_ERROR: 'internal_error',
  /** The server could not be reached (DNS, refused connection, CORS, TLS). */
  NETWORK_ERROR: 'network_error',
  /** No complete answer arrived within the configured timeout. */
  TIMEOUT: 'timeout',
  /** An HTTP error whose body was not a `{"error": ...}` JSON object. */
  HTTP_ERROR: 'http_error',
  /** A 2xx answer whose body was not the JSON the API promises. */
  INVALID_RESPONSE: 'invalid_response',
});

/**
 * The one error type the client throws for anything that went wrong on the
 * wire or on the server. Programming errors (a number passed as the code,
 * no base URL) are `TypeError`s instead.
 */
export class OTPError extends Error {
  /**
   * @param {string} message human-readable text (the server's `message` when there is one)
   * @param {{code: string, statusCode?: number, retryAfter?: number|null, details?: unknown, cause?: unknown}} fields
   */
  constructor(message, fields) {
    const { code, statusCode = 0, retryAfter = null, details = null, cause } = fields;
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'OTPError';
    /** Stable machine-readable code, one of `ErrorCode`'s values. */
    this.code = code;
    /** HTTP status of the answer, or 0 when no answer arrived. */
    this.statusCode = statusCode;
    /** Seconds to wait before trying again (from `Retry-After`), or null. */
    this.retryAfter = retryAfter;
    /** Offending fields of a 422 answer (`[{loc, msg, type}]`), or null. */
    this.details = details;
  }
}

/**
 * Token storage that lives as long as the client object (the default). It
 * keeps the access token (`get`/`set`) and the session's refresh token
 * (`getRefreshToken`/`setRefreshToken`); `clear` forgets both.
 */
export class MemoryTokenStorage {
  constructor() {
    this._token = null;
    this._refresh = null;
  }

  /** @returns {string|null} */
  get() {
    return this._token;
  }

  /** @param {string} token */
  set(token) {
    this._token = token;
  }

  /** @returns {string|null} */
  getRefreshToken() {
    return this._refresh;
  }

  /** @param {string|null} token */
  setRefreshToken(token) {
    this._refresh = token;
  }

  clear() {
    this._token = null;
    this._refresh = null;
  }
}

/**
 * Token storage on top of the browser's `localStorage` (or any object with
 * `getItem`/`setItem`/`removeItem`, such as `sessionStorage`), so the login
 * survives a page reload and is shared by the tabs of one origin. The
 * access token is under `key`, the refresh token under `key + '.refresh'`.
 */
export class LocalStorageTokenStorage {
  /**
   * @param {string} [key] the storage key
   * @param {{getItem(k: string): string|null, setItem(k: string, v: string): void, removeItem(k: string): void}} [storage]
   */
  constructor(key = 'stateless-otp.token', storage = globalThis.localStorage) {
    if (!storage || typeof storage.getItem !== 'function') {
      throw new TypeError('LocalStorageTokenStorage: no localStorage here; pass a Storage object');
    }
    this.key = key;
    this.storage = storage;
  }

  /** @returns {string|null} */
  get() {
    const value = this.storage.getItem(this.key);
    return typeof value === 'string' && value !== '' ? value : null;
  }

  /** @param {string} token */
  set(token) {
    this.storage.setItem(this.key, token);
  }

  /** @returns {string|null} */
  getRefreshToken() {
    const value = this.storage.getItem(`${this.key}.refresh`);
    return typeof value === 'string' && value !== '' ? value : null;
  }

  /** @param {string|null} token */
  setRefreshToken(token) {
    if (token === null) this.storage.removeItem(`${this.key}.refresh`);
    else this.storage.setItem(`${this.key}.refresh`, token);
  }

  clear() {
    this.storage.removeItem(this.key);
    this.storage.removeItem(`${this.key}.refresh`);
  }
}

/**
 * Parses a `Retry-After` header: delay-seconds or an HTTP date.
 * @param {string|null} value
 * @param {number} [nowMs]
 * @returns {number|null} whole seconds (>= 0), or null when absent or unreadable
 */
export function parseRetryAfter(value, nowMs = Date.now()) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, Math.ceil((when - nowMs) / 1000));
}

const STATUS_CODES = {
  404: 'not_found', 405: 'method_not_allowed', 408: 'request_timeout', 413: 'payload_too_large', 415: 'unsupported_media_type',
};

function isPlainObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorFromResponse(status, headers, data) {
  const body = isPlainObject(data) ? data : {};
  const code = typeof body.error === 'string' && body.error !== ''
    ? body.error
    : (STATUS_CODES[status] || ErrorCode.HTTP_ERROR);
  const message = typeof body.message === 'string' && body.message !== ''
    ? body.message
    : `The OTP server answered HTTP ${status}.`;
  let retryAfter = parseRetryAfter(headers.get('retry-after'));
  // A browser only sees Retry-After when the server exposes it through CORS;
  // fall back on a body field when the server also sends one.
  if (retryAfter === null && typeof body.retry_after === 'number') retryAfter = body.retry_after;
  const details = body.details === undefined ? null : body.details;
  return new OTPError(message, { code, statusCode: status, retryAfter, details });
}

function isRetryable(err, idempotent) {
  if (!(err instanceof OTPError)) return false;
  // The service fails closed before doing anything when its store is down,
  // so even a non-idempotent call may be repeated after a 503 of that kind.
  if (err.code === ErrorCode.BACKEND_UNAVAILABLE) return true;
  if (!idempotent) return false;
  if (err.code === ErrorCode.NETWORK_ERROR || err.code === ErrorCode.TIMEOUT) return true;
  return err.statusCode === 502 || err.statusCode === 503 || err.statusCode === 504;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function missingToken(message) {
  return new OTPError(message, { code: ErrorCode.TOKEN_MISSING, statusCode: 0 });
}

/** The Web Locks API when this runtime has one (browsers; not Node). */
function webLocks() {
  const locks = globalThis.navigator && globalThis.navigator.locks;
  return locks && typeof locks.request === 'function' ? locks : null;
}

function refreshResult(data) {
  return {
    accessToken: data.access_token,
    tokenType: data.token_type,
    expiresIn: data.expires_in,
    refreshToken: data.refresh_token,
    refreshExpiresIn: data.refresh_expires_in,
  };
}

function tokenInfo(data) {
  return { active: data.active === true, claims: isPlainObject(data.claims) ? data.claims : null };
}

function requireString(name, value) {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
}

/**
 * The server's base URL as the client uses it: trimmed, without trailing
 * slashes and without a final `/api/v1` (so `https://auth.example.com`,
 * `https://auth.example.com/` and `https://auth.example.com/api/v1/` all
 * name the same server; a path prefix such as `/auth` is kept).
 * @param {string} baseUrl
 * @returns {string}
 */
export function normalizeBaseUrl(baseUrl) {
  return baseUrl.trim().replace(/\/+$/, '').replace(/\/api\/v1$/, '');
}

/**
 * Client for one stateless-otp server.
 *
 * Retries: calls that change nothing on the server (`introspectToken`,
 * `verifyBearer`, `getJWKS`, `health`) are retried up to `maxRetries` times
 * after a network error, a timeout or a 502/503/504. `requestOTP` and
 * `verifyOTP` are retried only after 503 `backend_unavailable` (the server
 * did nothing), never after a lost answer: a second send would mail another
 * code and a second verify of a used code fails. 429 is never retried.
 * `refresh` is retried like a read: presented again within the server's
 * grace window, a refresh token yields the very same successor.
 *
 * Sessions: `verifyOTP` stores the access token and the refresh token in
 * the storage. `verifyBearer()` (the stored token) refreshes once when the
 * server answers `token_expired`, then retries once. One refresh is in
 * flight at a time: in this client, concurrent callers share one promise;
 * across browser tabs, the refresh runs under the Web Lock
 * `stateless-otp-refresh:<baseUrl>` and re-reads the storage first, so a
 * tab that finds the refresh token already rotated by another tab uses the
 * stored pair and sends nothing.
 */
export class OTPClient {
  /**
   * @param {string | {baseUrl: string, timeout?: number, storage?: {get(): string|null, set(token: string): void, clear(): void}, fetch?: typeof fetch, headers?: Record<string, string>, maxRetries?: number, retryDelay?: number}} options
   *   the server's base URL, or an options object
   */
  constructor(options) {
    const opts = typeof options === 'string' ? { baseUrl: options } : (options || {});
    const {
      baseUrl,
      timeout = DEFAULT_TIMEOUT_MS,
      storage = new MemoryTokenStorage(),
      fetch: fetchImpl,
      headers = {},
      maxRetries = DEFAULT_MAX_RETRIES,
      retryDelay = DEFAULT_RETRY_DELAY_MS,
    } = opts;
    if (typeof baseUrl !== 'string' || baseUrl.trim() === '') {
      throw new TypeError('OTPClient: baseUrl is required, e.g. "https://auth.example.com"');
    }
    if (!(Number.isFinite(timeout) && timeout > 0)) {
      throw new TypeError('OTPClient: timeout must be a positive number of milliseconds');
    }
    if (!(Number.isInteger(maxRetries) && maxRetries >= 0)) {
      throw new TypeError('OTPClient: maxRetries must be a whole number >= 0');
    }
    if (!storage || typeof storage.get !== 'function' || typeof storage.set !== 'function'
      || typeof storage.clear !== 'function') {
      throw new TypeError('OTPClient: storage must have get(), set(token) and clear()');
    }
    if (fetchImpl === undefined && typeof globalThis.fetch !== 'function') {
      throw new TypeError('OTPClient: no global fetch here (Node >= 18 has one); pass options.fetch');
    }
    /**
     * The server's base URL, without a trailing slash or `/api/v1` suffix
     * (the Python service's SDKs were documented with `…/api/v1`).
     */
    this.baseUrl = normalizeBaseUrl(baseUrl);
    /** Per-attempt timeout in milliseconds. */
    this.timeout = timeout;
    /** Retries after a retryable failure. */
    this.maxRetries = maxRetries;
    /** Base delay between retries in milliseconds. */
    this.retryDelay = retryDelay;
    /** Where the access token (and, when it can, the refresh token) is kept. */
    this.storage = storage;
    // A storage without getRefreshToken/setRefreshToken (written for
    // earlier versions): the refresh token lives in this object instead.
    this._ownRefresh = null;
    this._refreshing = null;
    this._headers = { ...headers };
    // A browser's fetch must be called with the global object as `this`.
    this._fetch = fetchImpl || ((...args) => globalThis.fetch(...args));
  }

  /**
   * Asks the server to derive and deliver a code to `identity`.
   * @param {string} identity email, phone number (E.164) or user id
   * @returns {Promise<{success: boolean, message: string, ttlSeconds: number, expiresAt: number, rateLimitRemaining: number|null}>}
   */
  async requestOTP(identity) {
    requireString('identity', identity);
    const data = await this._request('POST', '/api/v1/otp/request', { body: { identity } });
    return {
      success: data.success === true,
      message: data.message,
      ttlSeconds: data.ttl_seconds,
      expiresAt: data.expires_at,
      rateLimitRemaining: data.rate_limit_remaining ?? null,
    };
  }

  /**
   * Checks the code the user typed; on success stores the access token and
   * the session's refresh token (none when the server runs with
   * `SESSIONS=off`).
   * @param {string} identity the identity the code was sent to
   * @param {string} otp the code, as a string (a number would lose leading zeros)
   * @returns {Promise<{success: boolean, message: string, accessToken: string, tokenType: string, expiresIn: number, rateLimitRemaining: number|null}>}
   */
  async verifyOTP(identity, otp) {
    requireString('identity', identity);
    requireString('otp', otp);
    const data = await this._request('POST', '/api/v1/otp/verify', { body: { identity, otp } });
    if (typeof data.access_token !== 'string' || data.access_token === '') {
      throw new OTPError('The OTP server answered without an access token.', {
        code: ErrorCode.INVALID_RESPONSE, statusCode: 200,
      });
    }
    const refreshToken = typeof data.refresh_token === 'string' && data.refresh_token !== '' ? data.refresh_token : null;
    this._store(data.access_token, refreshToken);
    return {
      success: data.success === true,
      message: data.message,
      accessToken: data.access_token,
      tokenType: data.token_type,
      expiresIn: data.expires_in,
      rateLimitRemaining: data.rate_limit_remaining ?? null,
      refreshToken,
      refreshExpiresIn: data.refresh_expires_in ?? null,
    };
  }

  /**
   * Asks the server whether a token is valid. An invalid token is not an
   * error: the answer is `{active: false, claims: null}`.
   * @param {string} [token] defaults to the stored token
   * @returns {Promise<{active: boolean, claims: Record<string, unknown>|null}>}
   */
  async introspectToken(token) {
    const value = this._tokenOrStored(token);
    const data = await this._request('POST', '/api/v1/token/introspect', {
      body: { token: value }, idempotent: true,
    });
    return tokenInfo(data);
  }

  /**
   * Verifies a token the way a protected service does (`Authorization:
   * Bearer`). Throws `OTPError` 401 `token_invalid` / `token_expired` for a
   * bad token. With the stored token (no argument), a `token_expired`
   * answer is followed by one refresh and one retry; a token still refused
   * after that is cleared, with the refresh token.
   * @param {string} [token] defaults to the stored token
   * @returns {Promise<{active: boolean, claims: Record<string, unknown>|null}>}
   */
  async verifyBearer(token) {
    const verify = async (bearer) => tokenInfo(
      await this._request('GET', '/api/v1/token/verify', { bearer, idempotent: true }),
    );
    if (token !== undefined) return verify(this._tokenOrStored(token));
    try {
      return await this._withAccessToken(verify);
    } catch (err) {
      if (err instanceof OTPError && err.statusCode === 401) this._forget();
      throw err;
    }
  }

  /**
   * Exchanges the stored refresh token for a new access token and its
   * successor (`POST /api/v1/token/refresh`), and stores both. Concurrent
   * calls share one request; in a browser, tabs take turns under a Web Lock
   * and a tab that finds the refresh token already rotated by another one
   * returns the stored pair without a request (then `expiresIn` and
   * `refreshExpiresIn` are null). Rejects with `OTPError` 401
   * `session_revoked` (logged out, signed out everywhere, or revoked after
   * a reuse), `token_expired` (the session's lifetime is over) or
   * `token_invalid`, and then forgets the tokens: sign in again. Rejects
   * with `token_missing` (statusCode 0, no request) when no refresh token
   * is stored.
   * @returns {Promise<{accessToken: string, tokenType: string, expiresIn: number|null, refreshToken: string, refreshExpiresIn: number|null}>}
   */
  refresh() {
    return this._refreshOnce(this.getRefreshToken());
  }

  /**
   * Ends the session on the server (`POST /api/v1/logout`) and forgets the
   * stored tokens. The tokens are forgotten at once, before the request,
   * so the client is signed out whatever the answer; a rejection says the
   * server did not confirm (the session then ends by itself when its
   * refresh token expires). The refresh token names the session (else the
   * access token, even an expired one). With `{all: true}` every session
   * of the identity ends ("sign out everywhere"). Access tokens already
   * issued stay valid until they expire. With no token stored it resolves
   * without a request (`{all: true}` rejects with `token_missing`).
   * @param {{all?: boolean}} [options]
   * @returns {Promise<{success: boolean, all: boolean}>}
   */
  async logout(options = {}) {
    const all = options !== null && typeof options === 'object' && options.all === true;
    let refresh = this.getRefreshToken();
    let access = this.getToken();
    const inFlight = this._refreshing;
    this._forget();
    if (inFlight !== null) {
      // The refresh in flight stores a successor: that is the token to end.
      try {
        const fresh = await inFlight;
        ({ refreshToken: refresh, accessToken: access } = fresh);
      } catch {
        // It failed: the tokens read above are the latest.
      }
      this._forget();
    }
    if (refresh === null && access === null) {
      if (all) throw missingToken('No token is stored: nothing names the sessions to end; sign in first.');
      return { success: true, all: false };
    }
    const body = refresh !== null ? { refresh_token: refresh, all } : { all };
    const bearer = refresh !== null ? undefined : access;
    const data = await this._request('POST', '/api/v1/logout', { body, bearer });
    return { success: data.success === true, all: data.all === true };
  }

  /**
   * Fetches the server's public keys (empty `keys` for HS256 servers).
   * @returns {Promise<{keys: Array<Record<string, unknown>>}>}
   */
  async getJWKS() {
    const data = await this._request('GET', '/.well-known/jwks.json', { idempotent: true });
    if (!Array.isArray(data.keys)) {
      throw new OTPError('The JWKS answer has no "keys" list.', { code: ErrorCode.INVALID_RESPONSE, statusCode: 200 });
    }
    return { keys: data.keys };
  }

  /**
   * Liveness probe.
   * @returns {Promise<{status: string, service: string}>}
   */
  async health() {
    const data = await this._request('GET', '/health', { idempotent: true });
    return { status: data.status, service: data.service };
  }

  /** @returns {string|null} the stored access token, if any */
  getToken() {
    const token = this.storage.get();
    return typeof token === 'string' && token !== '' ? token : null;
  }

  /** @returns {string|null} the stored refresh token, if any */
  getRefreshToken() {
    const token = typeof this.storage.getRefreshToken === 'function'
      ? this.storage.getRefreshToken()
      : this._ownRefresh;
    return typeof token === 'string' && token !== '' ? token : null;
  }

  /**
   * Stores a token obtained elsewhere (e.g. restored from a cookie), and
   * optionally the session's refresh token.
   * @param {string} token
   * @param {string} [refreshToken]
   */
  setToken(token, refreshToken) {
    requireString('token', token);
    if (refreshToken !== undefined) {
      requireString('refreshToken', refreshToken);
      this._store(token, refreshToken);
    } else {
      this.storage.set(token);
    }
  }

  /** Forgets the stored tokens, locally only (`logout` also ends the session). */
  clearToken() {
    this._forget();
  }

  _store(access, refresh) {
    // The refresh token first: a reader that sees the new access token
    // never pairs it with a spent refresh token.
    if (typeof this.storage.setRefreshToken === 'function') this.storage.setRefreshToken(refresh);
    else this._ownRefresh = refresh;
    this.storage.set(access);
  }

  _forget() {
    this.storage.clear();
    this._ownRefresh = null;
  }

  /**
   * Runs `call` with the stored access token; on `token_expired` with a
   * refresh token stored, refreshes once and runs it once more. With only
   * a refresh token stored, refreshes first.
   */
  async _withAccessToken(call) {
    const meant = this.getRefreshToken();
    const token = this.getToken();
    if (token === null) {
      if (meant === null) throw missingToken('No token was given and none is stored; call verifyOTP first.');
      return call((await this._refreshOnce(meant)).accessToken);
    }
    try {
      return await call(token);
    } catch (err) {
      if (!(err instanceof OTPError) || err.code !== ErrorCode.TOKEN_EXPIRED || meant === null) throw err;
    }
    return call((await this._refreshOnce(meant)).accessToken);
  }

  /** One refresh in flight per client: concurrent callers share its promise. */
  _refreshOnce(meant) {
    if (this._refreshing === null) {
      const locks = webLocks();
      const job = locks ? this._refreshUnderLock(locks, meant) : this._refreshNow(meant);
      this._refreshing = job.finally(() => {
        this._refreshing = null;
      });
    }
    return this._refreshing;
  }

  /** `_refreshNow` under the Web Lock shared by every tab of this origin. */
  _refreshUnderLock(locks, meant) {
    return new Promise((resolve, reject) => {
      locks.request(`stateless-otp-refresh:${this.baseUrl}`, async () => {
        let fresh;
        try {
          fresh = await this._refreshNow(meant);
        } catch (err) {
          reject(err);
          return;
        }
        resolve(fresh);
        if (fresh.expiresIn !== null) await sleep(LOCK_SETTLE_MS);
      }).catch(reject);
    });
  }

  /** The refresh itself (under the Web Lock when there is one). */
  async _refreshNow(meant) {
    // Re-read the storage: another tab may have rotated while we waited.
    const stored = this.getRefreshToken();
    if (stored === null) throw missingToken('No refresh token is stored (signed out, perhaps in another tab); sign in again.');
    const access = this.getToken();
    if (meant !== null && stored !== meant && access !== null) {
      return { accessToken: access, tokenType: 'bearer', expiresIn: null, refreshToken: stored, refreshExpiresIn: null };
    }
    let data;
    try {
      data = await this._request('POST', '/api/v1/token/refresh', { body: { refresh_token: stored }, idempotent: true });
    } catch (err) {
      // A 401 is final for this token: the session is over.
      if (err instanceof OTPError && err.statusCode === 401 && this.getRefreshToken() === stored) this._forget();
      throw err;
    }
    if (typeof data.access_token !== 'string' || typeof data.refresh_token !== 'string') {
      throw new OTPError('The OTP server answered a refresh without the tokens.', {
        code: ErrorCode.INVALID_RESPONSE, statusCode: 200,
      });
    }
    this._store(data.access_token, data.refresh_token);
    return refreshResult(data);
  }

  _tokenOrStored(token) {
    if (token !== undefined) {
      requireString('token', token);
      return token;
    }
    const stored = this.getToken();
    if (stored === null) throw missingToken('No token was given and none is stored; call verifyOTP first.');
    return stored;
  }

  async _request(method, path, { body, bearer, idempotent = false } = {}) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this._send(method, path, body, bearer);
      } catch (err) {
        if (attempt >= this.maxRetries || !isRetryable(err, idempotent)) throw err;
        const backoff = this.retryDelay * 2 ** attempt;
        const wait = err.retryAfter !== null ? err.retryAfter * 1000 : backoff;
        await sleep(Math.min(wait, MAX_RETRY_WAIT_MS));
      }
    }
  }

  async _send(method, path, body, bearer) {
    const headers = { Accept: 'application/json', ...this._headers };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (bearer !== undefined) headers.Authorization = `Bearer ${bearer}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeout);
    let response;
    let text;
    try {
      response = await this._fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
      text = await response.text();
    } catch (err) {
      if (controller.signal.aborted) {
        throw new OTPError(`No answer from ${this.baseUrl}${path} within ${this.timeout} ms.`, {
          code: ErrorCode.TIMEOUT, statusCode: 0, cause: err,
        });
      }
      // Node's fetch says only "fetch failed"; the useful part is in `cause`.
      const cause = err && err.cause;
      const detail = cause && (cause.code || cause.message);
      const reason = detail ? `${err.message} (${detail})` : String(err && err.message);
      throw new OTPError(`Could not reach the OTP server at ${this.baseUrl}: ${reason}`, {
        code: ErrorCode.NETWORK_ERROR, statusCode: 0, cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
    let data;
    try {
      data = text === '' ? undefined : JSON.parse(text);
    } catch {
      data = undefined;
    }
    if (!response.ok) throw errorFromResponse(response.status, response.headers, data);
    if (!isPlainObject(data)) {
      throw new OTPError(`The OTP server answered HTTP ${response.status} without a JSON object.`, {
        code: ErrorCode.INVALID_RESPONSE, statusCode: response.status,
      });
    }
    return data;
  }
}

export default OTPClient;
