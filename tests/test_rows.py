"""A float64 matrix and a vector as long as its rows (a bias and a batch) under + - *: one
compiled pass (_tape.rows_into) computes the result and the arena's copy.  Its values must be
NumPy's bit for bit, its gradients PyTorch's and the central differences', and everything
outside its reach (other shapes, dtypes, layouts, sizes) must take the other paths."""
from __future__ import annotations

import operator
import warnings

import numpy as np
import pytest

import tapegrad
from tapegrad import _config, _tape
from tapegrad.testing import numerical_jacobian

try:
    import torch as real_torch
except ImportError:  # pragma: no cover
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
# the edge values NumPy and the kernel must agree on bit for bit
EDGES = np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, 1e308, -1e308, 5e-324,
                  2.2250738585072014e-308, 1e-300, 3.0, 0.1])


def _taken(rows, cols):
    """How many compiled passes a (rows, cols) matrix and its bias make: one from 256
    elements up to the deferral size (TAPEGRAD_DEFER_MIN=2, a CI run, leaves none)."""
    return 1 if 256 <= rows * cols < _config.DEFER_MIN else 0


@pytest.fixture
def calls(monkeypatch):
    """How many times the compiled pass ran."""
    n = [0]
    real = _tape.rows_into

    def counting(*args):
        n[0] += 1
        real(*args)

    monkeypatch.setattr(_tape, "rows_into", counting)  # (E._entry calls a plain function as is)
    return n


def _pair(rows, cols, seed, edges=False):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, cols))
    b = rng.standard_normal(cols)
    if edges:
        a.reshape(-1)[:] = np.resize(EDGES, a.size)
        b[:] = np.resize(EDGES[::-1], cols)
    return a, b


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("vector_first", [False, True])
@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("edges", [False, True])
def test_values_are_numpys_bits(calls, op, vector_first, grads, edges):
    a, b = _pair(32, 16, 1, edges)
    ta = tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=grads[0])
    tb = tapegrad.tensor(b, dtype=tapegrad.float64, requires_grad=grads[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch is silent on overflow, inf - inf, 0 * inf
        got = OPS[op](tb, ta) if vector_first else OPS[op](ta, tb)
    with np.errstate(all="ignore"):
        want = OPS[op](b, a) if vector_first else OPS[op](a, b)
    assert calls[0] == _taken(32, 16)
    assert got.shape == (32, 16) and got.dtype == tapegrad.float64
    assert got.requires_grad == (grads[0] or grads[1])
    assert got.detach().numpy().tobytes() == want.tobytes()


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("vector_first", [False, True])
def test_no_grad(calls, op, vector_first):
    a, b = _pair(16, 16, 2)
    ta = tapegrad.tensor(a, requires_grad=True, dtype=tapegrad.float64)
    tb = tapegrad.tensor(b, requires_grad=True, dtype=tapegrad.float64)
    with tapegrad.no_grad():
        got = OPS[op](tb, ta) if vector_first else OPS[op](ta, tb)
    assert calls[0] == _taken(16, 16) and not got.requires_grad and got.grad_fn is None
    want = OPS[op](b, a) if vector_first else OPS[op](a, b)
    assert got.detach().numpy().tobytes() == want.tobytes()


def _loss(T, a, b, op, vector_first, w):
    y = OPS[op](b, a) if vector_first else OPS[op](a, b)
    return (T.sin(y) * w).sum()  # (sin: its backward reads y's values, the arena's copy)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("vector_first", [False, True])
def test_gradient_matches_central_differences(calls, op, vector_first):
    a, b = _pair(16, 16, 3)
    w = tapegrad.tensor(np.random.default_rng(4).standard_normal((16, 16)),
                        dtype=tapegrad.float64)
    ta = tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True)
    tb = tapegrad.tensor(b, dtype=tapegrad.float64, requires_grad=True)
    _loss(tapegrad, ta, tb, op, vector_first, w).backward()
    assert calls[0] == _taken(16, 16)
    ja, jb = numerical_jacobian(lambda x, y: _loss(tapegrad, x, y, op, vector_first, w),
                                (tapegrad.tensor(a), tapegrad.tensor(b)))
    np.testing.assert_allclose(ta.grad.numpy(), ja.reshape(a.shape), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tb.grad.numpy(), jb.reshape(b.shape), rtol=1e-6, atol=1e-8)


@requires_torch
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("vector_first", [False, True])
@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("shape", [(2, 128), (32, 128), (127, 128)])
def test_gradient_matches_pytorch(calls, op, vector_first, grads, shape):
    a, b = _pair(*shape, 5)
    w = np.random.default_rng(6).standard_normal(shape)
    got = []
    for T in (tapegrad, real_torch):
        ta = T.tensor(a, dtype=T.float64, requires_grad=grads[0])
        tb = T.tensor(b, dtype=T.float64, requires_grad=grads[1])
        _loss(T, ta, tb, op, vector_first, T.tensor(w, dtype=T.float64)).backward()
        got.append([None if t.grad is None else t.grad.numpy().copy() for t in (ta, tb)])
    assert calls[0] == _taken(*shape)
    for ours, theirs in zip(*got):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-13)


@requires_torch
def test_mlp_layer_twice_and_accumulated():
    """Two backwards into the same leaves through bias adds (grads accumulate), as a
    training loop without zero_grad does."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((32, 64)), rng.standard_normal((64, 128))
    b = rng.standard_normal(128)
    got = []
    for T in (tapegrad, real_torch):
        tw = T.tensor(w, dtype=T.float64, requires_grad=True)
        tb = T.tensor(b, dtype=T.float64, requires_grad=True)
        tx = T.tensor(x, dtype=T.float64)
        for _ in range(2):
            (T.relu(tx @ tw + tb) ** 2).mean().backward()
        got.append((tw.grad.numpy().copy(), tb.grad.numpy().copy()))
    for ours, theirs in zip(*got):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


def test_in_place_write_to_the_result_leaves_the_recorded_values():
    """The result and the arena's copy are two arrays: writing the result in place afterwards
    (under no_grad) changes what the tensor holds, not what the backward of tanh (which saves
    its own output) reads."""
    a, b = _pair(16, 16, 8)
    ta = tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True)
    tb = tapegrad.tensor(b, dtype=tapegrad.float64, requires_grad=True)
    y = ta + tb
    z = tapegrad.tanh(y * 1.0)  # (y * 1.0: tanh saves its own output, not y)
    with tapegrad.no_grad():
        y.add_(100.0)
    z.sum().backward()
    want = 1.0 - np.tanh(a + b) ** 2
    np.testing.assert_allclose(ta.grad.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(y.detach().numpy(), a + b + 100.0, rtol=1e-15)


@pytest.mark.parametrize("case", ["small", "at the deferral size", "float32", "transposed",
                                  "strided vector", "(1, n) vector", "column vector",
                                  "three dimensions", "int vector"])
def test_other_cases_take_the_other_paths(calls, case):
    a, b = _pair(16, 16, 9)
    if case == "small":
        a, b = _pair(15, 17, 9)  # 255 elements
    elif case == "at the deferral size":
        a, b = _pair(max(_config.DEFER_MIN // 128, 2), 128, 9)
    elif case == "transposed":
        a = np.ascontiguousarray(a.T).T
    elif case == "strided vector":
        b = np.arange(256.0).reshape(16, 16)
    elif case == "(1, n) vector":
        b = b.reshape(1, 16)
    elif case == "column vector":
        b = b.reshape(16, 1)
    elif case == "three dimensions":
        a = np.stack([a, a])
    dt = tapegrad.float32 if case == "float32" else tapegrad.float64
    ta = tapegrad.tensor(a, dtype=dt, requires_grad=True)
    if case == "int vector":
        tb = tapegrad.tensor(np.arange(16), dtype=tapegrad.int64)
    elif case == "strided vector":  # a column of a matrix: a view, 16 elements apart
        tb = tapegrad.tensor(b, dtype=dt)[:, 0]  # (no graph: three backwards follow)
        assert not tb._a.flags.c_contiguous
    else:
        tb = tapegrad.tensor(b, dtype=dt, requires_grad=True)
    for op in OPS.values():
        got = op(ta, tb)
        with np.errstate(all="ignore"):
            want = op(a.astype(dt.np), tb.detach().numpy())
        np.testing.assert_array_equal(got.detach().numpy(), want)
        got.sum().backward()
    assert calls[0] == 0


def test_traced_function_replays_it():
    """A trace records through the same path (its values written into the arena too)."""
    rng = np.random.default_rng(10)
    a0, b0 = rng.standard_normal((16, 16)), rng.standard_normal(16)

    def fn(a, b):
        return (tapegrad.tanh(a * b + b) * (b - a)).sum()

    tr = tapegrad.trace(fn, a0, b0)
    for _ in range(3):
        a, b = rng.standard_normal((16, 16)), rng.standard_normal(16)
        ta = tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True)
        tb = tapegrad.tensor(b, dtype=tapegrad.float64, requires_grad=True)
        out = fn(ta, tb)
        out.backward()
        np.testing.assert_allclose(tr(a, b), out.item(), rtol=1e-12)
        ga, gb = tr.gradient(a, b)
        np.testing.assert_allclose(ga, ta.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-10, atol=1e-12)
