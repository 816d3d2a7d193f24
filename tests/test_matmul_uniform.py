"""A matmul whose incoming gradient has every element equal (the gradient of ``.sum()`` or
``.mean()``, or ``backward(full(c))``) takes the sweep's rank-one form (``_tape._rank_one``):
row and column sums instead of two products.

Each program runs in tapegrad and PyTorch (when installed) and must give the same gradients;
central differences check it always. Every program also runs with a seed one element away from
uniform, which takes the products, and both forms must agree: a rank-one form that drifted from
the product fails here even without PyTorch.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")


def _mm(t, a, b):
    return a @ b


def _chain(t, a, b, c):  # big_matmul's shape of program
    return t.tanh(a @ b) @ c


def _square(t, a):  # one record on both sides
    return a @ a


def _inner_operands(t, a, b):  # operands that are records of the graph, not leaves
    return t.sin(a) @ (b * 2.0 + 1.0)


def _added_first(t, a, b):  # a's adjoint reached by the mul before the matmul: added to
    return (a @ b) + (a * b.T).sum() * 2.0


def _added_after(t, a, b):  # the matmul reaches a first: written, then the mul adds
    p = (a * b.T).sum()
    return (a @ b) * 1.0 + p


def _batched(t, a, b):
    return t.bmm(a, b)


def _broadcast(t, a, b):  # a batch against one matrix
    return t.matmul(a, b)


def _mv(t, a, v):
    return a @ v


def _vm(t, v, b):
    return v @ b


PROGRAMS = [
    ("mm", _mm, [(3, 4), (4, 5)]),
    ("mm_column", _mm, [(5, 1), (1, 3)]),
    ("mm_row", _mm, [(1, 4), (4, 6)]),
    ("chain", _chain, [(4, 3), (3, 5), (5, 2)]),
    ("square", _square, [(4, 4)]),
    ("inner", _inner_operands, [(3, 4), (4, 2)]),
    ("added_first", _added_first, [(3, 4), (4, 3)]),
    ("added_after", _added_after, [(3, 4), (4, 3)]),
    ("bmm", _batched, [(2, 3, 4), (2, 4, 5)]),
    ("broadcast", _broadcast, [(2, 3, 4), (4, 5)]),
    ("mv", _mv, [(3, 4), (4,)]),
    ("vm", _vm, [(4,), (4, 5)]),
]

IDS = [p[0] for p in PROGRAMS]


def _arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def _grads(module, fn, arrays, reduce, seed=None):
    leaves = [module.tensor(a, dtype=module.float64, requires_grad=True) for a in arrays]
    out = fn(module, *leaves)
    if reduce == "sum":
        out.sum().backward()
    elif reduce == "mean":
        out.mean().backward()
    else:
        out.backward(module.tensor(seed, dtype=module.float64))
    return [leaf.grad.numpy().copy() for leaf in leaves]


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("name,fn,shapes", PROGRAMS, ids=IDS)
def test_reduced_product_matches_finite_differences(name, fn, shapes, reduce):
    leaves = [tapegrad.tensor(a, requires_grad=True) for a in _arrays(shapes)]

    def f(*xs):
        out = fn(tapegrad, *xs)
        return out.sum() if reduce == "sum" else out.mean()

    assert gradcheck(f, leaves, atol=1e-7, rtol=1e-6)


@requires_torch
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("name,fn,shapes", PROGRAMS, ids=IDS)
def test_reduced_product_matches_torch(name, fn, shapes, reduce):
    arrays = _arrays(shapes, 1)
    ours = _grads(tapegrad, fn, arrays, reduce)
    theirs = _grads(real_torch, fn, arrays, reduce)
    for g, h in zip(ours, theirs):
        np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("c", [2.5, -0.75, 0.0])
@pytest.mark.parametrize("name,fn,shapes", PROGRAMS, ids=IDS)
def test_uniform_seed_agrees_with_the_products(name, fn, shapes, c):
    """backward(full(c)) against a seed with one element changed by an ulp's worth (the
    products), and against PyTorch."""
    arrays = _arrays(shapes, 2)
    shape = fn(tapegrad, *(tapegrad.tensor(a) for a in arrays)).shape
    seed = np.full(shape, c)
    near = seed.copy()
    near.reshape(-1)[-1] = np.nextafter(c, 1.0)  # not uniform: the general form
    uniform = _grads(tapegrad, fn, arrays, None, seed)
    general = _grads(tapegrad, fn, arrays, None, near)
    for g, h in zip(uniform, general):
        np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-12)
    if real_torch is not None:
        for g, h in zip(uniform, _grads(real_torch, fn, arrays, None, seed)):
            np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("c", [math.inf, -math.inf, math.nan, 1e300])
def test_non_finite_and_overflowing_seeds_match_torch(c):
    """inf times the operands' elements, nan everywhere (not uniform: nan != nan), and
    products that overflow: the same infs and nans as the products give."""
    a = np.array([[1.0, -2.0, 0.0], [3.0, 0.5, -1.0]])
    b = np.array([[1e10, -1.0], [2.0, 0.0], [-3.0, 1e300]])
    seed = np.full((2, 2), c)
    ours = _grads(tapegrad, _mm, [a, b], None, seed)
    with np.errstate(all="ignore"):
        expect_a = np.array([[sum(c * b[p, j] for j in range(2)) for p in range(3)]] * 2)
        expect_b = np.array([[sum(a[r, p] * c for r in range(2))] * 2 for p in range(3)])
    np.testing.assert_array_equal(ours[0], expect_a)
    np.testing.assert_array_equal(ours[1], expect_b)
    if real_torch is not None:
        theirs = _grads(real_torch, _mm, [a, b], None, seed)
        for g, h in zip(ours, theirs):
            np.testing.assert_array_equal(g, h)


def test_big_matmul_workload_matches_torch():
    """The benchmark's program at a size where the shortcut saves two 64x64 products."""
    arrays = _arrays([(64, 64)] * 3, 3)
    ours = _grads(tapegrad, lambda t, a, b, c: t.tanh(a @ b) @ c, arrays, "sum")
    # the same gradients by hand, NumPy's products throughout
    a, b, c = arrays
    h = np.tanh(a @ b)
    gh = np.ones((64, 64)) @ c.T
    gp = gh * (1.0 - h * h)
    expect = [gp @ b.T, a.T @ gp, h.T @ np.ones((64, 64))]
    for g, e in zip(ours, expect):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
    if real_torch is not None:
        theirs = _grads(real_torch, lambda t, a, b, c: t.tanh(a @ b) @ c, arrays, "sum")
        for g, h_ in zip(ours, theirs):
            np.testing.assert_allclose(g, h_, rtol=1e-12, atol=1e-12)


def test_operand_modified_in_place_raises_as_torch():
    """The rank-one form checks its operands' versions as the products do."""
    a = tapegrad.tensor(np.ones((2, 3)), requires_grad=True)
    b = tapegrad.tensor(np.ones((3, 2)), requires_grad=True)
    y = a * 1.0
    loss = (y @ b).sum()
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_create_graph_through_a_reduced_product():
    """Second derivatives through (a @ b).sum(), against PyTorch and by hand."""
    arrays = _arrays([(3, 4), (4, 2)], 4)

    def second(module):
        a, b = (module.tensor(x, dtype=module.float64, requires_grad=True) for x in arrays)
        (ga,) = module.autograd.grad((module.tanh(a) @ b).sum(), (a,), create_graph=True)
        (ga * ga).sum().backward()
        return a.grad.numpy().copy(), b.grad.numpy().copy()

    ours = second(tapegrad)
    a, b = arrays
    s = b.sum(axis=1)  # ga = (1 - tanh(a)^2) * s (broadcast over rows)
    u = 1.0 - np.tanh(a) ** 2
    ga = u * s
    expect_a = 2.0 * ga * s * (-2.0 * np.tanh(a) * u)
    expect_b = np.repeat((2.0 * ga * u).sum(axis=0)[:, None], 2, axis=1)
    np.testing.assert_allclose(ours[0], expect_a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours[1], expect_b, rtol=1e-12, atol=1e-12)
    if real_torch is not None:
        for g, h in zip(ours, second(real_torch)):
            np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-12)
