"""Value tests, logical ops and the ``new_*`` constructors (tapegrad/_predicates.py and the
Tensor methods), against PyTorch when installed and against NumPy always."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the NumPy checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")

VALUES = [1.0, -2.5, 0.0, -0.0, math.nan, math.inf, -math.inf, 1e-300, 3.0]


def _forms(t):
    """(name, f(t) -> result) of every function and method form on float, int and bool
    inputs, 0-d and 2-d."""
    f64 = t.tensor(VALUES, dtype=t.float64)
    f32 = t.tensor(VALUES, dtype=t.float32)
    near = t.tensor([1.0 + 1e-6, -2.5, 1e-9, 0.0, math.nan, math.inf, math.inf, 0.0, 3.1],
                    dtype=t.float64)
    ints = t.tensor([[3, 0], [-2, 7]])
    bools = t.tensor([[True, False], [False, True]])
    zero_d = t.tensor(math.nan, dtype=t.float64)
    return [
        ("isnan", lambda: t.isnan(f64)), ("isinf", lambda: t.isinf(f32)),
        ("isfinite", lambda: t.isfinite(f64)), ("isnan int", lambda: t.isnan(ints)),
        ("isfinite int", lambda: ints.isfinite()), ("isinf bool", lambda: bools.isinf()),
        ("isnan 0-d", lambda: zero_d.isnan()), ("isfinite 0-d", lambda: t.isfinite(zero_d)),
        ("isclose", lambda: t.isclose(f64, near)),
        ("isclose nan", lambda: f64.isclose(near, equal_nan=True)),
        ("isclose tol", lambda: t.isclose(f64, near, rtol=0.1, atol=1e-3)),
        ("isclose int", lambda: t.isclose(ints, ints + 1, atol=1)),
        ("allclose", lambda: t.allclose(f64[:4], near[:4])),
        ("allclose loose", lambda: f64[:4].allclose(near[:4], rtol=1e-3, atol=1e-6)),
        ("allclose nan", lambda: t.allclose(f64, f64, equal_nan=True)),
        ("logical_and", lambda: t.logical_and(f64, near)),
        ("logical_or", lambda: ints.logical_or(bools)),
        ("logical_xor", lambda: t.logical_xor(ints, ints - 3)),
        ("logical_not", lambda: f64.logical_not()),
        ("logical_not int", lambda: t.logical_not(ints)),
        ("new_zeros", lambda: f32.new_zeros(2, 3)), ("new_ones", lambda: ints.new_ones((2,))),
        ("new_full", lambda: f64.new_full((2, 2), 7)),
        ("new_zeros dtype", lambda: f32.new_zeros((2,), dtype=t.int64)),
        ("new_tensor", lambda: f32.new_tensor([1, 2])),
        ("new_tensor of a tensor", lambda: ints.new_tensor(t.tensor([1.5, -2.5]))),
        ("new_empty shape", lambda: f64.new_empty(3, 1).shape),
        ("type_as", lambda: ints.type_as(f32)),
    ]


def _plain(r):
    if isinstance(r, bool) or isinstance(r, tuple):
        return r
    return (str(r.dtype).split(".")[-1], tuple(r.shape), r.requires_grad,
            np.asarray(r.tolist(), dtype=object).tolist())


@requires_torch
@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")  # (PyTorch's new_tensor)
def test_every_form_is_pytorchs():
    mine = [(n, _plain(f())) for n, f in _forms(tapegrad)]
    theirs = [(n, _plain(f())) for n, f in _forms(real_torch)]
    for (n, a), (_, b) in zip(mine, theirs):
        assert repr(a) == repr(b), n


def test_values_are_numpys():
    a = np.array(VALUES)
    b = a + np.array([1e-6, 0, 1e-9, 0, 0, 0, 0, 0, 0.1])
    with np.errstate(all="ignore"):
        assert tapegrad.isnan(tapegrad.tensor(a)).tolist() == np.isnan(a).tolist()
        assert tapegrad.isinf(tapegrad.tensor(a)).tolist() == np.isinf(a).tolist()
        assert tapegrad.isfinite(tapegrad.tensor(a)).tolist() == np.isfinite(a).tolist()
        got = tapegrad.isclose(tapegrad.tensor(a), tapegrad.tensor(b), rtol=1e-5, atol=1e-8)
        assert got.tolist() == np.isclose(a, b, rtol=1e-5, atol=1e-8).tolist()
    assert tapegrad.allclose(tapegrad.tensor([1.0, 2.0]), tapegrad.tensor([1.0, 2.0 + 1e-6]))
    assert not tapegrad.allclose(tapegrad.tensor([1.0, 2.0]), tapegrad.tensor([1.0, 2.1]))
    assert tapegrad.logical_xor(tapegrad.tensor([0.0, 2.0, 0.0]),
                                tapegrad.tensor([1, 3, 0])).tolist() == [True, False, False]


@requires_torch
def test_errors_are_pytorchs():
    for t in (tapegrad, real_torch):
        with pytest.raises(RuntimeError, match="^Float did not match Double$"):
            t.isclose(t.tensor([1.0]), t.tensor([1.0], dtype=t.float64))
        with pytest.raises(RuntimeError, match="^Double did not match Long$"):
            t.allclose(t.tensor([1.0], dtype=t.float64), t.tensor([1]))
        with pytest.raises(TypeError, match=r"logical_xor\(\): argument 'other' \(position 2\) "
                                            "must be Tensor, not int"):
            t.logical_xor(t.tensor([1.0]), 1)
        with pytest.raises(TypeError, match=r"isclose\(\): argument 'other' \(position 2\) "
                                            "must be Tensor, not float"):
            t.isclose(t.tensor([1.0]), 1.0)


def test_results_carry_no_gradient_and_traces_refuse_them():
    x = tapegrad.tensor([1.0, math.nan], dtype=tapegrad.float64, requires_grad=True)
    for r in (x.isnan(), tapegrad.isclose(x, x), x.logical_not(), x.new_zeros(2)):
        assert not r.requires_grad and r.grad_fn is None
    assert x.new_zeros(2, requires_grad=True).requires_grad
    with pytest.raises(tapegrad.TraceError, match="isnan"):
        tapegrad.trace(lambda v: (v * v.isnan()).sum(), np.array([1.0, 2.0]))
