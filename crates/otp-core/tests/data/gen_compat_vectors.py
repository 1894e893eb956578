#!/usr/bin/env python3
"""Independent implementation of the Python service's OTP derivation (SPEC §3.1).

Generates the compatibility vectors in compat_vectors.json, which the Rust test
`tests/core/vectors.rs` replays against otp-core. Run once and commit the output:

    python3 crates/otp-core/tests/data/gen_compat_vectors.py > crates/otp-core/tests/data/compat_vectors.json

Only the standard library is used (hmac, hashlib, struct, base64).
"""
import base64
import hashlib
import hmac
import json
import struct

ALGS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def b64decode_any(value: str) -> bytes:
    value = value.strip().replace("-", "+").replace("_", "/")
    return base64.b64decode(value + "=" * (-len(value) % 4))


def derive(secret: bytes, identity: str, unix: int, window_seconds: int, digits: int, alg: str, n: int = 0) -> str:
    window = unix // window_seconds
    message = identity.encode("utf-8") + struct.pack(">Q", window)
    if n >= 1:
        message += struct.pack(">I", n)
    digest = hmac.new(secret, message, ALGS[alg]).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % (10 ** digits)).zfill(digits)


def main() -> None:
    secrets = [
        "c3RhdGVsZXNzLW90cCB0ZXN0IGtleSEh",                    # 24 bytes, standard alphabet
        base64.urlsafe_b64encode(bytes(range(200, 232))).decode().rstrip("="),  # 32 bytes, URL-safe, unpadded
    ]
    identities = ["alice@example.com", "+14155550100", "user-42", "12345", "Zoë_Ünïcødé"]
    times = [0, 59, 1_700_000_000, 1_700_000_299, 2_000_000_000]
    vectors = []
    for secret_b64 in secrets:
        secret = b64decode_any(secret_b64)
        for identity in identities:
            for unix in times:
                for window_seconds, digits, alg in [(300, 6, "sha256"), (30, 8, "sha1"), (60, 4, "sha512"), (600, 10, "sha256")]:
                    for n in ([0, 1, 7] if alg == "sha256" and digits == 6 else [0]):
                        vectors.append({
                            "secret_b64": secret_b64,
                            "identity": identity,
                            "unix": unix,
                            "window_seconds": window_seconds,
                            "digits": digits,
                            "algorithm": alg,
                            "counter": n,
                            "code": derive(secret, identity, unix, window_seconds, digits, alg, n),
                        })
    print(json.dumps({"generator": "gen_compat_vectors.py (Python hmac/hashlib)", "vectors": vectors}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
