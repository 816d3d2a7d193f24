"""sort, argsort and topk (tapegrad/_library.py): values, indices, nodes and gradients against
PyTorch when installed, and against NumPy's stable sort and central differences always."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the NumPy and finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")


def _data(seed, shape, ties=True, special=True):
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, shape).astype(np.float64) if ties else rng.normal(size=shape)
    if special and a.size >= 4:
        a.flat[:4] = [math.nan, math.inf, -math.inf, -0.0]
    return a


@requires_torch
@pytest.mark.parametrize("shape, dim", [((7,), 0), ((4, 6), 1), ((4, 6), 0), ((3, 4, 5), -2),
                                        ((), 0)])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_torchs_stable_sort(shape, dim, descending):
    a = _data(1, shape)
    mine = tapegrad.sort(tapegrad.tensor(a), dim=dim, descending=descending)
    theirs = real_torch.sort(real_torch.tensor(a), dim=dim, descending=descending, stable=True)
    np.testing.assert_array_equal(mine.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(mine.indices.numpy(), theirs.indices.numpy())
    assert mine.indices.dtype == tapegrad.int64 and mine.indices.shape == theirs.indices.shape
    got = tapegrad.tensor(a).argsort(dim=dim, descending=descending)
    np.testing.assert_array_equal(got.numpy(), theirs.indices.numpy())


def test_sort_is_numpys_stable_order_with_nan_largest():
    a = _data(2, (5, 8))
    s = tapegrad.tensor(a).sort(dim=1)
    np.testing.assert_array_equal(s.indices.numpy(), np.argsort(a, axis=1, kind="stable"))
    d = tapegrad.tensor(a).sort(dim=1, descending=True)
    assert np.isnan(d.values.numpy()[0, 0])  # nan first when descending, last when ascending
    assert np.isnan(s.values.numpy()[0, -1])
    for row, idx in zip(a, d.indices.numpy()):  # ties keep their order
        v = row[idx]
        for i in range(len(v) - 1):
            if v[i] == v[i + 1]:
                assert idx[i] < idx[i + 1]


@requires_torch
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("shape, dim, k", [((9,), 0, 3), ((4, 6), 1, 6), ((4, 6), 0, 2),
                                           ((3, 4, 5), -1, 0)])
def test_topk_matches_torch(largest, shape, dim, k):
    a = _data(3, shape, ties=False, special=False)
    mine = tapegrad.topk(tapegrad.tensor(a), k, dim=dim, largest=largest)
    theirs = real_torch.topk(real_torch.tensor(a), k, dim=dim, largest=largest)
    np.testing.assert_array_equal(mine.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(mine.indices.numpy(), theirs.indices.numpy())


@requires_torch
def test_nodes_and_gradients_match_torch():
    a = _data(4, (3, 5), ties=False, special=False)
    w = np.arange(15.0).reshape(3, 5)
    res = []
    for t in (tapegrad, real_torch):
        x = t.tensor(a, dtype=t.float64, requires_grad=True)
        s = x.sort(dim=1, descending=True)
        k = t.topk(x * 2.0, 2, dim=0)
        names = [type(s.values.grad_fn).__name__, type(k.values.grad_fn).__name__,
                 [type(f).__name__ for f, _ in s.values.grad_fn.next_functions],
                 s.indices.requires_grad, s.indices.grad_fn is None]
        ((s.values * t.tensor(w, dtype=t.float64)).sum() + k.values.pow(2).sum()).backward()
        res.append((names, x.grad.tolist()))
    assert res[0] == res[1]


def test_gradients_match_finite_differences():
    x = tapegrad.tensor(_data(5, (4, 5), ties=False, special=False), dtype=tapegrad.float64,
                        requires_grad=True)
    w = tapegrad.tensor(np.arange(20.0).reshape(4, 5), dtype=tapegrad.float64)
    assert gradcheck(lambda v: (v.sort(dim=1).values * w).sum()
                     + v.topk(3, dim=0, largest=False).values.sin().sum(), (x,))


def test_errors_and_traces():
    x = tapegrad.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="selected index k out of range"):
        x.topk(4)
    with pytest.raises(IndexError):
        x.sort(dim=1)
    with pytest.raises(tapegrad.TraceError, match=r"sort\(\)"):
        tapegrad.trace(lambda v: v.sort().values.sum(), np.array([2.0, 1.0]))
    with pytest.raises(tapegrad.TraceError, match=r"topk\(\)"):
        tapegrad.trace(lambda v: v.topk(1).values.sum(), np.array([2.0, 1.0]))
