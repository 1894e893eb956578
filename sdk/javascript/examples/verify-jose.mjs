// Verify stateless-otp access tokens (JWT_ALGORITHM=EdDSA) in any Node
// service with the stock `jose` library, against the server's JWKS.
//   npm install jose
//   OTP_URL=https://auth.example.com node verify-jose.mjs <token>
import { fileURLToPath } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const OTP_URL = process.env.OTP_URL ?? 'http://127.0.0.1:8000';

// Fetched on first use, cached, and refetched when a token names a key id
// the cache does not have (after a key rotation).
const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', OTP_URL));

/** The token's claims when it is valid; throws (a jose error) otherwise. */
export async function verifyAccessToken(token) {
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: ['EdDSA'], // never accept another algorithm
    issuer: process.env.TOKEN_ISSUER ?? 'stateless-otp',
    audience: process.env.TOKEN_AUDIENCE ?? 'api',
    requiredClaims: ['sub', 'exp', 'iat'],
  });
  return payload; // payload.sub is the signed-in identity
}

/** Express/Connect middleware: 401 unless the bearer token verifies. */
export function requireAccessToken(req, res, next) {
  const match = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '');
  verifyAccessToken(match ? match[1] : '').then(
    (claims) => {
      req.user = claims;
      next();
    },
    () => {
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      res.end();
    },
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  verifyAccessToken(process.argv[2] ?? '').then(
    (claims) => console.log(JSON.stringify(claims)),
    (err) => {
      console.error(`invalid token: ${err.code ?? err.name}`);
      process.exitCode = 1;
    },
  );
}
