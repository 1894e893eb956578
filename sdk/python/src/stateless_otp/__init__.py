"""Python SDK for stateless-otp, the one-time-code authentication service.

Standard library only (``urllib``). The names follow the earlier Python
service's SDK::

    from stateless_otp import OTPClient, OTPError

    client = OTPClient("http://127.0.0.1:8000")
    client.request_otp("alice@example.com")
    client.verify_otp("alice@example.com", "123456")   # stores the token
    client.verify_bearer().claims["sub"]   # refreshes once on token_expired
    client.logout()                         # ends the session on the server
"""

from ._version import __version__
from .client import DEFAULT_MAX_RETRIES, DEFAULT_RETRY_DELAY, DEFAULT_TIMEOUT, OTPClient, normalize_base_url, parse_retry_after
from .errors import ErrorCode, OTPError
from .models import LogoutResult, OTPRequestResult, OTPVerifyResult, RefreshResult, TokenInfo
from .storage import MemoryTokenStorage, TokenStorage

__all__ = [
    "__version__",
    "OTPClient",
    "OTPError",
    "ErrorCode",
    "OTPRequestResult",
    "OTPVerifyResult",
    "TokenInfo",
    "RefreshResult",
    "LogoutResult",
    "TokenStorage",
    "MemoryTokenStorage",
    "parse_retry_after",
    "normalize_base_url",
    "DEFAULT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_DELAY",
]
