"""The SDK's version (kept equal to pyproject.toml's)."""

__version__ = "0.2.0"
