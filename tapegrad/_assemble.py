"""Ops built from other ops: ``nonzero count_nonzero nan_to_num hstack vstack meshgrid`` and
the in-place ``uniform_ normal_``, with PyTorch's values, shapes and nodes.

The differentiable ones compose recorded ops (``cat`` of views, ``expand`` of views, a
``where`` shown as PyTorch's NanToNumBackward0), so their gradients are those ops' and no
new rule is needed. The index ops depend on the values: while ``tapegrad.trace`` records, a
traced input is refused.
"""
from __future__ import annotations

import builtins
import warnings

import numpy as np

from . import _dtype as D
from ._library import composite, where
from ._tensor import (
    _dims,
    _out,
    _result,
    _rng,
    _untraced,
    _val,
    cat,
    tensor,
)


def nonzero(input, *, out=None, as_tuple=False):
    _untraced(input, "nonzero() (its output's size depends on the values)")
    a = _val(input)
    if as_tuple:
        return tuple(_result(np.ascontiguousarray(i, dtype=np.int64), D.int64)
                     for i in np.nonzero(a.reshape(a.shape or (1,))))
    return _result(_out(np.argwhere(a).astype(np.int64), D.int64), D.int64)


def count_nonzero(input, dim=None):
    _untraced(input, "count_nonzero() (a count of the values)")
    a = _val(input)
    axis = None if dim is None else _dims(dim, input.ndim)
    return _result(_out(np.asarray(np.count_nonzero(a, axis=axis), dtype=np.int64), D.int64),
                   D.int64)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None):
    """nan, inf and -inf replaced (by 0 and the dtype's largest and lowest finite values
    unless given); the gradient flows where the input is finite (NanToNumBackward0)."""
    dt = input.dtype
    a = _val(input)
    if not dt.is_floating_point:
        return input.clone()
    value = np.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)
    if not input.requires_grad:
        return _result(_out(value, dt), dt)
    _untraced(input, "nan_to_num() (which elements it replaces depends on the values)")
    finite = _result(_out(np.isfinite(a), D.bool_), D.bool_)
    with composite("NanToNumBackward0", (input,)) as comp:
        return comp.output(where(finite, input, _result(_out(value, dt), dt)))


def _atleast(t, k):
    if t.ndim >= k:
        return t
    if t.ndim == 0:
        return t.view((1,) * k)
    return t.unsqueeze(0)  # (1-d, k == 2)


def hstack(tensors, *, out=None):
    ts = [_atleast(t, 1) for t in tensors]
    return cat(ts, 0 if builtins.all(t.ndim == 1 for t in ts) else 1)


def vstack(tensors, *, out=None):
    return cat([_atleast(t, 2) for t in tensors], 0)


row_stack = vstack


def meshgrid(*tensors, indexing=None):
    """Coordinate grids: each input (0-d or 1-d) viewed along its own dim and expanded;
    ``indexing="xy"`` swaps the first two dims, as NumPy's."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError("torch.meshgrid: indexing must be one of \"xy\" or \"ij\", but "
                           f"received: {indexing}")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError("torch.meshgrid: Expected 0D or 1D tensor in the tensor list "
                               f"but got: {t}")
    swap = indexing == "xy" and len(tensors) >= 2
    order = [1, 0, *range(2, len(tensors))] if swap else list(range(len(tensors)))
    shape = tuple(tensors[i].numel() for i in order)
    grids = []
    for pos, i in enumerate(order):
        view = [1] * len(order)
        view[pos] = -1
        grids.append((i, tensors[i].view(tuple(view)).expand(shape)))
    return tuple(g for _, g in sorted(grids, key=lambda p: p[0]))


def _fill_random(t, draw, generator):
    values = draw(_rng(generator), tuple(t.shape))
    return t.copy_(tensor(np.asarray(values, dtype=t.dtype.np), dtype=t.dtype))


def uniform_(t, a=0.0, b=1.0, *, generator=None):
    return _fill_random(t, lambda r, s: a + (b - a) * r.random(s), generator)


def normal_(t, mean=0.0, std=1.0, *, generator=None):
    return _fill_random(t, lambda r, s: mean + std * r.standard_normal(s), generator)
