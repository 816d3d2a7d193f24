"""Anomaly mode switches (``torch.autograd.detect_anomaly`` / ``set_detect_anomaly``) and the
legacy ``Variable``.

While the mode is on (and ``check_nan``), backward checks the gradients each node computes
and raises PyTorch's error at the first one holding a nan (``_engine._NanCheck``); it keeps
no traceback of the forward call that made the node.
"""
from __future__ import annotations

import warnings

from .. import _engine
from .._tensor import Tensor

__all__ = ["Variable", "detect_anomaly", "is_anomaly_check_nan_enabled", "is_anomaly_enabled",
           "set_anomaly_enabled", "set_detect_anomaly"]

_mode = {"enabled": False, "check_nan": True}


def is_anomaly_enabled() -> bool:
    return _mode["enabled"]


def is_anomaly_check_nan_enabled() -> bool:
    return _mode["check_nan"]


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    _mode["enabled"] = bool(enabled)
    _mode["check_nan"] = bool(check_nan)
    _engine.ANOMALY = _mode["enabled"]
    _engine.ANOMALY_NAN = _mode["enabled"] and _mode["check_nan"]


class detect_anomaly:
    """Context manager: anomaly mode on inside (PyTorch warns on construction)."""

    def __init__(self, check_nan: bool = True) -> None:
        self.prev = is_anomaly_enabled()
        self.check_nan = check_nan
        self.prev_check_nan = is_anomaly_check_nan_enabled()
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime "
                      "and should only be enabled for debugging.", stacklevel=2)

    def __enter__(self) -> None:
        set_anomaly_enabled(True, self.check_nan)

    def __exit__(self, *args: object) -> None:
        set_anomaly_enabled(self.prev, self.prev_check_nan)


class set_detect_anomaly:
    """Switch anomaly mode on or off, now; as a context manager, restore it on exit."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self.prev = is_anomaly_enabled()
        self.prev_check_nan = is_anomaly_check_nan_enabled()
        set_anomaly_enabled(mode, check_nan)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args: object) -> None:
        set_anomaly_enabled(self.prev, self.prev_check_nan)


class _VariableMeta(type):
    def __instancecheck__(cls, other: object) -> bool:
        return isinstance(other, Tensor)


class Variable(metaclass=_VariableMeta):
    """Deprecated: ``Variable(t, requires_grad=False)`` is ``t.detach()`` (same storage and
    version counter) with ``requires_grad`` set; every Tensor is an instance."""

    def __new__(cls, data: Tensor, requires_grad: bool = False, volatile: bool = False):
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        if volatile:
            warnings.warn("volatile was removed and now has no effect. Use "
                          "`with torch.no_grad():` instead.", stacklevel=2)
        return data.detach().requires_grad_(requires_grad)
