"""Result types returned by :class:`stateless_otp.OTPClient`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

__all__ = ["OTPRequestResult", "OTPVerifyResult", "TokenInfo"]


@dataclass(frozen=True)
class OTPRequestResult:
    """Answer of ``POST /api/v1/otp/request``."""

    success: bool
    message: str
    #: How long the code stays valid, in seconds.
    ttl_seconds: int
    #: When the code stops being valid, as Unix seconds.
    expires_at: int
    #: Sends left in the current rate-limit window, if the server said.
    rate_limit_remaining: Optional[int] = None


@dataclass(frozen=True)
class OTPVerifyResult:
    """Answer of ``POST /api/v1/otp/verify``. The token is kept out of ``repr``."""

    success: bool
    message: str
    access_token: str = field(repr=False)
    #: ``"bearer"``.
    token_type: str
    #: Lifetime of the token in seconds.
    expires_in: int
    rate_limit_remaining: Optional[int] = None
    #: The session's refresh token (also stored); None with ``SESSIONS=off``.
    refresh_token: Optional[str] = field(default=None, repr=False)
    #: Lifetime of the refresh token in seconds, or None.
    refresh_expires_in: Optional[int] = None


@dataclass(frozen=True)
class RefreshResult:
    """Answer of ``POST /api/v1/token/refresh`` (tokens kept out of ``repr``).

    ``expires_in`` and ``refresh_expires_in`` are None when another caller
    sharing the storage had already rotated the token and its pair was used.
    """

    access_token: str = field(repr=False)
    #: ``"bearer"``.
    token_type: str
    expires_in: Optional[int]
    #: The successor refresh token (the one presented is spent).
    refresh_token: str = field(repr=False)
    refresh_expires_in: Optional[int] = None


@dataclass(frozen=True)
class LogoutResult:
    """Answer of ``POST /api/v1/logout``."""

    success: bool
    #: Whether every session of the identity ended.
    all: bool


@dataclass(frozen=True)
class TokenInfo:
    """Answer of introspection and bearer verification."""

    active: bool
    #: The token's claims (``sub``, ``exp``, ...) or None for an inactive token.
    claims: Optional[Dict[str, Any]]
