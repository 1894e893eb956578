"""The SDK's ErrorCode list names every code the server can put in an error
body: the list is read from the server's one definition
(crates/otp-core/src/wire.rs, ``ErrorCode::as_str``), so a code added there
fails this test until the SDK knows it."""

import pathlib
import re
import unittest

from stateless_otp import ErrorCode

WIRE = pathlib.Path(__file__).resolve().parents[3] / "crates" / "otp-core" / "src" / "wire.rs"


def server_codes():
    source = WIRE.read_text(encoding="utf-8")
    body = source[source.index("pub fn as_str"):]
    body = body[: body.index("\n    }\n")]
    return re.findall(r'ErrorCode::\w+ => "([a-z_]+)"', body)


class ErrorCodesTest(unittest.TestCase):
    def test_the_sdk_knows_every_error_code_the_server_sends(self):
        codes = server_codes()
        self.assertGreaterEqual(len(codes), 14, codes)
        known = {v for k, v in vars(ErrorCode).items() if k.isupper()}
        self.assertEqual([c for c in codes if c not in known], [])


if __name__ == "__main__":
    unittest.main()
