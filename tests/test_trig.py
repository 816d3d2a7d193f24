"""The vectorized float64 sin and cos (``_tape.sin_cos``, ``_tape._sin_cos``): within an ulp
of libm's (NumPy's) everywhere, and the eager forward, the reverse sweep and a trace's replay
use them on arrays, falling back to libm past ``TRIG_LIMIT`` and on inf and nan."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
from tapegrad import _tape as T

try:
    import torch
except ImportError:  # PyTorch is the oracle where installed
    torch = None


def _ulps(a, b):
    """|a - b| in units of the last place of the larger (both finite)."""
    return np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))


def _inputs():
    rng = np.random.default_rng(11)
    k = np.arange(-70_000, 70_000, 7)
    return {
        "[-4, 4]": rng.uniform(-4.0, 4.0, 200_000),
        "normal": rng.standard_normal(200_000),
        "[-1e5, 1e5]": rng.uniform(-1e5, 1e5, 200_000),
        # the reduction's hard cases: doubles next to multiples of pi/2
        "near k*pi/2": np.concatenate([np.nextafter(k * (np.pi / 2), np.inf),
                                       np.nextafter(k * (np.pi / 2), -np.inf),
                                       k * (np.pi / 2)]),
        "tiny": np.concatenate([10.0 ** rng.uniform(-320, -2, 50_000),
                                -(10.0 ** rng.uniform(-320, -2, 50_000)), [0.0, -0.0, 5e-324]]),
        "past the limit": np.concatenate([rng.uniform(-1e12, 1e12, 1000),
                                          [T.TRIG_LIMIT, -T.TRIG_LIMIT,
                                           np.nextafter(T.TRIG_LIMIT, np.inf), 1e300, -1e308]]),
    }


@pytest.mark.parametrize("cos", [False, True], ids=["sin", "cos"])
@pytest.mark.parametrize("name", list(_inputs()))
def test_within_an_ulp_of_libm(name, cos):
    x = _inputs()[name]
    got = np.empty_like(x)
    T.sin_cos(x, got, cos)
    want = np.cos(x) if cos else np.sin(x)
    assert np.max(_ulps(got, want)) <= 1.0
    zero = want == 0.0
    assert np.array_equal(np.signbit(got[zero]), np.signbit(want[zero]))  # sin(-0.0) is -0.0
    # most results are the correctly rounded ones, and |sin|, |cos| never pass 1
    assert np.mean(got == want) > 0.9
    assert np.all(np.abs(got) <= 1.0)


def test_inf_and_nan():
    x = np.array([np.inf, -np.inf, np.nan, 0.5])
    for cos in (False, True):
        got = np.empty_like(x)
        T.sin_cos(x, got, cos)
        assert np.isnan(got[:3]).all() and got[3] == (np.cos(0.5) if cos else np.sin(0.5))


def _values(n, extra=()):
    rng = np.random.default_rng(n)
    return np.concatenate([rng.uniform(-7.0, 7.0, n - len(extra)), extra])


@pytest.mark.parametrize("extra", [(), (3e5, -1e9)], ids=["in range", "past the limit"])
@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_eager_and_trace_gradients(fn, extra):
    """Arrays long enough for the vectorized forward (64+ elements), through the eager sweep
    and a trace: against libm's derivative, PyTorch and finite differences."""
    x0 = _values(300, extra)
    w = np.linspace(-1.0, 2.0, x0.size)
    f = {"sin": np.sin, "cos": np.cos}[fn]
    df = {"sin": np.cos, "cos": lambda v: -np.sin(v)}[fn]
    x = tapegrad.tensor(x0, requires_grad=True)
    y = getattr(tapegrad, fn)(x)
    assert np.max(_ulps(y.detach().numpy(), f(x0))) <= 1.0
    (y * tapegrad.tensor(w)).sum().backward()
    g = x.grad.numpy()
    np.testing.assert_allclose(g, w * df(x0), rtol=3e-16 * 4, atol=1e-300)
    tr = tapegrad.trace(lambda v: (getattr(tapegrad, fn)(v) * tapegrad.tensor(w)).sum(), x0)
    x1 = x0 * 0.97
    np.testing.assert_allclose(tr.gradient(x1), w * df(x1), rtol=3e-16 * 4, atol=1e-300)
    np.testing.assert_allclose(tr(x1), np.sum(f(x1) * w), rtol=1e-13)
    eps = 1e-6
    k = 17
    e = np.zeros_like(x0)
    e[k] = eps
    fd = (np.sum(f(x0 + e) * w) - np.sum(f(x0 - e) * w)) / (2 * eps)
    np.testing.assert_allclose(g[k], fd, rtol=1e-7, atol=1e-9)
    if torch is not None:
        xt = torch.tensor(x0, requires_grad=True)
        (getattr(torch, fn)(xt) * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(y.detach().numpy(), getattr(torch, fn)(
            torch.tensor(x0)).numpy(), rtol=1e-15, atol=1e-300)


def test_float32_and_small_arrays_keep_numpy():
    """float32 (NumPy's is already vectorized) and arrays under 64 elements use NumPy."""
    x32 = np.linspace(-3, 3, 100, dtype=np.float32)
    assert np.array_equal(tapegrad.sin(tapegrad.tensor(x32)).numpy(), np.sin(x32))
    small = np.linspace(-3, 3, 10)
    assert np.array_equal(tapegrad.cos(tapegrad.tensor(small)).numpy(), np.cos(small))


def _long(n=400):
    """Values for the recorded sin and cos of 128+ elements (SINC, COSC), some past the limit,
    infinite, nan, tiny and signed zeros."""
    x = _values(n, (3e5, -1e9, np.inf, np.nan, 1e-12, -0.0, 0.0))
    return x, np.linspace(-1.0, 2.0, x.size)


@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_saved_derivative_is_the_sweeps(fn):
    """A recorded sin/cos of 128+ elements saves its derivative in the forward (T.SINC,
    T.COSC); in range, the gradient is bit for bit the one a trace's sweep computes (T.SIN,
    T.COS: its vectorized loop runs only when every element is in range, libm's otherwise)."""
    x0, w = _values(400), np.linspace(-1.0, 2.0, 400)
    x = tapegrad.tensor(x0, requires_grad=True)
    (getattr(tapegrad, fn)(x) * tapegrad.tensor(w)).sum().backward()
    tr = tapegrad.trace(lambda v: (getattr(tapegrad, fn)(v) * tapegrad.tensor(w)).sum(), x0)
    assert np.array_equal(x.grad.numpy(), tr.gradient(x0))
    x0, w = _long()
    x = tapegrad.tensor(x0, requires_grad=True)
    y = getattr(tapegrad, fn)(x)
    seg = y._seg
    seg.flush()
    assert seg.cols[0][y._rec] == (T.SINC if fn == "sin" else T.COSC)
    assert y.grad_fn.name() == ("SinBackward0" if fn == "sin" else "CosBackward0")
    (y * tapegrad.tensor(w)).sum().backward()
    df = {"sin": np.cos, "cos": lambda v: -np.sin(v)}[fn]
    ok = np.isfinite(x0)
    np.testing.assert_allclose(x.grad.numpy()[ok], w[ok] * df(x0[ok]), rtol=3e-16 * 4,
                               atol=1e-300)
    assert np.isnan(x.grad.numpy()[~ok]).all()


@pytest.mark.parametrize("fn", ["sin", "cos"])
@pytest.mark.parametrize("leaf", [True, False], ids=["leaf", "non-leaf"])
def test_write_through_data_reaches_the_saved_derivative(fn, leaf):
    """sin saves its input in PyTorch: a write through .data before backward changes the
    gradient; the derivative saved in the forward is computed again."""
    x0, w = _long(200)
    x0 = x0[np.isfinite(x0)]
    w = w[:x0.size]
    x = tapegrad.tensor(x0, requires_grad=True)
    h = x if leaf else x * 1.0
    y = (getattr(tapegrad, fn)(h) * tapegrad.tensor(w)).sum()
    h.data.add_(0.5)
    y.backward()
    df = {"sin": np.cos, "cos": lambda v: -np.sin(v)}[fn]
    np.testing.assert_allclose(x.grad.numpy(), w * df(x0 + 0.5), rtol=1e-14, atol=1e-300)
    if torch is not None:
        xt = torch.tensor(x0, requires_grad=True)
        ht = xt if leaf else xt * 1.0
        yt = (getattr(torch, fn)(ht) * torch.tensor(w)).sum()
        ht.data.add_(0.5)
        yt.backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_input_written_in_place_after_is_an_error(fn):
    x = tapegrad.tensor(_long()[0][:300], requires_grad=True)
    h = x * 2.0
    y = getattr(tapegrad, fn)(h).sum()
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@pytest.mark.parametrize("fn", ["sin", "cos"])
def test_second_derivative(fn):
    x0 = _values(300)
    x = tapegrad.tensor(x0, requires_grad=True)
    g, = tapegrad.autograd.grad(getattr(tapegrad, fn)(x).sum(), x, create_graph=True)
    (g * g).sum().backward()
    d1, d2 = {"sin": (np.cos, lambda v: -np.sin(v)),
              "cos": (lambda v: -np.sin(v), lambda v: -np.cos(v))}[fn]  # d1 and its derivative
    np.testing.assert_allclose(g.detach().numpy(), d1(x0), rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(x.grad.numpy(), 2 * d1(x0) * d2(x0), rtol=1e-14, atol=1e-300)
    k, eps = 5, 1e-6
    e = np.zeros_like(x0)
    e[k] = eps
    fd = (np.sum(d1(x0 + e) ** 2) - np.sum(d1(x0 - e) ** 2)) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy()[k], fd, rtol=1e-7, atol=1e-9)
    if torch is not None:
        xt = torch.tensor(x0, requires_grad=True)
        gt, = torch.autograd.grad(getattr(torch, fn)(xt).sum(), xt, create_graph=True)
        (gt * gt).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-13, atol=1e-300)
