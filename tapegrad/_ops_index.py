"""Indexing, scatter, selection, splitting and order statistics, built from recorded ops.

Every op here computes the flat offsets its result reads or writes with NumPy, then records
one of ``_tape``'s primitives through those offsets (a gather, a replacement, an accumulating
scatter) or composes existing differentiable ops; the result carries PyTorch's node name
through ``composite``.  Gradients, double backward and versions are those primitives'.
Reductions over groups of scattered elements (``scatter_reduce``, ``index_reduce``) lay each
group out as a padded row and reduce the rows with ``sum``/``prod``/``amax``/``amin``, so
their gradients are those reductions' (ties in amax/amin share the gradient evenly, as in
PyTorch).  ``median``/``nanmedian`` of all elements are nodes with a Python backward that
shares the gradient among the elements equal to the median, as PyTorch's.
"""
from __future__ import annotations

import builtins
import math
import warnings
from collections import namedtuple

import numpy as np

from . import _dtype as D
from . import _engine as E
from . import _library as L
from . import _tape as T
from ._assemble import nonzero
from ._library import _explicit, _gather, _grid, _recording, _replace, composite
from ._tensor import (
    _SHORT,
    Tensor,
    _c_strides,
    _inplace,
    _operand,
    _out,
    _ref,
    _result,
    _storage,
    _untraced,
    _val,
    _wrap_dim,
    cat,
    tensor,
)
from .autograd.function import Function

__all__: list[str] = [
    "index_add", "index_copy", "index_fill", "index_put", "index_put_", "index_reduce",
    "scatter_reduce", "masked_scatter", "put", "take", "take_along_dim", "repeat_interleave",
    "diagonal_scatter", "select_scatter", "slice_scatter", "diag", "diag_embed", "diagflat",
    "tensor_split", "hsplit", "vsplit", "dsplit", "split_with_sizes", "unsafe_chunk",
    "unsafe_split", "as_strided", "narrow_copy", "rot90", "fliplr", "flipud", "cummax", "cummin",
    "logcumsumexp", "kthvalue", "median", "nanmedian", "mode", "quantile", "nanquantile",
    "aminmax", "msort", "argwhere", "unique", "unique_consecutive", "bincount", "histc",
]

# ---------------------------------------------------------------- primitives by offsets

def _at(x, offsets) -> Tensor:
    """x's elements at flat ``offsets`` (an int64 array of any shape): a gather."""
    offsets = np.asarray(offsets, dtype=np.int64)
    return _gather(T.GATHERX, x, _val(x).reshape(-1)[offsets], offsets)


def _add_at(x, offsets, src) -> Tensor:
    """x with ``src`` (offsets' shape) added at flat ``offsets``, repeats accumulating."""
    vals = _val(src).astype(x.dtype.np, copy=False)
    out = np.array(_val(x), copy=True, order="C")
    np.add.at(out.reshape(-1), offsets.reshape(-1), vals.reshape(-1))
    out = _out(out, x._dt)
    if not _recording(x, src):
        return _result(out, x._dt)
    seg = E.current()
    ra = _ref(seg, x)
    rb = _operand(seg, src, tuple(offsets.shape))
    return _result(out, x._dt, seg, seg.record(T.SCATTER_ADD, ra, rb, 0.0, out,
                                                seg.add_aux(_explicit(offsets))))


def _put_at(x, offsets, src) -> Tensor:
    """x with the elements at flat ``offsets`` replaced by ``src`` (a tensor of offsets'
    shape or a number)."""
    if isinstance(src, Tensor):
        return _replace(x, T.SCATTER, offsets, src, _val(src).astype(x.dtype.np))
    return _replace(x, T.SCATTER_VALUE, offsets, None,
                    np.full(offsets.shape, src, dtype=x.dtype.np))


def _index_vector(index, name) -> np.ndarray:
    a = _val(index)
    if a.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int32/int64 for index but got: "
                           f"{_SHORT[index.dtype.name]}")
    if a.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector, but got dim: {a.ndim} "
                         f"with type: {_SHORT[index.dtype.name]} and size: {list(a.shape)}")
    return a.astype(np.int64).reshape(-1)


def _slices(x, d, idx, what="", error=IndexError) -> np.ndarray:
    """Flat offsets of the slices x[..., idx[k], ...] along d, stacked along d."""
    size = x.shape[d] if x.ndim else 1
    if idx.size and (idx.min() < -size or idx.max() >= size):
        bad = idx[(idx < -size) | (idx >= size)][0]
        raise error(f"{what}index {bad} is out of bounds for dimension {d} with size {size}")
    grid = _grid(x.shape)
    if x.ndim == 0:
        return grid.reshape(1)[idx % 1].reshape(idx.shape if idx.size != 1 else ())
    return np.take(grid, idx % size, axis=d)


def _source_checks(x, d, idx, source, name):
    if x.dtype is not source.dtype:
        raise RuntimeError(f"{name}(): self ({_SHORT[x.dtype.name]}) and source "
                           f"({_SHORT[source.dtype.name]}) must have the same scalar type")
    if x.ndim and source.ndim and (source.ndim != x.ndim or builtins.any(
            a != b for k, (a, b) in enumerate(zip(x.shape, source.shape)) if k != d)):
        raise RuntimeError("source tensor shape must match self tensor shape, excluding the "
                           f"specified dimension. Got self.shape = {list(x.shape)} "
                           f"source.shape = {list(source.shape)}")
    n = source.shape[d] if source.ndim else 1
    if idx.size != n:
        raise RuntimeError(f"{name}(): Number of indices ({idx.size}) should be equal to "
                           f"source.size(dim): ({n}), for dim: {d}")


# ---------------------------------------------------------------- index_* ops

def index_add(input, dim, index, source, *, alpha=1):
    """input with alpha * source's slices added at ``index`` along dim (IndexAddBackward0)."""
    d = _wrap_dim(dim, input.ndim)
    idx = _index_vector(index, "index_add_")
    _source_checks(input, d, idx, source, "index_add_")
    offsets = _slices(input, d, idx, error=RuntimeError)
    with composite("IndexAddBackward0", (input, source)) as c:
        src = source if alpha == 1 else source * alpha
        return c.output(_add_at(input, offsets, src.reshape(offsets.shape)))


def index_add_(self, dim, index, source, *, alpha=1):
    return _inplace(self, lambda: index_add(self, dim, index, source, alpha=alpha), source)


def index_copy(input, dim, index, source):
    """input with its slices at ``index`` along dim replaced by source's (IndexCopyBackward0)."""
    d = _wrap_dim(dim, input.ndim)
    idx = _index_vector(index, "index_copy_")
    if input.dtype is not source.dtype:
        raise RuntimeError("index_copy_(): self and source expected to have the same dtype, but "
                           f"got (self) {_SHORT[input.dtype.name]} and (source) "
                           f"{_SHORT[source.dtype.name]}")
    _source_checks(input, d, idx, source, "index_copy_")
    offsets = _slices(input, d, idx, "index_copy_(): ")
    with composite("IndexCopyBackward0", (input, source)) as c:
        return c.output(_put_at(input, offsets, source.reshape(offsets.shape)))


def index_copy_(self, dim, index, source):
    return _inplace(self, lambda: index_copy(self, dim, index, source), source)


def index_fill(input, dim, index, value):
    """input with its slices at ``index`` along dim set to value, a number or a 0-d tensor
    (IndexFillBackward0, IndexFillBackward1 with a tensor: the value gets the sum of the
    gradient over the filled places)."""
    d = _wrap_dim(dim, input.ndim)
    idx = _index_vector(index, "index_fill_")
    offsets = _slices(input, d, idx)
    # each slice once: a repeated index fills (and passes the value's gradient) once
    offsets = np.take(offsets, np.unique(idx % builtins.max(input.shape[d] if input.ndim else 1,
                                                            1), return_index=True)[1],
                      axis=d if input.ndim else 0) if input.ndim else offsets
    if not isinstance(value, Tensor):
        with composite("IndexFillBackward0", (input,)) as c:
            return c.output(_put_at(input, offsets, value))
    if value.ndim != 0:
        raise RuntimeError("index_fill_ only supports a 0-dimensional value tensor, but got "
                           f"tensor with {value.ndim} dimension(s).")
    vals = np.broadcast_to(_val(value).astype(input.dtype.np), offsets.shape)
    with composite("IndexFillBackward1", (input, value)) as c:
        return c.output(_replace(input, T.MASKED_FILL_T, offsets,
                                 value if value._rg else None, vals))


def index_fill_(self, dim, index, value):
    return _inplace(self, lambda: index_fill(self, dim, index, value),
                    value if isinstance(value, Tensor) else None)


def _index_put_offsets(x, indices):
    index = []
    for i in indices:
        if i is None:
            index.append(slice(None))
            continue
        a = _val(i)
        if a.dtype.kind not in "iub":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        index.append(a.astype(bool) if a.dtype.kind == "b" else a.astype(np.int64))
    grid = _grid(x.shape)
    for k, a in enumerate(index):
        if isinstance(a, np.ndarray) and a.dtype != bool and a.size:
            size = x.shape[k]
            if a.min() < -size or a.max() >= size:
                bad = a[(a < -size) | (a >= size)].reshape(-1)[0]
                raise IndexError(f"index {bad} is out of bounds for dimension {k} with size "
                                 f"{size}")
    return grid[tuple(index)] if index else grid


def index_put(input, indices, values, accumulate=False):
    """input with values put at input[indices], added when ``accumulate`` (IndexPutBackward0)."""
    offsets = _index_put_offsets(input, tuple(indices))
    if values.dtype is not input.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got "
                           f"{_SHORT[input.dtype.name]} for the destination and "
                           f"{_SHORT[values.dtype.name]} for the source.")
    src = values if tuple(values.shape) == offsets.shape else values.expand(offsets.shape)
    with composite("IndexPutBackward0", (input, values)) as c:
        if accumulate:
            return c.output(_add_at(input, offsets, src))
        return c.output(_put_at(input, offsets, src))


def index_put_(self, indices, values, accumulate=False):
    return _inplace(self, lambda: index_put(self, indices, values, accumulate), values)


# ---------------------------------------------------------------- reductions into places

_PAD = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -math.inf, "amin": math.inf}


def _grouped(x, targets, src, reduce, include_self):
    """x with each place t of ``targets`` replaced by ``reduce`` over x[t] (if include_self)
    and the src elements sent to t: each group a row of a padded table, reduced along it."""
    flat = targets.reshape(-1)
    places, group, counts = np.unique(flat, return_inverse=True, return_counts=True)
    if flat.size == 0:
        return _put_at(x, flat, src.reshape(-1))
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    slot = np.empty_like(group)
    slot[order] = np.arange(group.size) - np.repeat(np.cumsum(counts) - counts, counts)
    table = np.zeros((places.size, int(counts.max())), dtype=np.int64)
    filled = np.zeros(table.shape, dtype=bool)
    table[group, slot] = np.arange(group.size)
    filled[group, slot] = True
    pad = _PAD[reduce]
    if not x.dtype.is_floating_point and math.isinf(pad):
        info = np.iinfo(x.dtype.np) if x.dtype is not D.bool_ else None
        pad = (info.min if pad < 0 else info.max) if info is not None else pad
    rows = L.where(tensor(filled), _at(src.reshape(-1), table), pad)
    if include_self:
        rows = cat([_at(x, places[:, None]), rows], 1)
    if reduce in ("sum", "mean"):
        out = rows.sum(1)
        if reduce == "mean":
            n = tensor((counts + (1 if include_self else 0)).astype(x.dtype.np), dtype=x.dtype)
            out = out / n if x.dtype.is_floating_point else out.div(n, rounding_mode="floor")
    elif reduce == "prod":
        out = rows.prod(1)
    else:
        out = rows.amax(1) if reduce == "amax" else rows.amin(1)
    return _put_at(x, places, out.to(x.dtype))


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """input with src's elements reduced into the places index sends them to along dim
    (``sum prod mean amax amin``), over input's element too when ``include_self``."""
    if reduce in ("max", "min"):  # PyTorch's old names: a forward without a derivative
        if _recording(input, src):
            raise RuntimeError("Expected 'reduce' to be one of 'sum', 'prod', 'mean', 'amax', "
                               f"'amin' but got {reduce}.")
        reduce = "a" + reduce
    if reduce not in _PAD:
        raise RuntimeError("reduce argument must be either sum, prod, mean, amax or amin, got "
                           f"{reduce}")
    if isinstance(src, Tensor) and src.dtype is not input.dtype:
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    idx = L._index_array(index, "scatter_reduce")
    targets, _ = L._index_offsets(input, dim, idx)
    src_t, _ = L._scatter_src(src, idx, input)
    with composite("ScatterReduceBackward0", (input, src)) as c:
        return c.output(_grouped(input, targets, src_t, reduce, include_self))


def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
    return _inplace(self, lambda: scatter_reduce(self, dim, index, src, reduce,
                                                 include_self=include_self), src)


def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """input with source's slices reduced into the slices ``index`` names along dim
    (``prod mean amax amin``), over input's too when ``include_self``."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError("index_reduce(): Expected reduce to be one of prod, mean, amax or "
                           f"amin but got {reduce}.")
    d = _wrap_dim(dim, input.ndim)
    idx = _index_vector(index, "index_reduce_")
    _source_checks(input, d, idx, source, "index_reduce_")
    targets = _slices(input, d, idx)
    with composite("IndexReduceBackward0", (input, source)) as c:
        return c.output(_grouped(input, targets, source.reshape(targets.shape), reduce,
                                 include_self))


def index_reduce_(self, dim, index, source, reduce, *, include_self=True):
    return _inplace(self, lambda: index_reduce(self, dim, index, source, reduce,
                                               include_self=include_self), source)


def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
    """scatter in place; ``reduce="add"``/``"multiply"`` combine instead of replacing (as in
    PyTorch, those forms have no derivative)."""
    given = src if src is not None else value
    if reduce is None:
        return _inplace(self, lambda: L.scatter(self, dim, index, given),
                        given if isinstance(given, Tensor) else None)
    if reduce not in ("add", "multiply"):
        raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
    if isinstance(given, Tensor):
        warnings.warn("The reduce argument of torch.scatter with Tensor src is deprecated and "
                      "will be removed in a future PyTorch release. Use torch.scatter_reduce "
                      "instead for more reduction options.", UserWarning, stacklevel=2)
    if _recording(self, given):
        raise RuntimeError("derivative for aten::scatter_ is not implemented")
    idx = L._index_array(index, "scatter_")
    targets, _ = L._index_offsets(self, dim, idx)
    src_t = given if isinstance(given, Tensor) else tensor(np.full(idx.shape, given),
                                                           dtype=self.dtype)
    src_t, _ = L._scatter_src(src_t, idx, self)
    way = "sum" if reduce == "add" else "prod"
    return _inplace(self, lambda: _grouped(self, targets, src_t, way, True), None)


def scatter_add_(self, dim, index, src):
    return _inplace(self, lambda: L.scatter_add(self, dim, index, src), src)


def masked_scatter(input, mask, source):
    """input with the places where mask is true filled by source's first elements, in order
    (MaskedScatterBackward0)."""
    if input.dtype is not source.dtype:
        raise RuntimeError("masked_scatter: expected self and source to have same dtypes but got"
                           f"{_SHORT[input.dtype.name]} and {_SHORT[source.dtype.name]}")
    m = _val(mask).astype(bool)
    shape = L._broadcast_shapes(input.shape, m.shape)
    x = input if tuple(input.shape) == shape else input.expand(shape)
    offsets = _grid(shape)[np.broadcast_to(m, shape)]
    if offsets.size > source.numel():
        raise RuntimeError("Number of elements of source < number of ones in mask")
    with composite("MaskedScatterBackward0", (input, source)) as c:
        return c.output(_put_at(x, offsets, source.reshape(-1)[:offsets.size]))


def masked_scatter_(self, mask, source):
    return _inplace(self, lambda: masked_scatter(self, mask, source), source)


def _flat_index(x, index, name):
    if index.dtype is not D.int64:
        raise RuntimeError(f"{name}(): Expected a long tensor for index, but got "
                           f"{_SHORT[index.dtype.name]}")
    _untraced(index, f"{name}() with a traced index")
    idx = _val(index)
    n = x.numel()
    if idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx[(idx < -n) | (idx >= n)].reshape(-1)[0]
        raise IndexError(f"out of range: tried to access index {bad} on a tensor of {n} "
                         "elements.")
    return idx % builtins.max(n, 1)


def put(input, index, source, accumulate=False):
    """input, seen flat, with source put at ``index`` (added when accumulate): PutBackward0."""
    if index.numel() != source.numel():
        raise IndexError("put_(): Expected source and index to have the same number of "
                         f"elements, but got source.numel() = {source.numel()}, index.numel() = "
                         f"{index.numel()}")
    if input.dtype is not source.dtype:
        raise RuntimeError("put_(): self and source expected to have the same dtype, but got "
                           f"self.dtype = {_SHORT[input.dtype.name]} and source.dtype = "
                           f"{_SHORT[source.dtype.name]}")
    offsets = _flat_index(input, index, "put_").reshape(-1)
    with composite("PutBackward0", (input, source)) as c:
        src = source.reshape(-1)
        return c.output(_add_at(input, offsets, src) if accumulate else
                        _put_at(input, offsets, src))


def put_(self, index, source, accumulate=False):
    return _inplace(self, lambda: put(self, index, source, accumulate), source)


def take(input, index):
    """input seen flat, at ``index`` (index's shape): TakeBackward0."""
    offsets = _flat_index(input, index, "take")
    with composite("TakeBackward0", (input,)) as c:
        return c.output(_at(input, offsets))


def take_along_dim(input, indices, dim=None):
    """gather along dim after broadcasting input and indices elsewhere; flat when dim is None."""
    if dim is None:
        return L.gather(input.reshape(-1), 0, indices.reshape(-1))
    d = _wrap_dim(dim, input.ndim)
    if indices.ndim != input.ndim:
        raise RuntimeError("torch.take_along_dim(): input and indices should have the same "
                           f"number of dimensions, but got {input.ndim} dimensions for input, "
                           f"and {indices.ndim} dimensions for indices")
    xs, ks = list(input.shape), list(indices.shape)
    xs[d] = ks[d] = 1
    common = L._broadcast_shapes(tuple(xs), tuple(ks))
    xshape = list(common)
    xshape[d] = input.shape[d]
    kshape = list(common)
    kshape[d] = indices.shape[d]
    x = input if list(input.shape) == xshape else input.expand(xshape)
    k = indices if list(indices.shape) == kshape else indices.expand(kshape)
    return L.gather(x, d, k)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (each slice along dim; all elements flat when dim is None) repeated; with
    one tensor of counts, the indices repeated by their counts."""
    if repeats is None:
        counts = _val(input).astype(np.int64)
        return _result(np.repeat(np.arange(counts.size, dtype=np.int64), counts), D.int64)
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _wrap_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if isinstance(repeats, Tensor) and repeats.numel() != 1:
        counts = _val(repeats).astype(np.int64).reshape(-1)
        if counts.size != n:
            raise RuntimeError("repeats must have the same size as input along dim, but got "
                               f"repeats.size(0) = {counts.size} and input.size({d}) = {n}")
        if (counts < 0).any():
            raise RuntimeError("repeats can not be negative")
        return L.index_select(x, d, tensor(np.repeat(np.arange(n), counts)))
    k = int(repeats.item() if isinstance(repeats, Tensor) else repeats)
    if k < 0:
        raise RuntimeError("Repeats must be non-negative")
    if x.ndim == 0:
        x = x.reshape(1)
    shape = list(x.shape)
    wide = x.unsqueeze(d + 1).expand(*shape[:d + 1], k, *shape[d + 1:]).clone()
    return wide.reshape(*shape[:d], shape[d] * k, *shape[d + 1:])


# ---------------------------------------------------------------- *_scatter, diagonals

def _scatter_into(name, input, src, offsets):
    if tuple(src.shape) != offsets.shape:
        raise RuntimeError("expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(offsets.shape)}")
    with composite(name, (input, src)) as c:
        return c.output(_put_at(input, offsets, src.to(input.dtype)))


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """input with its diagonal (as ``diagonal(offset, dim1, dim2)``) replaced by src."""
    d1, d2 = _wrap_dim(dim1, input.ndim), _wrap_dim(dim2, input.ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    offsets = np.diagonal(_grid(input.shape), offset, d1, d2)
    return _scatter_into("DiagonalScatterBackward0", input, src, offsets)


def select_scatter(input, src, dim, index):
    """input with input.select(dim, index) replaced by src."""
    if input.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {dim}")
    offsets = np.take(_grid(input.shape), index % size, axis=d)
    return _scatter_into("SelectScatterBackward0", input, src, offsets)


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """input with input[..., start:end:step, ...] along dim replaced by src."""
    d = _wrap_dim(dim, input.ndim)
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    offsets = _grid(input.shape)[(slice(None),) * d + (slice(start, end, step),)]
    return _scatter_into("SliceScatterBackward0", input, src, offsets)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices (in dims dim1, dim2 of a result one dim larger) with input's last dim on their
    ``offset`` diagonal, zeros elsewhere (DiagEmbedBackward0)."""
    nd = input.ndim + 1
    d1, d2 = _wrap_dim(dim1, nd), _wrap_dim(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    n = (input.shape[-1] if input.ndim else 1) + builtins.abs(offset)
    rest = iter(input.shape[:-1])
    shape = tuple(n if k in (d1, d2) else next(rest) for k in range(nd))
    offsets = np.diagonal(_grid(shape), offset, d1, d2)
    zeros = _result(np.zeros(shape, dtype=input.dtype.np), input.dtype)
    with composite("DiagEmbedBackward0", (input,)) as c:
        return c.output(_put_at(zeros, offsets, input.reshape(offsets.shape)))


def diag(input, diagonal=0):
    """A 1-d input on the ``diagonal`` of a square matrix; a 2-d input's diagonal (a copy)."""
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim != 2:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")
    with composite("DiagonalBackward0_copy", (input,)) as c:
        return c.output(input.diagonal(diagonal).clone())


def diagflat(input, offset=0):
    """input, flattened, on the ``offset`` diagonal of a square matrix."""
    return diag_embed(input.reshape(-1), offset)


def fill_diagonal_(self, fill_value, wrap=False):
    """The main diagonal of self (all dims equal) set to fill_value, in place; ``wrap``
    continues it below a tall matrix's square, every ``columns + 1`` elements, as NumPy's."""
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    marks = np.zeros(self.shape, dtype=bool)
    np.fill_diagonal(marks, True, wrap=wrap)
    offsets = _grid(self.shape)[marks]

    def filled():
        with composite("CopySlices", (self,)) as c:  # (PyTorch fills a view of self)
            return c.output(_put_at(self, offsets, fill_value))
    return _inplace(self, filled, None)


# ---------------------------------------------------------------- splitting and views

def _along(x, d, start, stop):
    return x[(slice(None),) * d + (slice(start, stop),)]


def tensor_split(input, indices_or_sections, dim=0):
    """Pieces along dim: n sections (the first size % n one longer), or cut at indices."""
    if input.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d]
    cut = indices_or_sections
    if isinstance(cut, Tensor):
        cut = cut.item() if cut.ndim == 0 else [int(v) for v in _val(cut).reshape(-1)]
    if isinstance(cut, (int, np.integer)):
        n = int(cut)
        if n <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {n}")
        small, extra = divmod(size, n)
        bounds, s = [], 0
        for k in range(n):
            e = s + small + (1 if k < extra else 0)
            bounds.append((s, e))
            s = e
    else:
        points = [builtins.min(builtins.max(p if p >= 0 else p + size, 0), size)
                  for p in (int(v) for v in cut)]
        starts = [0, *points]
        ends = [*points, size]
        bounds = [(s, builtins.max(s, e)) for s, e in zip(starts, ends)]
    return tuple(_along(input, d, s, e) for s, e in bounds)


def _split_n(input, sections, dim, name, need):
    if input.ndim < need:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {need} dimension, but "
                           f"got a tensor with {input.ndim} dimensions!")
    if isinstance(sections, int):
        size = input.shape[dim]
        if sections == 0 or size % sections:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the "
                               f"size of the dimension {size} is not divisible by the "
                               f"split_size {sections}!")
    return tensor_split(input, sections, dim)


def hsplit(input, indices_or_sections):
    return _split_n(input, indices_or_sections, 0 if input.ndim == 1 else 1, "hsplit", 1)


def vsplit(input, indices_or_sections):
    return _split_n(input, indices_or_sections, 0, "vsplit", 2)


def dsplit(input, indices_or_sections):
    return _split_n(input, indices_or_sections, 2, "dsplit", 3)


def split_with_sizes(input, split_sizes, dim=0):
    return L.split(input, list(split_sizes), dim)


def _unsafe(pieces):
    out = []
    for p in pieces:
        with composite("UnsafeSplitBackward0", ()) as c:
            out.append(c.output(p))
    return tuple(out)


def unsafe_split(input, split_size, dim=0):
    """split, its pieces shown as PyTorch's UnsafeSplitBackward0."""
    return _unsafe(L.split(input, split_size, dim))


def unsafe_chunk(input, chunks, dim=0):
    return _unsafe(L.chunk(input, chunks, dim))


def unfold(self, dimension, size, step):
    """The windows of ``size`` every ``step`` along dimension, as a new last dim: a view of
    self (UnfoldBackward0; overlapping windows sum their gradients)."""
    d = _wrap_dim(dimension, self.ndim)
    n = self.shape[d] if self.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    a = _storage(self)
    if self.ndim == 0:
        shape, strides, byte_strides = [size], [0], [0]
    else:
        strides = list(_c_strides(self.shape))  # (self's elements in C order: the record's)
        shape = list(self.shape)
        shape[d] = (n - size) // step + 1
        shape.append(size)
        byte_strides = list(a.strides) + [a.strides[d]]
        byte_strides[d] *= step
        strides.append(strides[d])
        strides[d] *= step
    view = np.lib.stride_tricks.as_strided(a, shape, byte_strides)
    with composite("UnfoldBackward0", (self,)) as c:
        return c.output(self._strided(T.ASSTRIDED, view, shape, strides))


def as_strided(input, size, stride, storage_offset=None):
    """The view of input's storage whose element i is at ``storage_offset + sum(i_k *
    stride_k)``.  Here input must own its storage (not be a view), which is then input's
    elements in C order."""
    from ._tensor import _shape_arg
    size, stride = _shape_arg(size), _shape_arg(stride, "stride")
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    if builtins.any(s < 0 for s in stride):
        raise RuntimeError("as_strided: Negative strides are not supported at the moment, got "
                           f"strides: {list(stride)}")
    start = 0 if storage_offset is None else int(storage_offset)
    if start < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {start}")
    if input._x is not None and input._x.base is not None:
        raise RuntimeError("tapegrad: as_strided of a view is not supported (tapegrad's views "
                           "have no storage of their own); call it on a tensor that owns its "
                           "storage, e.g. its .clone()")
    n = input.numel()
    need = 0 if 0 in size else start + 1 + builtins.sum((s - 1) * t for s, t in zip(size, stride))
    if need > n:
        item = input.dtype.np.itemsize
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage "
                           f"offset {start}, and itemsize {item} requiring a storage size of "
                           f"{need * item} are out of bounds for storage of size {n * item}")
    storage = _storage(input)
    if not storage.flags.c_contiguous:
        storage = np.ascontiguousarray(storage)  # (not a view then: nothing can share it)
    flat = storage.reshape(-1)
    isz = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[start:] if n else flat, size,
                                           [t * isz for t in stride])
    # a view of input's elements in C order (writes go through, as PyTorch's), recorded as
    # AsStridedBackward0 with its strided map (overlapping elements sum their gradients)
    return input._strided(T.ASSTRIDED, view, size, stride, start)


def narrow_copy(input, dim, start, length):
    with composite("NarrowCopyBackward0", (input,)) as c:
        return c.output(L.narrow(input, dim, start, length).clone())


def rot90(input, k=1, dims=(0, 1)):
    """input rotated by k quarter turns from dims[0] towards dims[1] (Rot90Backward0)."""
    dims = list(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    a, b = _wrap_dim(dims[0], input.ndim), _wrap_dim(dims[1], input.ndim)
    if a == b:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {dims[0]} "
                           f"and dim1 = {dims[1]}")
    k %= 4
    if k == 1:
        out = L.flip(input, [b]).transpose(a, b)
    elif k == 2:
        out = L.flip(input, [a, b])
    elif k == 3:
        out = L.flip(input, [a]).transpose(a, b)
    else:
        out = input
    with composite("Rot90Backward0", (input,)) as c:
        return c.output(out.clone())


def fliplr(input):
    if input.ndim < 2:
        raise RuntimeError("Input must be >= 2-d.")
    return L.flip(input, [1])


def flipud(input):
    if input.ndim < 1:
        raise RuntimeError("Input must be >= 1-d.")
    return L.flip(input, [0])


def sum_to_size(self, *size):
    """self summed down to ``size`` (which self's shape must expand from); self if equal."""
    from ._tensor import _shape_arg
    size = _shape_arg(size)
    shape = tuple(self.shape)
    lead = len(shape) - len(size)
    if lead < 0 or builtins.any(s != t and s != 1 for s, t in zip(size, shape[lead:])):
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(shape)}}}.")
    if size == shape:
        return self
    dims = tuple(range(lead)) + tuple(lead + k for k, s in enumerate(size)
                                      if s == 1 and shape[lead + k] != 1)
    out = self.sum(dim=dims, keepdim=True) if dims else self
    return out.reshape(size) if lead else out


# ---------------------------------------------------------------- order statistics

cummax_values = namedtuple("cummax", ["values", "indices"])
cummin_values = namedtuple("cummin", ["values", "indices"])
kthvalue_values = namedtuple("kthvalue", ["values", "indices"])
median_values = namedtuple("median", ["values", "indices"])
nanmedian_values = namedtuple("nanmedian", ["values", "indices"])
mode_values = namedtuple("mode", ["values", "indices"])
aminmax_values = namedtuple("aminmax", ["min", "max"])


def _picked(x, name, idx, d, keepdim, cls):
    """values at ``idx`` (an int64 array along dim d, keepdim shape) and the indices."""
    a = _val(x)
    if a.ndim == 0:
        with composite(name, (x,)) as c:
            values = c.output(_at(x, np.zeros((), dtype=np.int64)))
        return cls(values, _result(np.zeros((), dtype=np.int64), D.int64))
    grid = np.indices(idx.shape)
    grid[d] = idx
    offsets = np.ravel_multi_index(tuple(grid), a.shape)
    if not keepdim:
        idx, offsets = np.squeeze(idx, d), np.squeeze(offsets, d)
    with composite(name, (x,)) as c:
        values = c.output(_at(x, offsets))
    return cls(values, _result(np.array(idx, dtype=np.int64), D.int64))


def _running(x, dim, larger, name, cls):
    _untraced(x, f"{name[:6].lower()}() (an index picked by the values)")
    d = _wrap_dim(dim, x.ndim)
    a = _val(x).reshape(x.shape or (1,))
    a = np.moveaxis(a, d, -1)
    idx = np.zeros(a.shape, dtype=np.int64)
    best = a[..., 0].copy()
    at = np.zeros(a.shape[:-1], dtype=np.int64)
    for k in range(a.shape[-1]):
        v = a[..., k]
        with np.errstate(invalid="ignore"):
            wins = (v >= best) if larger else (v <= best)
        if a.dtype.kind == "f":  # nan wins and stays, as in PyTorch
            wins = np.isnan(v) | (wins & ~np.isnan(best))
        best = np.where(wins, v, best)
        at = np.where(wins, k, at)
        idx[..., k] = at
    idx = np.moveaxis(idx, -1, d).reshape(x.shape)
    if x.ndim == 0:
        return _picked(x, name, idx, 0, True, cls)
    grid = np.indices(idx.shape)
    grid[d] = idx
    offsets = np.ravel_multi_index(tuple(grid), x.shape)
    with composite(name, (x,)) as c:
        values = c.output(_at(x, offsets))
    return cls(values, _result(idx, D.int64))


def cummax(input, dim):
    """The running maximum along dim and where it was taken (the last of equal values; nan
    once met): CummaxBackward0, the gradient to those places."""
    return _running(input, dim, True, "CummaxBackward0", cummax_values)


def cummin(input, dim):
    return _running(input, dim, False, "CumminBackward0", cummin_values)


def logcumsumexp(input, dim):
    """log(cumsum(exp(input))) along dim, stable: each output is a logsumexp over the
    prefix, shifted by the running maximum (LogcumsumexpBackward0)."""
    x = input
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f"\"logcumsumexp_out_cpu\" not implemented for "
                                  f"'{_SHORT[x.dtype.name]}'")
    d = _wrap_dim(dim, x.ndim)
    if x.ndim == 0 or x.numel() == 0:
        with composite("LogcumsumexpBackward0", (input,)) as c:
            return c.output(x.clone())
    n = x.shape[d]
    a = _val(x)
    peak = np.maximum.accumulate(np.where(np.isnan(a), -np.inf, a), axis=d)
    peak = np.where(np.isfinite(peak), peak, 0)
    m = tensor(peak, dtype=x.dtype)
    tail = (1,) * (x.ndim - d - 1)
    # (i, j) pairs along dims d, d + 1: x_i - m_j for i <= j; out_j sums over i
    pairs = x.unsqueeze(d + 1) - m.unsqueeze(d)
    upto = tensor(np.triu(np.ones((n, n), dtype=bool)).reshape((n, n) + tail))
    with composite("LogcumsumexpBackward0", (input,)) as c:
        shifted = L.where(upto, pairs, -math.inf)
        return c.output(shifted.exp().sum(d).log() + m)


def _select_k(x, name, positions, dim, keepdim, cls, nan_first=False):
    """values and indices at sorted ``positions`` (an array along dim, keepdim shape) of the
    stable order of x along dim."""
    _untraced(x, f"{name[:-9].lower()}() (an index picked by the values)")
    d = _wrap_dim(dim, x.ndim)
    a = _val(x).reshape(x.shape or (1,))
    order = np.argsort(a, axis=d, kind="stable")
    idx = np.take_along_axis(order, positions, axis=d)
    if nan_first and a.dtype.kind == "f":  # the first nan, where there is one
        nan = np.isnan(a)
        has = nan.any(axis=d, keepdims=True)
        idx = np.where(has, np.argmax(nan, axis=d, keepdims=True), idx)
    if x.ndim == 0:
        return _picked(x, name, idx.reshape(()), 0, keepdim, cls)
    return _picked(x, name, idx, d, keepdim, cls)


def kthvalue(input, k, dim=-1, keepdim=False):
    """The k-th smallest value along dim and its index (KthvalueBackward0)."""
    d = _wrap_dim(dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    shape = list(input.shape or (1,))
    shape[d] = 1
    return _select_k(input, "KthvalueBackward0", np.full(shape, k - 1), d, keepdim,
                     kthvalue_values)


class _MedianAll(Function):
    """The median of all elements; the gradient shared evenly among the elements equal to it
    (all nan elements when it is nan), as PyTorch's evenly_distribute_backward."""

    @staticmethod
    def forward(ctx, x, value):
        a = _val(x)
        mask = np.isnan(a) if np.isnan(value) else a == value
        ctx.share = mask / builtins.max(mask.sum(), 1)
        return _result(_out(np.asarray(value, dtype=x.dtype.np), x.dtype), x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g * tensor(ctx.share, dtype=g.dtype), None


class _Median(_MedianAll):
    _node_name = "MedianBackward0"


class _Nanmedian(_MedianAll):
    _node_name = "NanmedianBackward0"


def _median(x, dim, keepdim, skip_nan):
    if dim is None:
        a = np.sort(_val(x).reshape(-1))
        if a.size == 0:
            value = np.nan
        elif skip_nan:
            count = int((~np.isnan(a)).sum())
            value = a[(count - 1) // 2] if count else np.nan
        else:
            value = np.nan if np.isnan(a).any() else a[(a.size - 1) // 2]
        return (_Nanmedian if skip_nan else _Median).apply(x, value)
    d = _wrap_dim(dim, x.ndim)
    a = _val(x).reshape(x.shape or (1,))
    if a.shape[d] == 0:
        raise IndexError(f"{'nanmedian' if skip_nan else 'median'}(): Expected reduction dim {d} "
                         "to have non-zero size.")
    if skip_nan and a.dtype.kind == "f":
        count = (~np.isnan(a)).sum(axis=d, keepdims=True)
        positions = np.maximum(count - 1, 0) // 2
    else:
        positions = np.full(np.sum(a, axis=d, keepdims=True).shape, (a.shape[d] - 1) // 2)
    name = "NanmedianBackward1" if skip_nan else "MedianBackward1"
    return _select_k(x, name, positions.astype(np.int64), d, keepdim,
                     nanmedian_values if skip_nan else median_values, nan_first=not skip_nan)


def median(input, dim=None, keepdim=False):
    """The lower median: of all elements (MedianBackward0, the gradient shared among equal
    elements), or along dim with its index (MedianBackward1); nan where there is one."""
    return _median(input, dim, keepdim, False)


def nanmedian(input, dim=None, keepdim=False):
    """median ignoring nan (nan only where all are)."""
    return _median(input, dim, keepdim, True)


def mode(input, dim=-1, keepdim=False):
    """The most frequent value along dim (the smallest of equally frequent ones) and the index
    of its last occurrence (ModeBackward0)."""
    _untraced(input, "mode() (an index picked by the values)")
    d = _wrap_dim(dim, input.ndim)
    a = np.moveaxis(_val(input).reshape(input.shape or (1,)), d, -1)
    rows = a.reshape(-1, a.shape[-1])
    if rows.shape[1] == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    picks = np.empty(rows.shape[0], dtype=np.int64)
    for r, row in enumerate(rows):
        values, counts = np.unique(row, return_counts=True)
        best = values[np.argmax(counts)]
        hits = np.flatnonzero((row == best) | (np.isnan(row) & np.isnan(best)))
        picks[r] = hits[-1]
    idx = np.expand_dims(picks.reshape(a.shape[:-1]), -1)
    idx = np.moveaxis(idx, -1, d)
    if input.ndim == 0:
        return _picked(input, "ModeBackward0", idx.reshape(()), 0, keepdim, mode_values)
    return _picked(input, "ModeBackward0", idx, d, keepdim, mode_values)


_WAYS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(x, q, dim, keepdim, interpolation, skip_nan):
    name = "nanquantile" if skip_nan else "quantile"
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _WAYS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest, but got {interpolation}")
    scalar = not isinstance(q, Tensor) or q.ndim == 0
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
        if q.dtype is not x.dtype:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
    qs = np.asarray(_val(q) if not scalar else q, dtype=np.float64).reshape(-1)
    for v in qs:
        if not 0 <= v <= 1:
            raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {v:g}"
                               if scalar else f"{name}() q values must be in the range [0, 1]")
    flat = dim is None
    src = x.reshape(-1) if flat else x
    if src.ndim == 0:
        src = src.reshape(1)
    d = 0 if flat else _wrap_dim(dim, x.ndim)
    if src.shape[d] == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    ordered = L.sort(src, d).values
    a = np.moveaxis(_val(ordered), d, -1)[..., None, :]  # [..., 1, n]
    n = a.shape[-1]
    nan = np.isnan(a)
    count = (n - nan.sum(-1)) if skip_nan else np.full(a.shape[:-1], n)
    # ranks computed as PyTorch's: q * (count - 1) in the input's dtype
    qv = qs.astype(x.dtype.np)
    rank = (qv * (count - 1).astype(x.dtype.np)).astype(x.dtype.np)  # [..., len(q)]
    if interpolation == "nearest":
        rank = np.round(rank)
    lo = np.floor(rank).astype(np.int64)
    hi = np.ceil(rank).astype(np.int64)
    if interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    elif interpolation == "nearest":
        lo = hi = rank.astype(np.int64)
    weight = (rank - lo).astype(x.dtype.np) if interpolation == "linear" else \
        np.full(rank.shape, 0.5, dtype=x.dtype.np)
    if skip_nan:  # an all-nan slice: its first (nan) value
        empty = count == 0
        lo, hi = np.where(empty, 0, lo), np.where(empty, 0, hi)
    else:  # a slice with a nan: its last value, a nan
        empty = nan.any(-1)
        lo, hi = np.where(empty, n - 1, lo), np.where(empty, n - 1, hi)
    # gather along d with the q axis placed at d, then move it to the front as PyTorch
    below = L.gather(ordered, d, tensor(np.moveaxis(lo, -1, d).copy()))
    if interpolation in ("lower", "higher", "nearest"):
        out = below
    else:  # lerp, as PyTorch's: from below under a weight of 0.5, from above from it
        above = L.gather(ordered, d, tensor(np.moveaxis(hi, -1, d).copy()))
        w = np.moveaxis(weight, -1, d).copy()
        step = above - below
        out = L.where(tensor(w < 0.5), below + tensor(w, dtype=x.dtype) * step,
                      above - step * tensor(1 - w, dtype=x.dtype))
    out = out.unsqueeze(0).transpose(0, d + 1).squeeze(d + 1)  # q axis first
    if keepdim:
        if flat:
            out = out.reshape((out.shape[0],) + (1,) * x.ndim)
        else:
            out = out.unsqueeze(d + 1)
    if scalar:
        out = out.squeeze(0)
    with composite("SqueezeBackward4", (x,)) as c:  # (PyTorch's last step, whatever the form)
        return c.output(out)


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The q-th quantiles along dim (of all elements when dim is None), interpolating between
    the sorted values as ``interpolation`` says; nan where a slice has a nan."""
    return _quantile(input, q, dim, keepdim, interpolation, False)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """quantile ignoring nan (nan where a slice is all nan)."""
    return _quantile(input, q, dim, keepdim, interpolation, True)


def aminmax(input, *, dim=None, keepdim=False):
    """(amin, amax) over dim (all elements when None), each AminmaxBackward0: ties share the
    gradient evenly."""
    if input.numel() == 0:
        if dim is None:
            raise RuntimeError("aminmax(): cannot compute aminmax over an empty dimension as the "
                               "operation has no identity.")
        raise IndexError(f"aminmax: Expected reduction dim {_wrap_dim(dim, input.ndim)} to have "
                         "non-zero size.")
    if dim is None:
        lo, hi = L.amin(input), L.amax(input)
        if keepdim:
            lo, hi = lo.reshape((1,) * input.ndim), hi.reshape((1,) * input.ndim)
    else:
        lo, hi = L.amin(input, dim, keepdim), L.amax(input, dim, keepdim)
    with composite("AminmaxBackward0", (input,)) as c:
        lo = c.output(lo * 1 if keepdim and dim is None else lo)
    with composite("AminmaxBackward0", (input,)) as c:
        hi = c.output(hi * 1 if keepdim and dim is None else hi)
    return aminmax_values(lo, hi)


def msort(input):
    return L.sort(input, 0).values


def argwhere(input):
    return nonzero(input)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """The distinct values (slices along dim), sorted; optionally where each element went and
    how many there were.  Without history (PyTorch's has no derivative either)."""
    _untraced(input, "unique() (its output's size depends on the values)")
    a = _val(input)
    if dim is None:
        values, inverse, counts = np.unique(a.reshape(-1), return_inverse=True,
                                            return_counts=True)
        inverse = inverse.reshape(a.shape)
    else:
        d = _wrap_dim(dim, input.ndim)
        values, inverse, counts = np.unique(a, return_inverse=True, return_counts=True, axis=d)
        inverse = inverse.reshape(-1)
    out = [_result(np.ascontiguousarray(values), input.dtype)]
    if return_inverse:
        out.append(_result(np.asarray(inverse, dtype=np.int64), D.int64))
    if return_counts:
        out.append(_result(np.asarray(counts, dtype=np.int64), D.int64))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """The values (slices along dim) without consecutive repeats."""
    _untraced(input, "unique_consecutive() (its output's size depends on the values)")
    a = _val(input)
    if dim is None:
        rows = a.reshape(-1, 1)
        d = 0
    else:
        d = _wrap_dim(dim, input.ndim)
        rows = np.moveaxis(a, d, 0).reshape(a.shape[d] if a.ndim else 1, -1)
    n = rows.shape[0]
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    inverse = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, n))
    if dim is None:
        values = a.reshape(-1)[starts]
        inverse = inverse.reshape(a.shape)
    else:
        values = np.take(a, starts, axis=d)
    out = [_result(np.ascontiguousarray(values), input.dtype)]
    if return_inverse:
        out.append(_result(np.asarray(inverse, dtype=np.int64), D.int64))
    if return_counts:
        out.append(_result(np.asarray(counts, dtype=np.int64), D.int64))
    return out[0] if len(out) == 1 else tuple(out)


def bincount(input, weights=None, minlength=0):
    """How often each value 0, 1... occurs in a 1-d tensor of non-negative integers (summed
    weights instead when given).  Without history, as PyTorch's (no derivative)."""
    _untraced(input, "bincount() (its output's size depends on the values)")
    a = _val(input)
    if a.dtype.kind == "f":
        raise NotImplementedError(f"\"bincount_cpu\" not implemented for "
                                  f"'{_SHORT[input.dtype.name]}'")
    if a.ndim != 1 or (a.size and a.min() < 0):
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    if weights is None:
        return _result(np.bincount(a, minlength=minlength).astype(np.int64), D.int64)
    dt = D.float32 if weights.dtype is D.float32 else D.float64
    w = _val(weights).astype(np.float64)
    return _result(_out(np.bincount(a, w, minlength=minlength), dt), dt)


def histc(input, bins=100, min=0, max=0):  # noqa: A002
    """A histogram of ``bins`` equal bins from min to max (the data's when both are 0); the
    last bin includes max, values outside are left out.  Without history (no derivative)."""
    _untraced(input, "histc() (a count of the values)")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"histogram_cpu\" not implemented for "
                                  f"'{_SHORT[input.dtype.name]}'")
    if bins <= 0:
        raise RuntimeError("torch.histc: bins must be > 0, but got " + str(bins))
    a = _val(input).reshape(-1)
    lo, hi = builtins.float(min), builtins.float(max)
    if lo == hi and a.size:
        lo, hi = builtins.float(a.min()), builtins.float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    inside = a[(a >= lo) & (a <= hi)].astype(np.float64)
    pos = ((inside - lo) * bins / (hi - lo)).astype(np.int64)
    pos = np.minimum(pos, bins - 1)
    counts = np.bincount(pos, minlength=bins)[:bins]
    return _result(_out(counts.astype(input.dtype.np), input.dtype), input.dtype)


# ---- Tensor methods: the function forms above, the tensor as ``self``
Tensor.index_add = index_add
Tensor.index_add_ = index_add_
Tensor.index_copy = index_copy
Tensor.index_copy_ = index_copy_
Tensor.index_fill = index_fill
Tensor.index_fill_ = index_fill_
Tensor.index_put = index_put
Tensor.index_put_ = index_put_
Tensor.index_reduce = index_reduce
Tensor.index_reduce_ = index_reduce_
Tensor.scatter_ = scatter_
Tensor.scatter_add_ = scatter_add_
Tensor.scatter_reduce = scatter_reduce
Tensor.scatter_reduce_ = scatter_reduce_
Tensor.masked_scatter = masked_scatter
Tensor.masked_scatter_ = masked_scatter_
Tensor.put = put
Tensor.put_ = put_
Tensor.take = take
Tensor.take_along_dim = take_along_dim
Tensor.repeat_interleave = repeat_interleave
Tensor.fill_diagonal_ = fill_diagonal_
Tensor.diagonal_scatter = diagonal_scatter
Tensor.select_scatter = select_scatter
Tensor.slice_scatter = slice_scatter
Tensor.diag = diag
Tensor.diag_embed = diag_embed
Tensor.diagflat = diagflat
Tensor.tensor_split = tensor_split
Tensor.hsplit = hsplit
Tensor.vsplit = vsplit
Tensor.dsplit = dsplit
Tensor.split_with_sizes = split_with_sizes
Tensor.unsafe_chunk = unsafe_chunk
Tensor.unsafe_split = unsafe_split
Tensor.unfold = unfold
Tensor.as_strided = as_strided
Tensor.narrow_copy = narrow_copy
Tensor.rot90 = rot90
Tensor.fliplr = fliplr
Tensor.flipud = flipud
Tensor.sum_to_size = sum_to_size
Tensor.cummax = cummax
Tensor.cummin = cummin
Tensor.logcumsumexp = logcumsumexp
Tensor.kthvalue = kthvalue
Tensor.median = median
Tensor.nanmedian = nanmedian
Tensor.mode = mode
Tensor.quantile = quantile
Tensor.nanquantile = nanquantile
Tensor.aminmax = aminmax
Tensor.msort = msort
Tensor.argwhere = argwhere
Tensor.unique = unique
Tensor.unique_consecutive = unique_consecutive
Tensor.bincount = bincount
Tensor.histc = histc
