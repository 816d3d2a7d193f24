"""``tapegrad.nn``: neural-network building blocks (functional forms so far)."""
from . import functional

__all__ = ["functional"]
