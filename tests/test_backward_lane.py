"""``loss.backward()`` of a 0-d float64 loss recorded in the current segment takes a lane of its
own (``_engine.backward_lane``): the root seeded in place, one kernel call, the leaves'
gradients accumulated there, everything else handed to the general driver.

Each program here runs twice in tapegrad, once through ``loss.backward()`` and once through
``tapegrad.autograd.backward(loss)`` (the general ``run_backward``), and must give the same
bits both ways and PyTorch's gradients (when installed); central differences check the
scalar code's gradient always.  A counter checks that the lane ran (or declined) where it
should, so a lane that silently stopped being taken fails here too.
"""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
from tapegrad import _engine as E
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")


@pytest.fixture
def lane(monkeypatch):
    """Counts of the lane's calls and answers: taken (True) and declined (False)."""
    seen = {True: 0, False: 0, "calls": 0}
    real = E.backward_lane

    def counting(t, g=None):
        seen["calls"] += 1
        done = real(t, g)
        seen[done] += 1
        return done

    monkeypatch.setattr(E, "backward_lane", counting)
    return seen


def _det3(t, x):
    return (x[0] * (x[4] * x[8] - x[5] * x[7]) - x[1] * (x[3] * x[8] - x[5] * x[6])
            + x[2] * (x[3] * x[7] - x[4] * x[6]))


def _two_leaves(t, x, y):
    return x[0] * y[1] - x[2] * y[0] + y[2]


def _with_matmul(t, x, y):  # a record of the full kernel's kinds: the sweep stops there first
    return (t.tanh(x.reshape(3, 1) @ y.reshape(1, 3)).sum() * x[1] + x[0] * x[0])


def _vector_code(t, x, y):
    z = x * y + 1.5
    return (t.sin(z) * x).sum() + z[1] * 2.0


def _unused_leaf(t, x, y):  # y requires grad and is used by nothing the loss depends on
    _ = y * 3.0
    return x[0] * x[1]


PROGRAMS = [
    ("det3", _det3, 1),
    ("two_leaves", _two_leaves, 2),
    ("with_matmul", _with_matmul, 2),
    ("vector_code", _vector_code, 2),
    ("unused_leaf", _unused_leaf, 2),
]


def _inputs(lib, nargs, seed):
    rng = np.random.default_rng(seed)
    size = 9 if nargs == 1 else 3
    return [lib.tensor(rng.uniform(-2, 2, size), dtype=lib.float64, requires_grad=True)
            for _ in range(nargs)]


def _grads(fn, nargs, general, seed=0):
    xs = _inputs(tapegrad, nargs, seed)
    loss = fn(tapegrad, *xs)
    if general:
        tapegrad.autograd.backward(loss)
    else:
        loss.backward()
    return [None if x.grad is None else x.grad.numpy().copy() for x in xs]


@pytest.mark.parametrize("name, fn, nargs", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_lane_gives_the_general_paths_bits(lane, name, fn, nargs):
    for seed in range(3):
        fast = _grads(fn, nargs, False, seed)
        assert lane[True] == seed + 1 and lane[False] == 0
        slow = _grads(fn, nargs, True, seed)
        assert lane[True] == seed + 1  # autograd.backward does not take the lane
        for f, s in zip(fast, slow):
            assert (f is None) == (s is None)
            if f is not None:
                assert f.tobytes() == s.tobytes()


@requires_torch
@pytest.mark.parametrize("name, fn, nargs", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_lane_gives_pytorchs_gradients(name, fn, nargs):
    got = _grads(fn, nargs, False, 7)
    xs = _inputs(real_torch, nargs, 7)
    fn(real_torch, *xs).backward()
    for g, x in zip(got, xs):
        if x.grad is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_lane_gradient_against_central_differences():
    x = tapegrad.tensor(np.random.default_rng(3).uniform(-2, 2, 9), dtype=tapegrad.float64,
                        requires_grad=True)
    assert gradcheck(lambda v: _det3(tapegrad, v), (x,))


def test_lane_accumulates_into_grad(lane):
    x = _inputs(tapegrad, 1, 4)[0]
    _det3(tapegrad, x).backward()
    first = x.grad.numpy().copy()
    _det3(tapegrad, x).backward()
    assert lane[True] == 2
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first)


def test_lane_runs_leaf_hooks(lane):
    x = _inputs(tapegrad, 1, 5)[0]
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 2)
    _det3(tapegrad, x).backward()
    y = _inputs(tapegrad, 1, 5)[0]
    tapegrad.autograd.backward(_det3(tapegrad, y))
    assert lane[True] == 1 and len(seen) == 1
    np.testing.assert_array_equal(x.grad.numpy(), 2 * y.grad.numpy())


def test_lane_second_backward_raises_the_freed_graph_error(lane):
    x = _inputs(tapegrad, 1, 6)[0]
    loss = _det3(tapegrad, x)
    loss.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        loss.backward()


def test_lane_after_retain_graph(lane):
    x = _inputs(tapegrad, 1, 8)[0]
    loss = _det3(tapegrad, x)
    loss.backward(retain_graph=True)  # the general path
    first = x.grad.numpy().copy()
    loss.backward()
    assert lane[True] == 1
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first)


def _retained_and_hooked(lib, x):
    y = x * 2.0
    y.retain_grad()
    z = x * 3.0
    z.register_hook(lambda g: g * 0.5)
    w = x * 1.0
    w.add_(1.0)  # modified in place after its record
    return y, (y[0] * y[1] + z[2] * z[0]) * w[1]


def test_lane_with_retained_grads_hooks_and_in_place_writes(lane):
    x = _inputs(tapegrad, 1, 9)[0]
    y, loss = _retained_and_hooked(tapegrad, x)
    loss.backward()
    assert lane[True] == 1
    x2 = _inputs(tapegrad, 1, 9)[0]
    y2, loss2 = _retained_and_hooked(tapegrad, x2)
    tapegrad.autograd.backward(loss2)
    assert x.grad.numpy().tobytes() == x2.grad.numpy().tobytes()
    assert y.grad.numpy().tobytes() == y2.grad.numpy().tobytes()
    if real_torch is not None:
        xt = _inputs(real_torch, 1, 9)[0]
        yt, loss_t = _retained_and_hooked(real_torch, xt)
        loss_t.backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-14)
        np.testing.assert_allclose(y.grad.numpy(), yt.grad.numpy(), rtol=1e-14)


def test_lane_stale_saved_value_raises_the_version_error(lane):
    x = _inputs(tapegrad, 1, 13)[0]
    a = x[0] * 1.0
    loss = a * a
    a.mul_(2.0)  # loss saved a: its saved value is stale now
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    assert lane["calls"] == 1


def test_lane_across_segments(lane):
    """A loss whose graph begins in an older segment: the lane sweeps the current one and
    hands the IMPORT's adjoint on to the general driver."""
    x = _inputs(tapegrad, 1, 10)[0]
    y = x * x
    E.state.seg = E.Segment()  # as a rotation at a full segment does
    loss = (y * 3.0).sum() + y[2]
    loss.backward()
    assert lane[True] == 1
    want = 6.0 * x.detach().numpy()
    want[2] += 2.0 * x.detach().numpy()[2]
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-15)


def test_lane_inside_no_grad(lane):
    x = _inputs(tapegrad, 1, 11)[0]
    loss = _det3(tapegrad, x)
    with tapegrad.no_grad():
        loss.backward()
        assert not tapegrad.is_grad_enabled()
    assert tapegrad.is_grad_enabled() and lane[True] == 1
    y = _inputs(tapegrad, 1, 11)[0]
    tapegrad.autograd.backward(_det3(tapegrad, y))
    np.testing.assert_array_equal(x.grad.numpy(), y.grad.numpy())


def test_lane_with_a_custom_function(lane):
    class Square(tapegrad.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 2 * a * g

    x = _inputs(tapegrad, 1, 12)[0]
    (Square.apply(x)[3] * 1.0).backward()
    assert lane[True] == 1
    want = np.zeros(9)
    want[3] = 2 * x.detach().numpy()[3]
    np.testing.assert_array_equal(x.grad.numpy(), want)


def _vector_root(t, x):
    y = x * 2.0
    for _ in range(3):
        if y.norm() > 1e6:
            break
        y = y * t.tanh(y)
    return y


@pytest.mark.parametrize("shape", [(3,), (2, 2), ()])
def test_lane_with_a_gradient(lane, shape):
    """``y.backward(v)``, as the seed tutorial's loop ends: the lane seeds y's adjoint with v."""
    rng = np.random.default_rng(15)
    x0 = rng.uniform(-1, 1, shape)
    v0 = rng.uniform(-1, 1, shape)
    x = tapegrad.tensor(x0, dtype=tapegrad.float64, requires_grad=True)
    _vector_root(tapegrad, x).backward(tapegrad.tensor(v0, dtype=tapegrad.float64))
    assert lane[True] == 1
    x2 = tapegrad.tensor(x0, dtype=tapegrad.float64, requires_grad=True)
    v = tapegrad.tensor(v0, dtype=tapegrad.float64)
    tapegrad.autograd.backward(_vector_root(tapegrad, x2), v)
    assert x.grad.numpy().tobytes() == x2.grad.numpy().tobytes()
    if real_torch is not None:
        xt = real_torch.tensor(x0, dtype=real_torch.float64, requires_grad=True)
        _vector_root(real_torch, xt).backward(real_torch.tensor(v0, dtype=real_torch.float64))
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-13)


def test_lane_leaves_a_wrong_gradient_shape_to_pytorchs_error(lane):
    x = _inputs(tapegrad, 2, 16)[0]
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of"):
        y.backward(tapegrad.ones(2, dtype=tapegrad.float64))
    assert lane[True] == 0


def _nested(lib):
    x = lib.tensor([1.0, 2.0, 3.0], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([0.5, -1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = x * 2.0

    def hook(g):
        with lib.enable_grad():
            (w * w).sum().backward()  # a backward inside the backward, through the lane too
        return g * 3

    y.register_hook(hook)
    (y[0] * y[1] + y[2]).backward()
    return x.grad.tolist(), w.grad.tolist()


def test_lane_with_a_backward_inside_a_hook(lane):
    got = _nested(tapegrad)
    assert lane[True] == 2
    assert got == ([24.0, 12.0, 6.0], [1.0, -2.0, 4.0])
    if real_torch is not None:
        assert got == _nested(real_torch)
