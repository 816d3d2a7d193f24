"""The op library beyond the core: reductions, selection, shape ops, batched linear algebra.

Each op computes eagerly with NumPy and records one primitive of ``_tape``
(a gather through an index map, a mask, an extreme, a scan...).  Ops that
PyTorch implements as one node but that are clearest as a composition of
primitives (softmax, var, addmm, losses in ``nn.functional``) run inside a
``composite``: the records they make are hidden from ``grad_fn`` and
``next_functions`` and their output carries PyTorch's node name, at no cost
to the sweep.
"""
from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple

import numpy as np

from . import _dtype as D
from . import _engine as E
from . import _tape as T
from ._tensor import (
    Tensor,
    _binary,
    _broadcast_shapes,
    _c_strides,
    _dims,
    _operand,
    _out,
    _quiet,
    _record_result,
    _reduce_map,
    _ref,
    _result,
    _storage,
    _traced,
    _untraced,
    _val,
    _wrap_dim,
    state,
    tensor,
)


class composite:
    """Run a composition of primitives as one PyTorch node named ``name``.

    ``with composite("MseLossBackward0", (input, target)) as c: out = c.output(...)``:
    the output's grad_fn is named ``name`` and its next_functions are the
    declared inputs' nodes (None for those that don't require grad).
    """

    def __init__(self, name: str, inputs=()):
        self.name = name
        self.inputs = inputs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def output(self, t: Tensor) -> Tensor:
        seg = t._seg
        if seg is not None and not seg.dead:
            seg.names[t._rec] = self.name
            seg.edges[t._rec] = tuple(_ref(seg, x) if isinstance(x, Tensor) and x._rg else -1
                                      for x in self.inputs)
        return t


def _recording(*ts) -> bool:
    return state.grad_enabled and builtins.any(isinstance(t, Tensor) and t._rg for t in ts)


def _explicit(offsets) -> np.ndarray:
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
    return np.concatenate((np.array([-1, offsets.size], dtype=np.int64), offsets))


def _grid(shape) -> np.ndarray:
    return np.arange(math.prod(shape), dtype=np.int64).reshape(shape)


def _gather(op, x, value, offsets) -> Tensor:
    """A result whose elements are x's elements at flat ``offsets`` (any shape)."""
    value = _out(value, x._dt)
    if _recording(x):
        return _record_result(op, value, x._dt, (x,), aux_ints=_explicit(offsets))
    return _result(value, x._dt)


def _const(seg, values) -> int:
    rec = seg.record(T.CONST, -1, -1, 0.0, np.asarray(values, dtype=np.float64))
    seg.nconst += 1
    return rec


def _as_tensor(v, like: Tensor) -> Tensor:
    return v if isinstance(v, Tensor) else tensor(v, dtype=like.dtype)


# ---------------------------------------------------------------- binary ops

def tensors_only(name, input, other, method=False):
    """PyTorch's TypeError for an op that takes two tensors (maximum, atan2...) given a
    number: the argument's name and position (the method's ``other`` is its first)."""
    for arg, pos, v in (("input", 1, input), ("other", 1 if method else 2, other)):
        if not isinstance(v, Tensor):
            raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                            f"{type(v).__name__}")


def maximum(input, other):
    tensors_only("maximum", input, other)
    return _binary(T.MAXIMUM, input, other)


def minimum(input, other):
    tensors_only("minimum", input, other)
    return _binary(T.MINIMUM, input, other)


def fmax(input, other):
    """The larger of two values, nan only where both are (FmaxBackward0: the gradient goes to
    input where input >= other or other is nan, to other elsewhere, as PyTorch's)."""
    tensors_only("fmax", input, other)
    return _nan_ignoring(input, other, "FmaxBackward0", True)


def fmin(input, other):
    """The smaller of two values, nan only where both are (FminBackward0, as fmax)."""
    tensors_only("fmin", input, other)
    return _nan_ignoring(input, other, "FminBackward0", False)


def _nan_ignoring(x, y, name, larger):
    with composite(name, (x, y)) as c:
        # x where x wins (ties too) or y is nan (y != y); comparisons and where trace
        return c.output(where(y != y, x, where(x >= y if larger else x <= y, x, y)))


def atan2(input, other):
    tensors_only("atan2", input, other)
    return _binary(T.ATAN2, input, other)


def fmod(input, other):
    return _binary(T.FMOD, input, other)


def remainder(input, other):
    return _binary(T.REMAINDER, input, other)


def lerp(input, end, weight):
    if isinstance(weight, Tensor):
        with composite("LerpBackward1", (input, end, weight)) as c:
            return c.output(input + weight * (end - input))
    w = builtins.float(weight)
    dt = D.result_type((input, end))
    shape = _broadcast_shapes(input.shape, end.shape)
    a = _val(input).astype(dt.np, copy=False)
    e = _val(end).astype(dt.np, copy=False)
    out = _out(_quiet(lambda: a + w * (e - a)), dt)  # (inf - inf: NumPy warns, PyTorch not)
    if _recording(input, end):
        return _record_result(T.LERP, out, dt, (input, end), c=w, shape=shape)
    return _result(out, dt)


def clamp_tensor(input, min=None, max=None):  # noqa: A002
    """clamp with tensor bounds (ClampBackward0): the gradient reaches x inside the bounds and
    each bound where it wins, as in PyTorch."""
    with composite("ClampBackward0", (input, min, max)) as comp:
        out = where(input != input, input * 0.0, input)  # (nan passes nothing, as PyTorch)
        if min is not None:
            lo = min if isinstance(min, Tensor) else tensor(min, dtype=input.dtype)
            out = where(out < lo, lo, out)
        if max is not None:  # min(max(x, lo), hi), as PyTorch: hi wins when lo > hi
            hi = max if isinstance(max, Tensor) else tensor(max, dtype=input.dtype)
            out = where(out > hi, hi, out)
        return comp.output(out)


def clamp_min(input, min):  # noqa: A002
    """clamp(min=...), PyTorch's node ClampMinBackward0 (a number) or 1 (a tensor)."""
    name = "ClampMinBackward1" if isinstance(min, Tensor) else "ClampMinBackward0"
    with composite(name, (input, min) if isinstance(min, Tensor) else (input,)) as c:
        return c.output(input.clamp(min=min))


def clamp_max(input, max):  # noqa: A002
    """clamp(max=...), PyTorch's node ClampMaxBackward0 (a number) or 1 (a tensor)."""
    name = "ClampMaxBackward1" if isinstance(max, Tensor) else "ClampMaxBackward0"
    with composite(name, (input, max) if isinstance(max, Tensor) else (input,)) as c:
        return c.output(input.clamp(max=max))


def where(condition, input=None, other=None):
    if input is None and other is None:
        _untraced(condition, "where(condition) (its output's size depends on the values)")
        return tuple(_result(a.astype(np.int64), D.int64) for a in np.nonzero(_val(condition)))
    x = input if isinstance(input, Tensor) else None
    y = other if isinstance(other, Tensor) else None
    ref = x if x is not None else y
    traced = _traced(condition)
    if traced and ref is None:  # a traced mask picks between two numbers: record it
        dt = D.result_type([input, other])
        x = ref = tensor(input, dtype=dt)
        y = tensor(other, dtype=dt)
    if ref is None:  # two numbers: a constant tensor
        dt = D.result_type([input, other])
        return _result(_out(np.where(_val(condition).astype(bool), input, other), dt), dt)
    dt = D.result_type([t for t in (input, other)])
    x = _as_tensor(input, ref).to(dt) if x is None else x
    y = _as_tensor(other, ref).to(dt) if y is None else y
    cond = _val(condition).astype(bool)
    shape = _broadcast_shapes(cond.shape, x.shape, y.shape)
    out = _out(np.where(cond, _val(x).astype(dt.np, copy=False),
                        _val(y).astype(dt.np, copy=False)), dt)
    if not _recording(x, y) and not traced:
        return _result(out, dt)
    seg = E.current()
    ra = _operand(seg, x, shape)
    rb = _operand(seg, y, shape)
    # a traced mask is a record (a comparison), so a replay recomputes it
    mask = _operand(seg, condition, shape) if traced else _const(seg, np.broadcast_to(cond,
                                                                                       shape))
    return _result(out, dt, seg, seg.record(T.WHERE, ra, rb, builtins.float(mask), out))


def _triangle(x, op, diagonal):
    if x.ndim < 2:
        raise RuntimeError(f"{'tril' if op == T.TRIL else 'triu'}: input tensor must have at "
                           "least 2 dimensions")
    a = _val(x)
    keep = np.tri(*a.shape[-2:], k=diagonal, dtype=bool)
    if op == T.TRIU:
        keep = ~np.tri(*a.shape[-2:], k=diagonal - 1, dtype=bool)
    out = _out(np.where(keep, a, 0), x._dt)
    if not _recording(x):
        return _result(out, x._dt)
    seg = E.current()
    ra = _ref(seg, x)
    mask = _const(seg, np.broadcast_to(keep, a.shape))
    return _result(out, x._dt, seg, seg.record(op, ra, -1, builtins.float(mask), out))


def tril(input, diagonal=0):
    return _triangle(input, T.TRIL, diagonal)


def triu(input, diagonal=0):
    return _triangle(input, T.TRIU, diagonal)


# ---------------------------------------------------------------- reductions

max_values = namedtuple("max", ["values", "indices"])
min_values = namedtuple("min", ["values", "indices"])


def _extreme(x, op, dim, keepdim):
    dims = _dims(dim, x.ndim)
    a = _val(x)
    if a.size == 0 and dim is None:  # (RuntimeError here, IndexError below: PyTorch's)
        raise RuntimeError(f"{T.NAMES[op]}(): Expected reduction dim to be specified for "
                         "input.numel() == 0. Specify the reduction dim with the 'dim' argument.")
    for k, d in enumerate(dims):
        if a.shape[d] == 0:  # (the dim as given, as PyTorch's message)
            given = dim if isinstance(dim, int) else list(dim)[k] if dim is not None else d
            raise IndexError(f"{T.NAMES[op]}(): Expected reduction dim {given} to have non-zero "
                             "size.")
    fn = np.amax if op in (T.AMAX, T.MAXALL) else np.amin
    full = dim is None
    out = _out(fn(a, axis=dims if not full else None, keepdims=keepdim and not full), x._dt)
    if _recording(x):
        aux = None if full or x.ndim == 0 else _reduce_map(x.shape, dims)
        return _record_result(op, out, x._dt, (x,), aux_ints=aux)
    return _result(out, x._dt)


def amax(input, dim=(), keepdim=False):
    return _extreme(input, T.AMAX, None if dim == () else dim, keepdim)


def amin(input, dim=(), keepdim=False):
    return _extreme(input, T.AMIN, None if dim == () else dim, keepdim)


def _max_or_min(x, is_max, dim, keepdim, other):
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return maximum(x, other) if is_max else minimum(x, other)
    if dim is None:
        return _extreme(x, T.MAXALL if is_max else T.MINALL, None, False)
    _untraced(x, f"{'max' if is_max else 'min'}(dim) (an index picked by the values)")
    d = _wrap_dim(dim, x.ndim)
    a = _val(x)
    if a.ndim == 0:
        idx = np.zeros((), dtype=np.int64)
        values = _gather(T.MAXDIM if is_max else T.MINDIM, x, a.copy(), [0])
    else:
        if a.shape[d] == 0:
            raise IndexError(f"{'max' if is_max else 'min'}(): Expected reduction dim {d} to have "
                             "non-zero size.")
        idx = (np.argmax if is_max else np.argmin)(a, axis=d)
        nan = np.isnan(a).any(axis=d) if a.dtype.kind == "f" else None
        if nan is not None and nan.any():  # PyTorch propagates nan and points at it
            idx = np.where(nan, np.argmax(np.isnan(a), axis=d), idx)
        idx = np.expand_dims(idx, d)
        grid = np.indices(idx.shape)
        grid[d] = idx
        offsets = np.ravel_multi_index(tuple(grid), a.shape)
        vals = np.take_along_axis(a, idx, axis=d)
        if not keepdim:
            vals, idx, offsets = (np.squeeze(v, d) for v in (vals, idx, offsets))
        values = _gather(T.MAXDIM if is_max else T.MINDIM, x, vals, offsets)
    cls = max_values if is_max else min_values
    return cls(values, _result(np.asarray(idx, dtype=np.int64), D.int64))


def max(input, dim=None, keepdim=False, *, other=None):  # noqa: A001
    return _max_or_min(input, True, dim, keepdim, other)


def min(input, dim=None, keepdim=False, *, other=None):  # noqa: A001
    return _max_or_min(input, False, dim, keepdim, other)


def _arg(x, fn, dim, keepdim):
    _untraced(x, fn.__name__ + "() (an index picked by the values)")
    a = _val(x)
    if dim is None:
        out = np.asarray(fn(a.reshape(-1)))
        if keepdim:
            out = out.reshape((1,) * a.ndim)
    else:
        d = _wrap_dim(dim, x.ndim)
        out = fn(a, axis=d) if a.ndim else np.asarray(0)
        if keepdim and a.ndim:
            out = np.expand_dims(out, d)
    return _result(np.asarray(out, dtype=np.int64), D.int64)


def argmax(input, dim=None, keepdim=False):
    return _arg(input, np.argmax, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _arg(input, np.argmin, dim, keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    x = input if dtype is None else input.to(dtype)
    dt = x._dt if x._dt.is_floating_point else D.int64
    a = _val(x)
    if dim is None:
        out = _out(_quiet(np.prod, a, None, dt.np), dt)  # (overflow: PyTorch is silent)
        op, aux = T.PROD, None
    else:
        dims = _dims(dim, x.ndim)
        out = _out(_quiet(np.prod, a, dims, dt.np, None, keepdim), dt)
        op, aux = T.PRODDIM, (_reduce_map(x.shape, dims) if x.ndim else None)
    if _recording(x):
        return _record_result(op, out, dt, (x,), aux_ints=aux)
    return _result(out, dt)


def _correction(unbiased, correction):
    if correction is not None:
        return builtins.float(correction)
    return 1.0 if unbiased is None or unbiased else 0.0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    c = _correction(unbiased, correction)
    with composite("VarBackward0", (input,)) as comp:
        return comp.output(_var(input, dim, c, keepdim))


def _var(x, dim, c, keepdim, name="var"):
    dims = _dims(dim, x.ndim)
    n = math.prod(x.shape[d] for d in dims) if dims else 1
    if n - c <= 0:
        warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less "
                      "than the reduction factor (input numel divided by output numel).",
                      UserWarning, stacklevel=3)
    mu = x.mean(dim=dims, keepdim=True) if dims else x
    d = x - mu
    s = (d * d).sum(dim=dims, keepdim=keepdim) if dims else d * d
    return s / builtins.max(n - c, 0)


def _masked_root(v, p):
    """v ** (1/p), with the gradient 0 where v == 0 (PyTorch's convention for std and norms)."""
    mask = v != 0
    safe = where(mask, v, 1.0)
    return where(mask, safe.sqrt() if p == 2 else safe ** (1.0 / p), 0.0)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    c = _correction(unbiased, correction)
    with composite("StdBackward0", (input,)) as comp:
        return comp.output(_masked_root(_var(input, dim, c, keepdim, "std"), 2))


def _shift(x, dim):
    """max over dim, as a constant: keeps exp() finite in softmax and logsumexp."""
    a = _val(x)
    if a.size == 0:
        return tensor(np.zeros(()), dtype=x.dtype)
    if _traced(x):  # any shift gives the same value: a recorded one keeps replays in range
        m = x.amax(dim=dim, keepdim=True) if a.ndim else x
        return where(m.abs() < math.inf, m, 0.0)
    m = np.amax(a, axis=dim, keepdims=True) if a.ndim else a
    m = np.where(np.isfinite(m), m, 0)
    return tensor(m, dtype=x.dtype)


def logsumexp(input, dim, keepdim=False):
    dims = _dims(dim, input.ndim)
    with composite("LogsumexpBackward0", (input,)) as comp:
        m = _shift(input, dims)
        out = (input - m).exp().sum(dim=dims, keepdim=True).log() + m
        if not keepdim and input.ndim:
            out = out.squeeze(dims)
        return comp.output(out)


def softmax(input, dim=None, dtype=None):
    return _softmaxes(input, T.SOFTMAX, dim, dtype)


def log_softmax(input, dim=None, dtype=None):
    return _softmaxes(input, T.LOG_SOFTMAX, dim, dtype)


def _softmaxes(input, op, dim, dtype):
    """softmax / log_softmax along dim: one record (its backward needs only the output)."""
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"\"{T.NAMES[op]}_lastdim_kernel_impl\" not implemented for "
                           f"'{x.dtype.name.capitalize()}'")
    d = _wrap_dim(-1 if dim is None else dim, x.ndim)
    a = _val(x)
    with np.errstate(all="ignore"):
        if a.ndim == 0:
            z = np.zeros_like(a)
        else:
            m = np.amax(a, axis=d, keepdims=True) if a.size else a
            z = a - np.where(m == -np.inf, 0, m)  # (a +inf max makes the row nan, PyTorch's)
        if op == T.SOFTMAX:
            e = np.exp(z)
            value = e / (e.sum(axis=d, keepdims=True) if a.ndim else e)
        else:
            value = z - (np.log(np.exp(z).sum(axis=d, keepdims=True)) if a.ndim else z)
    value = _out(value, x._dt)
    if not _recording(x):
        return _result(value, x._dt)
    shape = x.shape if x.ndim else (1,)
    rows = (math.prod(shape[:d]), shape[d], math.prod(shape[d + 1:]))
    return _record_result(op, value, x._dt, (x,), aux_ints=rows)


def _scan(x, op, dim, dtype):
    if dtype is not None:
        x = x.to(dtype)
    dt = x._dt if x._dt.is_floating_point else D.int64
    d = _wrap_dim(dim, x.ndim)
    a = _val(x)
    fn = np.cumsum if op == T.CUMSUM else np.cumprod
    out = _out(_quiet(fn, a, d, dt.np) if a.ndim else a.astype(dt.np), dt)
    if _recording(x):
        shape = x.shape if x.ndim else (1,)
        outer = math.prod(shape[:d])
        inner = math.prod(shape[d + 1:])
        return _record_result(op, out, dt, (x,), aux_ints=(outer, shape[d], inner))
    return _result(out, dt)


def cumsum(input, dim, *, dtype=None):
    return _scan(input, T.CUMSUM, dim, dtype)


def cumprod(input, dim, *, dtype=None):
    return _scan(input, T.CUMPROD, dim, dtype)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    if p in ("fro", 2, 2.0):
        return input.norm(2, dim, keepdim)
    x = input if dtype is None else input.to(dtype)
    dims = None if dim is None else _dims(dim, x.ndim)
    with composite("LinalgVectorNormBackward0", (x,)) as comp:
        a = x.abs()
        if p in (math.inf, "inf"):
            out = amax(a, dims if dims is not None else (), keepdim)
        elif p == -math.inf:
            out = amin(a, dims if dims is not None else (), keepdim)
        elif p == 1:
            out = a.sum(dim=dims, keepdim=keepdim)
        elif p == 0:
            _untraced(x, "norm(p=0) (a count of nonzero values)")
            return _result(_out(np.count_nonzero(_val(x), axis=dims, keepdims=keepdim),
                                x.dtype), x.dtype)
        else:
            nz = a != 0  # |x|^p with gradient 0 at x = 0, as PyTorch (nan stays: nan != 0)
            ap = where(nz, where(nz, a, 1.0) ** p, 0.0)
            out = _masked_root(ap.sum(dim=dims, keepdim=keepdim), p)
        return comp.output(out)


def all(input, dim=None, keepdim=False):  # noqa: A001
    if dim is None and _traced(input) and input.dtype is D.bool_:  # all = min of a 0/1 mask
        return _extreme(input, T.MINALL, None, False)
    _untraced(input, "all() over a dim or of a non-mask")
    return _result(np.asarray(np.all(_val(input), axis=dim, keepdims=keepdim)), D.bool_)


def any(input, dim=None, keepdim=False):  # noqa: A001
    if dim is None and _traced(input) and input.dtype is D.bool_:  # any = max of a 0/1 mask
        return _extreme(input, T.MAXALL, None, False)
    _untraced(input, "any() over a dim or of a non-mask")
    return _result(np.asarray(np.any(_val(input), axis=dim, keepdims=keepdim)), D.bool_)


# ---------------------------------------------------------------- selection

def _index_array(index: Tensor, name: str) -> np.ndarray:
    _untraced(index, f"{name}() with a traced index")
    a = _val(index)
    if a.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    return a.astype(np.int64, copy=False)


def _index_offsets(x, dim, idx):
    """Flat offsets into x of x[..., idx[...], ...] along dim (gather/scatter indexing)."""
    d = _wrap_dim(dim, x.ndim)
    size = x.shape[d] if x.ndim else 1
    if x.ndim == 0:
        if idx.size and (idx.min() < -1 or idx.max() > 0):
            bad = idx[(idx < -1) | (idx > 0)].reshape(-1)[0]
            raise RuntimeError(f"index {bad} is out of bounds for dimension 0 with size 1")
        return np.zeros(idx.shape, dtype=np.int64), d
    if idx.size and (idx.min() < -size or idx.max() >= size):
        bad = idx[(idx < -size) | (idx >= size)].reshape(-1)[0]
        raise RuntimeError(f"index {bad} is out of bounds for dimension {d} with size {size}")
    grid = list(np.indices(idx.shape))
    grid[d] = idx % builtins.max(size, 1)
    return np.ravel_multi_index(tuple(grid), x.shape if x.ndim else (1,)), d


sort_values = namedtuple("sort", ["values", "indices"])
topk_values = namedtuple("topk", ["values", "indices"])


def _order(a, d, descending):
    """The indices that sort ``a`` along axis d, ties in their order (stable), nan the
    largest value, as PyTorch's sort: descending sorts the reversed array ascending, then
    reverses the result back."""
    if not descending:
        return np.argsort(a, axis=d, kind="stable")
    return a.shape[d] - 1 - np.flip(np.argsort(np.flip(a, d), axis=d, kind="stable"), d)


def _ordered(x, name, dim, descending, k=None):
    """x's elements in order along dim (the first k), and their indices: the values a GATHER
    of x shown as the node ``name``, the indices int64 without history."""
    _untraced(x, f"{name[:-9].lower()}() (an order picked by the values)")
    d = _wrap_dim(dim, x.ndim)
    a = _val(x).reshape(x.shape or (1,))
    if k is not None and not 0 <= k <= a.shape[d]:
        raise RuntimeError("selected index k out of range")
    idx = _order(a, d, descending)
    if k is not None:
        idx = np.take(idx, np.arange(k), axis=d)
    offsets = np.take_along_axis(_grid(a.shape), idx, axis=d)
    if not x.shape:  # 0-d: one element, index 0
        idx, offsets = idx.reshape(()), offsets.reshape(())
    with composite(name, (x,)) as comp:
        values = comp.output(_gather(T.GATHERX, x, _val(x).reshape(-1)[offsets], offsets))
    return values, _result(_out(np.asarray(idx, dtype=np.int64), D.int64), D.int64)


def sort(input, dim=-1, descending=False, stable=False):
    """Values and indices along dim; a stable order whatever ``stable`` says (PyTorch's
    unstable order is some order of the ties)."""
    return sort_values(*_ordered(input, "SortBackward0", dim, descending))


def argsort(input, dim=-1, descending=False, stable=False):
    return _ordered(input, "SortBackward0", dim, descending)[1]


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The k largest (or smallest) values along dim and their indices, in order."""
    return topk_values(*_ordered(input, "TopkBackward0", dim, largest, k))


def gather(input, dim, index, *, sparse_grad=False):
    idx = _index_array(index, "gather")
    offsets, _ = _index_offsets(input, dim, idx)
    return _gather(T.GATHERX, input, _val(input).reshape(-1)[offsets], offsets)


def index_select(input, dim, index):
    idx = _index_array(index, "index_select").reshape(-1)
    d = _wrap_dim(dim, input.ndim)
    grid = _grid(input.shape)
    offsets = np.take(grid, idx, axis=d) if input.ndim else grid.reshape(1)[idx].reshape(())
    return _gather(T.INDEX_SELECT, input, _val(input).reshape(-1)[offsets], offsets)


def masked_select(input, mask):
    _untraced(mask, "masked_select() with a traced mask (its output's size depends on the "
                    "values)")
    m = _val(mask).astype(bool)
    shape = _broadcast_shapes(input.shape, m.shape)
    x = input if input.shape == shape else input.expand(shape)
    offsets = _grid(shape)[np.broadcast_to(m, shape)]
    return _gather(T.MASKED_SELECT, x, _val(x).reshape(-1)[offsets], offsets)


def _replace(x, op, offsets, src, src_values):
    """out = x with the elements at flat ``offsets`` replaced by ``src`` (SETITEM kind)."""
    out = np.array(_val(x), copy=True, order="C")
    out.reshape(-1)[offsets.reshape(-1)] = src_values.reshape(-1)
    out = _out(out, x._dt)
    if not _recording(x, src):
        return _result(out, x._dt)
    seg = E.current()
    ra = _ref(seg, x)
    if isinstance(src, Tensor):
        rb = _operand(seg, src, tuple(offsets.shape))
    else:
        rb = _const(seg, src_values.reshape(-1))
    return _result(out, x._dt, seg, seg.record(op, ra, rb, 0.0, out,
                                                seg.add_aux(_explicit(offsets))))


def masked_fill(input, mask, value):
    if _traced(mask):  # the same values and gradients, with the mask as a record
        return where(mask, value if isinstance(value, Tensor) else builtins.float(value), input)
    m = np.broadcast_to(_val(mask).astype(bool), input.shape)
    offsets = _grid(input.shape)[m]
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got "
                               f"tensor with {value.ndim} dimension(s).")
        vals = np.broadcast_to(_val(value).astype(input.dtype.np), offsets.shape)
        return _replace(input, T.MASKED_FILL_T, offsets, value if value._rg else None, vals)
    vals = np.full(offsets.shape, value, dtype=input.dtype.np)
    return _replace(input, T.MASKED_FILL, offsets, None, vals)


def _scatter_src(src, idx, x):
    if isinstance(src, Tensor):
        if src.shape != tuple(idx.shape):
            src = src[tuple(slice(0, s) for s in idx.shape)]
        return src, _val(src).astype(x.dtype.np)
    return None, np.full(idx.shape, src, dtype=x.dtype.np)


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    if reduce is not None:
        raise RuntimeError("tapegrad: scatter(reduce=...) is not supported yet")
    idx = _index_array(index, "scatter")
    offsets, _ = _index_offsets(input, dim, idx)
    src_t, vals = _scatter_src(src if src is not None else value, idx, input)
    return _replace(input, T.SCATTER if src_t is not None else T.SCATTER_VALUE, offsets, src_t,
                    vals)


def scatter_add(input, dim, index, src):
    idx = _index_array(index, "scatter_add")
    offsets, _ = _index_offsets(input, dim, idx)
    src_t, vals = _scatter_src(src, idx, input)
    out = np.array(_val(input), copy=True, order="C")
    _quiet(np.add.at, out.reshape(-1), offsets.reshape(-1), vals.reshape(-1))
    out = _out(out, input._dt)
    if not _recording(input, src_t):
        return _result(out, input._dt)
    seg = E.current()
    ra = _ref(seg, input)
    rb = _operand(seg, src_t, tuple(idx.shape)) if src_t is not None else _const(seg, vals)
    return _result(out, input._dt, seg, seg.record(T.SCATTER_ADD, ra, rb, 0.0, out,
                                                    seg.add_aux(_explicit(offsets))))


# ---------------------------------------------------------------- shapes

def flip(input, dims):
    dims = _dims(dims, input.ndim)
    shape = list(input.shape)
    strides = _c_strides(shape)
    base = 0
    for d in dims:
        base += (shape[d] - 1) * strides[d]
        strides[d] = -strides[d]
    value = np.flip(_val(input), axis=dims).copy() if dims else _val(input).copy()
    if _recording(input):
        return _record_result(T.FLIP, _out(value, input._dt), input._dt, (input,),
                              aux_ints=[len(shape), base, *shape, *strides])
    return _result(_out(value, input._dt), input._dt)


def roll(input, shifts, dims=None):
    grid = _grid(input.shape)
    offsets = np.roll(grid, shifts, dims) if dims is not None else \
        np.roll(grid.reshape(-1), shifts).reshape(grid.shape)
    return _gather(T.ROLL, input, _val(input).reshape(-1)[offsets], offsets)


def repeat(input, *sizes):
    from ._tensor import _shape_arg
    sizes = _shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number "
                           "of dimensions of tensor")
    grid = _grid(input.shape).reshape((1,) * (len(sizes) - input.ndim) + input.shape)
    offsets = np.tile(grid, sizes)
    return _gather(T.REPEAT, input, _val(input).reshape(-1)[offsets], offsets)


def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, *dims)


def narrow(input, dim, start, length):
    d = _wrap_dim(dim, input.ndim)
    if isinstance(start, Tensor):
        start = start.item()
    start = start % input.shape[d] if start < 0 else start
    if start + length > input.shape[d]:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size "
                           f"({input.shape[d]}).")
    index = (slice(None),) * d + (slice(start, start + length),)
    return input[index]


def select(input, dim, index):
    """input[..., index, ...] along dim: SelectBackward0, as indexing with an int."""
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    if isinstance(index, Tensor):
        index = index.item()
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {dim}")
    return input[(slice(None),) * d + (index,)]


def _piece(x, op, d, start, stop):
    """x[..., start:stop, ...] along d, a view recorded as ``op``."""
    shape = list(x.shape)
    strides = _c_strides(shape)
    shape[d] = stop - start
    view = _storage(x)[(slice(None),) * d + (slice(start, stop),)]
    return x._strided(op, view, shape, strides, start * strides[d])


def split(tensor_, split_size_or_sections, dim=0):
    if tensor_.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, tensor_.ndim)
    size = tensor_.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got "
                               f"dimension size of {size}")
        bounds = [(s, builtins.min(s + step, size)) for s in range(0, size, builtins.max(step, 1))]
        bounds = bounds or [(0, 0)]  # an empty dimension still gives one (empty) piece
        op = T.SPLIT
    else:
        sections = list(split_size_or_sections)
        if builtins.sum(sections) != size:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} "
                               f"(input tensor's size at dimension {d}), but got split_sizes="
                               f"{sections}")
        bounds, s = [], 0
        for k in sections:
            bounds.append((s, s + k))
            s += k
        op = T.SPLIT_SIZES
    return tuple(_piece(tensor_, op, d, a, b) for a, b in bounds)


def chunk(input, chunks, dim=0):
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    step = -(-size // chunks) if chunks > 0 else 0
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    if size == 0:
        return split(input, [0] * chunks, d)
    return split(input, step, d)


def unbind(input, dim=0):
    if input.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _wrap_dim(dim, input.ndim)
    shape = list(input.shape)
    strides = _c_strides(shape)
    out_shape = shape[:d] + shape[d + 1:]
    out_strides = strides[:d] + strides[d + 1:]
    a = _storage(input)
    return tuple(input._strided(T.UNBIND, a[(slice(None),) * d + (k,)], out_shape, out_strides,
                                k * strides[d]) for k in range(shape[d]))


def diagonal(input, offset=0, dim1=0, dim2=1):
    d1, d2 = _wrap_dim(dim1, input.ndim), _wrap_dim(dim2, input.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    shape = list(input.shape)
    strides = _c_strides(shape)
    storage = _storage(input)
    view = np.diagonal(storage, offset, d1, d2)
    if storage.flags.writeable:  # (NumPy's diagonal is read-only; PyTorch's writes through)
        view.flags.writeable = True
    base = offset * strides[d2] if offset >= 0 else -offset * strides[d1]
    if view.shape[-1] == 0:
        base = 0
    rest = [k for k in range(len(shape)) if k not in (d1, d2)]
    out_shape = [shape[k] for k in rest] + [view.shape[-1]]
    out_strides = [strides[k] for k in rest] + [strides[d1] + strides[d2]]
    return input._strided(T.DIAGONAL, view, out_shape, out_strides, base)


def unflatten(input, dim, sizes):
    d = _wrap_dim(dim, input.ndim)
    shape = list(input.shape)
    return input.view(*shape[:d], *sizes, *shape[d + 1:])


def broadcast_to(input, size):
    return input.expand(size)


def broadcast_tensors(*tensors):
    shape = _broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t.expand(shape) for t in tensors)


# ---------------------------------------------------------------- linear algebra

def bmm(input, mat2):
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor" if input.ndim != 3 else
                           "batch2 must be a 3D tensor")
    b, m, k = input.shape
    b2, k2, n = mat2.shape
    if b != b2 or k != k2:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{b}, {k}] but got: [{b2}, {k2}].")
    return _bmm(input, mat2, (b,), m, k, n)


def _bmm(x, y, batch, m, k, n):
    dt = x.dtype
    if y.dtype is not dt:
        raise RuntimeError(f"expected scalar type {dt.name} but found {y.dtype.name}")
    nb = math.prod(batch)
    out = _out(_quiet(np.matmul, _val(x).reshape(nb, m, k), _val(y).reshape(nb, k, n))
               .reshape(*batch, m, n), dt)
    if _recording(x, y):
        return _record_result(T.BMM, out, dt, (x, y), aux_ints=(m, k, n, nb))
    return _result(out, dt)


def batched_matmul(a, b):
    """matmul when either side has more than 2 dimensions, following PyTorch's choices
    (which decide the grad_fn names): an operand whose batch dimensions are all 1 is
    treated as a matrix and folded into one mm; otherwise a bmm over the broadcast batch."""
    va = a.unsqueeze(0) if a.ndim == 1 else a
    vb = b.unsqueeze(-1) if b.ndim == 1 else b
    m, k = va.shape[-2:]
    k2, n = vb.shape[-2:]
    if k != k2:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{math.prod(va.shape[:-2])}, {k}] but got: "
                           f"[{math.prod(vb.shape[:-2])}, {k2}].")
    batch = _broadcast_shapes(tuple(va.shape[:-2]), tuple(vb.shape[:-2]))
    flat_a = math.prod(va.shape[:-2]) == 1
    flat_b = math.prod(vb.shape[:-2]) == 1
    if flat_b and (a.ndim >= 3 or b.ndim <= 2):
        # b is a matrix: fold a's batch into rows, one mm, then a view back
        rows = math.prod(va.shape[:-1])  # (not -1: k may be 0)
        out = _unsafe_view(va.reshape(rows, k) @ vb.reshape(k, n), (*batch, m, n))
    elif flat_a and b.ndim >= 3:
        # a is a matrix: (b^T a^T)^T, folded the same way; the transpose is materialised
        rows = vb.mT.reshape(math.prod(vb.shape[:-2]) * n, k) @ va.reshape(m, k).mT
        out = _unsafe_view(rows, (*batch, n, m)).mT.clone()
    else:
        xa = va if tuple(va.shape[:-2]) == batch else va.expand(*batch, m, k)
        xb = vb if tuple(vb.shape[:-2]) == batch else vb.expand(*batch, k, n)
        out = _unsafe_view(_bmm(xa, xb, batch, m, k, n), (*batch, m, n))
    if a.ndim == 1 or b.ndim == 1:
        out = _unsafe_view(out, tuple(s for i, s in enumerate(out.shape)
                                      if not ((a.ndim == 1 and i == out.ndim - 2) or
                                              (b.ndim == 1 and i == out.ndim - 1))))
    return out


def _unsafe_view(t, shape):
    return t._reshaped(_val(t).reshape(shape), T.UNSAFE_VIEW)


def outer(input, vec2):
    for name, v in (("self", input), ("vec2", vec2)):
        if v.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {v.ndim}-D")
    return input.reshape(-1, 1) * vec2


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    with composite("AddmmBackward0", (input, mat1, mat2)) as comp:
        prod_ = mat1 @ mat2
        if alpha != 1:
            prod_ = prod_ * alpha
        base = input if beta == 1 else input * beta
        return comp.output(base + prod_)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    with composite("BaddbmmBackward0", (input, batch1, batch2)) as comp:
        prod_ = bmm(batch1, batch2)
        if alpha != 1:
            prod_ = prod_ * alpha
        base = input if beta == 1 else input * beta
        return comp.output(base + prod_)


def _einsum_diagonal(k, spec, t):
    """An operand's subscripts without repeats: 'ii' takes the diagonal (as PyTorch, a view
    of the operand; the diagonal's index goes last, as diagonal() puts it)."""
    while len(set(spec)) != len(spec):
        c = next(c for c in spec if spec.count(c) > 1)
        i = spec.index(c)
        j = spec.index(c, i + 1)
        if t.shape[i] != t.shape[j]:
            raise RuntimeError(f"einsum(): subscript {c} is repeated for operand {k} but the "
                               f"sizes don't match, {t.shape[j]} != {t.shape[i]}")
        t = t.diagonal(0, i, j)
        spec = spec[:i] + spec[i + 1:j] + spec[j + 1:] + c
    return spec, t


def einsum(equation, *operands):
    """Einstein summation by broadcasting products and sums (a repeated index within an
    operand takes its diagonal first)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
    else:
        lhs = eq
        letters = [c for c in lhs if c.isalpha()]
        rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    specs = lhs.split(",")
    if len(specs) != len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation"
                           if len(operands) > len(specs) else
                           "einsum(): fewer operands were provided than specified in the equation")
    if "." in eq:
        raise RuntimeError("tapegrad: einsum with '...' is not supported yet")
    for spec, t in zip(specs, operands):
        if len(spec) != t.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(spec)}) "
                               f"does not match the number of dimensions ({t.ndim}) for operand "
                               f"{specs.index(spec)} and no ellipsis was given")
    diagonal = builtins.any(len(set(spec)) != len(spec) for spec in specs)
    specs, operands = zip(*(_einsum_diagonal(k, spec, t)
                            for k, (spec, t) in enumerate(zip(specs, operands))))
    order = list(dict.fromkeys("".join(specs) + rhs))
    total = None
    for spec, t in zip(specs, operands):
        perm = sorted(range(len(spec)), key=lambda i: order.index(spec[i]))
        aligned = t.permute(*perm) if perm != list(range(len(spec))) else t
        shape = []
        it = iter(aligned.shape)
        present = {c for c in spec}
        for c in order:
            shape.append(next(it) if c in present else 1)
        aligned = aligned.reshape(*shape)
        total = aligned if total is None else total * aligned
    summed = [i for i, c in enumerate(order) if c not in rhs]
    if summed:
        total = total.sum(dim=tuple(summed))
    kept = [c for c in order if c in rhs]
    perm = [kept.index(c) for c in rhs]
    # (a diagonal's result ends with a permute in PyTorch, an identity one too)
    out = total.permute(*perm) if perm != list(range(len(perm))) or (
        diagonal and not summed) else total
    if summed and len(specs) > 1:  # PyTorch contracts with bmm and ends with a view
        out = out.view(out.shape)
    return out
