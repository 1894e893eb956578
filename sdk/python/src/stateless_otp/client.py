"""The HTTP client: :class:`OTPClient` over ``urllib`` (standard library only)."""

from __future__ import annotations

import email.message
import email.utils
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar

from ._version import __version__
from .errors import ErrorCode, OTPError
from .models import LogoutResult, OTPRequestResult, OTPVerifyResult, RefreshResult, TokenInfo
from .storage import MemoryTokenStorage, TokenStorage

__all__ = ["OTPClient", "parse_retry_after", "DEFAULT_TIMEOUT", "DEFAULT_MAX_RETRIES", "DEFAULT_RETRY_DELAY"]

#: Default per-attempt timeout in seconds.
DEFAULT_TIMEOUT = 10.0
#: Default number of retries for retryable failures.
DEFAULT_MAX_RETRIES = 2
#: Default base delay in seconds between retries (doubled each time).
DEFAULT_RETRY_DELAY = 0.25
#: Longest wait between two retries, whatever ``Retry-After`` asks for.
_MAX_RETRY_WAIT = 5.0

_STATUS_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    408: ErrorCode.REQUEST_TIMEOUT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[int]:
    """Parses a ``Retry-After`` header (delay-seconds or an HTTP date).

    Returns whole seconds (>= 0), or None when the value is absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    delta = when.timestamp() - current
    return max(0, int(-(-delta // 1)))


def _is_retryable(err: OTPError, idempotent: bool) -> bool:
    # The service fails closed before doing anything when its store is down,
    # so even a non-idempotent call may be repeated after that 503.
    if err.code == ErrorCode.BACKEND_UNAVAILABLE:
        return True
    if not idempotent:
        return False
    if err.code in (ErrorCode.NETWORK_ERROR, ErrorCode.TIMEOUT):
        return True
    return err.status_code in (502, 503, 504)


_T = TypeVar("_T")


def _missing(message: str) -> OTPError:
    return OTPError(message, code=ErrorCode.TOKEN_MISSING, status_code=0)


def _require_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")


def _token_info(data: Dict[str, Any]) -> TokenInfo:
    claims = data.get("claims")
    return TokenInfo(active=data.get("active") is True, claims=claims if isinstance(claims, dict) else None)


def normalize_base_url(base_url: str) -> str:
    """Returns the base URL as the client uses it: trimmed, without trailing
    slashes and without a final ``/api/v1``, so ``https://auth.example.com``,
    ``https://auth.example.com/`` and ``https://auth.example.com/api/v1/``
    name the same server (a path prefix such as ``/auth`` is kept)."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    return url


class OTPClient:
    """Client for one stateless-otp server.

    Args:
        base_url: the server, e.g. ``"https://auth.example.com"``; a path
            prefix such as ``/auth`` is kept, and a trailing ``/`` or
            ``/api/v1`` (the form the Python service's SDKs were documented
            with) is dropped: see :func:`normalize_base_url`.
        timeout: per-attempt timeout in seconds. Defaults to 10.0.
        token_storage: where the access token is kept. Defaults to a new
            :class:`MemoryTokenStorage`.
        headers: extra headers sent with every request. Defaults to none.
        max_retries: retries after a retryable failure. Defaults to 2.
        retry_delay: base delay in seconds between retries, doubled each
            time (a ``Retry-After`` wins, capped at 5 s). Defaults to 0.25.

    Retries: calls that change nothing on the server (``introspect_token``,
    ``verify_bearer``, ``jwks``, ``health``) are retried after a network
    error, a timeout or a 502/503/504. ``request_otp`` and ``verify_otp`` are
    retried only after 503 ``backend_unavailable`` (the server did nothing),
    never after a lost answer: a second send mails another code, and a second
    verify of a used code fails. 429 is never retried. ``refresh`` is
    retried like a read: presented again within the server's grace window, a
    refresh token yields the very same successor.

    Sessions: ``verify_otp`` stores the access token and the refresh token.
    ``verify_bearer()`` (the stored token) refreshes once when the server
    answers ``token_expired``, then retries once. One refresh runs at a time
    per storage (its ``refresh_lock``, else one lock per client): a thread
    that waited for the lock re-reads the storage first and, when the
    refresh token it meant to spend was already rotated, uses the stored
    pair without a request (or gets the same 401 that ended the session).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        token_storage: Optional[TokenStorage] = None,
        headers: Optional[Mapping[str, str]] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_delay: float = DEFAULT_RETRY_DELAY,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.strip():
            raise ValueError('base_url is required, e.g. "https://auth.example.com"')
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError("timeout must be a positive number of seconds")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ValueError("max_retries must be a whole number >= 0")
        self.base_url = normalize_base_url(base_url)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.retry_delay = float(retry_delay)
        self.token_storage: TokenStorage = token_storage if token_storage is not None else MemoryTokenStorage()
        self._headers = dict(headers or {})
        # A storage without get_refresh_token/set_refresh_token (written for
        # an earlier version): the refresh token lives here instead.
        self._own_refresh: Optional[str] = None
        shared = getattr(self.token_storage, "refresh_lock", None)
        self._refresh_lock = shared if shared is not None else threading.Lock()
        # The refresh token the last failed refresh spent, and its 401.
        self._last_failure: Optional[Tuple[str, OTPError]] = None

    def __repr__(self) -> str:
        return f"OTPClient(base_url={self.base_url!r}, timeout={self.timeout!r})"

    # -- OTP flow -----------------------------------------------------------

    def request_otp(self, identity: str) -> OTPRequestResult:
        """Asks the server to derive and deliver a code to ``identity``
        (email, ``+E.164`` phone number or user id)."""
        _require_str("identity", identity)
        data = self._request("POST", "/api/v1/otp/request", body={"identity": identity})
        return OTPRequestResult(
            success=data.get("success") is True,
            message=str(data.get("message", "")),
            ttl_seconds=int(data.get("ttl_seconds", 0)),
            expires_at=int(data.get("expires_at", 0)),
            rate_limit_remaining=data.get("rate_limit_remaining"),
        )

    def verify_otp(self, identity: str, otp: str) -> OTPVerifyResult:
        """Checks the code the user typed; on success stores the access token
        and the session's refresh token (none with ``SESSIONS=off``).

        ``otp`` must be a str: an int would lose leading zeros.
        """
        _require_str("identity", identity)
        _require_str("otp", otp)
        data = self._request("POST", "/api/v1/otp/verify", body={"identity": identity, "otp": otp})
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise OTPError(
                "The OTP server answered without an access token.",
                code=ErrorCode.INVALID_RESPONSE,
                status_code=200,
            )
        refresh = data.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) and refresh else None
        self._store(token, refresh)
        return OTPVerifyResult(
            success=data.get("success") is True,
            message=str(data.get("message", "")),
            access_token=token,
            token_type=str(data.get("token_type", "")),
            expires_in=int(data.get("expires_in", 0)),
            rate_limit_remaining=data.get("rate_limit_remaining"),
            refresh_token=refresh,
            refresh_expires_in=data.get("refresh_expires_in"),
        )

    # -- tokens ---------------------------------------------------------------

    def introspect_token(self, token: Optional[str] = None) -> TokenInfo:
        """Asks whether a token (default: the stored one) is valid.

        An invalid token is not an error: the answer is ``TokenInfo(False, None)``.
        """
        value = self._token_or_stored(token)
        data = self._request("POST", "/api/v1/token/introspect", body={"token": value}, idempotent=True)
        return _token_info(data)

    def verify_bearer(self, token: Optional[str] = None) -> TokenInfo:
        """Verifies a token (default: the stored one) the way a protected
        service does, with ``Authorization: Bearer``.

        Raises :class:`OTPError` 401 ``token_invalid`` / ``token_expired`` for a
        bad token. With the stored token, ``token_expired`` is followed by one
        refresh and one retry; a token still refused after that is cleared,
        with the refresh token.
        """

        def verify(bearer: str) -> TokenInfo:
            return _token_info(self._request("GET", "/api/v1/token/verify", bearer=bearer, idempotent=True))

        if token is not None:
            return verify(self._token_or_stored(token))
        try:
            return self._with_access_token(verify)
        except OTPError as err:
            if err.status_code == 401:
                self._forget()
            raise

    def refresh(self) -> RefreshResult:
        """Exchanges the stored refresh token for a new access token and its
        successor (``POST /api/v1/token/refresh``) and stores both.

        One refresh at a time per storage: a caller that waited while another
        rotated the token gets the stored pair (``expires_in`` None) without
        a request. Raises :class:`OTPError` 401 ``session_revoked`` (logged
        out, signed out everywhere, revoked after a reuse), ``token_expired``
        (the session's lifetime is over) or ``token_invalid``, after which the
        tokens are forgotten; ``token_missing`` (status 0, no request) when no
        refresh token is stored.
        """
        return self._refresh_from(self.refresh_token)

    def logout(self, all: bool = False) -> LogoutResult:  # noqa: A002 - the wire name
        """Ends the session on the server (``POST /api/v1/logout``) and forgets
        the stored tokens.

        The tokens are forgotten first, so the client is signed out whatever
        the answer; an :class:`OTPError` says the server did not confirm (the
        session then ends by itself when its refresh token expires). The
        refresh token names the session (else the access token, even an
        expired one). ``all=True`` ends every session of the identity ("sign
        out everywhere"). Access tokens already issued stay valid until they
        expire. With no token stored it returns without a request
        (``all=True`` raises ``token_missing``).
        """
        with self._refresh_lock:  # a refresh in flight first: end its successor
            refresh, access = self.refresh_token, self.token
            self._forget()
        if refresh is None and access is None:
            if all:
                raise _missing("No token is stored: nothing names the sessions to end; sign in first.")
            return LogoutResult(success=True, all=False)
        body: Dict[str, Any] = {"refresh_token": refresh, "all": all} if refresh is not None else {"all": all}
        data = self._request("POST", "/api/v1/logout", body=body, bearer=None if refresh is not None else access)
        return LogoutResult(success=data.get("success") is True, all=data.get("all") is True)

    def jwks(self) -> Dict[str, Any]:
        """The server's public keys, ``{"keys": [...]}`` (empty for HS256)."""
        data = self._request("GET", "/.well-known/jwks.json", idempotent=True)
        if not isinstance(data.get("keys"), list):
            raise OTPError('The JWKS answer has no "keys" list.', code=ErrorCode.INVALID_RESPONSE, status_code=200)
        return {"keys": data["keys"]}

    def health(self) -> Dict[str, Any]:
        """Liveness probe: ``{"status": "ok", "service": "stateless-otp"}``."""
        return self._request("GET", "/health", idempotent=True)

    @property
    def token(self) -> Optional[str]:
        """The stored access token, or None."""
        value = self.token_storage.get()
        return value if isinstance(value, str) and value else None

    def get_token(self) -> Optional[str]:
        """The stored access token, or None."""
        return self.token

    @property
    def refresh_token(self) -> Optional[str]:
        """The stored refresh token, or None."""
        getter = getattr(self.token_storage, "get_refresh_token", None)
        value = getter() if callable(getter) else self._own_refresh
        return value if isinstance(value, str) and value else None

    def get_refresh_token(self) -> Optional[str]:
        """The stored refresh token, or None."""
        return self.refresh_token

    def set_token(self, token: str, refresh_token: Optional[str] = None) -> None:
        """Stores a token obtained elsewhere, and optionally its refresh token."""
        _require_str("token", token)
        if refresh_token is None:
            self.token_storage.set(token)
            return
        _require_str("refresh_token", refresh_token)
        self._store(token, refresh_token)

    def clear_token(self) -> None:
        """Forgets the stored tokens, locally only (:meth:`logout` also ends
        the session on the server)."""
        self._forget()

    # -- sessions -------------------------------------------------------------

    def _store(self, access: str, refresh: Optional[str]) -> None:
        # The refresh token first: a reader that sees the new access token
        # never pairs it with a spent refresh token.
        setter = getattr(self.token_storage, "set_refresh_token", None)
        if callable(setter):
            setter(refresh)
        else:
            self._own_refresh = refresh
        self.token_storage.set(access)

    def _forget(self) -> None:
        self.token_storage.clear()
        self._own_refresh = None

    def _with_access_token(self, call: Callable[[str], _T]) -> _T:
        """Runs ``call`` with the stored access token; on ``token_expired``
        with a refresh token stored, refreshes once and runs it once more.
        With only a refresh token stored, refreshes first."""
        meant = self.refresh_token
        token = self.token
        if token is None:
            if meant is None:
                raise _missing("No token was given and none is stored; call verify_otp first.")
            return call(self._refresh_from(meant).access_token)
        try:
            return call(token)
        except OTPError as err:
            if err.code != ErrorCode.TOKEN_EXPIRED or meant is None:
                raise
        return call(self._refresh_from(meant).access_token)

    def _refresh_from(self, meant: Optional[str]) -> RefreshResult:
        """Refreshes under the lock, unless ``meant`` (the refresh token the
        caller saw before waiting) was spent meanwhile by another caller."""
        with self._refresh_lock:
            failure = self._last_failure
            if meant is not None and failure is not None and failure[0] == meant:
                raise OTPError(
                    failure[1].message,
                    code=failure[1].code,
                    status_code=failure[1].status_code,
                )
            stored = self.refresh_token
            if stored is None:
                raise _missing("No refresh token is stored; sign in with verify_otp first.")
            access = self.token
            if meant is not None and stored != meant and access is not None:
                return RefreshResult(access_token=access, token_type="bearer", expires_in=None, refresh_token=stored)
            try:
                data = self._request(
                    "POST", "/api/v1/token/refresh", body={"refresh_token": stored}, idempotent=True
                )
            except OTPError as err:
                if err.status_code == 401:  # final for this token: the session is over
                    self._last_failure = (stored, err)
                    if self.refresh_token == stored:
                        self._forget()
                raise
            fresh_access, fresh_refresh = data.get("access_token"), data.get("refresh_token")
            if not isinstance(fresh_access, str) or not isinstance(fresh_refresh, str):
                raise OTPError(
                    "The OTP server answered a refresh without the tokens.",
                    code=ErrorCode.INVALID_RESPONSE,
                    status_code=200,
                )
            self._store(fresh_access, fresh_refresh)
            return RefreshResult(
                access_token=fresh_access,
                token_type=str(data.get("token_type", "")),
                expires_in=data.get("expires_in"),
                refresh_token=fresh_refresh,
                refresh_expires_in=data.get("refresh_expires_in"),
            )

    # -- transport ------------------------------------------------------------

    def _token_or_stored(self, token: Optional[str]) -> str:
        if token is not None:
            _require_str("token", token)
            return token
        stored = self.token
        if stored is None:
            raise OTPError(
                "No token was given and none is stored; call verify_otp first.",
                code=ErrorCode.TOKEN_MISSING,
                status_code=0,
            )
        return stored

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[Dict[str, Any]] = None,
        bearer: Optional[str] = None,
        idempotent: bool = False,
    ) -> Dict[str, Any]:
        attempt = 0
        while True:
            try:
                return self._send(method, path, body, bearer)
            except OTPError as err:
                if attempt >= self.max_retries or not _is_retryable(err, idempotent):
                    raise
                wait = float(err.retry_after) if err.retry_after is not None else self.retry_delay * (2**attempt)
                time.sleep(min(wait, _MAX_RETRY_WAIT))
                attempt += 1

    def _send(self, method: str, path: str, body: Optional[Dict[str, Any]], bearer: Optional[str]) -> Dict[str, Any]:
        url = self.base_url + path
        headers = {"Accept": "application/json", "User-Agent": f"stateless-otp-python/{__version__}"}
        headers.update(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        status, raw, response_headers = self._exchange(request)
        try:
            parsed: Any = json.loads(raw.decode("utf-8")) if raw else None
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if not 200 <= status < 300:
            raise self._error_from_response(status, response_headers, parsed)
        if not isinstance(parsed, dict):
            raise OTPError(
                f"The OTP server answered HTTP {status} without a JSON object.",
                code=ErrorCode.INVALID_RESPONSE,
                status_code=status,
            )
        return parsed

    def _exchange(self, request: urllib.request.Request) -> Tuple[int, bytes, email.message.Message]:
        """Sends one request; returns (status, body, headers) for any HTTP answer."""
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as err:
            try:
                raw = err.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                err.close()
            return err.code, raw, err.headers
        except socket.timeout as err:
            raise self._timeout(request) from err
        except urllib.error.URLError as err:
            if isinstance(err.reason, socket.timeout):
                raise self._timeout(request) from err
            raise OTPError(
                f"Could not reach the OTP server at {self.base_url}: {err.reason}",
                code=ErrorCode.NETWORK_ERROR,
                status_code=0,
            ) from err
        except (OSError, http.client.HTTPException) as err:
            raise OTPError(
                f"Could not reach the OTP server at {self.base_url}: {err!r}",
                code=ErrorCode.NETWORK_ERROR,
                status_code=0,
            ) from err

    def _timeout(self, request: urllib.request.Request) -> OTPError:
        return OTPError(
            f"No answer from {request.full_url} within {self.timeout:g} s.",
            code=ErrorCode.TIMEOUT,
            status_code=0,
        )

    @staticmethod
    def _error_from_response(status: int, headers: Optional[email.message.Message], parsed: Any) -> OTPError:
        body: Dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        code = body.get("error")
        if not isinstance(code, str) or not code:
            code = _STATUS_CODES.get(status, ErrorCode.HTTP_ERROR)
        message = body.get("message")
        if not isinstance(message, str) or not message:
            message = f"The OTP server answered HTTP {status}."
        retry_after = parse_retry_after(headers.get("Retry-After") if headers is not None else None)
        if retry_after is None and isinstance(body.get("retry_after"), int):
            retry_after = body["retry_after"]
        return OTPError(message, code=code, status_code=status, retry_after=retry_after, details=body.get("details"))
