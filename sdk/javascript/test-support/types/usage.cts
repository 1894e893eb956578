// Type-checked (never run) by test/package.test.mjs: the CommonJS typings.
import sdk = require('@stateless-otp/client');

export async function flow(): Promise<boolean> {
  const client = new sdk.OTPClient({ baseUrl: 'http://127.0.0.1:8000' });
  const info: sdk.TokenInfo = await client.introspectToken('t');
  const err = new sdk.OTPError('x', { code: 'network_error' });
  return info.active && err.statusCode === 0;
}
