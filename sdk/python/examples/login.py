"""A complete login with stateless_otp: send a code, let the user type it,
verify it (the client stores the token), then check the token the way a
protected service would."""

import sys
from typing import Callable

from stateless_otp import OTPClient, OTPError


def login(base_url: str, identity: str, ask_for_code: Callable[[str], str]) -> OTPClient:
    """Signs ``identity`` in and returns a client holding the access token."""
    client = OTPClient(base_url, timeout=5.0)
    try:
        sent = client.request_otp(identity)
        print(f"Code sent; it is valid for {sent.ttl_seconds} s.")

        code = ask_for_code(identity)
        verified = client.verify_otp(identity, code)  # stores the token
        print(f"Logged in; the token is valid for {verified.expires_in} s.")

        info = client.verify_bearer()  # uses the stored token
        assert info.claims is not None
        print(f"Hello, {info.claims['sub']}!")
        return client
    except OTPError as err:
        if err.code == "rate_limit_exceeded":
            print(f"Too many attempts; try again in {err.retry_after} s.", file=sys.stderr)
        elif err.code == "otp_invalid":
            print("Wrong or expired code; ask for a new one.", file=sys.stderr)
        elif err.code == "network_error":
            print(f"The server is unreachable: {err.message}", file=sys.stderr)
        raise


# python examples/login.py http://127.0.0.1:8000 you@example.com
if __name__ == "__main__":
    base_url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
    identity = sys.argv[2] if len(sys.argv) > 2 else "you@example.com"
    try:
        login(base_url, identity, lambda _identity: input("Code: ").strip())
    except OTPError:
        sys.exit(1)
