"""Division with rounding (tapegrad/_rounding.py): ``div(..., rounding_mode=...)``,
``floor_divide`` and ``//``, against PyTorch (when installed) and always against Python's own
integer and float arithmetic, element by element."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the Python-arithmetic checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")

SPECIAL = [7.0, -7.0, 7.5, -7.5, 0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 0.1, 1e308,
           5e-324, 3.0, -2.5]
INTS = [7, -7, 9, -9, 0, 1, -1, 2 ** 62, -(2 ** 62) + 3, 5, -4]


def _ieee_div0(a, b):
    """a / b for b == 0 (Python raises where IEEE gives a signed inf or nan)."""
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _py_floor(a, b):
    """Python's float floor division, which PyTorch's "floor" follows; a / b where b is 0."""
    if b == 0.0:
        return _ieee_div0(a, b)
    if math.isinf(a) or math.isnan(a) or math.isnan(b):
        return math.nan
    return a // b


def _py_trunc(a, b):
    if b == 0.0:
        return _ieee_div0(a, b)
    q = a / b
    return math.copysign(float(math.trunc(q)), q) if math.isfinite(q) else q


def _same(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    both_nan = np.isnan(got) & np.isnan(want)
    assert np.array_equal(np.where(both_nan, 0.0, got), np.where(both_nan, 0.0, want)), (got, want)
    assert np.array_equal(np.signbit(got[~both_nan]), np.signbit(want[~both_nan]))


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_float_values_are_pythons(mode):
    a = np.array([x for x in SPECIAL for _ in SPECIAL])
    b = np.array([y for _ in SPECIAL for y in SPECIAL])
    got = tapegrad.div(tapegrad.tensor(a), tapegrad.tensor(b), rounding_mode=mode)
    ref = _py_floor if mode == "floor" else _py_trunc
    with np.errstate(all="ignore"):
        want = [ref(float(x), float(y)) for x, y in zip(a, b)]
    _same(got.numpy(), want)
    if mode == "floor":
        _same((tapegrad.tensor(a) // tapegrad.tensor(b)).numpy(), want)


def test_integer_values_are_pythons_and_stay_integers():
    a = np.array([x for x in INTS for y in INTS if y != 0], dtype=np.int64)
    b = np.array([y for x in INTS for y in INTS if y != 0], dtype=np.int64)
    ta, tb = tapegrad.tensor(a), tapegrad.tensor(b)
    floor = ta // tb
    trunc = tapegrad.div(ta, tb, rounding_mode="trunc")
    assert floor.dtype == trunc.dtype == tapegrad.int64
    assert floor.tolist() == [int(x) // int(y) for x, y in zip(a, b)]
    assert trunc.tolist() == [int(x) // int(y) if (x < 0) == (y < 0) or x % y == 0
                              else int(x) // int(y) + 1 for x, y in zip(a, b)]
    assert trunc.tolist() == [math.trunc(x / y) if abs(x) < 2 ** 52 else trunc.tolist()[i]
                              for i, (x, y) in enumerate(zip(a.tolist(), b.tolist()))]
    i32 = tapegrad.tensor([7, -7], dtype=tapegrad.int32)
    assert tapegrad.div(i32, 2, rounding_mode="trunc").dtype == tapegrad.int32


@requires_torch
@pytest.mark.parametrize("mode", ["floor", "trunc"])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32"])
def test_values_and_dtypes_match_torch(mode, dtype):
    rng = np.random.default_rng(3)
    if dtype.startswith("int"):
        a = rng.integers(-50, 50, 40)
        b = rng.integers(1, 9, 40) * rng.choice([-1, 1], 40)
    else:
        a = np.concatenate([rng.normal(size=40) * 10, SPECIAL])
        b = np.concatenate([rng.normal(size=40), SPECIAL[::-1]])
    outs = []
    for t in (tapegrad, real_torch):
        dt = getattr(t, dtype)
        x, y = t.tensor(a, dtype=dt), t.tensor(b, dtype=dt)
        rs = [t.div(x, y, rounding_mode=mode), x.div(3, rounding_mode=mode),
              t.div(x, 2.5, rounding_mode=mode), x.div(y[0], rounding_mode=mode),
              t.div(x[0], y, rounding_mode=mode)]
        if mode == "floor":
            rs += [x // y, x // 3, 7 // y, t.floor_divide(x, y), x.floor_divide(-2)]
        outs.append([(str(r.dtype).split(".")[-1], r.shape, r.numpy().astype(np.float64))
                     for r in rs])
    for (d0, s0, v0), (d1, s1, v1) in zip(*outs):
        assert d0 == d1 and tuple(s0) == tuple(s1)
        _same(v0, v1)


@requires_torch
def test_errors_are_pytorchs():
    for t in (tapegrad, real_torch):
        with pytest.raises(RuntimeError, match="^ZeroDivisionError$"):
            t.tensor([7, -7]) // 0
        with pytest.raises(RuntimeError, match="^ZeroDivisionError$"):
            t.div(t.tensor([7, -7]), t.tensor([1, 0]), rounding_mode="trunc")
        with pytest.raises(NotImplementedError, match="div_floor_cpu"):
            t.tensor([True]) // t.tensor([True])
        with pytest.raises(RuntimeError, match="rounding_mode to be one of None, 'trunc', or "
                                               "'floor' but found 'round'"):
            t.div(t.tensor([1.0]), 2, rounding_mode="round")
    assert (tapegrad.tensor([1.0, 2.0]) // 0).tolist() == [math.inf, math.inf]


def _nodes(fn):
    return type(fn).__name__, [(None if f is None else type(f).__name__, k)
                               for f, k in fn.next_functions]


@requires_torch
def test_gradients_graph_and_floor_divide_error_are_pytorchs():
    res = []
    for t in (tapegrad, real_torch):
        x = t.tensor([7.0, -7.5, 2.25], dtype=t.float64, requires_grad=True)
        w = t.tensor([2.0, 3.0, -0.5], dtype=t.float64, requires_grad=True)
        y1 = t.div(x, w, rounding_mode="floor")
        y2 = x.div(2, rounding_mode="trunc")
        y3 = t.div(3.0, w * 1.0, rounding_mode="floor") if t is real_torch else \
            t.div(t.tensor(3.0, dtype=t.float64), w * 1.0, rounding_mode="floor")
        graph = [_nodes(y.grad_fn) for y in (y1, y2)] + [_nodes(y3.grad_fn)[0]]
        (x * y1 + w * y2 + y3 * x).sum().backward()
        res.append((graph, x.grad.tolist(), w.grad.tolist()))
        z = x // 2
        assert type(z.grad_fn).__name__ == "NotImplemented" and z.requires_grad
        with pytest.raises(RuntimeError, match="derivative for aten::floor_divide is not "
                                               "implemented"):
            z.sum().backward()
    assert res[0] == res[1]


def test_gradients_match_finite_differences():
    """x * floor(x / w) + w * trunc(x / 2): the rounded quotients are constant near the
    points (away from their jumps), so only the outer products have a derivative."""
    x = tapegrad.tensor([7.3, -7.6, 2.2], dtype=tapegrad.float64, requires_grad=True)
    w = tapegrad.tensor([2.1, 3.2, -0.7], dtype=tapegrad.float64, requires_grad=True)

    def f(a, b):
        return (a * tapegrad.div(a, b, rounding_mode="floor")
                + b * a.div(2, rounding_mode="trunc")).sum()

    assert gradcheck(f, (x, w))


@requires_torch
def test_in_place_forms_are_pytorchs():
    res = []
    for t in (tapegrad, real_torch):
        x = t.tensor([7.0, -7.5], dtype=t.float64, requires_grad=True)
        w = x * 1.0
        w.div_(2, rounding_mode="floor")
        name = type(w.grad_fn).__name__
        (w * x).sum().backward()
        z = x.detach().clone()
        z //= 2
        i = t.tensor([7, -7])
        i.floor_divide_(2)
        j = t.tensor([7, -7])
        j.div_(t.tensor([2, 2]), rounding_mode="trunc")
        res.append((name, x.grad.tolist(), z.tolist(), i.tolist(), j.tolist()))
    assert res[0] == res[1]


def test_no_grad_and_integer_results_record_nothing():
    x = tapegrad.tensor([7.0, -7.5], requires_grad=True)
    with tapegrad.no_grad():
        y = x // 2
    assert not y.requires_grad and y.grad_fn is None
    assert (tapegrad.tensor([7, -7]) // 2).grad_fn is None


def test_second_derivatives_through_a_rounded_quotient():
    """create_graph: d/dx (x * trunc(x / 2)) = trunc(x / 2), whose own derivative is 0."""
    x = tapegrad.tensor([7.0, -7.5], dtype=tapegrad.float64, requires_grad=True)
    y = (x * x.div(2, rounding_mode="trunc")).sum()
    (g,) = tapegrad.autograd.grad(y, x, create_graph=True)
    assert g.tolist() == [3.0, -3.0]
    assert g.requires_grad
    (h,) = tapegrad.autograd.grad(g.sum(), x)
    assert h.tolist() == [0.0, 0.0]  # (PyTorch's too)


def test_a_trace_refuses_a_rounded_quotient_by_name():
    with pytest.raises(tapegrad.TraceError, match="DivBackward2"):
        tapegrad.trace(lambda v: v.div(2, rounding_mode="floor").sum(), np.array([1.0, 2.0]))
