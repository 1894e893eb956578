"""End-to-end: the SDK against a REAL running otp-server whose webhook
delivery lands in a receiver we read codes from (contract in support.py).
Skips with a message when OTP_BASE_URL is unset; fails instead under
OTP_E2E_REQUIRE_ALL=1."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from stateless_otp import OTPClient, OTPError, TokenInfo

from . import support
from .support import random_identity, read_delivered_code, refresh_requests, requires, wrong_code_for

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "login.py")


def new_client(**kwargs) -> OTPClient:
    kwargs.setdefault("timeout", 5.0)
    return OTPClient(support.BASE_URL, **kwargs)


@requires(support.SERVER_NEEDS)
class ReadmeExample(unittest.TestCase):
    """examples/login.py, which the README shows verbatim."""

    def test_the_readme_login_signs_in(self) -> None:
        spec = importlib.util.spec_from_file_location("readme_login_example", EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        identity = random_identity("py-readme")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            client = module.login(support.BASE_URL, identity, read_delivered_code)
        self.assertIn(f"Hello, {identity}!", out.getvalue())
        token = client.token
        self.assertIsNotNone(token)
        assert token is not None
        self.assertEqual(len(token.split(".")), 3, "a JWT")
        info = client.introspect_token()
        self.assertTrue(info.active)
        assert info.claims is not None
        self.assertEqual(info.claims["sub"], identity)


@requires(support.SERVER_NEEDS)
class AgainstTheServer(unittest.TestCase):
    def assert_fails(self, call, code: str, status: int) -> OTPError:
        with self.assertRaises(OTPError) as ctx:
            call()
        err = ctx.exception
        self.assertEqual(err.code, code, err.message)
        self.assertEqual(err.status_code, status)
        return err

    def test_full_login(self) -> None:
        client = new_client()
        identity = random_identity("py-login")
        sent = client.request_otp(identity)
        self.assertTrue(sent.success)
        self.assertEqual(sent.message, "OTP sent successfully.")
        self.assertGreater(sent.ttl_seconds, 0)
        self.assertGreater(sent.expires_at, time.time())
        self.assertIsInstance(sent.rate_limit_remaining, int)

        verified = client.verify_otp(identity, read_delivered_code(identity))
        self.assertTrue(verified.success)
        self.assertEqual(verified.message, "OTP verified successfully.")
        self.assertEqual(verified.token_type, "bearer")
        self.assertGreater(verified.expires_in, 0)
        self.assertEqual(client.token, verified.access_token, "the token is stored")

        bearer = client.verify_bearer()
        self.assertTrue(bearer.active)
        assert bearer.claims is not None
        self.assertEqual(bearer.claims["sub"], identity)
        self.assertGreater(bearer.claims["exp"], time.time())
        self.assertEqual(client.introspect_token(verified.access_token), bearer)

        self.assertTrue(client.logout().success)
        self.assertIsNone(client.token)

    def test_the_base_url_the_python_service_documented_signs_in(self) -> None:
        client = OTPClient(support.BASE_URL.rstrip("/") + "/api/v1/", timeout=5.0)
        identity = random_identity("py-apiv1")
        self.assertTrue(client.request_otp(identity).success)
        verified = client.verify_otp(identity, read_delivered_code(identity))
        self.assertEqual(verified.token_type, "bearer")
        bearer = client.verify_bearer()
        assert bearer.claims is not None
        self.assertEqual(bearer.claims["sub"], identity)
        self.assertEqual(client.health()["status"], "ok")

    def test_a_wrong_code_is_otp_invalid(self) -> None:
        client = new_client()
        identity = random_identity("py-wrong")
        client.request_otp(identity)
        code = read_delivered_code(identity)
        self.assert_fails(lambda: client.verify_otp(identity, wrong_code_for(code)), "otp_invalid", 400)
        self.assertIsNone(client.token)

    def test_a_replayed_code_is_otp_invalid(self) -> None:
        identity = random_identity("py-replay")
        first = new_client()
        first.request_otp(identity)
        code = read_delivered_code(identity)
        first.verify_otp(identity, code)
        second = new_client()
        self.assert_fails(lambda: second.verify_otp(identity, code), "otp_invalid", 400)

    def test_the_send_limit_is_rate_limit_exceeded_with_retry_after(self) -> None:
        if support.RATE_LIMIT_REQUESTS <= 0:
            if support.REQUIRE_ALL:
                self.fail("OTP_E2E_REQUIRE_ALL=1 but OTP_RATE_LIMIT_REQUESTS is unset")
            self.skipTest("OTP_RATE_LIMIT_REQUESTS is unset")
        client = new_client()
        identity = random_identity("py-limit")
        remaining = None
        for _ in range(support.RATE_LIMIT_REQUESTS):
            sent = client.request_otp(identity)
            if remaining is not None:
                self.assertLess(sent.rate_limit_remaining, remaining, "rate_limit_remaining goes down")
            remaining = sent.rate_limit_remaining
        self.assertEqual(remaining, 0)
        err = self.assert_fails(lambda: client.request_otp(identity), "rate_limit_exceeded", 429)
        self.assertIsInstance(err.retry_after, int)
        assert err.retry_after is not None
        self.assertGreater(err.retry_after, 0)

    def test_bearer_and_introspect_of_garbage(self) -> None:
        client = new_client()
        self.assert_fails(lambda: client.verify_bearer("not.a.token"), "token_invalid", 401)
        self.assertEqual(client.introspect_token("not.a.token"), TokenInfo(False, None))
        self.assertEqual(client.introspect_token("garbage"), TokenInfo(False, None))

    def test_a_bad_identity_is_validation_error_with_details(self) -> None:
        err = self.assert_fails(lambda: new_client().request_otp("   "), "validation_error", 422)
        self.assertIsInstance(err.details, list)
        self.assertTrue(err.details, "details lists the offending field")

    def test_jwks_and_health(self) -> None:
        client = new_client()
        self.assertIsInstance(client.jwks()["keys"], list)
        self.assertEqual(client.health(), {"status": "ok", "service": "stateless-otp"})

    def test_an_unreachable_server_is_network_error(self) -> None:
        url = support.UNREACHABLE_URL or f"http://127.0.0.1:{support.unused_port()}"
        client = OTPClient(url, timeout=5.0, max_retries=0)
        self.assert_fails(lambda: client.request_otp(random_identity("py-unreachable")), "network_error", 0)


if __name__ == "__main__":
    unittest.main()


@requires(support.SHORT_TTL_NEEDS)
class Sessions(unittest.TestCase):
    """Issue 14, against the server whose access tokens live
    OTP_SHORT_ACCESS_TTL seconds."""

    def client(self) -> OTPClient:
        return OTPClient(support.SHORT_TTL_BASE_URL, timeout=5.0)

    def sign_in(self, client: OTPClient, identity: str, previous: str = "") -> str:
        client.request_otp(identity)
        code = read_delivered_code(identity)
        for _ in range(50):
            if code != previous:
                break
            time.sleep(0.1)
            code = read_delivered_code(identity)
        client.verify_otp(identity, code)
        return code

    def test_sign_in_refresh_expire_logout_refused(self) -> None:
        client = self.client()
        identity = random_identity("py-session")
        self.sign_in(client, identity)
        first = client.refresh_token
        assert first is not None
        self.assertTrue(first.startswith("ort1_"))

        fresh = client.refresh()
        self.assertNotEqual(fresh.refresh_token, first)
        self.assertEqual(fresh.expires_in, support.SHORT_ACCESS_TTL)
        self.assertEqual(client.verify_bearer().claims["sub"], identity)  # type: ignore[index]

        time.sleep(support.SHORT_ACCESS_TTL + 1.2)
        with self.assertRaises(OTPError) as ctx:
            client.verify_bearer(client.token)
        self.assertEqual(ctx.exception.code, "token_expired")
        before = refresh_requests(support.SHORT_TTL_BASE_URL)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: client.verify_bearer(), range(8)))
        for info in results:
            self.assertEqual(info.claims["sub"], identity)  # type: ignore[index]
        self.assertEqual(refresh_requests(support.SHORT_TTL_BASE_URL) - before, 1, "eight threads, one refresh request")

        spent = client.refresh_token
        assert spent is not None
        self.assertEqual(client.logout().all, False)
        self.assertIsNone(client.token)
        other = self.client()
        other.set_token("unused.after.logout", spent)
        with self.assertRaises(OTPError) as ctx:
            other.refresh()
        self.assertEqual((ctx.exception.code, ctx.exception.status_code), ("session_revoked", 401))
        self.assertIsNone(other.refresh_token, "the dead session is forgotten")

    def test_logout_all_on_one_device_ends_the_other_devices_session(self) -> None:
        identity = random_identity("py-everywhere")
        phone, laptop = self.client(), self.client()
        code = self.sign_in(phone, identity)
        self.sign_in(laptop, identity, previous=code)
        self.assertTrue(phone.logout(all=True).all)
        with self.assertRaises(OTPError) as ctx:
            laptop.refresh()
        self.assertEqual(ctx.exception.code, "session_revoked")
