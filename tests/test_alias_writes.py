"""Writes through the aliases of a tensor that a graph saved: ``detach()`` (shares the version
counter: PyTorch's backward then raises its version error) and ``.data`` (its own counter: no
error, the backward sees the new values), reached directly or through views of them, views
of views, or aliases of aliases (``_tensor._sharers``).

Each write runs in tapegrad and PyTorch (when installed) and must end the same way: the same
error, or the same gradient. Without PyTorch, the outcome each write must have is checked:
the error for writes that bump the saved tensor's version, and otherwise the gradient of
``(y * y).sum()`` at the values written, ``2 * y``.
"""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the outcome checks still run
    real_torch = None


def _setitem(a, k, v):
    a[k] = v


# (name, write, bumps the saved tensor's version)
WRITES = [
    ("detach_add", lambda y: y.detach().add_(1.0), True),
    ("detach_setitem", lambda y: _setitem(y.detach(), 0, 5.0), True),
    ("detach_view_add", lambda y: y.detach()[1:].add_(1.0), True),
    ("view_detach_add", lambda y: y[1:].detach().add_(1.0), True),
    ("view_detach_setitem", lambda y: _setitem(y[1:].detach(), 0, 5.0), True),
    ("detach_copy", lambda y: y.detach().copy_(y.detach() * 2.0), True),
    ("detach_detach_add", lambda y: y.detach().detach().add_(1.0), True),
    ("detach_view_view_mul", lambda y: y.detach()[1:][1:].mul_(3.0), True),
    ("detach_data_add", lambda y: y.detach().data.add_(1.0), False),
    ("data_add", lambda y: y.data.add_(1.0), False),
    ("data_view_add", lambda y: y.data[1:].add_(1.0), False),
    ("data_setitem", lambda y: _setitem(y.data, 0, 5.0), False),
    ("view_data_add", lambda y: y[1:].data.add_(1.0), False),
    ("data_detach_mul", lambda y: y.data.detach()[:2].mul_(2.0), False),
]
IDS = [w[0] for w in WRITES]
A = np.array([1.0, 2.0, 3.0, 4.0])


def _outcome(module, write, leaf):
    """("error", message) or ("grad", x.grad, the written y's values)."""
    x = module.tensor(A, dtype=module.float64, requires_grad=True)
    y = x if leaf else x * 1.0
    z = y * y  # saves y
    write(y)
    after = y.detach().numpy().copy()
    try:
        z.sum().backward()
    except RuntimeError as exc:
        return ("error", str(exc).split(":")[0])
    return ("grad", x.grad.numpy().copy(), after)


@pytest.mark.parametrize("leaf", [False, True], ids=["non_leaf", "leaf"])
@pytest.mark.parametrize("name,write,bumps", WRITES, ids=IDS)
def test_write_through_an_alias_ends_as_in_torch(name, write, bumps, leaf):
    ours = _outcome(tapegrad, write, leaf)
    if bumps:
        assert ours == ("error", "one of the variables needed for gradient computation has "
                                 "been modified by an inplace operation")
    else:
        assert ours[0] == "grad"
        assert not np.array_equal(ours[2], A)  # (the write happened)
        np.testing.assert_array_equal(ours[1], 2.0 * ours[2])
    if real_torch is not None:
        theirs = _outcome(real_torch, write, leaf)
        assert ours[0] == theirs[0]
        if ours[0] == "error":
            assert ours[1] == theirs[1]
        else:
            np.testing.assert_array_equal(ours[1], theirs[1])


def test_a_constant_from_data_written_after_use_raises_as_torch():
    """``w * y.data``: the ``.data`` tensor is saved as a constant with its own version, and
    writing it afterwards makes the backward raise (PyTorch's check of its counter)."""
    for module in (tapegrad,) + ((real_torch,) if real_torch is not None else ()):
        y = module.tensor(A, dtype=module.float64, requires_grad=True)
        w = module.tensor(A, dtype=module.float64, requires_grad=True)
        d = y.data
        z = (w * d).sum()
        d.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.backward()
