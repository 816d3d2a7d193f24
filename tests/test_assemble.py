"""nonzero, count_nonzero, nan_to_num, hstack, vstack, meshgrid, uniform_ and normal_
(tapegrad/_assemble.py): values, shapes, nodes and gradients against PyTorch when installed,
and against NumPy and central differences always."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tapegrad
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the NumPy and finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")


def _names(fn):
    return [None if f is None else type(f).__name__ for f, _ in fn.next_functions]


def _program(t):
    """Every form once; returns what it printed, shapes and gradients."""
    out = []
    a = t.tensor([[0, 1.5], [2, 0]])
    out += [a.nonzero(), t.nonzero(a, as_tuple=True), t.count_nonzero(a),
            t.count_nonzero(a, dim=0), a.count_nonzero(dim=(0, 1)), t.nonzero(t.tensor(3.0)),
            t.nonzero(t.tensor(3.0), as_tuple=True), t.nonzero(t.tensor(0.0)),
            t.nonzero(t.tensor([[True, False], [True, True]]))]
    x = t.tensor([1.0, math.nan, math.inf, -math.inf], requires_grad=True)
    y = t.nan_to_num(x)
    out += [y, type(y.grad_fn).__name__, _names(y.grad_fn)]
    (y * t.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    out += [x.grad, t.nan_to_num(x.detach(), nan=1.0, posinf=2.0, neginf=-3.0),
            x.detach().double().nan_to_num(), t.nan_to_num(t.tensor([1, 2]))]
    a = t.tensor([1.0, 2.0], requires_grad=True)
    b = t.tensor([3.0, 4.0])
    h, v = t.hstack([a, b]), t.vstack([a, b])
    out += [h, v, _names(v.grad_fn), t.hstack([t.ones(2, 1), t.zeros(2, 2)]).shape,
            t.vstack([t.tensor(1.0), t.tensor(2.0)]), t.hstack((t.tensor(1.0), a))]
    g = t.meshgrid(a, b, indexing="ij")
    out += [g, _names(g[0].grad_fn)]
    g = t.meshgrid([a, b, t.tensor([5.0, 6.0, 7.0])], indexing="xy")
    out += [[u.shape for u in g], g[0][:, :, 0], g[1][:, :, 0], g[2][0, 0]]
    (g[0] * g[1]).sum().backward()
    (h.sum() + v.pow(2).sum()).backward()
    out.append(a.grad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.meshgrid(a, b)
    out.append([str(m.message).split(" (Triggered internally")[0] for m in caught])
    return out


@requires_torch
def test_every_form_prints_what_pytorch_prints():
    for mine, theirs in zip(_program(tapegrad), _program(real_torch)):
        assert str(mine).replace("tapegrad", "torch") == str(theirs)


def test_values_are_numpys():
    rng = np.random.default_rng(0)
    a = rng.integers(-1, 2, (4, 5)).astype(np.float64)
    t = tapegrad.tensor(a)
    np.testing.assert_array_equal(t.nonzero().numpy(), np.argwhere(a))
    for got, want in zip(tapegrad.nonzero(t, as_tuple=True), np.nonzero(a)):
        np.testing.assert_array_equal(got.numpy(), want)
    assert t.count_nonzero().item() == np.count_nonzero(a)
    np.testing.assert_array_equal(t.count_nonzero(dim=1).numpy(), np.count_nonzero(a, axis=1))
    b = np.array([math.nan, math.inf, -math.inf, 2.0])
    np.testing.assert_array_equal(tapegrad.nan_to_num(tapegrad.tensor(b), nan=7.0).numpy(),
                                  np.nan_to_num(b, nan=7.0))
    p, q = rng.normal(size=3), rng.normal(size=4)
    for got, want in zip(tapegrad.meshgrid(tapegrad.tensor(p), tapegrad.tensor(q),
                                           indexing="xy"), np.meshgrid(p, q, indexing="xy")):
        np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(tapegrad.vstack([tapegrad.tensor(p), tapegrad.tensor(p)]).numpy(),
                                  np.vstack([p, p]))


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    x = tapegrad.tensor(rng.normal(size=3), dtype=tapegrad.float64, requires_grad=True)
    w = tapegrad.tensor(rng.normal(size=4), dtype=tapegrad.float64, requires_grad=True)

    def f(a, b):
        gx, gw = tapegrad.meshgrid(a, b, indexing="ij")
        s = tapegrad.vstack([a, a * 2.0]).sin().sum() + tapegrad.hstack([a, b]).pow(3).sum()
        return (gx * gw).exp().sum() + s + tapegrad.nan_to_num(a / b[:3]).sum()

    assert gradcheck(f, (x, w))


def test_random_fills_follow_the_seed_and_pytorchs_leaf_rule():
    t = tapegrad.empty(1000, dtype=tapegrad.float64)
    tapegrad.manual_seed(3)
    u = t.uniform_(-2.0, 5.0).numpy().copy()
    assert u.min() >= -2.0 and u.max() < 5.0 and abs(u.mean() - 1.5) < 0.3
    tapegrad.manual_seed(3)
    np.testing.assert_array_equal(tapegrad.empty(1000, dtype=tapegrad.float64).uniform_(-2, 5)
                                  .numpy(), u)
    n = tapegrad.zeros(4000, dtype=tapegrad.float64).normal_(1.0, 0.5).numpy()
    assert abs(n.mean() - 1.0) < 0.05 and abs(n.std() - 0.5) < 0.05
    leaf = tapegrad.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in "
                                           "an in-place operation"):
        leaf.uniform_()
    with tapegrad.no_grad():
        leaf.normal_()
    assert leaf.requires_grad and leaf.grad_fn is None


def test_traces_refuse_value_dependent_ones():
    for f, what in ((lambda v: v.nonzero().sum() * v.sum(), "nonzero"),
                    (lambda v: tapegrad.nan_to_num(v).sum(), "NanToNumBackward0"),
                    (lambda v: v.nansum(), "NansumBackward0")):
        with pytest.raises(tapegrad.TraceError, match=what):
            tapegrad.trace(f, np.array([1.0, 0.0]))


def _arith(t):
    """addcmul, addcdiv and diff: values, nodes and gradients."""
    a = t.tensor([1.0, 2.0, 4.0], dtype=t.float64, requires_grad=True)
    b = t.tensor([3.0, -1.0, 2.0], dtype=t.float64, requires_grad=True)
    c = t.tensor([2.0, 5.0, -3.0], dtype=t.float64, requires_grad=True)
    m = t.arange(12.0, dtype=t.float64).reshape(3, 4).requires_grad_()
    y1, y2 = t.addcmul(a, b, c, value=0.3), t.addcdiv(a, b, c, value=2)
    d1, d2 = t.diff(a), t.diff(a, n=2, prepend=b[:1], append=c)
    out = [y1, y2, a.addcmul(b, c), a.addcdiv(b, c), _names(y1.grad_fn),
           type(y2.grad_fn).__name__, d1, _names(d1.grad_fn), d2, t.diff(m, dim=0), m.diff(),
           t.diff(t.tensor([True, False, False, True])),
           t.addcmul(t.tensor([1, 2]), t.tensor([3, 4]), t.tensor([5, 6]), value=2)]
    (y1.sum() + (y2 * y2).sum() + (d2 * d2).sum() + t.diff(m, n=2, dim=1).pow(2).sum()
     ).backward()
    return [*out, a.grad, b.grad, c.grad, m.grad]


@requires_torch
def test_addcmul_addcdiv_diff_are_pytorchs():
    for mine, theirs in zip(_arith(tapegrad), _arith(real_torch)):
        assert str(mine).replace("tapegrad", "torch") == str(theirs)
    with pytest.raises(RuntimeError, match="Integer division with addcdiv is no longer"):
        tapegrad.addcdiv(tapegrad.tensor([1, 2]), tapegrad.tensor([3, 4]), tapegrad.tensor([5, 6]))


def test_addcmul_addcdiv_diff_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    a, b = (tapegrad.tensor(rng.normal(size=5), dtype=tapegrad.float64, requires_grad=True)
            for _ in range(2))

    def f(u, v):
        return (tapegrad.addcmul(u, v, u, value=0.7).sin().sum()
                + tapegrad.addcdiv(v, u, v * v + 1.0, value=-1.5).sum()
                + tapegrad.diff(u * v, n=2, append=v[:2]).pow(2).sum())

    assert gradcheck(f, (a, b))


def _nan_reductions(t):
    x = t.tensor([[1.0, math.nan, 3.0], [math.nan, math.nan, 2.0]], requires_grad=True)
    out = []
    for f in (lambda: t.nansum(x), lambda: x.nansum(dim=1), lambda: t.nanmean(x),
              lambda: x.nanmean(dim=0, keepdim=True), lambda: x.nansum(dim=(0, 1), keepdim=True)):
        y = f()
        out += [y, type(y.grad_fn).__name__, _names(y.grad_fn)]
        (y * 2).sum().backward()  # an all-nan column: nan gradients there, as PyTorch's
        out.append(x.grad)
        x.grad = None
    inf = t.tensor([1.0, math.inf, math.nan], requires_grad=True)
    (t.nan_to_num(inf) * t.tensor([math.inf, 1.0, 1.0])).sum().backward()
    out += [inf.grad, t.nansum(t.tensor([1, 2])), t.nansum(t.tensor([1.0, 2.0]), dtype=t.float64)]
    return out


@requires_torch
def test_nansum_nanmean_and_infinite_gradients_are_pytorchs():
    for mine, theirs in zip(_nan_reductions(tapegrad), _nan_reductions(real_torch)):
        assert str(mine).replace("tapegrad", "torch") == str(theirs)
    for t in (tapegrad, real_torch):
        with pytest.raises(RuntimeError, match="nanmean\\(\\): expected input to have floating "
                                               "point or complex dtype but got Long"):
            t.nanmean(t.tensor([1, 2]))


def test_nansum_nanmean_values_and_finite_differences():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(4, 5))
    a[1, 2] = a[3, 0] = math.nan
    t = tapegrad.tensor(a)
    np.testing.assert_allclose(t.nansum(dim=1).numpy(), np.nansum(a, axis=1), rtol=1e-15)
    np.testing.assert_allclose(tapegrad.nanmean(t, dim=0).numpy(), np.nanmean(a, axis=0),
                               rtol=1e-15)
    x = tapegrad.tensor(rng.normal(size=(3, 4)), dtype=tapegrad.float64, requires_grad=True)
    assert gradcheck(lambda v: (v.nansum(dim=0) * v.nanmean(dim=0)).sum()
                     + tapegrad.nan_to_num(v.sin() * 3.0).pow(2).sum(), (x,))
