"""Value tests and logical ops: ``isnan isinf isfinite isclose allclose`` and
``logical_and logical_or logical_xor logical_not``, with PyTorch's dtypes and errors.

Their results are bool tensors (a Python bool for ``allclose``) that no gradient flows
through. Their values depend on their inputs' values, which a trace's replay could not
recompute: while ``tapegrad.trace`` records, a traced input is refused (``_untraced``).
"""
from __future__ import annotations

import numpy as np

from . import _dtype as D
from ._tensor import _SHORT, Tensor, _out, _quiet, _result, _untraced, _val


def _tensor_arg(fn, name, position, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' (position {position}) must be Tensor, not "
                        f"{type(x).__name__}")
    return x


def _bool_of(fn, x):
    _untraced(x, f"{fn}() of a traced value (a replay could not recompute it)")
    return x


def _test(fn, ufunc, x):
    x = _bool_of(fn, _tensor_arg(fn, "input", 1, x))
    a = _val(x)
    if x.dtype.is_floating_point:
        return _result(_out(ufunc(a), D.bool_), D.bool_)
    # integers and bools are finite and never nan or inf
    return _result(np.full(a.shape, ufunc is np.isfinite), D.bool_)


def isnan(input):
    return _test("isnan", np.isnan, input)


def isinf(input):
    return _test("isinf", np.isinf, input)


def isfinite(input):
    return _test("isfinite", np.isfinite, input)


def _close(fn, input, other, rtol, atol, equal_nan):
    _tensor_arg(fn, "input", 1, input)
    _tensor_arg(fn, "other", 2, other)
    if input.dtype is not other.dtype:
        raise RuntimeError(f"{_SHORT[input.dtype.name]} did not match {_SHORT[other.dtype.name]}")
    _bool_of(fn, input)
    _bool_of(fn, other)
    a, b = _val(input), _val(other)
    if not input.dtype.is_floating_point:
        a, b = a.astype(np.float64), b.astype(np.float64)
    return _quiet(np.isclose, a, b, rtol, atol, equal_nan)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| elementwise (infinities equal to themselves;
    nan equal to nan with ``equal_nan``), as a bool tensor."""
    return _result(_out(_close("isclose", input, other, rtol, atol, equal_nan), D.bool_), D.bool_)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether ``isclose`` holds everywhere, as a Python bool."""
    return bool(np.all(_close("allclose", input, other, rtol, atol, equal_nan)))


def _logical(fn, ufunc, input, *others):
    _bool_of(fn, _tensor_arg(fn, "input", 1, input))
    vals = [_val(input)]
    for o in others:
        _bool_of(fn, _tensor_arg(fn, "other", 2, o))
        vals.append(_val(o))
    return _result(_out(ufunc(*vals), D.bool_), D.bool_)


def logical_and(input, other):
    return _logical("logical_and", np.logical_and, input, other)


def logical_or(input, other):
    return _logical("logical_or", np.logical_or, input, other)


def logical_xor(input, other):
    return _logical("logical_xor", np.logical_xor, input, other)


def logical_not(input):
    return _logical("logical_not", np.logical_not, input)
