// A complete login with @stateless-otp/client: send a code, let the user
// type it, verify it (the client stores the token), then check the token
// the way a protected service would.
import { pathToFileURL } from 'node:url';
import { OTPClient, OTPError } from '@stateless-otp/client';

/**
 * @param {string} baseUrl the stateless-otp server, e.g. "http://127.0.0.1:8000"
 * @param {string} identity who logs in (email, +E.164 phone number or user id)
 * @param {(identity: string) => Promise<string>} askForCode how the user gives the code
 * @returns {Promise<OTPClient>} a client holding the access token
 */
export async function login(baseUrl, identity, askForCode) {
  const client = new OTPClient({ baseUrl, timeout: 5000 });
  try {
    const sent = await client.requestOTP(identity);
    console.log(`Code sent; it is valid for ${sent.ttlSeconds} s.`);

    const code = await askForCode(identity);
    const verified = await client.verifyOTP(identity, code); // stores the token
    console.log(`Logged in; the token is valid for ${verified.expiresIn} s.`);

    const { claims } = await client.verifyBearer(); // uses the stored token
    console.log(`Hello, ${claims.sub}!`);
    return client;
  } catch (err) {
    if (err instanceof OTPError && err.code === 'rate_limit_exceeded') {
      console.error(`Too many attempts; try again in ${err.retryAfter} s.`);
    } else if (err instanceof OTPError && err.code === 'otp_invalid') {
      console.error('Wrong or expired code; ask for a new one.');
    } else if (err instanceof OTPError && err.code === 'network_error') {
      console.error(`The server is unreachable: ${err.message}`);
    }
    throw err;
  }
}

// node examples/login.mjs http://127.0.0.1:8000 you@example.com
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { createInterface } = await import('node:readline/promises');
  const [baseUrl = 'http://127.0.0.1:8000', identity = 'you@example.com'] = process.argv.slice(2);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    await login(baseUrl, identity, () => rl.question('Code: '));
  } catch {
    process.exitCode = 1;
  } finally {
    rl.close();
  }
}
