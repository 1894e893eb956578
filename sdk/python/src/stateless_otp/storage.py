"""Where the client keeps the access token between calls."""

from __future__ import annotations

import threading
from typing import Optional, Protocol

__all__ = ["TokenStorage", "MemoryTokenStorage"]


class TokenStorage(Protocol):
    """Anything with ``get()``, ``set(token)`` and ``clear()``."""

    def get(self) -> Optional[str]:
        """Returns the stored token, or None."""
        ...

    def set(self, token: str) -> None:
        """Stores ``token``, replacing any previous one."""
        ...

    def clear(self) -> None:
        """Forgets the stored token."""
        ...


class MemoryTokenStorage:
    """Keeps the token in memory (the default); safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: Optional[str] = None

    def get(self) -> Optional[str]:
        with self._lock:
            return self._token

    def set(self, token: str) -> None:
        with self._lock:
            self._token = token

    def clear(self) -> None:
        with self._lock:
            self._token = None

    def __repr__(self) -> str:
        return f"MemoryTokenStorage(has_token={self._token is not None})"
