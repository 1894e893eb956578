"""Error type of the SDK: one exception class with a stable ``code``."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["ErrorCode", "OTPError"]


class ErrorCode:
    """Every ``code`` an :class:`OTPError` can carry, as string constants.

    The first fourteen come from the server's error bodies. The last four are
    raised by the SDK itself: ``NETWORK_ERROR`` and ``TIMEOUT`` always have
    ``status_code`` 0; ``HTTP_ERROR`` (an error page that is not the API's
    JSON) and ``INVALID_RESPONSE`` (a 2xx that is not the promised JSON) carry
    the status of the answer.
    """

    VALIDATION_ERROR = "validation_error"
    OTP_INVALID = "otp_invalid"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    DELIVERY_FAILED = "delivery_failed"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXPIRED = "token_expired"
    SESSION_REVOKED = "session_revoked"
    REQUEST_TIMEOUT = "request_timeout"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INTERNAL_ERROR = "internal_error"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"
    INVALID_RESPONSE = "invalid_response"


class OTPError(Exception):
    """A failure on the wire or on the server.

    Attributes:
        code: stable machine-readable code (see :class:`ErrorCode`).
        status_code: HTTP status of the answer, or 0 when no answer arrived.
        retry_after: seconds to wait before trying again (from ``Retry-After``), or None.
        details: the offending fields of a 422 answer, a list of
            ``{"loc": [...], "msg": ..., "type": ...}`` dicts, or None.
        message: human-readable text (the server's ``message`` when there is one).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status_code: int = 0,
        retry_after: Optional[int] = None,
        details: Optional[Any] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.retry_after = retry_after
        self.details = details

    def __str__(self) -> str:
        return f"{self.message} [{self.code}, HTTP {self.status_code}]"

    def __repr__(self) -> str:
        return (
            f"OTPError(code={self.code!r}, status_code={self.status_code!r}, "
            f"retry_after={self.retry_after!r}, message={self.message!r})"
        )
