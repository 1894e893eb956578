"""Tests of the stateless_otp SDK.

Run from the repository root with
``python3 -m unittest discover -s sdk/python/tests -t sdk/python``.
The package is imported from ``sdk/python/src`` without installing it.
"""

import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
