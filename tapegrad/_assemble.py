"""Ops built from other ops: ``nonzero count_nonzero nan_to_num nansum nanmean hstack vstack
meshgrid addcmul addcdiv diff`` and the in-place ``uniform_ normal_``, with PyTorch's values,
shapes and nodes.

Most differentiable ones compose recorded ops (``cat`` of views, ``expand`` of views,
products shown as AddcmulBackward0), so their gradients are those ops' and no new rule is
needed. ``nansum`` and ``nan_to_num`` are nodes with a Python backward (``autograd.Function``)
that multiplies the gradient by a mask, as PyTorch's do: a selection would give 0 where
PyTorch gives nan for an infinite gradient. The ops that depend on the values are refused
while ``tapegrad.trace`` records a traced input (a Function always is).
"""
from __future__ import annotations

import builtins
import warnings

import numpy as np

from . import _dtype as D
from ._library import composite
from ._tensor import (
    _SHORT,
    _dims,
    _out,
    _result,
    _rng,
    _untraced,
    _val,
    cat,
    tensor,
)
from .autograd.function import Function


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


def _times_mask(g, mask, dims=None):
    """The gradient g, expanded over the reduced ``dims``, times a mask of the input's shape:
    a product, as PyTorch's formulas, so an infinite gradient gives nan where the mask is 0."""
    ga = _val(g)
    if dims is not None:
        ga = np.expand_dims(ga, dims)
    with np.errstate(invalid="ignore"):
        full = np.broadcast_to(ga, mask.shape) * mask
    return _result(_out(full, g.dtype), g.dtype)


class _NanToNum(Function):
    """PyTorch's NanToNumBackward0: the gradient times the mask of finite values (a product,
    as PyTorch's, so an infinite gradient gives nan at the replaced places)."""

    _node_name = "NanToNumBackward0"

    @staticmethod
    def forward(ctx, x, value):
        ctx.finite = np.isfinite(_val(x))
        return _result(_out(value, x.dtype), x.dtype)

    @staticmethod
    def backward(ctx, g):
        return _times_mask(g, ctx.finite), None


def nan_to_num(input, nan=0.0, posinf=None, neginf=None, *, out=None):
    """nan, inf and -inf replaced (by 0 and the dtype's largest and lowest finite values
    unless given); the gradient flows where the input is finite (NanToNumBackward0)."""
    if not input.dtype.is_floating_point:
        return input.clone()
    value = np.nan_to_num(_val(input), nan=nan, posinf=posinf, neginf=neginf)
    return _NanToNum.apply(input, value)


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


def addcmul(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 * tensor2, multiplied in ATen's order ((value * t1) * t2)."""
    with composite("AddcmulBackward0", (input, tensor1, tensor2)) as comp:
        t1 = tensor1 if value == 1 else tensor1 * value
        return comp.output(input + t1 * tensor2)


def addcdiv(input, tensor1, tensor2, *, value=1):
    """input + value * tensor1 / tensor2, in ATen's order ((value * t1) / t2)."""
    if not (tensor1.dtype.is_floating_point or tensor2.dtype.is_floating_point):
        raise RuntimeError(
            "Integer division with addcdiv is no longer supported, and in a future  release "
            "addcdiv will perform a true division of tensor1 and tensor2. The historic addcdiv "
            "behavior can be implemented as (input + value * torch.trunc(tensor1 / tensor2))"
            ".to(input.dtype) for integer inputs and as (input + value * tensor1 / tensor2) for "
            "float inputs. The future addcdiv behavior is just the latter implementation: "
            "(input + value * tensor1 / tensor2), for all dtypes.")
    with composite("AddcdivBackward0", (input, tensor1, tensor2)) as comp:
        t1 = tensor1 if value == 1 else tensor1 * value
        return comp.output(input + t1 / tensor2)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference along dim (after prepend and append), as PyTorch builds
    it: slices subtracted (logical_xor for bool)."""
    x = input
    if prepend is not None or append is not None:
        x = cat([t for t in (prepend, x, append) if t is not None], dim)
    d = _dims(dim, x.ndim)[0] if x.ndim else 0
    for _ in range(n):
        length = x.shape[d]
        hi = x[(slice(None),) * d + (slice(1, None),)]
        lo = x[(slice(None),) * d + (slice(0, builtins.max(length - 1, 0)),)]
        x = hi.logical_xor(lo) if x.dtype is D.bool_ else hi - lo
    return x


class _Nansum(Function):
    """PyTorch's NansumBackward0: the gradient times the mask of values that are not nan (a
    product, so an infinite gradient gives nan at the nan places, as PyTorch's)."""

    _node_name = "NansumBackward0"

    @staticmethod
    def forward(ctx, x, dim, keepdim):
        a = _val(x)
        ctx.kept = ~np.isnan(a)
        ctx.dims = None if dim is None or keepdim or not x.ndim else _dims(dim, x.ndim)
        return _result(_out(np.where(ctx.kept, a, 0), x.dtype), x.dtype).sum(dim, keepdim)

    @staticmethod
    def backward(ctx, g):
        return _times_mask(g, ctx.kept, ctx.dims), None, None


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    """The sum with nan counted as 0 (NansumBackward0)."""
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        return x.sum(dim, keepdim)
    return _Nansum.apply(x, dim, keepdim)


def nanmean(input, dim=None, keepdim=False, *, dtype=None):
    """nansum over the count of values that are not nan (nan where there are none), as
    PyTorch composes it (DivBackward0)."""
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError("nanmean(): expected input to have floating point or complex dtype "
                           f"but got {_SHORT[x.dtype.name]}")
    count = _result(_out(~np.isnan(_val(x)), D.bool_), D.bool_).sum(dim, keepdim)
    return nansum(x, dim, keepdim) / count
