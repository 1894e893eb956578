"""PyJWT side of the otp-core token interop tests (tests/core/tokens.rs).

Reads one JSON request on stdin and writes one JSON answer on stdout:
  {"op": "verify_hs256", "token", "secret", "issuer", "audience"}
  {"op": "verify_eddsa", "token", "jwks", "issuer", "audience"}
      -> {"ok": true, "claims": {...}} or {"ok": false, "error": "<ExceptionName>"}
  {"op": "issue_legacy", "secret", "sub", "issuer", "audience", "ttl"}
      -> {"token": "..."}  made the way the Python service made its tokens:
         jwt.encode({sub, iat, exp, iss, aud}, JWT_SECRET, algorithm="HS256")
         with datetime values (PyJWT turns them into integer NumericDates).
Secrets travel on stdin only, never on the command line.
"""

import json
import sys
from datetime import datetime, timedelta, timezone

import jwt


def verify(token, key, algorithm, issuer, audience):
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        return {"ok": True, "claims": claims}
    except jwt.PyJWTError as exc:
        return {"ok": False, "error": type(exc).__name__}


def main():
    req = json.load(sys.stdin)
    op = req["op"]
    if op == "verify_hs256":
        out = verify(req["token"], req["secret"], "HS256", req["issuer"], req["audience"])
    elif op == "verify_eddsa":
        try:
            kid = jwt.get_unverified_header(req["token"]).get("kid")
        except jwt.PyJWTError as exc:
            kid, header_error = None, type(exc).__name__
        else:
            header_error = None
        matches = [k for k in req["jwks"]["keys"] if k.get("kid") == kid]
        if header_error:
            out = {"ok": False, "error": header_error}
        elif not matches:
            out = {"ok": False, "error": "UnknownKid"}
        else:
            key = jwt.PyJWK(matches[0]).key
            out = verify(req["token"], key, "EdDSA", req["issuer"], req["audience"])
    elif op == "issue_legacy":
        now = datetime.now(timezone.utc)
        claims = {
            "sub": req["sub"],
            "iat": now,
            "exp": now + timedelta(seconds=req["ttl"]),
            "iss": req["issuer"],
            "aud": req["audience"],
        }
        out = {"token": jwt.encode(claims, req["secret"], algorithm="HS256")}
    else:
        out = {"error": "unknown op " + op}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
