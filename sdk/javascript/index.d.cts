// Type declarations for @stateless-otp/client (hand-maintained; index.d.cts is
// a generated copy for CommonJS consumers).

/** Version of this SDK. */
export declare const VERSION: string;
/** Default per-attempt timeout in milliseconds (10000). */
export declare const DEFAULT_TIMEOUT_MS: number;
/** Default number of retries for retryable failures (2). */
export declare const DEFAULT_MAX_RETRIES: number;
/** Default base delay between retries in milliseconds (250). */
export declare const DEFAULT_RETRY_DELAY_MS: number;

/** Error codes sent by the server. */
export type ServerErrorCode =
  | 'validation_error'
  | 'otp_invalid'
  | 'rate_limit_exceeded'
  | 'delivery_failed'
  | 'backend_unavailable'
  | 'token_missing'
  | 'token_invalid'
  | 'token_expired'
  | 'session_revoked'
  | 'request_timeout'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'not_found'
  | 'method_not_allowed'
  | 'internal_error';

/** Error codes raised by the SDK itself. */
export type ClientErrorCode = 'network_error' | 'timeout' | 'http_error' | 'invalid_response';

/** Every code an `OTPError` can carry. */
export type OTPErrorCode = ServerErrorCode | ClientErrorCode;

/** The codes as named constants. */
export declare const ErrorCode: Readonly<{
  VALIDATION_ERROR: 'validation_error';
  OTP_INVALID: 'otp_invalid';
  RATE_LIMIT_EXCEEDED: 'rate_limit_exceeded';
  DELIVERY_FAILED: 'delivery_failed';
  BACKEND_UNAVAILABLE: 'backend_unavailable';
  TOKEN_MISSING: 'token_missing';
  TOKEN_INVALID: 'token_invalid';
  TOKEN_EXPIRED: 'token_expired';
  SESSION_REVOKED: 'session_revoked';
  REQUEST_TIMEOUT: 'request_timeout';
  PAYLOAD_TOO_LARGE: 'payload_too_large';
  UNSUPPORTED_MEDIA_TYPE: 'unsupported_media_type';
  NOT_FOUND: 'not_found';
  METHOD_NOT_ALLOWED: 'method_not_allowed';
  INTERNAL_ERROR: 'internal_error';
  NETWORK_ERROR: 'network_error';
  TIMEOUT: 'timeout';
  HTTP_ERROR: 'http_error';
  INVALID_RESPONSE: 'invalid_response';
}>;

/** One offending field of a 422 answer (FastAPI's shape). */
export interface ValidationDetail {
  /** Path of the field, e.g. ["body", "identity"]. */
  loc: string[];
  /** What is wrong with it. */
  msg: string;
  /** A short machine-readable kind, e.g. "missing", "value_error". */
  type: string;
}

/** The one error type the client throws for wire and server failures. */
export declare class OTPError extends Error {
  constructor(
    message: string,
    fields: {
      code: OTPErrorCode | string;
      statusCode?: number;
      retryAfter?: number | null;
      details?: ValidationDetail[] | null;
      cause?: unknown;
    },
  );
  readonly name: 'OTPError';
  /** Stable machine-readable code. */
  code: OTPErrorCode | string;
  /** HTTP status of the answer, or 0 when no answer arrived. */
  statusCode: number;
  /** Seconds to wait before trying again (from `Retry-After`), or null. */
  retryAfter: number | null;
  /** Offending fields of a 422 answer, or null. */
  details: ValidationDetail[] | null;
}

/**
 * Where the client keeps the session's tokens. Methods are synchronous.
 * `get`/`set` hold the access token; `getRefreshToken`/`setRefreshToken`
 * the refresh token (a storage without them, written for an earlier
 * version, leaves the refresh token in the client object); `clear` forgets
 * both.
 */
export interface TokenStorage {
  get(): string | null;
  set(token: string): void;
  clear(): void;
  getRefreshToken?(): string | null;
  setRefreshToken?(token: string | null): void;
}

/** Keeps the tokens in memory (the default). */
export declare class MemoryTokenStorage implements TokenStorage {
  constructor();
  get(): string | null;
  set(token: string): void;
  getRefreshToken(): string | null;
  setRefreshToken(token: string | null): void;
  clear(): void;
}

/** The part of the Web Storage API that `LocalStorageTokenStorage` uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * Keeps the access token in `localStorage` (or another Storage) under
 * `key`, and the refresh token under `key + ".refresh"`.
 */
export declare class LocalStorageTokenStorage implements TokenStorage {
  constructor(key?: string, storage?: StorageLike);
  readonly key: string;
  readonly storage: StorageLike;
  get(): string | null;
  set(token: string): void;
  getRefreshToken(): string | null;
  setRefreshToken(token: string | null): void;
  clear(): void;
}

/** Options of `OTPClient`. */
export interface OTPClientOptions {
  /**
   * The server's base URL, e.g. "https://auth.example.com" (a path prefix is
   * kept; a trailing slash or `/api/v1` suffix is dropped).
   */
  baseUrl: string;
  /** Per-attempt timeout in milliseconds. Defaults to 10000. */
  timeout?: number;
  /** Token storage. Defaults to a new `MemoryTokenStorage`. */
  storage?: TokenStorage;
  /** A fetch implementation. Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Extra headers sent with every request. Defaults to none. */
  headers?: Record<string, string>;
  /** Retries after a retryable failure. Defaults to 2. */
  maxRetries?: number;
  /** Base delay between retries in milliseconds, doubled each time. Defaults to 250. */
  retryDelay?: number;
}

/** Result of `requestOTP`. */
export interface OTPRequestResult {
  success: boolean;
  message: string;
  /** How long the code stays valid, in seconds. */
  ttlSeconds: number;
  /** When the code stops being valid, as Unix seconds. */
  expiresAt: number;
  /** Sends left in the current rate-limit window, if the server said. */
  rateLimitRemaining: number | null;
}

/** Result of `verifyOTP`. */
export interface OTPVerifyResult {
  success: boolean;
  message: string;
  accessToken: string;
  /** "bearer". */
  tokenType: string;
  /** Lifetime of the token in seconds. */
  expiresIn: number;
  rateLimitRemaining: number | null;
  /** The session's refresh token (stored too); null with `SESSIONS=off`. */
  refreshToken: string | null;
  /** Lifetime of the refresh token in seconds, or null. */
  refreshExpiresIn: number | null;
}

/** Result of `refresh`. */
export interface RefreshResult {
  accessToken: string;
  /** "bearer". */
  tokenType: string;
  /** Lifetime of the access token in seconds; null when another tab refreshed. */
  expiresIn: number | null;
  /** The successor refresh token (the one presented is spent). */
  refreshToken: string;
  /** Lifetime of the refresh token in seconds; null when another tab refreshed. */
  refreshExpiresIn: number | null;
}

/** Result of `logout`. */
export interface LogoutResult {
  success: boolean;
  /** Whether every session of the identity ended. */
  all: boolean;
}

/** Claims of a stateless-otp access token. */
export interface TokenClaims {
  sub: string;
  iss?: string;
  aud?: string | string[];
  iat?: number;
  nbf?: number;
  exp: number;
  jti?: string;
  amr?: string[];
  [claim: string]: unknown;
}

/** Result of `introspectToken` and `verifyBearer`. */
export interface TokenInfo {
  active: boolean;
  claims: TokenClaims | null;
}

/** A JSON Web Key Set. */
export interface JWKS {
  keys: Array<Record<string, unknown>>;
}

/** Result of `health`. */
export interface HealthResult {
  status: string;
  service: string;
}

/**
 * The base URL as the client uses it: trimmed, without trailing slashes and
 * without a final `/api/v1`.
 */
export declare function normalizeBaseUrl(baseUrl: string): string;

/** Parses a `Retry-After` value (seconds or HTTP date) into whole seconds. */
export declare function parseRetryAfter(value: string | null | undefined, nowMs?: number): number | null;

/** Client for one stateless-otp server. */
export declare class OTPClient {
  constructor(options: string | OTPClientOptions);
  /** The base URL without a trailing slash or `/api/v1` (see `normalizeBaseUrl`). */
  readonly baseUrl: string;
  timeout: number;
  maxRetries: number;
  retryDelay: number;
  storage: TokenStorage;
  /** Asks the server to derive and deliver a code to `identity`. */
  requestOTP(identity: string): Promise<OTPRequestResult>;
  /** Checks the code; on success stores the access and refresh tokens. */
  verifyOTP(identity: string, otp: string): Promise<OTPVerifyResult>;
  /** Asks whether a token (default: the stored one) is valid. */
  introspectToken(token?: string): Promise<TokenInfo>;
  /**
   * Verifies a token (default: the stored one) as a Bearer header; with the
   * stored one, refreshes once on `token_expired` and retries once.
   */
  verifyBearer(token?: string): Promise<TokenInfo>;
  /**
   * Exchanges the stored refresh token for new tokens and stores them; one
   * refresh in flight at a time (across browser tabs too, by Web Lock).
   */
  refresh(): Promise<RefreshResult>;
  /**
   * Forgets the stored tokens at once and ends the session on the server;
   * `{all: true}` ends every session of the identity.
   */
  logout(options?: { all?: boolean }): Promise<LogoutResult>;
  /** The server's public keys. */
  getJWKS(): Promise<JWKS>;
  /** Liveness probe. */
  health(): Promise<HealthResult>;
  /** The stored access token, if any. */
  getToken(): string | null;
  /** The stored refresh token, if any. */
  getRefreshToken(): string | null;
  /** Stores a token obtained elsewhere, and optionally its refresh token. */
  setToken(token: string, refreshToken?: string): void;
  /** Forgets the stored tokens, locally only. */
  clearToken(): void;
}

export default OTPClient;
