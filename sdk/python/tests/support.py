"""Test helpers: a canned local HTTP server for unit tests, and the
end-to-end environment contract shared with the Rust harness:

- ``OTP_BASE_URL``: the running server (required for e2e)
- ``OTP_CODES_URL``: webhook receiver, ``GET /codes/{identity}`` -> ``{"otp": "..."}``
- ``OTP_RATE_LIMIT_REQUESTS``: the server's ``RATE_REQUEST_OTP_MAX``
- ``OTP_UNREACHABLE_URL``: a URL where nothing listens
- ``OTP_SHORT_TTL_BASE_URL``: a second server, same receiver, whose access
  tokens live ``OTP_SHORT_ACCESS_TTL`` seconds (the session suite)
- ``OTP_E2E_REQUIRE_ALL=1``: a missing piece is a failure, not a skip
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

REQUIRE_ALL = os.environ.get("OTP_E2E_REQUIRE_ALL") == "1"
BASE_URL = os.environ.get("OTP_BASE_URL", "")
CODES_URL = os.environ.get("OTP_CODES_URL", "").rstrip("/")
RATE_LIMIT_REQUESTS = int(os.environ.get("OTP_RATE_LIMIT_REQUESTS", "0") or "0")
UNREACHABLE_URL = os.environ.get("OTP_UNREACHABLE_URL", "")
SHORT_TTL_BASE_URL = os.environ.get("OTP_SHORT_TTL_BASE_URL", "").rstrip("/")
SHORT_ACCESS_TTL = int(os.environ.get("OTP_SHORT_ACCESS_TTL", "0") or "0")


class Recorded:
    """One request the canned server received."""

    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


Reply = Tuple[int, Any, Dict[str, str]]


class CannedServer:
    """A local HTTP server on 127.0.0.1 (free port) answering with the test's
    ``handler(recorded) -> (status, body, headers)``; ``body`` is JSON-encoded
    unless it is bytes, and ``None`` as a reply means "never answer"."""

    def __init__(self, handler: Callable[[Recorded], Optional[Reply]]) -> None:
        self.handler = handler
        self.requests: List[Recorded] = []
        self._release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                outer.requests.append(rec)
                reply = outer.handler(rec)
                if reply is None:
                    outer._release.wait(10)
                    return
                if reply == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, payload, headers = reply
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                if not isinstance(payload, bytes):
                    self.send_header("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "CannedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class PlainStorage:
    """A custom token storage as written for 0.1: ``get``/``set``/``clear``
    of the access token only (no refresh-token methods, no lock)."""

    def __init__(self) -> None:
        self.value: Optional[str] = None

    def get(self) -> Optional[str]:
        return self.value

    def set(self, token: str) -> None:
        self.value = token

    def clear(self) -> None:
        self.value = None


def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def requires(needs: List[Tuple[bool, str]]) -> Callable[[type], type]:
    """Class decorator: skip the suite with a message when a need is missing,
    or make it fail (in ``setUpClass``) under ``OTP_E2E_REQUIRE_ALL=1``."""
    missing = [what for present, what in needs if not present]
    if not missing:
        return lambda cls: cls
    text = "; ".join(missing)
    if REQUIRE_ALL:

        def fail(cls: type) -> type:
            def set_up_class(klass: type) -> None:
                raise AssertionError(f"OTP_E2E_REQUIRE_ALL=1 but {text}")

            cls.setUpClass = classmethod(set_up_class)  # type: ignore[attr-defined]
            return cls

        return fail
    print(f"end-to-end suite skipped: {text}", file=sys.stderr)
    return unittest.skip(f"end-to-end suite skipped: {text}")


SERVER_NEEDS = [
    (BASE_URL != "", "OTP_BASE_URL is unset (start otp-server and point OTP_BASE_URL at it)"),
    (CODES_URL != "", "OTP_CODES_URL is unset (the webhook receiver that records delivered codes)"),
]


SHORT_TTL_NEEDS = SERVER_NEEDS + [
    (
        SHORT_TTL_BASE_URL != "" and SHORT_ACCESS_TTL > 0,
        "OTP_SHORT_TTL_BASE_URL / OTP_SHORT_ACCESS_TTL are unset (a server with a short ACCESS_TOKEN_TTL)",
    ),
]


def refresh_requests(base_url: str) -> int:
    """How many requests the server's ``POST /api/v1/token/refresh`` has
    answered (any status): the sum of
    ``http_requests_total{route="/api/v1/token/refresh",...}`` on ``/metrics``."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        text = response.read().decode("utf-8")
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("http_requests_total{") and 'route="/api/v1/token/refresh"' in line
    )


def random_identity(prefix: str = "py") -> str:
    """A fresh identity so tests never share rate limits or codes."""
    return f"{prefix}-{secrets.token_hex(6)}@example.com"


def read_delivered_code(identity: str, attempts: int = 50, delay: float = 0.1) -> str:
    """The last code delivered to ``identity``, polling while the receiver says 404."""
    url = f"{CODES_URL}/codes/{urllib.parse.quote(identity, safe='')}"
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = json.loads(response.read().decode("utf-8"))
                otp = body.get("otp")
                if not isinstance(otp, str):
                    raise AssertionError(f'codes endpoint answered without "otp": {sorted(body)}')
                return otp
        except urllib.error.HTTPError as err:
            err.close()
            if err.code != 404:
                raise AssertionError(f"codes endpoint answered HTTP {err.code}") from err
        time.sleep(delay)
    raise AssertionError(f"no code was delivered to {identity} within {attempts * delay:g} s")


def wrong_code_for(code: str) -> str:
    """A code of the same length that differs from ``code`` in every digit."""
    return "".join(str((int(d) + 1) % 10) for d in code)
