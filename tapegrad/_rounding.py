"""Division with rounding: ``div(..., rounding_mode="trunc" | "floor")``, ``floor_divide`` and
``//``, with PyTorch's dtypes, values and errors.

The quotient is computed with NumPy: ``floor_divide`` for "floor" (Python's floor division,
which is PyTorch's for floats too: 1 // 0.1 is 9, a / 0 is a / 0), ``trunc(a / b)`` for
"trunc" on floats, and for integers NumPy's floor division corrected toward zero where the
signs differ. Integers are not promoted to floats; an integer division by zero raises
PyTorch's "ZeroDivisionError"; bool operands raise PyTorch's NotImplementedError.

The quotient is piecewise constant. PyTorch's DivBackward2 gives both operands zero gradients;
``floor_divide`` has no derivative in PyTorch (its node is NotImplemented, and backward
raises). Both are recorded as one node with a Python backward (``autograd.Function``): such a
node is rare in differentiated code and its gradient is zeros or an error, so the sweep's
return to Python costs nothing that matters.
"""
from __future__ import annotations

import numpy as np

from . import _dtype as D
from ._tensor import _NUMBER, Tensor, _out, _quiet, _result, _val, tensor, zeros
from .autograd.function import Function
from .autograd.grad_mode import is_grad_enabled


def _floor_or_trunc(a, b, floor, floating):
    if floating:
        if floor:
            return _quiet(np.floor_divide, a, b)
        return np.trunc(_quiet(np.true_divide, a, b))
    if np.any(b == 0):
        raise RuntimeError("ZeroDivisionError")
    q = np.floor_divide(a, b)
    if not floor:  # toward zero: one more where the division is inexact and the signs differ
        q = q + ((q * b != a) & ((a < 0) != (b < 0)))
    return q


class _DivRounded(Function):
    """div with a rounding mode: zero gradients (PyTorch's DivBackward2)."""

    _node_name = "DivBackward2"

    @staticmethod
    def forward(ctx, x, y, make):
        ctx.operands = (x, y)
        return make()

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.operands
        return (zeros(x.shape, dtype=x.dtype) if ctx.needs_input_grad[0] else None,
                zeros(y.shape, dtype=y.dtype) if ctx.needs_input_grad[1] else None, None)


class _FloorDivide(Function):
    """floor_divide: no derivative, as in PyTorch (its node prints as NotImplemented)."""

    _node_name = "NotImplemented"

    @staticmethod
    def forward(ctx, x, y, make):
        return make()

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("derivative for aten::floor_divide is not implemented")


def divide(x, y, mode, reverse=False, floor_divide=False):
    """x / y rounded by ``mode`` ("trunc" or "floor"), or y / x with ``reverse``; x a Tensor, y
    a Tensor or a number.  ``floor_divide``: the node of ``floor_divide`` and ``//``."""
    if mode != "trunc" and mode != "floor":
        raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' "
                           f"but found '{mode}'")
    if not isinstance(y, Tensor):
        if isinstance(y, np.generic):
            y = y.item()
        if not isinstance(y, _NUMBER):
            y = tensor(y)
    dt = D.result_type((x, y))
    if dt is D.bool_:
        raise NotImplementedError(f'"div_{mode}_cpu" not implemented for \'Bool\'')
    a = np.asarray(_val(x), dtype=dt.np)
    b = np.asarray(_val(y) if isinstance(y, Tensor) else y, dtype=dt.np)
    if reverse:
        a, b = b, a
    value = _out(np.asarray(_floor_or_trunc(a, b, mode == "floor", dt.is_floating_point)), dt)
    yt = y if isinstance(y, Tensor) else None
    if not (is_grad_enabled() and (x.requires_grad or yt is not None and yt.requires_grad)):
        return _result(value, dt)
    if yt is None:  # (a number: an operand without history, None in next_functions)
        yt = tensor(y, dtype=dt)
    first, second = (yt, x) if reverse else (x, yt)
    fn = _FloorDivide if floor_divide else _DivRounded

    def make():
        return _result(value, dt)

    return fn.apply(first, second, make)
