"""Lazy results of a 0-d tensor and an array (``_tensor._lazy_scalar``: a lazy BROADCAST of
the scalar and the op on two arrays, computed by the flush) and lazy squares (``x ** 2``, a
lazy POWC).

As every lazy result (tests/test_lazy.py), they must be indistinguishable from eager ones:
the bits of the op computed under ``no_grad``, the gradients of PyTorch (when installed)
and of central differences, PyTorch's graph (grad_fn and next_functions), and its errors.
The tests that do not assert laziness run with ``TAPEGRAD_LAZY=0`` too (``.ci/run``): the
version errors of saved broadcasts are the eager path's as well.
"""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
from tapegrad import _config
from tapegrad import _engine as E
from tapegrad import _tensor as TT
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")
lazy_only = pytest.mark.skipif(not _config.LAZY, reason="TAPEGRAD_LAZY=0")

SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300, -1e-310, 2e5, -3e6, 1e-200]
OPS = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
]


@pytest.fixture(autouse=True)
def _lazy_again():
    E.state.seg.lazy_off = 0  # (undo a pause an earlier test's reads started)
    yield


def _is_lazy(t):
    return t.__class__ is TT._Lazy


def _bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


def _array(shape, seed):
    a = np.random.default_rng(seed).uniform(-3, 3, shape)
    a.flat[:min(a.size, len(SPECIAL))] = SPECIAL[:a.size]
    return a


def _scalars(v, owner):
    """0-d operands of value v: an element of a leaf, a 0-d leaf, a result, a constant."""
    owner_t = tapegrad.tensor(owner, requires_grad=True)
    leaf = tapegrad.tensor(v, dtype=tapegrad.float64, requires_grad=True)
    return [owner_t[1], leaf, leaf * 1.0, tapegrad.tensor(v, dtype=tapegrad.float64)]


@lazy_only
@pytest.mark.parametrize("shape", [(2,), (100,), (3, 5)])
@pytest.mark.parametrize("name, f", OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("v", [1.75, -0.0, np.inf, np.nan])
def test_values_are_the_eager_values_bit_for_bit(name, f, shape, v):
    """Both orders, every kind of 0-d operand, array operands that are constants, leaves
    and lazy results, special values on both sides."""
    a = _array(shape, 1)
    arrays = [tapegrad.tensor(a), tapegrad.tensor(a, requires_grad=True)]
    arrays.append(arrays[1] * 1.0)  # a lazy result
    for s in _scalars(v, np.array([0.5, v, 2.0])):
        for arr in arrays:
            if not (s.requires_grad or arr.requires_grad):
                continue
            for p, q in ((s, arr), (arr, s)):
                E.state.seg.lazy_off = 0  # (the reads below pause laziness)
                out = f(p, q)
                assert _is_lazy(out), (p, q)
                assert out.shape == shape and out.dtype == tapegrad.float64
                with tapegrad.no_grad():  # (from copies: detach() makes an element a view)
                    ref = f(tapegrad.tensor(np.array(p.tolist())),
                            tapegrad.tensor(np.array(q.tolist()))).numpy()
                np.testing.assert_array_equal(_bits(out.detach().numpy()), _bits(ref))


def _program(t, x, w, c):
    """llsq_obj's pattern and its relatives: a coefficient times a constant vector, sums of
    them, the other order, + and - with 0-d tensors, squares."""
    model = 0.0
    ti = t.ones(w.shape[0], dtype=t.float64)
    for i in range(x.shape[0]):
        model = model + x[i] * ti
        ti = ti * c
    y = (model - c) ** 2
    z = w * x[0] - x[1] + (x[2] * 0.5 - w) * x[0]
    z = t.square(z) + (z * x[1]) ** 2.0 - x.sum() * z
    return 0.5 * y.sum() + z.pow(2).sum() + (x[0] + w).sum() * x[2]


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    x = tapegrad.tensor(rng.uniform(-1, 1, 5), requires_grad=True)
    w = tapegrad.tensor(rng.uniform(-1, 1, 7), requires_grad=True)
    c = tapegrad.tensor(np.linspace(-1, 1, 7))
    assert gradcheck(lambda a, b: _program(tapegrad, a, b, c), (x, w))


@requires_torch
@pytest.mark.parametrize("n, m", [(3, 5), (9, 100), (4, 2000)])
def test_values_and_gradients_match_pytorch(n, m):
    rng = np.random.default_rng(n)
    xa, wa, ca = rng.uniform(-1, 1, n), rng.uniform(-1, 1, m), np.linspace(-1, 1, m)
    res = []
    for t in (tapegrad, real_torch):
        x = t.tensor(xa, dtype=t.float64, requires_grad=True)
        w = t.tensor(wa, dtype=t.float64, requires_grad=True)
        out = _program(t, x, w, t.tensor(ca, dtype=t.float64))
        out.backward()
        res.append((out.item(), x.grad.numpy(), w.grad.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-10)
    for g0, g1 in zip(res[0][1:], res[1][1:]):
        np.testing.assert_allclose(g0, g1, rtol=1e-9, atol=1e-12)


def _graph(fn, depth=3):
    """grad_fn names of a result and of its next_functions, depth-first."""
    if fn is None or depth == 0:
        return None
    return (type(fn).__name__, [(_graph(g, depth - 1), k) for g, k in fn.next_functions])


@requires_torch
def test_graph_is_pytorchs():
    """The hidden BROADCAST is not a node: the scalar's node is the op's next function."""
    made = []
    for t in (tapegrad, real_torch):
        x = t.tensor([0.5, -1.5, 2.0], dtype=t.float64, requires_grad=True)
        w = t.tensor([1.0, 2.0, 3.0, 4.0], dtype=t.float64, requires_grad=True)
        c = t.tensor([4.0, 3.0, 2.0, 1.0], dtype=t.float64)
        outs = [x[1] * w, w - x[0], c * x[2], x[0] + c, (w * 2.0) ** 2, t.square(w), w.pow(2)]
        made.append([(_graph(o.grad_fn), o.requires_grad, o.is_leaf) for o in outs])
        if t is tapegrad and _config.LAZY:
            assert all(_is_lazy(o) for o in outs)
    assert made[0] == made[1]


@lazy_only
def test_squares_are_lazy_and_other_powers_not():
    x = tapegrad.tensor(_array(16, 5), requires_grad=True)
    for f in (lambda: x ** 2, lambda: x ** 2.0, lambda: tapegrad.square(x), lambda: x.pow(2),
              lambda: (x * 1.0) ** 2):
        E.state.seg.lazy_off = 0
        y = f()
        assert _is_lazy(y)
        with np.errstate(over="ignore"):
            ref = np.power(x.detach().numpy(), 2)
        np.testing.assert_array_equal(_bits(y.detach().numpy()), _bits(ref))
    for y in (x ** 3, x ** 0.5, 2.0 ** x, x ** tapegrad.tensor(2.0)):
        assert not _is_lazy(y)


def test_what_stays_eager():
    """No grad, other dtypes, a one-element array, a 0-d tensor with a 0-d tensor, ops other
    than + - *, and a trace compute at once."""
    x = tapegrad.tensor(np.linspace(0.1, 1, 16), requires_grad=True)
    s = tapegrad.tensor(2.0, dtype=tapegrad.float64, requires_grad=True)
    with tapegrad.no_grad():
        assert not _is_lazy(s * x)
    assert not _is_lazy(s * tapegrad.tensor(np.ones(16), dtype=tapegrad.float32))
    assert not _is_lazy(s * tapegrad.tensor([3.0], dtype=tapegrad.float64))
    assert not _is_lazy(s / x) and not _is_lazy(x / s)
    assert not _is_lazy(tapegrad.tensor(3.0) * tapegrad.tensor(np.ones(4)))  # no grad
    seen = []

    def f(v):
        w = v[0] * v
        seen.append(_is_lazy(w))
        return w.sum()

    tapegrad.trace(f, (x,))
    assert seen and not any(seen)


def _write_after_use(t, which, make):
    x = t.tensor([0.5, 1.5, 2.5], dtype=t.float64, requires_grad=True)
    w = t.tensor([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]], dtype=t.float64, requires_grad=True)
    s = x.sum() * 1.0  # a 0-d result
    b = x * 1.0  # a 1-d result, broadcast against w's rows
    y = make(s, b, x, w)
    (s if which == "s" else b).mul_(2.0)
    return y, x, w


WRITES = [
    ("s * x", "s", lambda s, b, x, w: s * x),
    ("x * s", "s", lambda s, b, x, w: x * s),
    ("s * (x * 1)", "s", lambda s, b, x, w: s * (x * 1.0)),
    ("w * b", "b", lambda s, b, x, w: w * b),
    ("b / w", "b", lambda s, b, x, w: b / w),
    ("w / s", "s", lambda s, b, x, w: w / s),
    ("b * s", "b", lambda s, b, x, w: b * s),
]


def t_const(x):
    return x.detach() + 1.0


@requires_torch
@pytest.mark.parametrize("name, which, make", WRITES, ids=[w[0] for w in WRITES])
def test_a_saved_operand_written_in_place_raises_pytorchs_error(name, which, make):
    """A 0-d tensor (lazily or eagerly broadcast) or an array broadcast against a matrix,
    written in place after an op that saves it: PyTorch's version error at backward."""
    for t in (tapegrad, real_torch):
        E.state.seg.lazy_off = 0
        y, _, _ = _write_after_use(t, which, make)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


ADDS = [
    ("s + x", "s", lambda s, b, x, w: (s + x) * x),
    ("x - s", "s", lambda s, b, x, w: (x - s) * x),
    ("w + b", "b", lambda s, b, x, w: (w + b) * w),
    ("b - w * s", "s", lambda s, b, x, w: b - w.sum() * x),
    ("s * const", "s", lambda s, b, x, w: s * t_const(x) + w),  # (saves the constant only)
]


@requires_torch
@pytest.mark.parametrize("name, which, make", ADDS, ids=[a[0] for a in ADDS])
def test_an_operand_of_a_sum_written_in_place_keeps_pytorchs_gradient(name, which, make):
    """+ and - save no operand, nor does a product its operand's whose other operand needs
    no gradient: the write is no error, and the gradient is PyTorch's."""
    grads = []
    for t in (tapegrad, real_torch):
        E.state.seg.lazy_off = 0
        y, x, w = _write_after_use(t, which, make)
        y.sum().backward()
        grads.append([None if g is None else g.numpy().copy() for g in (x.grad, w.grad)])
    for g0, g1 in zip(*grads):
        assert (g0 is None) == (g1 is None)
        if g0 is not None:
            np.testing.assert_allclose(g0, g1, rtol=1e-12)
    grads = []
    for t in (tapegrad, real_torch):
        x = t.tensor([0.5, 1.5, 2.5], dtype=t.float64, requires_grad=True)
        s = x[0] * 3.0
        v = x * 1.0
        y = v + s
        v.add_(1.0)
        (y * y).sum().backward()
        grads.append(x.grad.numpy().copy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_many_across_flushes_and_segments(monkeypatch):
    """Thousands of lazy scalar-array records: broadcasts and products split across flushes,
    the arena grown, new segments started; every value and gradient as the eager ones."""
    monkeypatch.setattr(TT, "_LIMIT", 4 * 37)  # flush every 37 rows, splitting pairs
    rng = np.random.default_rng(9)
    xa = rng.uniform(0.9, 1.1, 400)
    c = tapegrad.tensor(rng.uniform(-1, 1, 50))

    def run(lazy):
        x = tapegrad.tensor(xa, requires_grad=True)
        acc = c * 0.0
        for i in range(x.shape[0]):
            if lazy:
                E.state.seg.lazy_off = 0
            else:
                E.state.seg.lazy_off = E.state.seg.nrec + 10 ** 9
            acc = acc * 0.5 + x[i] * c
        acc.sum().backward()
        E.state.seg.lazy_off = 0
        return acc.detach().numpy(), x.grad.numpy()

    lazy, eager = run(True), run(False)
    for a, b in zip(lazy, eager):
        np.testing.assert_array_equal(_bits(a), _bits(b))


@requires_torch
@pytest.mark.parametrize("other_requires_grad", [True, False])
def test_an_optimizer_style_write_to_an_elements_owner(other_requires_grad):
    """x[1] * w, then x.add_ under no_grad (an optimizer step) before backward: PyTorch's error
    when the product saved the element (w requires grad), its gradient when it did not."""
    out = []
    for t in (tapegrad, real_torch):
        E.state.seg.lazy_off = 0
        x = t.tensor(np.array([0.5, 1.5, 2.5]), requires_grad=True)
        w = t.tensor(np.linspace(-1, 1, 5), requires_grad=other_requires_grad)
        z = x[1] * w
        assert t is real_torch or _is_lazy(z) or not _config.LAZY
        y = z.sum() + (w - x[0]).sum()
        with t.no_grad():
            x.add_(1.0)
        try:
            y.backward()
            out.append(x.grad.numpy().copy())
        except RuntimeError as exc:
            assert "modified by an inplace operation" in str(exc)
            out.append("error")
    assert isinstance(out[0], str) == isinstance(out[1], str) == other_requires_grad
    if not other_requires_grad:
        np.testing.assert_allclose(out[0], out[1], rtol=1e-12)
