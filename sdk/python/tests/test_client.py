"""Unit tests of OTPClient against canned answers from a local HTTP server."""

from __future__ import annotations

import time
import unittest
from email.utils import formatdate

from stateless_otp import (
    ErrorCode,
    MemoryTokenStorage,
    OTPClient,
    OTPError,
    OTPRequestResult,
    OTPVerifyResult,
    TokenInfo,
    normalize_base_url,
    parse_retry_after,
)

from .support import CannedServer, PlainStorage, Recorded, unused_port

OK_REQUEST = {
    "success": True,
    "message": "OTP sent successfully.",
    "ttl_seconds": 300,
    "expires_at": 1900000000,
    "rate_limit_remaining": 4,
}
OK_VERIFY = {
    "success": True,
    "message": "OTP verified successfully.",
    "access_token": "aaa.bbb.ccc",
    "token_type": "bearer",
    "expires_in": 900,
    "rate_limit_remaining": 9,
}
CLAIMS = {"sub": "alice@example.com", "iss": "stateless-otp", "aud": "api", "exp": 1900000900}


def api(rec: Recorded):
    path = rec.path
    if path == "/prefix/api/v1/otp/request":
        return 200, OK_REQUEST, {}
    if path == "/prefix/api/v1/otp/verify":
        return 200, OK_VERIFY, {}
    if path == "/prefix/api/v1/token/introspect":
        if rec.json()["token"] == "aaa.bbb.ccc":
            return 200, {"active": True, "claims": CLAIMS}, {}
        return 200, {"active": False, "claims": None}, {}
    if path == "/prefix/api/v1/token/verify":
        if rec.headers.get("authorization") == "Bearer aaa.bbb.ccc":
            return 200, {"active": True, "claims": CLAIMS}, {}
        return 401, {"error": "token_invalid", "message": "Token is invalid."}, {}
    if path == "/prefix/.well-known/jwks.json":
        return 200, {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1"}]}, {}
    if path == "/prefix/health":
        return 200, {"status": "ok", "service": "stateless-otp"}, {}
    if path == "/prefix/api/v1/logout":
        return 200, {"success": True, "all": False}, {}
    return 404, {"error": "not_found", "message": "No such route."}, {}


class SuccessfulCalls(unittest.TestCase):
    def setUp(self) -> None:
        self.server = CannedServer(api).__enter__()
        self.addCleanup(self.server.__exit__, None, None, None)
        self.client = OTPClient(self.server.url + "/prefix/")

    def test_request_otp_sends_json_and_returns_a_dataclass(self) -> None:
        result = self.client.request_otp("alice@example.com")
        self.assertEqual(
            result,
            OTPRequestResult(
                success=True,
                message="OTP sent successfully.",
                ttl_seconds=300,
                expires_at=1900000000,
                rate_limit_remaining=4,
            ),
        )
        rec = self.server.requests[-1]
        self.assertEqual(rec.method, "POST")
        self.assertEqual(rec.headers["content-type"], "application/json")
        self.assertEqual(rec.json(), {"identity": "alice@example.com"})
        self.assertTrue(rec.headers["user-agent"].startswith("stateless-otp-python/"))

    def test_a_base_url_with_or_without_api_v1_names_the_same_server(self) -> None:
        # The Python service's SDKs were documented with http://host:8000/api/v1.
        for given in ["/prefix", "/prefix/", "/prefix/api/v1", "/prefix/api/v1/", "/prefix/api/v1//"]:
            with self.subTest(given=given):
                client = OTPClient(f"  {self.server.url}{given}  ")
                self.assertEqual(client.base_url, self.server.url + "/prefix")
                self.assertTrue(client.request_otp("alice@example.com").success)
                self.assertEqual(self.server.requests[-1].path, "/prefix/api/v1/otp/request")
                self.assertEqual(client.health(), {"status": "ok", "service": "stateless-otp"})
                self.assertEqual(self.server.requests[-1].path, "/prefix/health")
        self.assertEqual(normalize_base_url("https://auth.example.com/api/v1/"), "https://auth.example.com")
        self.assertEqual(normalize_base_url("https://auth.example.com/api/v10"), "https://auth.example.com/api/v10")
        self.assertEqual(normalize_base_url("https://auth.example.com/v1"), "https://auth.example.com/v1")

    def test_verify_otp_returns_the_result_and_stores_the_token(self) -> None:
        self.assertIsNone(self.client.token)
        result = self.client.verify_otp("alice@example.com", "012345")
        self.assertEqual(
            result,
            OTPVerifyResult(True, "OTP verified successfully.", "aaa.bbb.ccc", "bearer", 900, 9),
        )
        self.assertEqual(self.server.requests[-1].json(), {"identity": "alice@example.com", "otp": "012345"})
        self.assertEqual(self.client.token, "aaa.bbb.ccc")
        self.assertEqual(self.client.get_token(), "aaa.bbb.ccc")

    def test_the_token_never_shows_in_repr(self) -> None:
        result = self.client.verify_otp("alice@example.com", "012345")
        self.assertNotIn("aaa.bbb.ccc", repr(result))
        self.assertNotIn("aaa.bbb.ccc", repr(self.client))
        self.assertNotIn("aaa.bbb.ccc", repr(self.client.token_storage))

    def test_introspect_and_verify_bearer_default_to_the_stored_token(self) -> None:
        self.client.verify_otp("alice@example.com", "012345")
        self.assertEqual(self.client.introspect_token(), TokenInfo(True, CLAIMS))
        self.assertEqual(self.server.requests[-1].json(), {"token": "aaa.bbb.ccc"})
        self.assertEqual(self.client.verify_bearer(), TokenInfo(True, CLAIMS))
        rec = self.server.requests[-1]
        self.assertEqual(rec.method, "GET")
        self.assertEqual(rec.headers["authorization"], "Bearer aaa.bbb.ccc")
        self.assertEqual(self.client.introspect_token("garbage"), TokenInfo(False, None))

    def test_verify_bearer_clears_a_rejected_stored_token_only(self) -> None:
        self.client.set_token("stale.token.value")
        with self.assertRaises(OTPError) as ctx:
            self.client.verify_bearer("other")
        self.assertEqual(ctx.exception.code, "token_invalid")
        self.assertEqual(self.client.token, "stale.token.value")
        with self.assertRaises(OTPError) as ctx:
            self.client.verify_bearer()
        self.assertEqual(ctx.exception.status_code, 401)
        self.assertIsNone(self.client.token)

    def test_token_calls_without_a_token_fail_locally(self) -> None:
        sent = len(self.server.requests)
        for call in (self.client.verify_bearer, self.client.introspect_token):
            with self.assertRaises(OTPError) as ctx:
                call()
            self.assertEqual(ctx.exception.code, ErrorCode.TOKEN_MISSING)
            self.assertEqual(ctx.exception.status_code, 0)
        self.assertEqual(len(self.server.requests), sent)

    def test_jwks_and_health(self) -> None:
        self.assertEqual(self.client.jwks(), {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k1"}]})
        self.assertEqual(self.client.health(), {"status": "ok", "service": "stateless-otp"})

    def test_logout_and_clear_token(self) -> None:
        self.client.set_token("t1")
        self.assertTrue(self.client.logout().success)
        self.assertEqual(self.server.requests[-1].headers["authorization"], "Bearer t1")
        self.assertIsNone(self.client.token)
        self.client.set_token("t2")
        self.client.clear_token()
        self.assertIsNone(self.client.get_token())

    def test_custom_headers_and_custom_storage(self) -> None:
        box = PlainStorage()
        client = OTPClient(self.server.url + "/prefix", headers={"X-Tenant": "acme"}, token_storage=box)
        client.verify_otp("alice@example.com", "012345")
        self.assertEqual(self.server.requests[-1].headers["x-tenant"], "acme")
        self.assertEqual(box.value, "aaa.bbb.ccc")


class ErrorMapping(unittest.TestCase):
    def failure(self, call, reply) -> OTPError:
        with CannedServer(lambda rec: reply) as server:
            client = OTPClient(server.url, max_retries=0)
            with self.assertRaises(OTPError) as ctx:
                call(client)
            return ctx.exception

    def test_400_otp_invalid(self) -> None:
        err = self.failure(
            lambda c: c.verify_otp("a@example.com", "111111"),
            (400, {"error": "otp_invalid", "message": "Invalid or expired OTP."}, {}),
        )
        self.assertIsInstance(err, Exception)
        self.assertEqual(err.code, "otp_invalid")
        self.assertEqual(err.status_code, 400)
        self.assertEqual(err.message, "Invalid or expired OTP.")
        self.assertIsNone(err.retry_after)
        self.assertIsNone(err.details)
        self.assertIn("otp_invalid", str(err))

    def test_422_keeps_details(self) -> None:
        details = [{"loc": ["body", "identity"], "msg": "must not be empty"}]
        err = self.failure(
            lambda c: c.request_otp(""),
            (422, {"error": "validation_error", "message": "Invalid request.", "details": details}, {}),
        )
        self.assertEqual((err.code, err.status_code, err.details), ("validation_error", 422, details))

    def test_429_retry_after_seconds(self) -> None:
        err = self.failure(
            lambda c: c.request_otp("a@example.com"),
            (429, {"error": "rate_limit_exceeded", "message": "Too many."}, {"Retry-After": "42"}),
        )
        self.assertEqual((err.code, err.status_code, err.retry_after), ("rate_limit_exceeded", 429, 42))

    def test_429_retry_after_http_date(self) -> None:
        when = formatdate(time.time() + 30, usegmt=True)
        err = self.failure(
            lambda c: c.request_otp("a@example.com"),
            (429, {"error": "rate_limit_exceeded", "message": "Too many."}, {"Retry-After": when}),
        )
        assert err.retry_after is not None
        self.assertTrue(28 <= err.retry_after <= 31, err.retry_after)

    def test_401_token_expired(self) -> None:
        err = self.failure(
            lambda c: c.verify_bearer("x.y.z"),
            (401, {"error": "token_expired", "message": "Token has expired."}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}),
        )
        self.assertEqual((err.code, err.status_code), ("token_expired", 401))

    def test_a_non_json_error_page_is_http_error(self) -> None:
        err = self.failure(lambda c: c.request_otp("a@example.com"), (500, b"<html>boom</html>", {"Content-Type": "text/html"}))
        self.assertEqual((err.code, err.status_code), ("http_error", 500))
        self.assertIn("HTTP 500", err.message)

    def test_html_404_and_413_map_to_their_codes(self) -> None:
        self.assertEqual(self.failure(lambda c: c.health(), (404, b"nope", {})).code, "not_found")
        self.assertEqual(self.failure(lambda c: c.request_otp("a@example.com"), (413, b"", {})).code, "payload_too_large")

    def test_a_200_that_is_not_a_json_object_is_invalid_response(self) -> None:
        err = self.failure(lambda c: c.request_otp("a@example.com"), (200, b"ok", {}))
        self.assertEqual((err.code, err.status_code), ("invalid_response", 200))
        err = self.failure(lambda c: c.jwks(), (200, {"nokeys": 1}, {}))
        self.assertEqual(err.code, "invalid_response")

    def test_a_verify_answer_without_a_token_stores_nothing(self) -> None:
        with CannedServer(lambda rec: (200, {"success": True, "message": "OTP verified successfully."}, {})) as server:
            client = OTPClient(server.url, max_retries=0)
            with self.assertRaises(OTPError) as ctx:
                client.verify_otp("a@example.com", "123456")
            self.assertEqual(ctx.exception.code, "invalid_response")
            self.assertIsNone(client.token)


class TransportFailuresAndRetries(unittest.TestCase):
    def test_a_closed_port_is_network_error(self) -> None:
        client = OTPClient(f"http://127.0.0.1:{unused_port()}", max_retries=0)
        with self.assertRaises(OTPError) as ctx:
            client.request_otp("a@example.com")
        self.assertEqual((ctx.exception.code, ctx.exception.status_code), ("network_error", 0))
        self.assertIsNotNone(ctx.exception.__cause__)

    def test_a_server_that_never_answers_hits_the_timeout(self) -> None:
        with CannedServer(lambda rec: None) as server:
            client = OTPClient(server.url, timeout=0.3, max_retries=0)
            started = time.monotonic()
            with self.assertRaises(OTPError) as ctx:
                client.health()
            self.assertEqual((ctx.exception.code, ctx.exception.status_code), ("timeout", 0))
            self.assertLess(time.monotonic() - started, 5)

    def test_idempotent_calls_are_retried_after_503(self) -> None:
        calls = []

        def reply(rec: Recorded):
            calls.append(rec)
            if len(calls) < 3:
                return 503, {"error": "internal_error", "message": "busy"}, {}
            return 200, {"status": "ok", "service": "stateless-otp"}, {}

        with CannedServer(reply) as server:
            client = OTPClient(server.url, retry_delay=0.01)
            self.assertEqual(client.health()["status"], "ok")
            self.assertEqual(len(calls), 3)

    def test_request_otp_is_retried_after_backend_unavailable_honouring_retry_after(self) -> None:
        calls = []

        def reply(rec: Recorded):
            calls.append(rec)
            if len(calls) == 1:
                return 503, {"error": "backend_unavailable", "message": "down"}, {"Retry-After": "0"}
            return 200, OK_REQUEST, {}

        with CannedServer(reply) as server:
            client = OTPClient(server.url, retry_delay=10.0)
            started = time.monotonic()
            self.assertTrue(client.request_otp("a@example.com").success)
            self.assertEqual(len(calls), 2)
            self.assertLess(time.monotonic() - started, 5, "Retry-After: 0 replaced the 10 s backoff")

    def test_no_retry_after_delivery_failed_nor_after_429(self) -> None:
        calls = []
        answer = {}

        def reply(rec: Recorded):
            calls.append(rec)
            return answer["value"]

        with CannedServer(reply) as server:
            client = OTPClient(server.url, retry_delay=0.001)
            answer["value"] = (502, {"error": "delivery_failed", "message": "Failed to deliver OTP. Please try again."}, {})
            with self.assertRaises(OTPError) as ctx:
                client.request_otp("a@example.com")
            self.assertEqual((ctx.exception.code, len(calls)), ("delivery_failed", 1))
            calls.clear()
            answer["value"] = (429, {"error": "rate_limit_exceeded", "message": "Too many."}, {"Retry-After": "1"})
            with self.assertRaises(OTPError):
                client.introspect_token("t")
            self.assertEqual(len(calls), 1)

    def test_a_lost_verify_answer_is_not_retried_but_an_idempotent_call_is(self) -> None:
        calls = []

        def reply(rec: Recorded):
            calls.append(rec)
            return "drop"

        with CannedServer(reply) as server:
            client = OTPClient(server.url, retry_delay=0.001)
            with self.assertRaises(OTPError) as ctx:
                client.verify_otp("a@example.com", "123456")
            self.assertEqual((ctx.exception.code, len(calls)), ("network_error", 1))
            calls.clear()
            with self.assertRaises(OTPError) as ctx:
                client.jwks()
            self.assertEqual((ctx.exception.code, len(calls)), ("network_error", 3))


class ArgumentChecks(unittest.TestCase):
    def test_constructor_rejects_bad_options(self) -> None:
        for kwargs in ({"base_url": ""}, {"base_url": "http://x", "timeout": 0}, {"base_url": "http://x", "max_retries": -1}):
            with self.assertRaises(ValueError):
                OTPClient(**kwargs)  # type: ignore[arg-type]

    def test_a_numeric_code_is_refused_before_any_request(self) -> None:
        client = OTPClient("http://127.0.0.1:9", max_retries=0)
        with self.assertRaises(TypeError):
            client.verify_otp("a@example.com", 12345)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            client.request_otp(None)  # type: ignore[arg-type]

    def test_default_storage_is_per_client(self) -> None:
        a = OTPClient("http://127.0.0.1:9")
        b = OTPClient("http://127.0.0.1:9")
        self.assertIsInstance(a.token_storage, MemoryTokenStorage)
        a.set_token("x")
        self.assertIsNone(b.token)

    def test_parse_retry_after(self) -> None:
        self.assertEqual(parse_retry_after("120"), 120)
        self.assertIsNone(parse_retry_after(None))
        self.assertIsNone(parse_retry_after("soon"))
        self.assertEqual(parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=0), 10)
        self.assertEqual(parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=60), 0)


if __name__ == "__main__":
    unittest.main()
