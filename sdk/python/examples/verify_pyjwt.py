"""Verify stateless-otp access tokens (JWT_ALGORITHM=EdDSA) in any Python
service with stock PyJWT, against the server's JWKS.

    pip install "pyjwt[crypto]"
    OTP_URL=https://auth.example.com python3 verify_pyjwt.py <token>
"""

import json
import os
import sys

import jwt

OTP_URL = os.environ.get("OTP_URL", "http://127.0.0.1:8000")

# Fetches the key set on first use and caches it; a token whose key id is
# not cached makes it fetch again (after a key rotation).
jwks = jwt.PyJWKClient(f"{OTP_URL}/.well-known/jwks.json", cache_keys=True)


def verify_access_token(token: str) -> dict:
    """The token's claims when it is valid; raises jwt.PyJWTError otherwise."""
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],  # never accept another algorithm
        issuer=os.environ.get("TOKEN_ISSUER", "stateless-otp"),
        audience=os.environ.get("TOKEN_AUDIENCE", "api"),
        options={"require": ["sub", "exp", "iat"]},
    )  # claims["sub"] is the signed-in identity


if __name__ == "__main__":
    try:
        print(json.dumps(verify_access_token(sys.argv[1] if len(sys.argv) > 1 else "")))
    except jwt.PyJWTError as err:
        print(f"invalid token: {type(err).__name__}", file=sys.stderr)
        sys.exit(1)
