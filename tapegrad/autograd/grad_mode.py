"""Grad-mode switches: thread-local, usable as context managers and decorators."""
from __future__ import annotations

import functools

from .._engine import state, sync


def _check_tracing(enabled):
    if not enabled and state.tracing is not None:
        state.tracing.refuse("turning off grad mode (no_grad, inference_mode, "
                             "set_grad_enabled(False)): ops inside would not be recorded")


class _GradMode:
    _enabled: bool

    def __enter__(self):
        _check_tracing(self._enabled)
        self._prev = state.grad_enabled
        state.grad_enabled = self._enabled
        sync(state)

    def __exit__(self, *exc):
        state.grad_enabled = self._prev
        sync(state)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return wrapper

    def clone(self):
        return self.__class__()


class _Decorating(_GradMode):
    """Also usable as a bare decorator: ``@no_grad`` as well as ``@no_grad()``."""

    def __new__(cls, orig_func=None):
        self = super().__new__(cls)
        if orig_func is not None:
            return self(orig_func)
        return self

    def __init__(self, orig_func=None):
        pass


class no_grad(_Decorating):
    """Disable recording inside the block (or the decorated function)."""

    _enabled = False


class enable_grad(_Decorating):
    """Enable recording inside the block (or the decorated function)."""

    _enabled = True


class set_grad_enabled(_GradMode):
    """Set grad mode now (as a function) or for a block (as a context manager)."""

    def __init__(self, mode: bool):
        _check_tracing(mode)
        self._prev = state.grad_enabled
        self._enabled = bool(mode)
        state.grad_enabled = self._enabled
        sync(state)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        state.grad_enabled = self._prev
        sync(state)
        return False

    def clone(self):
        return self.__class__(self._enabled)


class inference_mode(_GradMode):
    def __init__(self, mode: bool = True):
        self._enabled = not mode


def is_grad_enabled() -> bool:
    return state.grad_enabled
