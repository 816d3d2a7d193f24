"""float32 arrays (PyTorch's default dtype: ``torch.randn(16)``, a float32 model's weights):
+ - * of two float32 arrays (of one shape or broadcast), + - * / with a Python number and
the elementwise functions take short paths (``_tensor._binary_f64`` with float32,
``_f32_const``, ``_unary``'s float32 branch, ``relu_into`` over float32) that must give NumPy's
float32 values bit for bit, record what the general path records, and stay silent where
PyTorch is.  Gradients are compared with PyTorch and with central differences."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tapegrad
from tapegrad.testing import numerical_jacobian

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the NumPy and finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).tiny)
# float32 edge values, one array: signed zeros, subnormals, the largest finite, inf, nan
EDGES = np.array([0.0, -0.0, 1.0, -1.5, 1 / 3, 0.1, 3.0e38, -3.0e38, F32_MAX, -F32_MAX,
                  F32_TINY, -F32_TINY, 1e-45, 3e-45, 1e-40, 1e20, math.inf, -math.inf,
                  math.nan, 16777217.0, 2.5e-8, -7.25], dtype=np.float32)
CONSTANTS = [0, 1, -1, 3, 2**24, -(2**24), 2**24 + 1, 2**40, 0.0, -0.0, 1.0001, -2.5, 1e-3,
             0.1, 1e39, -1e39, 1e-46, F32_MAX, 3.5e38, math.inf, -math.inf, math.nan, 7e-39]
NUMBER_OPS = [
    ("x + c", lambda x, c: x + c),
    ("c + x", lambda x, c: c + x),
    ("x - c", lambda x, c: x - c),
    ("c - x", lambda x, c: c - x),
    ("x * c", lambda x, c: x * c),
    ("c * x", lambda x, c: c * x),
    ("x / c", lambda x, c: x / c),
]
PAIR_OPS = [
    ("x + y", lambda x, y: x + y),
    ("x - y", lambda x, y: x - y),
    ("x * y", lambda x, y: x * y),
    ("x / y", lambda x, y: x / y),
]
# (name, tapegrad/torch function name, NumPy float32 function)
UNARY = [
    ("tanh", np.tanh), ("sin", np.sin), ("cos", np.cos), ("exp", np.exp), ("log", np.log),
    ("sqrt", np.sqrt), ("abs", np.abs), ("neg", np.negative), ("sigmoid", None),
    ("relu", None), ("square", np.square), ("reciprocal", np.reciprocal), ("expm1", np.expm1),
    ("log1p", np.log1p),
]


def _same_bits(got, want):
    """float32 arrays equal bit for bit (every nan alike)."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.dtype == np.float32 and want.dtype == np.float32
    assert got.shape == want.shape
    gn, wn = np.isnan(got), np.isnan(want)
    assert np.array_equal(gn, wn), (got, want)
    assert np.array_equal(got[~gn].view(np.uint32), want[~wn].view(np.uint32)), (got, want)


def _silent(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch is silent: so must tapegrad be
        return fn(*args)


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name,fn", NUMBER_OPS, ids=[o[0] for o in NUMBER_OPS])
def test_with_a_number_is_numpys_float32_result(name, fn, requires_grad):
    """Against NumPy's float32 arithmetic (a Python number is weak: taken as float32), for
    constants inside float32's range (the short path) and beyond it (the general path)."""
    for c in CONSTANTS:
        x = tapegrad.tensor(EDGES, requires_grad=requires_grad)
        out = _silent(fn, x, c)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = fn(EDGES.copy(), c)
        assert out.dtype is tapegrad.float32 and out.shape == EDGES.shape
        assert out.requires_grad == requires_grad
        _same_bits(out.detach().numpy(), want)


@requires_torch
@pytest.mark.parametrize("name,fn", NUMBER_OPS, ids=[o[0] for o in NUMBER_OPS])
def test_with_a_number_is_pytorchs_float32_result(name, fn):
    for c in CONSTANTS:
        got = _silent(fn, tapegrad.tensor(EDGES, requires_grad=True), c)
        want = fn(real_torch.tensor(EDGES, requires_grad=True), c)
        _same_bits(got.detach().numpy(), want.detach().numpy())


@pytest.mark.parametrize("requires_grad", [False, True])
def test_square_is_numpys_float32_power(requires_grad):
    for two in (2, 2.0):
        out = _silent(pow, tapegrad.tensor(EDGES, requires_grad=requires_grad), two)
        with np.errstate(all="ignore"):
            _same_bits(out.detach().numpy(), np.power(EDGES, np.float32(2.0)))
        if real_torch is not None:
            _same_bits(out.detach().numpy(), (real_torch.tensor(EDGES) ** two).numpy())


# pairs of shapes: equal, a bias broadcast over a batch, an outer broadcast, one element
SHAPES = [((22,), (22,)), ((3, 22), (22,)), ((22,), (3, 22)), ((22, 1), (1, 22)),
          ((1,), (1,)), ((4, 1), (5,)), ((2, 3, 22), (3, 1))]


def _operands(sa, sb, seed=0):
    """Arrays of the shapes, their values drawn from EDGES (every pair of edges meets)."""
    rng = np.random.default_rng(seed)
    a = rng.choice(EDGES, size=sa).astype(np.float32)
    b = rng.choice(EDGES, size=sb).astype(np.float32)
    return a, b


@pytest.mark.parametrize("requires_grad", [(False, False), (True, False), (False, True),
                                           (True, True)])
@pytest.mark.parametrize("shapes", SHAPES, ids=[f"{a}{b}" for a, b in SHAPES])
@pytest.mark.parametrize("name,fn", PAIR_OPS, ids=[o[0] for o in PAIR_OPS])
def test_pair_is_numpys_float32_result(name, fn, shapes, requires_grad):
    for seed in range(4):
        a, b = _operands(*shapes, seed)
        x = tapegrad.tensor(a, requires_grad=requires_grad[0])
        y = tapegrad.tensor(b, requires_grad=requires_grad[1])
        out = _silent(fn, x, y)
        with np.errstate(all="ignore"):
            want = fn(a, b)
        assert out.dtype is tapegrad.float32
        assert out.requires_grad == (requires_grad[0] or requires_grad[1])
        _same_bits(out.detach().numpy(), want)


@requires_torch
@pytest.mark.parametrize("shapes", SHAPES, ids=[f"{a}{b}" for a, b in SHAPES])
@pytest.mark.parametrize("name,fn", PAIR_OPS, ids=[o[0] for o in PAIR_OPS])
def test_pair_is_pytorchs_float32_result(name, fn, shapes):
    for seed in range(4):
        a, b = _operands(*shapes, seed)
        got = fn(tapegrad.tensor(a, requires_grad=True), tapegrad.tensor(b))
        want = fn(real_torch.tensor(a, requires_grad=True), real_torch.tensor(b))
        _same_bits(got.detach().numpy(), want.detach().numpy())


def test_shapes_that_do_not_broadcast_raise_pytorchs_error():
    x = tapegrad.ones(3, requires_grad=True)
    y = tapegrad.ones(4)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of "
                                           r"tensor b \(4\) at non-singleton dimension 0"):
        x + y


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name,np_fn", UNARY, ids=[u[0] for u in UNARY])
def test_unary_is_numpys_float32_function(name, np_fn, requires_grad):
    """The float32 functions are NumPy's, as on the general path (PyTorch's own float32
    transcendental functions differ from NumPy's in the last bits: compared below)."""
    x = tapegrad.tensor(EDGES, requires_grad=requires_grad)
    out = _silent(getattr(tapegrad, name), x)
    assert out.dtype is tapegrad.float32 and out.requires_grad == requires_grad
    if np_fn is not None:
        with np.errstate(all="ignore"):
            _same_bits(out.detach().numpy(), np_fn(EDGES))


@requires_torch
@pytest.mark.parametrize("name", [u[0] for u in UNARY])
def test_unary_is_close_to_pytorchs(name):
    got = getattr(tapegrad, name)(tapegrad.tensor(EDGES)).numpy()
    want = getattr(real_torch, name)(real_torch.tensor(EDGES)).numpy()
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=4e-7, atol=1e-44)  # (a few ulp)


@requires_torch
def test_relu_is_pytorchs_bit_for_bit():
    """nan and -0.0 stay, -inf becomes 0 (relu_into over float32 as over float64)."""
    for shape in ((22,), (2, 11), (1,)):
        a = np.resize(EDGES, shape)
        got = tapegrad.relu(tapegrad.tensor(a, requires_grad=True))
        want = real_torch.relu(real_torch.tensor(a))
        _same_bits(got.detach().numpy(), want.numpy())


# ---------------------------------------------------------------- gradients

_V16 = np.random.default_rng(16).uniform(-1.0, 1.0, 16)


def _vec_chain(T, x, w):
    """Every short path: + - * / of arrays and numbers, tanh, sin, relu, a broadcast."""
    y = x
    for _ in range(12):
        y = T.tanh(y * x + 0.5)
        y = T.sin(y) - x / 3.0
        y = 2.0 * y - (w * y + 1.25) * 0.5
        y = T.relu(y + 0.1) + 1.0 - y
    return ((y.reshape(4, 4) + x[:4]) ** 2).sum()


def _chain_grads(T, dt, x0, w0):
    x = T.tensor(x0, dtype=dt, requires_grad=True)
    w = T.tensor(w0, dtype=dt, requires_grad=True)
    _vec_chain(T, x, w).backward()
    return x.grad.numpy(), w.grad.numpy()


def test_vector_chain_gradient_matches_central_differences():
    w0 = _V16[::-1].copy()
    gx, gw = _chain_grads(tapegrad, tapegrad.float32, _V16, w0)
    assert gx.dtype == gw.dtype == np.float32

    jx, jw = numerical_jacobian(lambda x, w: _vec_chain(tapegrad, x, w),  # (in float64)
                                (tapegrad.tensor(_V16), tapegrad.tensor(w0)))
    np.testing.assert_allclose(gx, jx.reshape(gx.shape), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(gw, jw.reshape(gw.shape), rtol=2e-3, atol=2e-3)


@requires_torch
def test_vector_chain_gradient_matches_pytorch():
    w0 = _V16[::-1].copy()
    got = _chain_grads(tapegrad, tapegrad.float32, _V16, w0)
    want = _chain_grads(real_torch, real_torch.float32, _V16, w0)
    for g, h in zip(got, want):
        assert g.dtype == h.dtype == np.float32
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-5)


_RNG = np.random.default_rng(7)
_MLP = [_RNG.standard_normal(s) / 4 for s in ((6, 8), (8,), (8, 3), (3,))]
_XY = (_RNG.standard_normal((5, 6)), _RNG.standard_normal((5, 3)))


def _mlp(T, ps, x, y):
    w1, b1, w2, b2 = ps
    h = T.relu(x @ w1 + b1)
    return ((T.tanh(h @ w2 + b2) - y) ** 2).mean()


def _mlp_grads(T, dt, params):
    ps = [T.tensor(p, dtype=dt, requires_grad=True) for p in params]
    x, y = (T.tensor(a, dtype=dt) for a in _XY)
    _mlp(T, ps, x, y).backward()
    return [p.grad.numpy() for p in ps]


def test_mlp_gradient_matches_central_differences():
    got = _mlp_grads(tapegrad, tapegrad.float32, _MLP)
    xy = [tapegrad.tensor(a) for a in _XY]
    want = numerical_jacobian(lambda *ps: _mlp(tapegrad, ps, *xy),  # (in float64)
                              [tapegrad.tensor(p) for p in _MLP])
    for g, j in zip(got, want):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, j.reshape(g.shape), rtol=2e-3, atol=2e-4)


@requires_torch
def test_mlp_gradient_matches_pytorch():
    got = _mlp_grads(tapegrad, tapegrad.float32, _MLP)
    want = _mlp_grads(real_torch, real_torch.float32, _MLP)
    for g, h in zip(got, want):
        assert g.dtype == h.dtype == np.float32
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-6)


@requires_torch
def test_one_element_arrays_keep_their_shape_and_gradient():
    """Shape (1,): a one-element result is recorded as a scalar but stays a 1-d array."""
    def run(T):
        x = T.tensor([0.75], requires_grad=True)
        y = T.tensor([-2.0], requires_grad=True)
        z = T.tanh(x * y + 0.5) / 3.0 - x
        assert z.shape == (1,) and z.dtype is T.float32
        z.backward(T.ones(1))
        return z.detach().numpy(), x.grad.numpy(), y.grad.numpy()
    for g, h in zip(run(tapegrad), run(real_torch)):
        np.testing.assert_allclose(g, h, rtol=1e-6)
        assert g.dtype == np.float32 and g.shape == (1,)


@requires_torch
def test_large_arrays_gradient_matches_pytorch():
    """20 000 elements: results not read by their backward are left uncopied (Segment.defer)."""
    a = np.random.default_rng(3).uniform(-2.0, 2.0, 20000).astype(np.float32)

    def run(T):
        x = T.tensor(a, requires_grad=True)
        b = x * 2.0 + x
        c = T.sin(b) * x - 1.5
        T.relu(c).sum().backward()
        return x.grad.numpy()
    np.testing.assert_allclose(run(tapegrad), run(real_torch), rtol=1e-5, atol=1e-6)


@requires_torch
def test_writing_a_saved_float32_value_raises_as_pytorch():
    msgs = []
    for T in (tapegrad, real_torch):
        x = T.tensor([0.5, 1.5], requires_grad=True)
        a = x * 2.0
        b = a * a  # saves a
        a.add_(1.0)
        with pytest.raises(RuntimeError) as err:
            b.sum().backward()
        msgs.append(str(err.value).split(":")[0])
    assert msgs[0] == msgs[1]


@requires_torch
@pytest.mark.parametrize("other", ["float64", "int64", "number"])
def test_mixed_dtypes_promote_as_pytorch(other):
    def run(T):
        x = T.tensor([0.5, -1.25, 3.0], requires_grad=True)
        y = 3 if other == "number" else T.tensor([2, -1, 4], dtype=getattr(T, other))
        z = x * y + x - y
        z.sum().backward()
        return z.dtype, z.detach().numpy(), x.grad.numpy()
    (dt, v, g), (tdt, tv, tg) = run(tapegrad), run(real_torch)
    assert str(dt).split(".")[-1] == str(tdt).split(".")[-1]
    np.testing.assert_array_equal(v, tv)
    np.testing.assert_array_equal(g, tg)


@requires_torch
def test_views_and_non_contiguous_operands_match_pytorch():
    """Transposed, strided and sliced float32 operands (views of a leaf), through every
    short path, and an in-place op on a float32 view: values and gradients as PyTorch's."""
    a = np.random.default_rng(5).uniform(-2.0, 2.0, (6, 8)).astype(np.float32)

    def run(T):
        x = T.tensor(a, requires_grad=True)
        t = x.t()  # (8, 6), not C-contiguous
        s = x[:, ::2]  # (6, 4), strided
        y = T.tanh(t * 1.5 - 0.25) @ (s + x[:, 1::2]) / 3.0
        z = T.relu(y) * y + 2.0 - T.sin(t[:4, :4] ** 2).sum()
        w = z * 1.0
        w[1:3] *= 0.5  # (an in-place op on a view of a non-leaf)
        w.sum().backward()
        return z.detach().numpy(), w.detach().numpy(), x.grad.numpy()
    for g, h in zip(run(tapegrad), run(real_torch)):
        assert g.dtype == h.dtype == np.float32 and g.shape == h.shape
        np.testing.assert_allclose(g, h, rtol=2e-5, atol=2e-5)
