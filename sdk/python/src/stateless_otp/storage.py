"""Where the client keeps the session's tokens between calls: the access
token (``get``/``set``) and the refresh token (``get_refresh_token``/
``set_refresh_token``, optional: a storage without them, written for an
earlier version, leaves the refresh token in the client); ``clear`` forgets
both. A storage may carry a ``refresh_lock`` (a :class:`threading.Lock`)
that every client sharing it uses, so they refresh one at a time."""

from __future__ import annotations

import threading
from typing import Optional, Protocol

__all__ = ["TokenStorage", "MemoryTokenStorage"]


class TokenStorage(Protocol):
    """Anything with ``get()``, ``set(token)`` and ``clear()``; optionally
    ``get_refresh_token()``, ``set_refresh_token(token)`` and ``refresh_lock``."""

    def get(self) -> Optional[str]:
        """Returns the stored token, or None."""
        ...

    def set(self, token: str) -> None:
        """Stores ``token``, replacing any previous one."""
        ...

    def clear(self) -> None:
        """Forgets the stored tokens."""
        ...


class MemoryTokenStorage:
    """Keeps the tokens in memory (the default); safe to share between
    threads and between clients (they then refresh one at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._refresh: Optional[str] = None
        #: Held while a client sharing this storage refreshes.
        self.refresh_lock = threading.Lock()

    def get(self) -> Optional[str]:
        with self._lock:
            return self._token

    def set(self, token: str) -> None:
        with self._lock:
            self._token = token

    def get_refresh_token(self) -> Optional[str]:
        with self._lock:
            return self._refresh

    def set_refresh_token(self, token: Optional[str]) -> None:
        with self._lock:
            self._refresh = token

    def clear(self) -> None:
        with self._lock:
            self._token = None
            self._refresh = None

    def __repr__(self) -> str:
        return f"MemoryTokenStorage(has_token={self._token is not None}, has_refresh_token={self._refresh is not None})"
