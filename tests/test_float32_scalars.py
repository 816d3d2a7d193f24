"""0-d float32 arithmetic (PyTorch's default dtype: ``torch.tensor(1.5)``): + - * / with a
Python number or another 0-d float32 tensor runs in Python floats (``_tensor._f32_number``,
``_f32_pair``) and must give, bit for bit, the float32 value PyTorch's and NumPy's float32
arithmetic give, at every edge of float32's range: signed zeros, subnormals, the largest
finite values, overflow to inf, nan, division by zero and constants beyond float32's range.
Gradients are compared with PyTorch and with central differences."""
from __future__ import annotations

import itertools
import math
import struct
import warnings

import numpy as np
import pytest

import tapegrad

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the NumPy and finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal
F32_SUB = float(np.float32(1e-45))  # the smallest subnormal

VALUES = [0.0, -0.0, 1.0, -1.5, 1 / 3, 0.1, 3.0e38, -3.0e38, F32_MAX, -F32_MAX, F32_TINY,
          -F32_TINY, F32_SUB, 3 * F32_SUB, 1.0e-40, 1.0e20, math.inf, -math.inf, math.nan,
          16777217.0, 2.5e-8]
CONSTANTS = [0, 1, -1, 3, 0.0, -0.0, 1.0001, -2.5, 1e-3, 0.1, 1e39, -1e39, 2**40, 1e-46,
             3.5e38, math.inf, -math.inf, math.nan, 7e-39]
# (name, tapegrad/torch expression, NumPy float32 expression)
NUMBER_OPS = [
    ("x + c", lambda x, c: x + c, lambda x, c: x + c),
    ("c + x", lambda x, c: c + x, lambda x, c: c + x),
    ("x - c", lambda x, c: x - c, lambda x, c: x - c),
    ("c - x", lambda x, c: c - x, lambda x, c: c - x),
    ("x * c", lambda x, c: x * c, lambda x, c: x * c),
    ("c * x", lambda x, c: c * x, lambda x, c: c * x),
    ("x / c", lambda x, c: x / c, lambda x, c: x / c),
    ("x ** 2", lambda x, c: x ** 2, lambda x, c: x ** 2),
    ("x ** 2.0", lambda x, c: x ** 2.0, lambda x, c: x ** 2.0),
]
PAIR_OPS = [
    ("x + y", lambda x, y: x + y),
    ("x - y", lambda x, y: x - y),
    ("x * y", lambda x, y: x * y),
    ("x / y", lambda x, y: x / y),
]


def _bits(v):
    """A float32 value's bits (every nan alike), for exact comparison."""
    v = float(v)
    return "nan" if v != v else struct.pack("<f", v)


def _np32(v):
    return np.array(v, dtype=np.float32)


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name,fn,np_fn", NUMBER_OPS, ids=[o[0] for o in NUMBER_OPS])
def test_with_a_number_is_numpys_float32_result(name, fn, np_fn, requires_grad):
    """Against NumPy's float32 arithmetic (a Python number is weak: taken as float32)."""
    for v, c in itertools.product(VALUES, CONSTANTS):
        x = tapegrad.tensor(v, requires_grad=requires_grad)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # PyTorch is silent: so must tapegrad be
            out = fn(x, c)
        with np.errstate(all="ignore"):
            want = np_fn(_np32(v), c)
        assert out.dtype is tapegrad.float32 and out.shape == ()
        assert out.requires_grad == requires_grad
        assert _bits(out.item()) == _bits(want), (name, v, c, out.item(), float(want))


@pytest.mark.parametrize("requires_grad", [(False, False), (True, False), (False, True),
                                           (True, True)])
@pytest.mark.parametrize("name,fn", PAIR_OPS, ids=[o[0] for o in PAIR_OPS])
def test_of_two_tensors_is_numpys_float32_result(name, fn, requires_grad):
    for v, w in itertools.product(VALUES, VALUES):
        x = tapegrad.tensor(v, requires_grad=requires_grad[0])
        y = tapegrad.tensor(w, requires_grad=requires_grad[1])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = fn(x, y)
        with np.errstate(all="ignore"):
            want = fn(_np32(v), _np32(w))
        assert out.dtype is tapegrad.float32 and out.shape == ()
        assert _bits(out.item()) == _bits(want), (name, v, w, out.item(), float(want))


@requires_torch
@pytest.mark.parametrize("name,fn,np_fn", NUMBER_OPS, ids=[o[0] for o in NUMBER_OPS])
def test_with_a_number_is_pytorchs_value(name, fn, np_fn):
    for v, c in itertools.product(VALUES, CONSTANTS):
        out = fn(tapegrad.tensor(v, requires_grad=True), c)
        want = fn(real_torch.tensor(v, requires_grad=True), c)
        assert want.dtype == real_torch.float32
        assert _bits(out.item()) == _bits(want.item()), (name, v, c, out.item(), want.item())


@requires_torch
@pytest.mark.parametrize("name,fn", PAIR_OPS, ids=[o[0] for o in PAIR_OPS])
def test_of_two_tensors_is_pytorchs_value(name, fn):
    for v, w in itertools.product(VALUES, VALUES):
        out = fn(tapegrad.tensor(v, requires_grad=True), tapegrad.tensor(w))
        want = fn(real_torch.tensor(v, requires_grad=True), real_torch.tensor(w))
        assert _bits(out.item()) == _bits(want.item()), (name, v, w, out.item(), want.item())


def _chain(x, y, n=40):
    """Every fast form in turn: with numbers on either side, with a second tensor."""
    z = x
    for k in range(n):
        if k % 4 == 0:
            z = z * 1.0001 + y
        elif k % 4 == 1:
            z = 0.5 - z / 3.0
        elif k % 4 == 2:
            z = z * y - 0.25 + (z ** 2) * 0.01
        else:
            z = (z + 2) / (y + 1.5) * 2
    return z


def _fd(fn, args, k, eps=1e-6):
    """d fn / d args[k] by central differences in float64 (the same expression on Python
    floats): the float32 gradient must agree to float32's precision."""
    plus, minus = list(args), list(args)
    plus[k] += eps
    minus[k] -= eps
    return (fn(*plus) - fn(*minus)) / (2 * eps)


@pytest.mark.parametrize("v,w", [(0.3, 0.7), (-1.2, 0.4), (2.0, -0.9)])
def test_chain_gradients_match_finite_differences(v, w):
    x = tapegrad.tensor(v, requires_grad=True)
    y = tapegrad.tensor(w, requires_grad=True)
    out = _chain(x, y)
    assert out.dtype is tapegrad.float32 and out.grad_fn is not None
    out.backward()
    assert x.grad.dtype is tapegrad.float32 and y.grad.dtype is tapegrad.float32
    for k, t in enumerate((x, y)):
        want = _fd(_chain, [v, w], k)
        assert t.grad.item() == pytest.approx(want, rel=2e-4, abs=1e-5), (k, t.grad, want)


@requires_torch
@pytest.mark.parametrize("v,w", [(0.3, 0.7), (-1.2, 0.4), (2.0, -0.9)])
def test_chain_matches_pytorch(v, w):
    xs = [lib.tensor(v, requires_grad=True) for lib in (tapegrad, real_torch)]
    ys = [lib.tensor(w, requires_grad=True) for lib in (tapegrad, real_torch)]
    outs = [_chain(x, y) for x, y in zip(xs, ys)]
    assert outs[0].item() == pytest.approx(outs[1].item(), rel=1e-5)
    for o in outs:
        o.backward()
    for a, b in ((xs[0], xs[1]), (ys[0], ys[1])):
        assert a.grad.item() == pytest.approx(b.grad.item(), rel=1e-5)
    assert repr(outs[0]).replace("tapegrad", "torch") == repr(outs[1])


def test_no_grad_and_detached_operands_record_nothing():
    x = tapegrad.tensor(1.5, requires_grad=True)
    with tapegrad.no_grad():
        y = x * 2.0 + x
    assert not y.requires_grad and y.grad_fn is None and y.item() == 4.5
    z = x.detach() * 3.0 - tapegrad.tensor(1.0)
    assert not z.requires_grad and z.dtype is tapegrad.float32


def test_mixed_with_float64_keeps_pytorchs_promotion():
    """Only float32 with float32 (or a Python number) takes the fast path: a 0-d float64
    operand promotes to float64, as in PyTorch."""
    x = tapegrad.tensor(1.5, requires_grad=True)
    y = tapegrad.tensor(0.1, dtype=tapegrad.float64)
    out = x * y
    assert out.dtype is tapegrad.float64 and out.item() == 1.5 * 0.1
    out.backward()
    assert x.grad.dtype is tapegrad.float32 and x.grad.item() == pytest.approx(0.1)


# ---------------------------------------------------------------- elements x[k] of float32

def _det3(x):
    """det_by_minor's 3x3 determinant, as scalar code on elements x[k]."""
    return (x[0] * (x[4] * x[8] - x[5] * x[7]) - x[1] * (x[3] * x[8] - x[5] * x[6])
            + x[2] * (x[3] * x[7] - x[4] * x[6]))


def test_elements_det3_gradient_matches_finite_differences():
    a = np.random.default_rng(5).uniform(-1.0, 1.0, 9)
    x = tapegrad.tensor(a.astype(np.float32), requires_grad=True)
    out = _det3(x)
    assert out.dtype is tapegrad.float32
    assert out.grad_fn is not None and out.grad_fn.name() == "AddBackward0"
    out.backward()
    a32 = a.astype(np.float32).astype(np.float64)
    for k in range(9):
        want = _fd(lambda *v: _det3(v), list(a32), k)
        assert x.grad[k].item() == pytest.approx(want, rel=1e-5, abs=1e-6)


@requires_torch
def test_elements_det3_matches_pytorch():
    a = np.random.default_rng(6).uniform(-1.0, 1.0, 9).astype(np.float32)
    xs = [lib.tensor(a, requires_grad=True) for lib in (tapegrad, real_torch)]
    outs = [_det3(x) for x in xs]
    assert _bits(outs[0].item()) == _bits(outs[1].item())
    for o in outs:
        o.backward()
    np.testing.assert_allclose(xs[0].grad.numpy(), xs[1].grad.numpy(), rtol=1e-6, atol=1e-7)
    e = [x[3] for x in xs]
    assert repr(e[0]).replace("tapegrad", "torch") == repr(e[1])


@requires_torch
@pytest.mark.parametrize("lib_name", ["tapegrad", "torch"])
def test_element_saved_then_its_base_written_raises(lib_name):
    """An element is a view: a product that saved it fails after its base is written, as in
    PyTorch."""
    lib = tapegrad if lib_name == "tapegrad" else real_torch
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    z = x * 1.0
    e = z[1]
    y = e * e
    z.mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


@requires_torch
def test_element_written_in_place_matches_pytorch():
    outs, grads = [], []
    for lib in (tapegrad, real_torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        z = x * 1.5
        e = z[2]
        e.mul_(4.0)  # a write through the view: z[2] changes
        y = (z * z).sum() + e
        y.backward()
        outs.append(y.item())
        grads.append(x.grad.numpy().copy())
    assert outs[0] == outs[1]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


@requires_torch
def test_loss_backward_frees_the_graph_and_hooks_run_as_pytorch():
    """A 0-d float32 loss takes backward's short lane: the graph is freed after it (a second
    backward fails as PyTorch's), retain_graph keeps it, and a leaf's hook sees its gradient."""
    seen = {}
    for lib in (tapegrad, real_torch):
        x = lib.tensor(0.75, requires_grad=True)
        x.register_hook(lambda g, lib=lib: seen.setdefault(lib.__name__, []).append(
            (str(g.dtype).split(".")[-1], g.item())))
        y = (x * 3.0 - 1.0) * x
        y.backward(retain_graph=True)
        y.backward()
        assert x.grad.dtype == lib.float32
        assert x.grad.item() == pytest.approx(2 * (2 * 3.0 * 0.75 - 1.0))
        z = x * x + 2.0
        z.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            z.backward()
    assert seen["tapegrad"] == seen["torch"]


@requires_torch
def test_elements_past_the_shared_maps_and_negative_indices_match_pytorch():
    """Elements k >= 256 add their map (0, k) to the segment; negative indices count from the
    end: values, gradients and a write through the base after a read, against PyTorch."""
    a = np.random.default_rng(8).uniform(-2.0, 2.0, 300).astype(np.float32)
    grads = []
    for lib in (tapegrad, real_torch):
        x = lib.tensor(a, requires_grad=True)
        total = x[0] * 0.0
        for k in (280, 5, -1, 299, 256, 255, -300, 280):
            total = total + x[k] * x[(k * 7) % 300] - 0.5
        total.backward()
        grads.append(x.grad.numpy().copy())
        assert total.dtype == lib.float32
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6, atol=1e-6)
