"""The two reverse-sweep kernels: ``sweep_core`` (the kinds scalar and elementwise code
records) and ``sweep`` (every kind).  A backward starts with the core kernel and, at the
first record of an OTHER kind, hands the rest of the tape to the full kernel, which every
later backward in the process then uses.

The full kernel is compiled once per process, so after any test that touched an OTHER kind
the rest of the suite runs on it.  These tests put the core kernel back first, so the hand
over happens inside them: every OTHER kind, at a hook, with retained graphs, at an error.
Gradients are checked against PyTorch (when installed) and against central differences.
"""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad
from tapegrad import _engine as E
from tapegrad import _tape as T
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")


@pytest.fixture
def core_kernel():
    """Start from the core kernel, as a fresh process does; restore the kernel after."""
    before = E._kernel[0]
    E._kernel[0] = T.sweep_core
    yield
    E._kernel[0] = before


def _x(t, shape=(4, 3), seed=3):
    rng = np.random.default_rng(seed)
    return t.tensor(rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape),
                    dtype=t.float64, requires_grad=True)


def _index(t):
    return t.tensor([[0, 1, 0], [1, 0, 1], [1, 1, 0], [0, 0, 1]])


# one program per OTHER kind; each starts and ends in elementwise records, so the core
# kernel sweeps some records before handing over and the full kernel some after
PROGRAMS = {
    "norm": lambda t, x: (x.tanh() * 2.0).norm() * x.sum(),
    "matmul": lambda t, x: (x.sin() @ x.T.cos()).exp().sum(),
    "mv": lambda t, x: (x.cos() @ x[0].exp()).sum(),
    "setitem": lambda t, x: _setitem(t, x),
    "masked_fill": lambda t, x: ((x * 2.0).masked_fill(x > 0, 0.5) ** 2).sum(),
    "scatter": lambda t, x: (t.zeros(2, 3, dtype=t.float64).scatter(0, _index(t)[:2], x[:2])
                             * x[2:]).sum(),
    "fill_": lambda t, x: _fill(t, x),
    "copy_": lambda t, x: _copy(t, x),
    "where": lambda t, x: t.where(x > 0, x * x, x.exp()).sum(),
    "tril": lambda t, x: (x.tril() * x.cos()).sum(),
    "amax_max": lambda t, x: (x * 3.0).amax(dim=1).sum() + (x.sin()).max(),
    "prod": lambda t, x: (x * 1.5).prod(dim=0).sum() + x.prod(),
    "cumsum_cumprod": lambda t, x: (x.cumsum(1) * x).sum() + x.tanh().cumprod(0).sum(),
    "scatter_add": lambda t, x: (t.zeros(2, 3, dtype=t.float64).scatter_add(0, _index(t), x)
                                 .sin()).sum(),
    "softmax": lambda t, x: ((x * 2.0).softmax(1) * x).sum() + x.log_softmax(0).exp().sum(),
}


def _setitem(t, x):
    y = x * 1.0
    y[1] = x[2] * 3.0
    return (y * y).sum()


def _fill(t, x):
    y = x * 1.0
    y.fill_(2.0)
    return (y * x).sum() + x.sin().sum()


def _copy(t, x):
    y = t.zeros(4, 3, dtype=t.float64)
    y.copy_(x.sin())
    return (y * y).sum()


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_every_other_kind_hands_over_to_the_full_kernel(core_kernel, name):
    x = _x(tapegrad)
    PROGRAMS[name](tapegrad, x).backward()
    assert E._kernel[0] is T.sweep  # the tape held a record the core kernel leaves
    assert x.grad is not None and np.all(np.isfinite(x.grad.numpy()))
    E._kernel[0] = T.sweep_core
    assert gradcheck(lambda a: PROGRAMS[name](tapegrad, a), (_x(tapegrad),))


@requires_torch
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_every_other_kind_after_the_hand_over_matches_torch(core_kernel, name):
    grads = []
    for lib in (tapegrad, real_torch):
        x = _x(lib)
        PROGRAMS[name](lib, x).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)


def _core_program(t, x):
    """Scalar, elementwise, element, slice, cat, broadcast and reduction records only."""
    v = x.reshape(-1)
    s = v[0] * v[1] + v[2].sin()
    w = t.cat([v[:3] * s, v[3:].tanh()]) + 1.0
    return (w * w).sum() / 3.0 + (x * 2.0).sum(dim=0).exp().mean() + s


def test_a_core_tape_never_compiles_the_full_kernel(core_kernel):
    x = _x(tapegrad)
    _core_program(tapegrad, x).backward()
    assert E._kernel[0] is T.sweep_core
    assert gradcheck(lambda a: _core_program(tapegrad, a), (_x(tapegrad),))
    assert E._kernel[0] is T.sweep_core


@requires_torch
def test_a_core_tape_matches_torch(core_kernel):
    grads = []
    for lib in (tapegrad, real_torch):
        x = _x(lib)
        _core_program(lib, x).backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)
    assert E._kernel[0] is T.sweep_core


def _hooked(t, x, calls):
    m = x.sin() @ x.T
    m.register_hook(lambda g: calls.append(1) or g * 2.0)  # at the record handed over
    return (m.tanh() + x.sum()).sum()


def test_a_hook_at_the_hand_over_record_runs_once(core_kernel):
    """The core kernel stops at the hooked matmul record for its hook, then again at the
    same record for the hand over: the full kernel must resume past the hook, not rerun it."""
    calls = []
    x = _x(tapegrad, (3, 3))
    _hooked(tapegrad, x, calls).backward()
    assert calls == [1]
    assert E._kernel[0] is T.sweep
    # the hook doubles the adjoint reaching the matmul: 2 * d sum(tanh(sin(x) @ x.T)), by
    # central differences in NumPy, plus 9 from x.sum() broadcast over the 3x3 result
    f = lambda v: np.tanh(np.sin(v) @ v.T).sum()
    x0 = x.detach().numpy()
    h = 1e-6
    want = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        up, down = x0.copy(), x0.copy()
        up[idx] += h
        down[idx] -= h
        want[idx] = (f(up) - f(down)) / (2 * h)
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * want + 9.0, rtol=1e-6, atol=1e-7)


@requires_torch
def test_a_hook_at_the_hand_over_record_matches_torch(core_kernel):
    grads, counts = [], []
    for lib in (tapegrad, real_torch):
        if lib is tapegrad:
            E._kernel[0] = T.sweep_core
        calls = []
        x = _x(lib, (3, 3))
        _hooked(lib, x, calls).backward()
        grads.append(x.grad.numpy())
        counts.append(len(calls))
    assert counts == [1, 1]
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)


def test_retained_graph_swept_again_from_the_core_kernel(core_kernel):
    x = _x(tapegrad)
    y = PROGRAMS["softmax"](tapegrad, x) + PROGRAMS["matmul"](tapegrad, x)
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    E._kernel[0] = T.sweep_core
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * first, rtol=1e-14)


def test_modified_saved_value_found_after_the_hand_over(core_kernel):
    """The version-counter error of a record the full kernel sweeps, in PyTorch's words;
    a later backward of a fresh graph is unaffected."""
    x = _x(tapegrad, (3, 3))
    a = x * 1.0
    m = (a @ a).tanh()
    a.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        m.sum().backward()
    x.grad = None
    E._kernel[0] = T.sweep_core
    PROGRAMS["matmul"](tapegrad, x).backward()
    assert gradcheck(lambda b: PROGRAMS["matmul"](tapegrad, b), (_x(tapegrad),))


def test_the_kinds_left_to_the_full_kernel():
    """OTHER covers the kinds outside the core kernel's branches, and nothing else."""
    core = {T.SOURCE, T.UNARY, T.BINARY, T.GATHER, T.REDUCE, T.CONCAT, T.CALLBACK, T.CBOUT}
    other = {k for k in range(T.OTHER.size) if T.OTHER[k]}
    assert other == set(range(T.OTHER.size)) - core
    assert T.OTHER.size == max(T.KIND) + 1


def _captured(t, x):
    m = x.sin() @ x.T  # the record handed over is an autograd.grad input
    y = (m.tanh() * 2.0).sum() + x.sum()
    return m, y


@requires_torch
def test_captured_hand_over_record_matches_torch(core_kernel):
    """autograd.grad with respect to the record handed over: the core kernel hands its hit to
    Python before the full kernel resumes."""
    got = []
    for lib in (tapegrad, real_torch):
        if lib is tapegrad:
            E._kernel[0] = T.sweep_core
        x = _x(lib, (3, 3))
        m, y = _captured(lib, x)
        gm, gx = lib.autograd.grad(y, [m, x])
        got.append((gm.numpy(), gx.numpy()))
    for a, b in zip(*got):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_captured_hand_over_record_hand():
    E._kernel[0], before = T.sweep_core, E._kernel[0]
    try:
        x = _x(tapegrad, (3, 3))
        m, y = _captured(tapegrad, x)
        (gm,) = tapegrad.autograd.grad(y, [m])
        mv = (np.sin(x.detach().numpy()) @ x.detach().numpy().T)
        np.testing.assert_allclose(gm.numpy(), 2.0 * (1.0 - np.tanh(mv) ** 2), rtol=1e-14)
    finally:
        E._kernel[0] = before
