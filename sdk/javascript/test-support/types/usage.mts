// Type-checked (never run) by test/package.test.mjs: the ESM typings as a
// TypeScript user sees them through the package's "exports".
import OTPClientDefault, {
  OTPClient, OTPError, LocalStorageTokenStorage, MemoryTokenStorage, ErrorCode,
  type OTPRequestResult, type OTPVerifyResult, type TokenInfo, type TokenStorage, type JWKS,
  type RefreshResult, type LogoutResult,
} from '@stateless-otp/client';

export async function flow(storage: Storage): Promise<string> {
  const client = new OTPClient({ baseUrl: 'http://127.0.0.1:8000', timeout: 5000, storage: new LocalStorageTokenStorage('k', storage) });
  const sent: OTPRequestResult = await client.requestOTP('a@example.com');
  const ttl: number = sent.ttlSeconds;
  const verified: OTPVerifyResult = await client.verifyOTP('a@example.com', '123456');
  const token: string = verified.accessToken;
  const info: TokenInfo = await client.verifyBearer();
  const sub: string | undefined = info.claims?.sub;
  const keys: JWKS = await client.getJWKS();
  const stored: string | null = client.getToken();
  const refresh: string | null = verified.refreshToken;
  const fresh: RefreshResult = await client.refresh();
  const lifetime: number | null = fresh.expiresIn;
  const kept: string | null = client.getRefreshToken();
  client.setToken(fresh.accessToken, fresh.refreshToken);
  const out: LogoutResult = await client.logout({ all: true });
  const everywhere: boolean = out.all;
  await client.logout();
  const other = new OTPClientDefault('http://127.0.0.1:8000');
  const mem: TokenStorage = new MemoryTokenStorage();
  other.storage = mem;
  try {
    await other.introspectToken(token);
  } catch (err) {
    if (err instanceof OTPError && err.code === ErrorCode.RATE_LIMIT_EXCEEDED) {
      const wait: number | null = err.retryAfter;
      const status: number = err.statusCode;
      return `${wait} ${status}`;
    }
  }
  return `${ttl} ${sub} ${keys.keys.length} ${stored} ${refresh} ${lifetime} ${kept} ${everywhere}`;
}

// @ts-expect-error a numeric code is not accepted
new OTPClient('http://x').verifyOTP('a@example.com', 123456);

// @ts-expect-error logout takes an options object, not a boolean
new OTPClient('http://x').logout(true);

// A storage written for 0.1 (no refresh-token methods) still type-checks.
const plain: TokenStorage = { get: () => null, set: () => {}, clear: () => {} };
new OTPClient({ baseUrl: 'http://x', storage: plain });
