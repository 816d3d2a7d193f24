"""Indexing, scatter, splitting and order-statistic ops (``tapegrad/_ops_index.py``).

One ``Row`` per op form and shape: against PyTorch (values, dtypes, the gradients of every
float input through ``(out * r).sum()``, float64 and float32, and the grad_fn names), and
against central differences in float64 (``tapegrad.testing.gradcheck``, no PyTorch needed).
Then the errors PyTorch gives for common bad input, and the non-differentiable ops.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from op_specs import dtype_name, sample, seed_of

import tapegrad
from tapegrad.testing import gradcheck

pytestmark = pytest.mark.filterwarnings("ignore:index_reduce\\(\\) is in beta:UserWarning")


@dataclass(frozen=True)
class Row:
    name: str
    fn: Callable[..., Any]  # fn(lib, *float tensors) -> tensor or tuple of tensors
    shapes: tuple[tuple[int, ...], ...]
    domain: str = "real"
    gradcheck: bool = True
    names: bool = True  # compare grad_fn names with PyTorch's


def L(lib, values):
    """An int64 index tensor."""
    return lib.tensor(values, dtype=lib.int64)


def M(lib, values):
    """A bool mask."""
    return lib.tensor(values, dtype=lib.bool)


ROWS = [
    # index_* ops
    Row("index_add.d0", lambda t, x, s: t.index_add(x, 0, L(t, [2, 0, 2]), s), ((3, 4), (3, 4))),
    Row("index_add.neg_dim_alpha", lambda t, x, s: x.index_add(-1, L(t, [1, 3]), s, alpha=2.5),
        ((2, 3, 4), (2, 3, 2))),
    Row("index_add.1d", lambda t, x, s: x.index_add(0, L(t, [1]), s), ((4,), (1,))),
    Row("index_add.0d", lambda t, x, s: x.index_add(0, L(t, [0]), s), ((), ())),
    Row("index_add_.method", lambda t, x, s: x.clone().index_add_(1, L(t, [0, 0]), s),
        ((3, 2), (3, 2))),
    Row("index_copy.d1", lambda t, x, s: x.index_copy(1, L(t, [3, 0]), s), ((2, 4), (2, 2))),
    Row("index_copy.3d", lambda t, x, s: t.index_copy(x, -2, L(t, [1]), s),
        ((2, 3, 2), (2, 1, 2))),
    Row("index_copy_.method", lambda t, x, s: x.clone().index_copy_(0, L(t, [2, 1]), s),
        ((3,), (2,))),
    Row("index_fill.number", lambda t, x: x.index_fill(1, L(t, [0, 2]), -1.5), ((2, 3),)),
    Row("index_fill.tensor", lambda t, x, v: x.index_fill(-1, L(t, [1]), v), ((2, 1, 3), ())),
    Row("index_fill_.tensor", lambda t, x, v: x.clone().index_fill_(0, L(t, [0, 0]), v),
        ((3,), ())),
    Row("index_put.one", lambda t, x, v: x.index_put((L(t, [0, 2]),), v), ((3, 4), (2, 4))),
    Row("index_put.two_acc", lambda t, x, v: x.index_put((L(t, [0, 2, 0]), L(t, [1, 1, 1])), v,
                                                         accumulate=True), ((3, 4), (3,))),
    Row("index_put.broadcast", lambda t, x, v: t.index_put(x, (L(t, [1]),), v), ((2, 3), ())),
    Row("index_put.mask", lambda t, x, v: x.index_put((M(t, [True, False, True]),), v,
                                                      accumulate=True), ((3, 2), (2,))),
    Row("index_put_.method", lambda t, x, v: x.clone().index_put_((L(t, [1, -1]),), v),
        ((4,), (2,))),
    Row("index_reduce.prod", lambda t, x, s: x.index_reduce(0, L(t, [0, 2, 0]), s, "prod"),
        ((3, 2), (3, 2)), "zeros_in"),
    Row("index_reduce.mean_noself", lambda t, x, s: x.index_reduce(
        1, L(t, [1, 1, 0]), s, "mean", include_self=False), ((2, 3), (2, 3))),
    Row("index_reduce.amax", lambda t, x, s: x.index_reduce(0, L(t, [1, 1]), s, "amax"),
        ((2, 3), (2, 3))),
    Row("index_reduce.amin_ties", lambda t, x, s: x.index_reduce(0, L(t, [0, 0, 1]), s, "amin"),
        ((2, 2), (3, 2)), "int", gradcheck=False),
    # scatter family
    Row("scatter_.src", lambda t, x, s: x.clone().scatter_(0, L(t, [[1, 0, 2]]), s),
        ((3, 3), (1, 3))),
    Row("scatter_.value", lambda t, x: x.clone().scatter_(1, L(t, [[1], [0]]), 2.0), ((2, 3),)),
    Row("scatter_add_.method", lambda t, x, s: x.clone().scatter_add_(0, L(t, [[1, 1, 0]]), s),
        ((2, 3), (1, 3))),
    Row("scatter_reduce.sum", lambda t, x, s: x.scatter_reduce(0, L(t, [1, 1, 0, 3]), s, "sum"),
        ((4,), (4,))),
    Row("scatter_reduce.sum_noself", lambda t, x, s: t.scatter_reduce(
        x, 1, L(t, [[0, 0], [2, 1]]), s, "sum", include_self=False), ((2, 3), (2, 2))),
    Row("scatter_reduce.prod", lambda t, x, s: x.scatter_reduce(
        -1, L(t, [[0, 0, 1], [1, 1, 1]]), s, "prod"), ((2, 3), (2, 3)), "zeros_in"),
    Row("scatter_reduce.prod_noself", lambda t, x, s: x.scatter_reduce(
        0, L(t, [2, 2, 0, 2]), s, "prod", include_self=False), ((3,), (4,)), "zeros_in"),
    Row("scatter_reduce.mean", lambda t, x, s: x.scatter_reduce(0, L(t, [[1, 0], [1, 1]]), s,
                                                                "mean"), ((2, 2), (2, 2))),
    Row("scatter_reduce.amax", lambda t, x, s: x.scatter_reduce(0, L(t, [0, 0, 2]), s, "amax"),
        ((3,), (3,))),
    Row("scatter_reduce.amax_ties", lambda t, x, s: x.scatter_reduce(0, L(t, [0, 0, 2, 2]), s,
                                                                     "amax"),
        ((3,), (4,)), "int", gradcheck=False),
    Row("scatter_reduce.amin_noself", lambda t, x, s: x.scatter_reduce(
        1, L(t, [[2, 2, 0]]), s, "amin", include_self=False), ((1, 3), (1, 3))),
    Row("scatter_reduce_.method", lambda t, x, s: x.clone().scatter_reduce_(
        0, L(t, [0, 1, 0]), s, "amax"), ((2,), (3,))),
    Row("masked_scatter", lambda t, x, s: x.masked_scatter(M(t, [[True, False, True],
                                                                 [False, False, True]]), s),
        ((2, 3), (5,))),
    Row("masked_scatter.broadcast", lambda t, x, s: t.masked_scatter(x, M(t, [True, False]), s),
        ((3, 2), (2, 3))),
    Row("masked_scatter_", lambda t, x, s: x.clone().masked_scatter_(M(t, [False, True]), s),
        ((2,), (1,))),
    Row("put", lambda t, x, s: x.put(L(t, [[4, 0], [-1, 2]]), s), ((2, 3), (2, 2))),
    Row("put.acc", lambda t, x, s: t.put(x, L(t, [1, 1, 0]), s, accumulate=True), ((3,), (3,))),
    Row("put_.method", lambda t, x, s: x.clone().put_(L(t, [3]), s), ((2, 2), (1,))),
    Row("take", lambda t, x: t.take(x, L(t, [[0, 5], [5, -2]])), ((2, 3),)),
    Row("take.0d", lambda t, x: x.take(L(t, 0)), ((),)),
    Row("take_along_dim.dim", lambda t, x: t.take_along_dim(x, L(t, [[0, 2], [1, 1]]), dim=1),
        ((2, 3),)),
    Row("take_along_dim.broadcast", lambda t, x: x.take_along_dim(L(t, [[[1]], [[0]]]), -3),
        ((2, 1, 3),)),
    Row("take_along_dim.flat", lambda t, x: t.take_along_dim(x, L(t, [3, 0, 3])), ((2, 2),)),
    Row("repeat_interleave.int", lambda t, x: x.repeat_interleave(2), ((2, 3),)),
    Row("repeat_interleave.dim", lambda t, x: t.repeat_interleave(x, 3, dim=-1), ((2, 1, 2),)),
    Row("repeat_interleave.tensor", lambda t, x: x.repeat_interleave(L(t, [1, 0, 2]), dim=0),
        ((3, 2),)),
    Row("repeat_interleave.0d", lambda t, x: x.repeat_interleave(3), ((),)),
    Row("fill_diagonal_", lambda t, x: x.clone().fill_diagonal_(1.5), ((3, 4),)),
    Row("fill_diagonal_.wrap", lambda t, x: x.clone().fill_diagonal_(-1.0, wrap=True), ((7, 2),)),
    Row("fill_diagonal_.3d", lambda t, x: x.clone().fill_diagonal_(0.5), ((2, 2, 2),)),
    Row("diagonal_scatter", lambda t, x, s: t.diagonal_scatter(x, s), ((3, 4), (3,))),
    Row("diagonal_scatter.offset", lambda t, x, s: x.diagonal_scatter(s, -1, 2, 0),
        ((3, 2, 3), (2, 2))),
    Row("select_scatter", lambda t, x, s: t.select_scatter(x, s, 1, -1), ((2, 3), (2,))),
    Row("select_scatter.1d", lambda t, x, s: x.select_scatter(s, 0, 1), ((3,), ())),
    Row("slice_scatter", lambda t, x, s: t.slice_scatter(x, s, 1, 1, None, 2), ((2, 5), (2, 2))),
    Row("slice_scatter.default", lambda t, x, s: x.slice_scatter(s), ((2, 3), (2, 3))),
    Row("diag.vector", lambda t, x: t.diag(x), ((3,),)),
    Row("diag.vector_offset", lambda t, x: x.diag(-2), ((2,),)),
    Row("diag.matrix", lambda t, x: t.diag(x, 1), ((3, 4),)),
    Row("diag_embed", lambda t, x: t.diag_embed(x), ((2, 3),)),
    Row("diag_embed.dims", lambda t, x: x.diag_embed(1, 0, 2), ((2, 2),)),
    Row("diagflat", lambda t, x: t.diagflat(x, -1), ((2, 2),)),
    Row("diagflat.0d", lambda t, x: x.diagflat(), ((),)),
    # splitting and views
    Row("tensor_split.sections", lambda t, x: t.tensor_split(x, 3, 1), ((2, 5),)),
    Row("tensor_split.indices", lambda t, x: x.tensor_split([1, -1, 9], dim=-1), ((4,),)),
    Row("tensor_split.tensor", lambda t, x: t.tensor_split(x, L(t, [2]), 0), ((3, 2),)),
    Row("hsplit", lambda t, x: t.hsplit(x, 2), ((2, 4),)),
    Row("hsplit.1d", lambda t, x: x.hsplit([1]), ((3,),)),
    Row("vsplit", lambda t, x: t.vsplit(x, [1, 1]), ((3, 2),)),
    Row("dsplit", lambda t, x: x.dsplit(2), ((1, 2, 4),)),
    Row("split_with_sizes", lambda t, x: t.split_with_sizes(x, [1, 2], -1), ((2, 3),)),
    Row("unsafe_split", lambda t, x: x.unsafe_split(2, 1), ((2, 3),)),
    Row("unsafe_chunk", lambda t, x: t.unsafe_chunk(x, 2), ((4, 1),)),
    Row("unfold.overlap", lambda t, x: x.unfold(1, 3, 1), ((2, 5),)),
    Row("unfold.step", lambda t, x: x.unfold(-1, 2, 3), ((2, 1, 7),)),
    Row("unfold.dim0", lambda t, x: x.unfold(0, 2, 2), ((4, 2),)),
    Row("unfold.0d", lambda t, x: x.unfold(0, 1, 1), ((),)),
    Row("as_strided.windows", lambda t, x: t.as_strided(x, (3, 3), (1, 1)), ((5,),)),
    Row("as_strided.offset", lambda t, x: x.as_strided((2, 2), (1, 2), 1), ((2, 3),)),
    Row("as_strided.0d", lambda t, x: x.as_strided((), (), 3), ((2, 2),)),
    Row("as_strided.broadcast", lambda t, x: x.as_strided((2, 3), (0, 1)), ((3, 1),)),
    Row("narrow_copy", lambda t, x: t.narrow_copy(x, -1, 1, 2), ((2, 4),)),
    Row("rot90", lambda t, x: t.rot90(x), ((2, 3),)),
    Row("rot90.k2", lambda t, x: x.rot90(2, [1, 2]), ((2, 3, 2),)),
    Row("rot90.k-1", lambda t, x: t.rot90(x, -1, (0, -1)), ((3, 2),)),
    Row("rot90.k4", lambda t, x: t.rot90(x, 4), ((2, 2),)),
    Row("fliplr", lambda t, x: t.fliplr(x), ((2, 3),)),
    Row("flipud", lambda t, x: x.flipud(), ((3, 2, 1),)),
    Row("sum_to_size", lambda t, x: x.sum_to_size(1, 3), ((2, 3),)),
    Row("sum_to_size.lead", lambda t, x: x.sum_to_size((2, 1)), ((3, 2, 4),)),
    # order statistics
    Row("cummax", lambda t, x: t.cummax(x, 1), ((2, 4),)),
    Row("cummax.ties", lambda t, x: x.cummax(0), ((6,),), "int", gradcheck=False),
    Row("cummin.neg", lambda t, x: x.cummin(-2), ((3, 2, 2),)),
    Row("cummin.0d", lambda t, x: t.cummin(x, 0), ((),)),
    Row("logcumsumexp", lambda t, x: t.logcumsumexp(x, 1), ((2, 4),)),
    Row("logcumsumexp.neg", lambda t, x: x.logcumsumexp(-3), ((3, 2, 1),)),
    Row("logcumsumexp.wide", lambda t, x: t.logcumsumexp(x * 400, 0), ((4,),)),
    Row("logcumsumexp.0d", lambda t, x: x.logcumsumexp(0), ((),)),
    Row("kthvalue", lambda t, x: t.kthvalue(x, 2, 1), ((2, 4),)),
    Row("kthvalue.keepdim", lambda t, x: x.kthvalue(3, 0, True), ((3, 2),)),
    Row("kthvalue.0d", lambda t, x: x.kthvalue(1), ((),)),
    Row("median.all", lambda t, x: t.median(x), ((2, 3),)),
    Row("median.all_ties", lambda t, x: x.median(), ((3, 3),), "int", gradcheck=False),
    Row("median.dim", lambda t, x: t.median(x, 1), ((3, 4),)),
    Row("median.dim_keep", lambda t, x: x.median(-1, True), ((2, 1, 3),)),
    Row("nanmedian.all", lambda t, x: t.nanmedian(x), ((5,),)),
    Row("nanmedian.dim", lambda t, x: x.nanmedian(0), ((3, 2),)),
    Row("mode", lambda t, x: t.mode(x, 1), ((3, 5),), "int", gradcheck=False),
    Row("mode.distinct", lambda t, x: x.mode(0), ((4, 2),)),
    Row("quantile.scalar", lambda t, x: t.quantile(x, 0.3), ((2, 3),)),
    Row("quantile.dim", lambda t, x: x.quantile(t.tensor([0.25, 0.5, 1.0], dtype=x.dtype), 1),
        ((3, 5),)),
    Row("quantile.keepdim", lambda t, x: t.quantile(x, 0.7, dim=-1, keepdim=True), ((2, 4),)),
    Row("quantile.keepdim_flat", lambda t, x: t.quantile(x, t.tensor([0.1, 0.9], dtype=x.dtype),
                                                         keepdim=True), ((2, 2),)),
    Row("quantile.lower", lambda t, x: x.quantile(0.4, 0, interpolation="lower"), ((4, 2),)),
    Row("quantile.higher", lambda t, x: x.quantile(0.4, 0, interpolation="higher"), ((4, 2),)),
    Row("quantile.midpoint", lambda t, x: x.quantile(0.4, 0, interpolation="midpoint"),
        ((4, 2),)),
    Row("quantile.nearest", lambda t, x: x.quantile(t.tensor([0.5, 0.125], dtype=x.dtype),
                                                    interpolation="nearest"), ((5,),)),
    Row("quantile.0d", lambda t, x: t.quantile(x, 0.5), ((),)),
    Row("nanquantile", lambda t, x: t.nanquantile(x, 0.6, 1), ((2, 3),)),
    Row("aminmax", lambda t, x: t.aminmax(x), ((2, 3),)),
    Row("aminmax.dim", lambda t, x: x.aminmax(dim=-1, keepdim=True), ((2, 3),)),
    Row("aminmax.ties", lambda t, x: t.aminmax(x, dim=0), ((4, 3),), "int", gradcheck=False),
    Row("msort", lambda t, x: t.msort(x), ((3, 2),)),
]

ROW_PARAMS = [pytest.param(r, id=r.name) for r in ROWS]
GRAD_ROWS = [pytest.param(r, id=r.name) for r in ROWS if r.gradcheck]


def _arrays(row: Row) -> list[np.ndarray]:
    rng = np.random.default_rng(seed_of(row.name))
    return [sample(row.domain, s, rng) for s in row.shapes]


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _float_outputs(out) -> list:
    return [o for o in _outputs(out) if o.dtype.is_floating_point]


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _run(lib, row: Row, dtype: str):
    xs = [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True) for a in _arrays(row)]
    out = row.fn(lib, *xs)
    outs = _outputs(out)
    floats = _float_outputs(out)
    rng = np.random.default_rng(1)
    seeds = [rng.standard_normal(tuple(o.shape)) for o in floats]
    total = sum((o * lib.tensor(r, dtype=o.dtype)).sum() for o, r in zip(floats, seeds))
    grads = lib.autograd.grad(total, xs, allow_unused=True)
    return outs, grads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("row", ROW_PARAMS)
def test_against_torch(row: Row, dtype: str):
    torch = pytest.importorskip("torch")
    ours, our_grads = _run(tapegrad, row, dtype)
    theirs, their_grads = _run(torch, row, dtype)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-5, 1e-5)
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert tuple(a.shape) == tuple(b.shape), f"output {k}: {tuple(a.shape)} != {b.shape}"
        assert dtype_name(a.dtype) == dtype_name(b.dtype), f"output {k}: {a.dtype} != {b.dtype}"
        np.testing.assert_allclose(_np(a), _np(b), rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"output {k}")
        if row.names:
            mine = None if a.grad_fn is None else a.grad_fn.name()
            torchs = None if b.grad_fn is None else b.grad_fn.name()
            assert mine == torchs, f"output {k}: grad_fn {mine} != torch {torchs}"
    for k, (g, h) in enumerate(zip(our_grads, their_grads)):
        assert (g is None) == (h is None), f"gradient of input {k}: {g} vs torch {h}"
        if g is not None:
            assert dtype_name(g.dtype) == dtype_name(h.dtype)
            np.testing.assert_allclose(_np(g), _np(h), rtol=rtol * 10, atol=atol * 10,
                                       err_msg=f"gradient of input {k}")
    out_t = row.fn(torch, *[torch.tensor(a) for a in _arrays(row)])
    out_o = row.fn(tapegrad, *[tapegrad.tensor(a) for a in _arrays(row)])
    if type(out_t).__module__ == "torch.return_types":  # a namedtuple of the same name, fields
        assert type(out_o).__name__ == type(out_t).__name__
        for field in out_o._fields:
            assert np.array_equal(_np(getattr(out_o, field)), _np(getattr(out_t, field)),
                                  equal_nan=True)


@pytest.mark.parametrize("row", GRAD_ROWS)
def test_gradcheck(row: Row):
    xs = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True) for a in _arrays(row)]

    def fn(*ts):
        return tuple(_float_outputs(row.fn(tapegrad, *ts)))

    assert gradcheck(fn, xs)


DOUBLE = ["index_add.d0", "index_put.two_acc", "scatter_reduce.prod", "scatter_reduce.amax",
          "logcumsumexp", "quantile.dim", "median.all", "unfold.overlap"]


@pytest.mark.parametrize("name", DOUBLE)
def test_double_backward(name: str):
    """The gradient is itself differentiable: its gradient checks against differences."""
    row = next(r for r in ROWS if r.name == name)
    xs = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True) for a in _arrays(row)]
    r = [np.random.default_rng(3).standard_normal(tuple(o.shape))
         for o in _float_outputs(row.fn(tapegrad, *xs))]

    def grads(*ts):
        outs = _float_outputs(row.fn(tapegrad, *ts))
        total = sum((o * tapegrad.tensor(s)).sum() for o, s in zip(outs, r))
        gs = tapegrad.autograd.grad(total, ts, create_graph=True, allow_unused=True)
        return tuple((g * g).sum() for g in gs if g is not None and g.requires_grad)

    if grads(*xs):
        assert gradcheck(grads, xs)


# ---------------------------------------------------------------- in-place semantics

def test_inplace_returns_self_and_bumps_version():
    x = tapegrad.zeros(3, 2)
    v = x._version
    assert x.index_add_(0, tapegrad.tensor([1]), tapegrad.ones(1, 2)) is x
    assert x._version > v
    assert x.tolist() == [[0, 0], [1, 1], [0, 0]]
    assert x.put_(tapegrad.tensor([0]), tapegrad.tensor([5.0])) is x
    assert x.fill_diagonal_(2.0) is x
    assert x.tolist() == [[2, 0], [1, 2], [0, 0]]


@pytest.mark.parametrize("op", [
    lambda x: x.index_add_(0, tapegrad.tensor([0]), tapegrad.ones(1)),
    lambda x: x.index_fill_(0, tapegrad.tensor([0]), 1.0),
    lambda x: x.scatter_(0, tapegrad.tensor([0]), 1.0),
    lambda x: x.masked_scatter_(tapegrad.tensor([True, False]), tapegrad.ones(2)),
], ids=["index_add_", "index_fill_", "scatter_", "masked_scatter_"])
def test_inplace_on_leaf_requiring_grad_raises(op):
    x = tapegrad.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in "
                                           "an in-place operation."):
        op(x)


def test_inplace_gradient_reaches_source():
    x = tapegrad.zeros(3, dtype=tapegrad.float64)
    s = tapegrad.tensor([1.0, 2.0], dtype=tapegrad.float64, requires_grad=True)
    x.index_copy_(0, tapegrad.tensor([2, 0]), s)
    (x * tapegrad.tensor([1.0, 2.0, 3.0], dtype=tapegrad.float64)).sum().backward()
    assert s.grad.tolist() == [3.0, 1.0]


@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter:UserWarning")
def test_scatter_reduce_forms_without_grad():
    torch = pytest.importorskip("torch")
    for lib in (tapegrad, torch):
        x = lib.ones(2, 3)
        x.scatter_(1, lib.tensor([[0, 0], [2, 1]]), lib.tensor([[2.0, 3.0], [4.0, 5.0]]),
                   reduce="multiply")
        x.scatter_(0, lib.tensor([[1, 0, 1]]), 1.5, reduce="add")
        if lib is tapegrad:
            ours = x.tolist()
        else:
            assert ours == x.tolist()


def _as_strided_writes(L):
    x = L.zeros(2, 3)
    x.as_strided((2, 2), (1, 2)).fill_(5.0)
    w = L.arange(6.0, dtype=L.float64).requires_grad_()
    y = w * 1.0
    y.as_strided((2, 2), (2, 1), 1).mul_(2.0)
    (y * y).sum().backward()
    return x.tolist(), y.tolist(), w.grad.tolist()


def test_as_strided_is_a_view():
    # writes through it reach the tensor (a recorded one: CopySlices), as PyTorch's
    want = ([[5.0, 5.0, 5.0], [5.0, 0.0, 0.0]], [0.0, 2.0, 4.0, 6.0, 8.0, 5.0],
            [0.0, 8.0, 16.0, 24.0, 32.0, 10.0])
    assert _as_strided_writes(tapegrad) == want
    torch = pytest.importorskip("torch")
    assert _as_strided_writes(torch) == want


def _unfold_writes(L):
    x = L.zeros(2, 5)
    x.unfold(1, 3, 2)[0, 1].fill_(4.0)
    w = L.arange(6.0, dtype=L.float64).requires_grad_()
    y = w * 1.0
    y.unfold(0, 3, 3)[1].mul_(2.0)
    (y * y).sum().backward()
    return x.tolist(), w.grad.tolist()


def test_unfold_is_a_view():
    want = ([[0.0, 0.0, 4.0, 4.0, 4.0], [0.0] * 5], [0.0, 2.0, 4.0, 24.0, 32.0, 40.0])
    assert _unfold_writes(tapegrad) == want
    torch = pytest.importorskip("torch")
    assert _unfold_writes(torch) == want


def test_as_strided_of_a_view_is_refused():
    with pytest.raises(RuntimeError, match="as_strided of a view is not supported"):
        tapegrad.zeros(3, 4)[1:].as_strided((2,), (1,))


def test_scatter_reduce_form_warns_as_torch():
    with pytest.warns(UserWarning, match="The reduce argument of torch.scatter with Tensor src"):
        tapegrad.ones(3).scatter_(0, tapegrad.tensor([0]), tapegrad.ones(1), reduce="add")


VIEW_WRITES = [
    ("index_add_", lambda t, v, s: v.index_add_(0, L(t, [1, 1]), s)),
    ("index_fill_", lambda t, v, s: v.index_fill_(0, L(t, [0]), s[0])),
    ("masked_scatter_", lambda t, v, s: v.masked_scatter_(M(t, [True, False, True]), s)),
    ("scatter_reduce_", lambda t, v, s: v.scatter_reduce_(0, L(t, [2, 2]), s, "prod")),
]


@pytest.mark.parametrize("name,write", VIEW_WRITES, ids=[w[0] for w in VIEW_WRITES])
def test_inplace_through_a_view(name, write):
    """An in-place op on a row of a non-leaf: the gradients of the leaf and the source."""
    torch = pytest.importorskip("torch")
    a = sample("real", (2, 3), np.random.default_rng(seed_of(name)))
    b = sample("real", (2,), np.random.default_rng(seed_of(name) + 1))
    grads = []
    for lib in (tapegrad, torch):
        x = lib.tensor(a, requires_grad=True)
        s = lib.tensor(b, requires_grad=True)
        base = x * 1.0
        write(lib, base[1], s)
        (base * lib.tensor(np.arange(6.0).reshape(2, 3))).sum().backward()
        grads.append((_np(base), _np(x.grad), _np(s.grad)))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- non-differentiable ops

INT_ROWS = [
    ("argwhere", lambda t, x: t.argwhere(x > 0)),
    ("argwhere.0d", lambda t, x: t.argwhere(x[0, 0] > 100)),
    ("unique", lambda t, x: t.unique(x.round())),
    ("unique.all", lambda t, x: x.round().unique(return_inverse=True, return_counts=True)),
    ("unique.dim", lambda t, x: t.unique((x > 0).long(), dim=1, return_inverse=True,
                                         return_counts=True)),
    ("unique_consecutive", lambda t, x: t.unique_consecutive(x.round(), return_inverse=True,
                                                             return_counts=True)),
    ("unique_consecutive.dim", lambda t, x: (x > 0).long().unique_consecutive(
        dim=0, return_counts=True)),
    ("bincount", lambda t, x: t.bincount((x.abs() * 2).long().reshape(-1))),
    ("bincount.weights", lambda t, x: t.bincount((x.abs() * 2).long().reshape(-1), x.reshape(-1),
                                                 minlength=9)),
    ("kthvalue.int_1d", lambda t, x: t.kthvalue(t.tensor([3, 1, 2, 5]), 2)),
    ("quantile.q_0d", lambda t, x: t.quantile(x, t.tensor(0.5, dtype=x.dtype), dim=1)),
    ("diagonal_scatter.cast", lambda t, x: t.diagonal_scatter(x.float(), x[0, :3])),
    ("histc", lambda t, x: t.histc(x, 5)),
    ("histc.range", lambda t, x: x.histc(4, -1, 1)),
    ("repeat_interleave.counts", lambda t, x: t.repeat_interleave(t.tensor([2, 0, 3]))),
    ("median.nan", lambda t, x: t.median(t.tensor([[1.0, float("nan"), 3.0], [2.0, 1.0, 0.0]]),
                                         1)),
    ("nanmedian.nan", lambda t, x: t.nanmedian(t.tensor([[1.0, float("nan"), 3.0],
                                                         [float("nan")] * 3]), 1)),
    ("quantile.nan", lambda t, x: t.quantile(t.tensor([[1.0, float("nan")], [2.0, 1.0]]),
                                             0.5, 1)),
    ("nanquantile.nan", lambda t, x: t.nanquantile(t.tensor([[1.0, float("nan"), 3.0],
                                                             [float("nan")] * 3]), 0.5, 1)),
    ("cummax.nan", lambda t, x: t.cummax(t.tensor([1.0, 3, 3, 2, float("nan"), 5]), 0)),
    ("scatter_reduce.int_mean", lambda t, x: t.scatter_reduce(
        t.tensor([1, 2, 3]), 0, t.tensor([0, 0, 1]), t.tensor([4, 5, 6]), "mean")),
    ("scatter_reduce.max_alias", lambda t, x: x.scatter_reduce(
        1, t.tensor([[0, 0, 1, 2]] * 3), x, "max")),
    ("scatter_reduce.min_alias", lambda t, x: x.scatter_reduce(
        1, t.tensor([[0, 0, 1, 2]] * 3), x, "min", include_self=False)),
    ("logcumsumexp.wide", lambda t, x: t.logcumsumexp(t.tensor([-1000.0, 0.0, 1000.0, -5.0]),
                                                      0)),
]


@pytest.mark.parametrize("name,fn", INT_ROWS, ids=[r[0] for r in INT_ROWS])
def test_values_against_torch(name, fn):
    torch = pytest.importorskip("torch")
    a = sample("real", (3, 4), np.random.default_rng(seed_of(name)))
    ours = _outputs(fn(tapegrad, tapegrad.tensor(a)))
    theirs = _outputs(fn(torch, torch.tensor(a)))
    assert len(ours) == len(theirs)
    for a_, b_ in zip(ours, theirs):
        assert tuple(a_.shape) == tuple(b_.shape)
        assert dtype_name(a_.dtype) == dtype_name(b_.dtype)
        np.testing.assert_allclose(_np(a_), _np(b_), rtol=1e-6, equal_nan=True)


# ---------------------------------------------------------------- errors in PyTorch's words

ERRORS = [
    ("index_add.dtype", lambda t: t.zeros(3, 4).index_add(0, L(t, [0]), t.zeros(1, 4,
                                                                             dtype=t.float64))),
    ("index_add.bound", lambda t: t.zeros(3, 4).index_add(0, L(t, [5]), t.zeros(1, 4))),
    ("index_add.count", lambda t: t.zeros(3, 4).index_add(0, L(t, [0, 1]), t.zeros(1, 4))),
    ("index_add.vector", lambda t: t.zeros(3, 4).index_add(0, L(t, [[0]]), t.zeros(1, 4))),
    ("index_add.shape", lambda t: t.zeros(3, 4).index_add(0, L(t, [0]), t.zeros(1, 5))),
    ("index_add.float_index", lambda t: t.zeros(3).index_add(0, t.tensor([0.0]), t.zeros(1))),
    ("index_copy.bound", lambda t: t.zeros(3).index_copy(0, L(t, [3]), t.zeros(1))),
    ("index_fill.value", lambda t: t.zeros(3).index_fill(0, L(t, [0]), t.zeros(2))),
    ("index_put.bound", lambda t: t.zeros(3).index_put((L(t, [4]),), t.tensor(1.0))),
    ("index_reduce.reduce", lambda t: t.zeros(3).index_reduce(0, L(t, [0]), t.zeros(1), "sum")),
    ("scatter_reduce.reduce", lambda t: t.zeros(3).scatter_reduce(0, L(t, [0]), t.zeros(1),
                                                                  "foo")),
    ("masked_scatter.few", lambda t: t.zeros(3).masked_scatter(M(t, [True, True, False]),
                                                               t.zeros(1))),
    ("put.count", lambda t: t.zeros(3).put(L(t, [0]), t.zeros(2))),
    ("put.bound", lambda t: t.zeros(3).put(L(t, [3]), t.zeros(1))),
    ("take.bound", lambda t: t.zeros(2, 2).take(L(t, [-5]))),
    ("diagonal_scatter.size", lambda t: t.zeros(3, 3).diagonal_scatter(t.zeros(2))),
    ("slice_scatter.size", lambda t: t.zeros(3, 3).slice_scatter(t.zeros(3), 0, 0, 2)),
    ("as_strided.bounds", lambda t: t.zeros(2, 3).as_strided((3, 3), (1, 2))),
    ("as_strided.offset", lambda t: t.zeros(2, 3).as_strided((2,), (1,), -1)),
    ("as_strided.length", lambda t: t.zeros(2, 3).as_strided((2, 2), (1,))),
    ("as_strided.negative", lambda t: t.zeros(2, 3).as_strided((2, 2), (1, -1))),
    ("put.dtype", lambda t: t.zeros(3).put(L(t, [0]), t.zeros(1, dtype=t.float64))),
    ("put.index_dtype", lambda t: t.zeros(3).put(t.tensor([0], dtype=t.int32), t.zeros(1))),
    ("take.index_dtype", lambda t: t.zeros(3).take(t.tensor([0.0]))),
    ("masked_scatter.dtype", lambda t: t.zeros(2).masked_scatter(M(t, [True, False]),
                                                                 t.ones(2, dtype=t.float64))),
    ("scatter_reduce.dtype", lambda t: t.zeros(3).scatter_reduce(
        0, L(t, [0]), t.zeros(1, dtype=t.float64), "sum")),
    ("index_reduce.dtype", lambda t: t.zeros(3).index_reduce(
        0, L(t, [0]), t.zeros(1, dtype=t.float64), "amax")),
    ("index_put.dtype", lambda t: t.zeros(3).index_put((L(t, [0]),),
                                                       t.tensor(1.0, dtype=t.float64))),
    ("index_put.index_dtype", lambda t: t.zeros(3).index_put((t.tensor([0.0]),), t.zeros(1))),
    ("repeat_interleave.negative", lambda t: t.zeros(3).repeat_interleave(-1)),
    ("repeat_interleave.negative_tensor", lambda t: t.zeros(2).repeat_interleave(L(t, [1, -1]))),
    ("logcumsumexp.int", lambda t: t.logcumsumexp(L(t, [1, 2]), 0)),
    ("quantile.empty", lambda t: t.quantile(t.zeros(0), 0.5)),
    ("diag.ndim", lambda t: t.diag(t.zeros(2, 2, 2))),
    ("hsplit.divisible", lambda t: t.hsplit(t.zeros(2, 4), 3)),
    ("vsplit.ndim", lambda t: t.vsplit(t.zeros(3), 1)),
    ("dsplit.ndim", lambda t: t.dsplit(t.zeros(3, 3), 1)),
    ("tensor_split.zero", lambda t: t.tensor_split(t.zeros(3), 0)),
    ("unfold.size", lambda t: t.zeros(3, 4).unfold(1, 5, 1)),
    ("unfold.step", lambda t: t.zeros(3, 4).unfold(1, 2, 0)),
    ("rot90.dims", lambda t: t.rot90(t.zeros(2, 2), 1, [0])),
    ("rot90.same", lambda t: t.rot90(t.zeros(2, 2), 1, [1, -1])),
    ("rot90.ndim", lambda t: t.rot90(t.zeros(3))),
    ("fliplr.ndim", lambda t: t.fliplr(t.zeros(3))),
    ("flipud.ndim", lambda t: t.flipud(t.tensor(1.0))),
    ("sum_to_size", lambda t: t.zeros(3, 4).sum_to_size(2, 4)),
    ("kthvalue.k", lambda t: t.kthvalue(t.zeros(3, 4), 5, 1)),
    ("quantile.q", lambda t: t.quantile(t.zeros(3), 1.5)),
    ("quantile.dtype", lambda t: t.quantile(t.zeros(3, dtype=t.int64), 0.5)),
    ("quantile.mode", lambda t: t.quantile(t.zeros(3), 0.5, interpolation="foo")),
    ("quantile.q_ndim", lambda t: t.quantile(t.zeros(3), t.zeros(1, 1))),
    ("quantile.q_dtype", lambda t: t.quantile(t.zeros(3), t.zeros(1, dtype=t.float64))),
    ("histc.int", lambda t: t.histc(t.zeros(3, dtype=t.int64))),
    ("bincount.negative", lambda t: t.bincount(L(t, [-1, 2]))),
    ("bincount.float", lambda t: t.bincount(t.zeros(2))),
    ("repeat_interleave.size", lambda t: t.zeros(3, 2).repeat_interleave(L(t, [1, 2]), dim=0)),
    ("aminmax.empty", lambda t: t.aminmax(t.zeros(0, 3), dim=0)),
    ("fill_diagonal_.equal", lambda t: t.zeros(2, 3, 2).fill_diagonal_(1.0)),
    ("diag_embed.0d", lambda t: t.diag_embed(t.tensor(1.0))),
    ("fill_diagonal_.ndim", lambda t: t.zeros(3).fill_diagonal_(1.0)),
]


def _failure(fn, lib):
    with pytest.raises(Exception) as info:
        fn(lib)
    return info.value


@pytest.mark.parametrize("name,fn", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_as_torch(name, fn):
    torch = pytest.importorskip("torch")
    ours = _failure(fn, tapegrad)
    theirs = _failure(fn, torch)
    assert type(ours).__name__ == type(theirs).__name__, (ours, theirs)
    assert str(ours) == str(theirs).split("\n")[0]
