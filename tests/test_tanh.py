"""The vectorized float64 tanh of arrays of more than ``LAZY_TANH`` elements
(``_tape.tanh_big``): within 2 ulp of the correctly rounded tanh (mpmath), the same values
recorded or not, and the gradients of PyTorch and of central differences; smaller arrays keep
libm's tanh (as lazy ones compute it) and float32 NumPy's."""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

import tapegrad
from tapegrad import _config
from tapegrad import _tape as T
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

BIG = _config.LAZY_TANH + 44


def _ulps(a, b):
    """|a - b| in units of the last place of the larger."""
    return np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))


def _tanh_big(x):
    y = np.empty_like(x)
    T.tanh_big(x, y, y)
    return y


def _inputs():
    rng = np.random.default_rng(12)
    return {
        "normal": rng.standard_normal(200_000),
        "[-20, 20]": rng.uniform(-20.0, 20.0, 200_000),
        "small": rng.uniform(-0.4, 0.4, 200_000),  # where k is 0: the series alone
        "tiny": np.concatenate([10.0 ** rng.uniform(-320, -3, 50_000),
                                -(10.0 ** rng.uniform(-320, -3, 50_000))]),
        # where 2|x| crosses a multiple of ln(2) / 2 (the reduction's k changes), and 19.1
        "edges": np.concatenate([np.nextafter(np.arange(1, 60) * np.log(2) / 4, s)
                                 for s in (np.inf, -np.inf)] + [[19.1, np.nextafter(19.1, 0),
                                                                  np.nextafter(19.1, 20)]]),
    }


@pytest.mark.parametrize("name", list(_inputs()))
def test_within_two_ulp_of_the_correctly_rounded_tanh(name):
    x = _inputs()[name]
    got = _tanh_big(x)
    # against NumPy's (itself within an ulp) everywhere, against mpmath on a sample
    assert np.max(_ulps(got, np.tanh(x))) <= 3.0
    sample = x[np.random.default_rng(1).choice(x.size, min(x.size, 1500), replace=False)]
    mpmath.mp.prec = 113
    exact = np.array([float(mpmath.tanh(mpmath.mpf(float(v)))) for v in sample])
    assert np.max(_ulps(_tanh_big(sample), exact)) <= 2.0
    assert np.all(np.abs(got) <= 1.0)
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(got[order]) >= 0.0)  # monotone, as tanh


def test_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -1e-310, 19.1, -19.2, 710.0, 1e308])
    got = _tanh_big(x)
    want = np.tanh(x)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))  # tanh(-0.0) is -0.0


def test_recorded_or_not_the_same_values_and_small_arrays_keep_libm():
    a = np.random.default_rng(2).standard_normal(BIG)
    x = tapegrad.tensor(a, requires_grad=True)
    recorded = tapegrad.tanh(x).detach().numpy()
    with tapegrad.no_grad():
        plain = tapegrad.tanh(x).numpy()
    assert np.array_equal(recorded, plain) and np.array_equal(recorded, _tanh_big(a))
    small = a[:_config.LAZY_TANH]
    libm = np.empty_like(small)
    T.tanh_into(small, libm)
    with tapegrad.no_grad():
        assert np.array_equal(tapegrad.tanh(tapegrad.tensor(small)).numpy(), libm)
    a32 = a.astype(np.float32)
    assert np.array_equal(tapegrad.tanh(tapegrad.tensor(a32)).numpy(), np.tanh(a32))


def _program(t, x, w):
    y = t.tanh(x * w + 0.25)  # recorded: the arena's copy written in the same pass
    z = t.tanh(y * 3.0 - w)
    return (z * y).sum() + t.tanh(z[::2]).sum()


@pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")
def test_gradients_match_torch():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(BIG * 2), rng.uniform(0.5, 2.0, BIG * 2)]
    grads = []
    for module in (tapegrad, real_torch):
        x, w = (module.tensor(a, dtype=module.float64, requires_grad=True) for a in arrays)
        _program(module, x, w).backward()
        grads.append((x.grad.numpy().copy(), w.grad.numpy().copy()))
    for g, h in zip(*grads):
        np.testing.assert_allclose(g, h, rtol=1e-10, atol=1e-12)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    x = tapegrad.tensor(rng.standard_normal(BIG * 2), requires_grad=True)
    w = tapegrad.tensor(rng.uniform(0.5, 2.0, BIG * 2), requires_grad=True)
    assert gradcheck(lambda a, b: _program(tapegrad, a, b), (x, w), atol=1e-6, rtol=1e-5)


def test_second_derivative_matches_torch_or_the_formula():
    a = np.random.default_rng(5).standard_normal(BIG)

    def hess_diag(module):
        x = module.tensor(a, dtype=module.float64, requires_grad=True)
        (g,) = module.autograd.grad(module.tanh(x).sum(), (x,), create_graph=True)
        g.sum().backward()
        return x.grad.numpy().copy()

    ours = hess_diag(tapegrad)
    y = np.tanh(a)
    np.testing.assert_allclose(ours, -2.0 * y * (1.0 - y * y), rtol=1e-12, atol=1e-14)
    if real_torch is not None:
        np.testing.assert_allclose(ours, hess_diag(real_torch), rtol=1e-12, atol=1e-14)
