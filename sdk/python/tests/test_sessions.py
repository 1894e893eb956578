"""Sessions against canned answers: the refresh token kept with the access
token, one refresh on ``token_expired`` then one retry, one refresh at a time
for concurrent threads (and for clients sharing one storage), the typed
``session_revoked``, and logout. The real server: ``test_e2e.py``."""

from __future__ import annotations

import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Set

from stateless_otp import ErrorCode, MemoryTokenStorage, OTPClient, OTPError, RefreshResult

from .support import CannedServer, PlainStorage, Recorded, Reply, unused_port

REFRESH_DELAY = 0.2


class SessionServer:
    """Refresh token ``ort1_<n>`` rotates to ``ort1_<n+1>`` with access token
    ``access.<n+1>``; access tokens in ``expired`` answer 401 token_expired,
    refresh tokens in ``revoked`` answer 401 session_revoked."""

    def __init__(self) -> None:
        self.expired: Set[str] = set()
        self.revoked: Set[str] = set()

    def __call__(self, rec: Recorded) -> Optional[Reply]:
        if rec.path == "/api/v1/otp/verify":
            return 200, {
                "success": True,
                "message": "OTP verified successfully.",
                "access_token": "access.0",
                "token_type": "bearer",
                "expires_in": 900,
                "rate_limit_remaining": 9,
                "refresh_token": "ort1_0",
                "refresh_expires_in": 604800,
            }, {}
        if rec.path == "/api/v1/token/verify":
            token = rec.headers.get("authorization", "").removeprefix("Bearer ")
            if token in self.expired:
                return 401, {"error": "token_expired", "message": "Token has expired."}, {}
            return 200, {"active": True, "claims": {"sub": "a@example.com", "token": token}}, {}
        if rec.path == "/api/v1/token/refresh":
            spent = rec.json()["refresh_token"]
            time.sleep(REFRESH_DELAY)
            if spent in self.revoked:
                return 401, {"error": "session_revoked", "message": "Session revoked."}, {}
            n = int(spent.removeprefix("ort1_"))
            return 200, {
                "success": True,
                "access_token": f"access.{n + 1}",
                "token_type": "bearer",
                "expires_in": 900,
                "refresh_token": f"ort1_{n + 1}",
                "refresh_expires_in": 604800,
            }, {}
        if rec.path == "/api/v1/logout":
            return 200, {"success": True, "all": rec.json().get("all") is True}, {}
        return 404, {"error": "not_found", "message": "No such route."}, {}


class Sessions(unittest.TestCase):
    def setUp(self) -> None:
        self.state = SessionServer()
        self.server = CannedServer(self.state).__enter__()
        self.addCleanup(self.server.__exit__, None, None, None)

    def refreshes(self) -> List[Recorded]:
        return [r for r in self.server.requests if r.path == "/api/v1/token/refresh"]

    def signed_in(self, storage: Optional[MemoryTokenStorage] = None) -> OTPClient:
        client = OTPClient(self.server.url, token_storage=storage)
        client.set_token("access.0", "ort1_0")
        return client

    def test_verify_keeps_the_refresh_token_with_the_access_token(self) -> None:
        storage = MemoryTokenStorage()
        client = OTPClient(self.server.url, token_storage=storage)
        verified = client.verify_otp("a@example.com", "123456")
        self.assertEqual(verified.refresh_token, "ort1_0")
        self.assertEqual(verified.refresh_expires_in, 604800)
        self.assertNotIn("ort1_0", repr(verified))
        self.assertEqual((storage.get(), storage.get_refresh_token()), ("access.0", "ort1_0"))

    def test_ten_threads_with_an_expired_token_make_one_refresh_request_then_retry(self) -> None:
        client = self.signed_in()
        self.state.expired.add("access.0")
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda _: client.verify_bearer(), range(10)))
        for info in results:
            self.assertEqual(info.claims["token"], "access.1")
        self.assertEqual(len(self.refreshes()), 1)
        self.assertEqual(self.refreshes()[0].json(), {"refresh_token": "ort1_0"})
        self.assertEqual((client.token, client.refresh_token), ("access.1", "ort1_1"))

    def test_two_clients_sharing_a_storage_refresh_once(self) -> None:
        storage = MemoryTokenStorage()
        one = self.signed_in(storage)
        two = OTPClient(self.server.url, token_storage=storage)
        barrier = threading.Barrier(2)

        def refresh(client: OTPClient) -> RefreshResult:
            barrier.wait()
            return client.refresh()

        with ThreadPoolExecutor(max_workers=2) as pool:
            first, second = pool.map(refresh, [one, two])
        self.assertEqual(len(self.refreshes()), 1, "the second re-read the storage under the lock")
        self.assertEqual({first.refresh_token, second.refresh_token}, {"ort1_1"})
        self.assertEqual(sorted([first.expires_in, second.expires_in], key=str), [900, None])
        # A later refresh spends the successor.
        self.assertEqual(two.refresh().refresh_token, "ort1_2")
        self.assertEqual(len(self.refreshes()), 2)

    def test_session_revoked_is_typed_for_every_waiting_thread_and_forgets_the_tokens(self) -> None:
        client = self.signed_in()
        self.state.expired.add("access.0")
        self.state.revoked.add("ort1_0")

        def call(_: int) -> OTPError:
            with self.assertRaises(OTPError) as ctx:
                client.verify_bearer()
            return ctx.exception

        with ThreadPoolExecutor(max_workers=5) as pool:
            errors = list(pool.map(call, range(5)))
        for err in errors:
            self.assertEqual((err.code, err.status_code), (ErrorCode.SESSION_REVOKED, 401))
        self.assertEqual(len(self.refreshes()), 1)
        self.assertIsNone(client.token)
        self.assertIsNone(client.refresh_token)
        with self.assertRaises(OTPError) as ctx:
            client.refresh()
        self.assertEqual((ctx.exception.code, ctx.exception.status_code), (ErrorCode.TOKEN_MISSING, 0))
        self.assertEqual(len(self.refreshes()), 1, "no token, no request")

    def test_an_expired_token_without_a_refresh_token_is_token_expired_without_a_refresh(self) -> None:
        client = OTPClient(self.server.url)
        client.set_token("access.0")
        self.state.expired.add("access.0")
        with self.assertRaises(OTPError) as ctx:
            client.verify_bearer()
        self.assertEqual(ctx.exception.code, ErrorCode.TOKEN_EXPIRED)
        self.assertEqual(self.refreshes(), [])

    def test_a_storage_without_refresh_methods_keeps_the_refresh_token_in_the_client(self) -> None:
        box = PlainStorage()
        client = OTPClient(self.server.url, token_storage=box)
        client.verify_otp("a@example.com", "123456")
        self.assertEqual(client.refresh_token, "ort1_0")
        self.assertEqual(client.refresh().access_token, "access.1")
        self.assertEqual(box.value, "access.1")

    def test_logout_sends_the_refresh_token_and_all_with_only_an_access_token_sends_the_bearer(self) -> None:
        client = self.signed_in()
        result = client.logout()
        self.assertEqual((result.success, result.all), (True, False))
        sent = self.server.requests[-1]
        self.assertEqual(sent.json(), {"refresh_token": "ort1_0", "all": False})
        self.assertNotIn("authorization", sent.headers)
        self.assertIsNone(client.token)
        self.assertIsNone(client.refresh_token)

        client.set_token("access.0")
        self.assertTrue(client.logout(all=True).all)
        self.assertEqual(self.server.requests[-1].headers["authorization"], "Bearer access.0")
        self.assertEqual(self.server.requests[-1].json(), {"all": True})

        count = len(self.server.requests)
        self.assertFalse(client.logout().all)
        self.assertEqual(len(self.server.requests), count, "nothing stored: no request")
        with self.assertRaises(OTPError) as ctx:
            client.logout(all=True)
        self.assertEqual(ctx.exception.code, ErrorCode.TOKEN_MISSING)

    def test_a_logout_the_server_cannot_confirm_still_signs_the_client_out(self) -> None:
        client = OTPClient(f"http://127.0.0.1:{unused_port()}", timeout=2.0, max_retries=0)
        client.set_token("access.0", "ort1_0")
        with self.assertRaises(OTPError) as ctx:
            client.logout()
        self.assertEqual(ctx.exception.code, ErrorCode.NETWORK_ERROR)
        self.assertIsNone(client.token)
        self.assertIsNone(client.refresh_token)


if __name__ == "__main__":
    unittest.main()
