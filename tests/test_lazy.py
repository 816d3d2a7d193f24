"""Lazily computed results: recorded ops on small float64 arrays whose values the flush
computes (``_tensor._lazy``, ``_tape._lazy_arith``, ``_tape._lazy_trig``).

A lazy result must be indistinguishable from an eager one: the same bits as the op computed
at once (under ``no_grad``, or with ``TAPEGRAD_LAZY=0``), the same gradients (against PyTorch
when installed, and always against central differences), and the same behaviour under every
operation that reads, writes or shares its value.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from random_programs import random_program

import tapegrad
from tapegrad import _config
from tapegrad import _engine as E
from tapegrad import _tape as T
from tapegrad import _tensor as TT
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")
pytestmark = pytest.mark.skipif(not _config.LAZY, reason="TAPEGRAD_LAZY=0")

SPECIAL = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300, -1e-310, 2e5, -3e6]

# (name, f(t, x, y)): every op that may be lazy, as user code writes it
UNARY = [
    ("neg", lambda t, x: -x),
    ("add_number", lambda t, x: x + 0.5),
    ("radd_number", lambda t, x: 2 + x),
    ("sub_number", lambda t, x: x - 1.25),
    ("rsub_number", lambda t, x: 3.0 - x),
    ("mul_number", lambda t, x: x * 1.0001),
    ("rmul_number", lambda t, x: -2 * x),
    ("div_number", lambda t, x: x / 6.0),
    ("div_small_number", lambda t, x: x / 0.1),
    ("div_zero", lambda t, x: x / 0.0),
    ("tanh", lambda t, x: t.tanh(x)),
    ("sin", lambda t, x: t.sin(x)),
    ("cos", lambda t, x: x.cos()),
]
BINARY = [
    ("add", lambda t, x, y: x + y),
    ("sub", lambda t, x, y: x - y),
    ("mul", lambda t, x, y: x * y),
]


def _values(shape, seed, special=True):
    a = np.random.default_rng(seed).uniform(-4, 4, shape)
    if special:
        a.flat[:min(a.size, len(SPECIAL))] = SPECIAL[:a.size]
    return a


def _is_lazy(t):
    return t.__class__ is TT._Lazy


def _fresh():
    """Undo the pause that reading results soon after they were made starts (_LAZY_PAUSE)."""
    E.state.seg.lazy_off = 0


@pytest.fixture(autouse=True)
def _lazy_again():
    _fresh()
    yield


def _bits(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


@pytest.mark.parametrize("shape", [(2,), (16,), (127,), (3, 5)])
@pytest.mark.parametrize("name, f", UNARY, ids=[u[0] for u in UNARY])
def test_lazy_unary_values_are_the_eager_values_bit_for_bit(name, f, shape):
    """The flush's value (inf, nan, signed zeros, sin beyond the trig kernel's range) is
    the no_grad forward's, and the result stays lazy until something reads it."""
    a = _values(shape, 1)
    x = tapegrad.tensor(a, requires_grad=True)
    y = f(tapegrad, x)
    assert _is_lazy(y) and y.shape == shape and y.dtype == tapegrad.float64
    with tapegrad.no_grad():
        ref = f(tapegrad, tapegrad.tensor(a)).numpy()
    got = y.detach().numpy()
    assert not _is_lazy(y) and type(y) is tapegrad.Tensor  # a plain Tensor once read
    np.testing.assert_array_equal(_bits(got), _bits(ref))
    _fresh()
    z = f(tapegrad, y * 1.0)  # a lazy operand
    with tapegrad.no_grad():
        ref2 = f(tapegrad, tapegrad.tensor(ref) * 1.0).numpy()
    np.testing.assert_array_equal(_bits(z.detach().numpy()), _bits(ref2))


@pytest.mark.parametrize("shape", [(2,), (16,), (4, 4), (4096,)])
@pytest.mark.parametrize("name, f", BINARY, ids=[b[0] for b in BINARY])
def test_lazy_binary_values_are_the_eager_values_bit_for_bit(name, f, shape):
    a, b = _values(shape, 2), _values(shape, 3)[::-1].copy()
    x = tapegrad.tensor(a, requires_grad=True)
    y = tapegrad.tensor(b)  # a constant operand
    for u, v in ((x, y), (y, x), (x, x), (x * 1.0, x * 2.0)):
        _fresh()
        out = f(tapegrad, u, v)
        assert _is_lazy(out)
        with tapegrad.no_grad():
            ref = f(tapegrad, tapegrad.tensor(u.detach().numpy()),
                    tapegrad.tensor(v.detach().numpy())).numpy()
        np.testing.assert_array_equal(_bits(out.detach().numpy()), _bits(ref))


def test_small_eager_tanh_is_libm_tanh_as_the_lazy_one():
    """Small float64 tanh is libm's whether recorded (lazy) or not; NumPy's differs in the
    last bit for many values, so the two paths agree only because both use libm."""
    a = np.random.default_rng(4).normal(size=200) * 3
    want = np.array([math.tanh(v) for v in a])
    with tapegrad.no_grad():
        eager = tapegrad.tanh(tapegrad.tensor(a)).numpy()
    lazy = tapegrad.tanh(tapegrad.tensor(a, requires_grad=True))
    assert _is_lazy(lazy)
    np.testing.assert_array_equal(_bits(eager), _bits(want))
    np.testing.assert_array_equal(_bits(lazy.detach().numpy()), _bits(want))


def test_what_is_not_lazy():
    """no_grad, no input requiring grad, other dtypes, one element, more elements than the
    limits, broadcasting, and tracing all compute at once."""
    x = tapegrad.tensor(np.linspace(0.1, 1, 16), requires_grad=True)
    with tapegrad.no_grad():
        assert not _is_lazy(x * 2.0)
    assert not _is_lazy(tapegrad.tensor(np.ones(16)) * 2.0)
    assert not _is_lazy(tapegrad.tensor(np.ones(16), dtype=tapegrad.float32,
                                        requires_grad=True) * 2.0)
    assert not _is_lazy(tapegrad.tensor([1.0], requires_grad=True) * 2.0)
    big = tapegrad.tensor(np.ones(_config.LAZY_TANH + 1), requires_grad=True)
    assert _is_lazy(big * 2.0) and not _is_lazy(tapegrad.tanh(big))
    assert not _is_lazy(tapegrad.sin(tapegrad.tensor(np.ones(128), requires_grad=True)))
    assert not _is_lazy(x * tapegrad.tensor(np.ones((3, 16))))  # broadcast
    assert not _is_lazy(x * tapegrad.tensor(2.0))  # float32 0-d (float64: test_lazy_scalar)
    assert not _is_lazy(x.exp())  # not one of the lazy ops

    seen = []

    def f(v):
        w = v * 2.0 + 1.0
        seen.append(_is_lazy(w))
        return w.sum()

    tapegrad.trace(f, (x,))
    assert seen and not any(seen)


def _chain(t, x, v, reps):
    """vec16_chain's ops and the eager ones around lazy results: slices, cat, sums, norms,
    elements, exp, matmul, indexing."""
    y = x
    for k in range(reps):
        y = y * x
        y = y + 0.5
        y = t.tanh(y) if k % 2 else t.sin(y)
        y = 1.5 - y / 3.0 + v * y
        if k % 5 == 4:
            y = t.cat([y[:1], y[1:] * y[:-1]])
            y = y - y.sum() * 0.01 + y[3] * y
        if k % 7 == 6:
            y = -y.exp() * 0.1 + y.norm()
    m = y.reshape(4, 4)
    return (m @ m.t()).sum() + y.cos().sum()


@pytest.mark.parametrize("reps", [1, 3, 12])
def test_lazy_chain_gradients_match_finite_differences(reps):
    rng = np.random.default_rng(reps)
    x = tapegrad.tensor(rng.uniform(-1, 1, 16), requires_grad=True)
    v = tapegrad.tensor(rng.uniform(-1, 1, 16), requires_grad=True)
    assert gradcheck(lambda a, b: _chain(tapegrad, a, b, reps), (x, v))


@requires_torch
@pytest.mark.parametrize("reps", [1, 12, 200])
def test_lazy_chain_values_and_gradients_match_pytorch(reps):
    rng = np.random.default_rng(10 + reps)
    a, b = rng.uniform(-1, 1, 16), rng.uniform(-1, 1, 16)
    res = []
    for t in (tapegrad, real_torch):
        x = t.tensor(a, dtype=t.float64, requires_grad=True)
        v = t.tensor(b, dtype=t.float64, requires_grad=True)
        out = _chain(t, x, v, reps)
        out.backward()
        res.append((out.item(), x.grad.numpy(), v.grad.numpy()))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-9, atol=1e-12)
    for g0, g1 in zip(res[0][1:], res[1][1:]):
        np.testing.assert_allclose(g0, g1, rtol=1e-8, atol=1e-12)


@requires_torch
def test_lazy_results_behave_as_pytorch_tensors():
    """Printing, shape queries (which do not compute the value), retain_grad, hooks,
    detach sharing storage, in-place ops and .data on lazy results, as in PyTorch."""
    a = np.array([0.5, -1.0, 2.0])

    def run(t, check_lazy):
        x = t.tensor(a, dtype=t.float64, requires_grad=True)
        y = x * 2.0
        seen = []
        assert (y.shape, y.size(), y.dim(), y.ndim, len(y), y.numel()) == \
            (t.Size([3]), t.Size([3]), 1, 1, 3, 3)
        if check_lazy:
            assert _is_lazy(y) and type(y).__name__ == "Tensor"
            assert isinstance(y, tapegrad.Tensor) and y.grad_fn.name() == "MulBackward0"
        y.retain_grad()
        z = y + 1.0
        z.register_hook(lambda g: seen.append(g.numpy().copy()))
        w = z * z
        text = repr(w)
        d = w.detach()
        d[0] = 5.0  # detach shares storage: w sees it
        u = w * 1.0
        u.add_(1.0)  # in place on a (lazy) result
        u.mul_(w)
        loss = u.sum() + w.sum()
        loss.backward()
        return (text, repr(w), repr(u), x.grad.numpy().copy(), y.grad.numpy().copy(),
                seen[0])

    ours, theirs = run(tapegrad, True), run(real_torch, False)
    assert ours[0].replace("tapegrad", "torch") == theirs[0]
    assert ours[1] == theirs[1].replace("torch", "tapegrad") or \
        ours[1].replace("tapegrad", "torch") == theirs[1]
    assert ours[2].replace("tapegrad", "torch") == theirs[2]
    for g0, g1 in zip(ours[3:], theirs[3:]):
        np.testing.assert_allclose(g0, g1, rtol=1e-12)


@requires_torch
def test_inplace_on_a_saved_lazy_value_raises_pytorchs_error():
    msgs = []
    for t in (tapegrad, real_torch):
        x = t.tensor([0.5, -1.0, 2.0], dtype=t.float64, requires_grad=True)
        y = x * 2.0
        z = y * y  # saves y
        y.add_(1.0)
        with pytest.raises(RuntimeError) as err:
            z.sum().backward()
        msgs.append(str(err.value))
    head = "modified by an inplace operation: [torch.DoubleTensor [3]]"
    assert head in msgs[0] and head in msgs[1]
    assert "is at version 1; expected version 0" in msgs[0]


def test_data_assignment_and_reads_after_backward():
    x = tapegrad.tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = x * 2.0
    y.data = tapegrad.zeros(2, 2)  # a new value of another shape, never computed
    assert y.shape == (2, 2) and type(y) is tapegrad.Tensor
    np.testing.assert_array_equal(y.detach().numpy(), np.zeros((2, 2)))
    y = x * 2.0
    w = y - 1.0
    (w * 3.0).sum().backward()  # the segment retires; its values stay with its tensors
    np.testing.assert_array_equal(w.detach().numpy(), [0.0, -3.0, 3.0])
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, -2.0, 4.0])
    v = w * x  # a lazy operand of a retired segment, used in a new graph: computed first
    np.testing.assert_array_equal(v.detach().numpy(), [0.0, 3.0, 6.0])


def test_many_lazy_records_cross_flushes_and_grow_the_arena(monkeypatch):
    """More lazy records than one staging list holds, and more values than a fresh arena:
    each record's values land at its own offset, computed from the right operands, and the
    gradient is the eager path's bit for bit (the sweep reads the same values)."""
    a = np.random.default_rng(8).uniform(0.999, 1.001, 64)
    n = 2 * _config.STAGE_RECORDS + 100
    assert n * 64 > _config.SEGMENT_VALUES

    def run():
        x = tapegrad.tensor(a, requires_grad=True)
        y, want, keep = x, a.copy(), []
        for k in range(n):
            y = y * 0.999 + 0.001 if k % 2 else y * x
            want = want * 0.999 + 0.001 if k % 2 else want * a
            if k % 997 == 0:
                keep.append((y, want.copy()))
        made_lazy = _is_lazy(y)
        y.sum().backward()
        for t, w in keep + [(y, want)]:
            np.testing.assert_array_equal(t.detach().numpy(), w)
        return x.grad.numpy(), made_lazy

    lazy, was_lazy = run()
    monkeypatch.setattr(TT, "_LAZY_MAX", (0,) * len(T.OPS))
    monkeypatch.setattr(TT, "_LAZY_BIG", (1,) * len(T.OPS))
    eager, was_eager_lazy = run()
    assert was_lazy and not was_eager_lazy
    np.testing.assert_array_equal(_bits(lazy), _bits(eager))


def test_lazy_values_read_from_another_thread():
    x = tapegrad.tensor(np.linspace(0.0, 1.0, 8), requires_grad=True)
    made = []

    def worker():
        made.append(tapegrad.sin(x * 3.0) + x)

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    y = made[0]
    assert _is_lazy(y)
    with tapegrad.no_grad():
        ref = (tapegrad.sin(tapegrad.tensor(np.linspace(0.0, 1.0, 8)) * 3.0)
               + tapegrad.tensor(np.linspace(0.0, 1.0, 8))).numpy()
    np.testing.assert_array_equal(y.detach().numpy(), ref)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.cos(3 * np.linspace(0, 1, 8)) + 1,
                               rtol=1e-14)


def test_lazy_off_computes_every_result_at_once():
    """TAPEGRAD_LAZY=0 (read at import): no lazy results, the same values and gradients."""
    code = ("import numpy as np, tapegrad as t\n"
            "from tapegrad import _tensor as TT\n"
            "x = t.tensor(np.linspace(-2, 2, 16), requires_grad=True)\n"
            "y = t.tanh(x * x + 0.5) - t.sin(x) / 3.0\n"
            "assert y.__class__ is not TT._Lazy\n"
            "y.sum().backward()\n"
            "print(repr(y.detach().numpy().tobytes().hex()),\n"
            "      repr(x.grad.numpy().tobytes().hex()))\n")
    env = {**os.environ, "TAPEGRAD_LAZY": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    x = tapegrad.tensor(np.linspace(-2, 2, 16), requires_grad=True)
    y = tapegrad.tanh(x * x + 0.5) - tapegrad.sin(x) / 3.0
    assert _is_lazy(y)
    y.sum().backward()
    assert out.split() == [repr(y.detach().numpy().tobytes().hex()),
                           repr(x.grad.numpy().tobytes().hex())]


def test_flush_computes_lazy_records_in_order():
    """The compiled flush alone: a record staged as op + LAZY gets its values from its
    operands' offsets, which earlier rows of the same flush may have computed."""
    seg = E.Segment()
    a = np.array([1.0, 2.0, 3.0])
    x = seg.record(T.CONST, -1, -1, 0.0, a)
    o = seg.nbulk
    seg.nbulk += 6
    seg.nrec += 2
    seg.stage.extend((T.MULC + T.LAZY, x, 2.0, 3, T.ADD + T.LAZY, x + 1, x, 3))
    seg.flush()
    np.testing.assert_array_equal(seg.bulk[o:o + 6], [2.0, 4.0, 6.0, 3.0, 6.0, 9.0])
    assert list(seg.cols[0][x + 1:x + 3]) == [T.MULC, T.ADD]
    assert list(seg.cols[6][x + 1:x + 3]) == [o, o + 3]


@pytest.mark.parametrize("name, f", BINARY, ids=[b[0] for b in BINARY])
def test_values_read_at_once_with_one_operand_lazy(name, f):
    """A lazy result read right away is computed with NumPy when its operands' arrays hold
    their records' values, else by the flush: both ways, operands lazy or not."""
    a = np.random.default_rng(9).normal(size=5)
    x = tapegrad.tensor(a, requires_grad=True)
    for u, v in ((x * 2.0, x), (x, x * 2.0), (x * 2.0, x * 3.0), (x, x)):
        _fresh()
        w = f(tapegrad, u, v)
        assert _is_lazy(w)
        got = w.detach().numpy().copy()
        with tapegrad.no_grad():
            want = f(tapegrad, tapegrad.tensor(u.detach().numpy()),
                     tapegrad.tensor(v.detach().numpy())).numpy()
        np.testing.assert_array_equal(_bits(got), _bits(want))


def test_values_read_after_the_operands_changed_are_the_recorded_ones():
    """Read after its operand was written (in place, through a view, detach(), .data,
    numpy(), or .data replaced), a lazy result has the value of the op when it was made,
    as an eager one: a constant operand and a non-leaf one whose value was read."""
    a = np.array([1.0, 2.0, 3.0])
    writes = [
        lambda t: t.add_(1.0),
        lambda t: t[1:].mul_(2.0),
        lambda t: t.detach().add_(1.0),
        lambda t: t.data.add_(1.0),
        lambda t: t.detach().numpy().__setitem__(0, 9.0),
        lambda t: setattr(t, "data", tapegrad.tensor([7.0, 7.0, 7.0])),
    ]
    for write in writes:
        for constant in (True, False):
            x = tapegrad.tensor(a, requires_grad=True)
            if constant:
                src = tapegrad.tensor(a)
            else:
                src = x * 1.0
                assert src.tolist() == a.tolist()  # read: an array from now on
            _fresh()
            y = src * 2.0
            z = x * src
            w = src - x
            assert _is_lazy(y) != constant and _is_lazy(z) and _is_lazy(w)
            with tapegrad.no_grad():
                write(src)
            np.testing.assert_array_equal(y.detach().numpy(), a * 2.0)
            np.testing.assert_array_equal(z.detach().numpy(), a * a)
            np.testing.assert_array_equal(w.detach().numpy(), 0.0 * a)


def test_reading_each_result_soon_pauses_laziness():
    """A lazy result read while fewer than _LAZY_PAYS lazy records are staged (each result
    read soon, as the tutorial's while y.norm() < 1000 loop) makes the next _LAZY_PAUSE
    records of the segment eager; a long chain read at its end stays lazy."""
    x = tapegrad.tensor(np.linspace(0.5, 1.0, 3), requires_grad=True)
    y = x * 2.0
    assert _is_lazy(y)
    assert y.norm().item() > 0  # read at once
    seg = y._seg
    assert seg.lazy_off == seg.nrec - 1 + TT._LAZY_PAUSE or seg.lazy_off > seg.nrec
    y = y * 2.0
    assert not _is_lazy(y)
    while seg.nrec < seg.lazy_off:
        y = y * 1.0
    y = y * 2.0
    assert _is_lazy(y)  # the pause is over
    _fresh()
    for _ in range(TT._LAZY_PAYS + 1):
        y = tapegrad.sin(y * 1.5)
    off = seg.lazy_off
    y.sum().backward()  # reads y with enough lazy records staged: no pause
    assert seg.lazy_off == off


def test_reading_lazy_values_while_their_thread_records_more():
    """A second thread reads lazy results (flushing their segment) while the thread that
    made them goes on recording into it: every value and the final gradient stay exact."""
    import queue

    a = np.random.default_rng(11).uniform(0.9, 1.1, 32)
    n = 3000
    out: queue.Queue = queue.Queue()
    result = {}

    def worker():
        x = tapegrad.tensor(a, requires_grad=True)
        y, want, acc = x, a.copy(), 0.0
        for k in range(n):
            y = (y * x if k % 3 else y * 0.99 + 0.01) if k % 7 else tapegrad.sin(y * 0.5)
            want = ((want * a if k % 3 else want * 0.99 + 0.01) if k % 7
                    else np.sin(want * 0.5))
            if k % 13 == 0:  # records with side fields (a sum, a broadcast)
                acc = acc + (y * x[k % 32]).sum()
            if k % 50 == 0:
                out.put((y, want.copy()))
        out.put(None)
        (y.sum() + acc).backward()
        result["grad"] = x.grad.numpy().copy()
        result["y"] = want

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        th = threading.Thread(target=worker)
        th.start()
        checked = 0
        while True:
            item = out.get()
            if item is None:
                break
            t, want = item
            np.testing.assert_allclose(t.detach().numpy(), want, rtol=1e-12, atol=0)
            checked += 1
        th.join()
    finally:
        sys.setswitchinterval(interval)
    assert checked == n // 50

    def alone():
        x = tapegrad.tensor(a, requires_grad=True)
        y, acc = x, 0.0
        for k in range(n):
            y = (y * x if k % 3 else y * 0.99 + 0.01) if k % 7 else tapegrad.sin(y * 0.5)
            if k % 13 == 0:
                acc = acc + (y * x[k % 32]).sum()
        (y.sum() + acc).backward()
        result["alone"] = x.grad.numpy().copy()

    # the same chain with no reader, in a thread of its own too: from a fresh segment, as the
    # worker's (where segments end decides which elements x[k] are given back, and so the
    # order a leaf's adjoints add in: Tensor.__getitem__)
    th = threading.Thread(target=alone)
    th.start()
    th.join()
    np.testing.assert_array_equal(_bits(result["grad"]), _bits(result["alone"]))


def test_random_programs_give_the_eager_bits(monkeypatch):
    """200 random programs, lazy and then with laziness off: every value read, the output and
    the gradients are the same bits."""
    for seed in range(200):
        _fresh()
        lazy = random_program(seed)
        with monkeypatch.context() as m:
            m.setattr(TT, "_LAZY_MAX", (0,) * len(T.OPS))
            m.setattr(TT, "_LAZY_BIG", (1,) * len(T.OPS))
            eager = random_program(seed)
        assert len(lazy) == len(eager)
        for got, want in zip(lazy, eager):
            np.testing.assert_array_equal(_bits(got), _bits(want), err_msg=f"seed {seed}")


def _sliced(t, x, w):
    """Slices (steps 1 to 3, of slices, from the end) and cats of lazy values, each used by a
    product that saves it, then summed: an ODE stage's shape."""
    y = x * w + 0.5  # lazy
    a = y[1:] * y[:-1]  # lazy slices, a lazy product
    b = y[::2][1:] * y[1::2][:-1]  # slices of slices, step 2
    c = y[::3] * 2.0
    d = t.cat([y[:1], a])  # a one-element eager part and a lazy one
    e = t.cat([b, c, a[-2:]]) * t.tanh(t.cat([b, c, a[:2]]))
    f = t.cat([d * d, e])
    return f, (f * t.sin(f)).sum()


def test_slices_and_cat_of_lazy_values_are_lazy_and_give_pytorchs_values():
    """Slices of a lazy value and cat with a lazy part stage records the flush gathers: the
    values the products saved (hence the gradient) and the values read are the eager ones."""
    a = _values(16, 31, special=False)
    x = tapegrad.tensor(a, requires_grad=True)
    w = tapegrad.tensor(a[::-1] * 0.5, requires_grad=True)
    y = x * w + 0.5
    assert _is_lazy(y[1:]) and _is_lazy(y[::2][1:]) and _is_lazy(tapegrad.cat([y[1:3], y[2:]]))
    assert _is_lazy(y) and not _is_lazy(y[1:2]) and not _is_lazy(y)  # one element: y is read
    f, loss = _sliced(tapegrad, x, w)
    assert _is_lazy(f)
    loss.backward()
    got = [f.detach().numpy(), x.grad.numpy(), w.grad.numpy()]
    with tapegrad.no_grad():
        eager = _sliced(tapegrad, tapegrad.tensor(a), tapegrad.tensor(a[::-1] * 0.5))[0]
    np.testing.assert_array_equal(_bits(got[0]), _bits(eager.numpy()))
    if real_torch is not None:
        xt = real_torch.tensor(a, requires_grad=True)
        wt = real_torch.tensor(a[::-1] * 0.5, requires_grad=True)
        ft, lt = _sliced(real_torch, xt, wt)
        lt.backward()
        np.testing.assert_allclose(got[0], ft.detach().numpy(), rtol=1e-14)
        np.testing.assert_allclose(got[1], xt.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(got[2], wt.grad.numpy(), rtol=1e-12)
    xs = tapegrad.tensor(a, requires_grad=True)
    assert gradcheck(lambda v: _sliced(tapegrad, v, w.detach())[1], (xs,))


@pytest.mark.parametrize("of", ["a lazy value", "a leaf"])
def test_a_lazy_slice_is_a_view_of_its_base(of):
    """As PyTorch's slices (of a lazy value y = x * 1.0, or of the leaf x itself): a write
    through the slice reaches the base and the other way round, before or after either was
    read; a saved slice whose base is written raises the version error; a slice whose base
    was written is recorded anew from the new values."""

    def fresh_base(t=tapegrad):
        x = t.tensor(np.arange(6.0), requires_grad=True)
        return x, (x * 1.0 if of == "a lazy value" else x)

    x, y = fresh_base()
    s = y[1:4]
    assert _is_lazy(s)
    with tapegrad.no_grad():
        s.mul_(10.0)  # through the (lazy) slice
    np.testing.assert_array_equal(y.detach().numpy(), [0, 10, 20, 30, 4, 5])
    _fresh()  # (the reads above paused laziness)
    x, y2 = fresh_base()
    s2 = y2[::2]
    assert _is_lazy(s2)
    with tapegrad.no_grad():
        y2.add_(100.0)  # the base, the slice still unread
    np.testing.assert_array_equal(s2.detach().numpy(), [100, 102, 104])
    _fresh()
    x, y3 = fresh_base()
    s3 = y3[2:]
    assert _is_lazy(s3)
    loss = (s3 * s3).sum()  # saves the slice
    with tapegrad.no_grad():
        y3.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    _fresh()
    x, y4 = fresh_base()
    s4 = y4[1:]
    assert _is_lazy(s4)
    with tapegrad.no_grad():
        y4.add_(1.0)  # s4's record is stale now: an op on s4 uses its new values
    _fresh()
    assert _is_lazy(s4)
    z = s4 * 2.0
    np.testing.assert_array_equal(z.detach().numpy(), 2 * (np.arange(1.0, 6.0) + 1))
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 2, 2, 2, 2, 2])
    if real_torch is not None:
        xt, y3t = fresh_base(real_torch)
        s3t = y3t[2:]
        lt = (s3t * s3t).sum()
        with real_torch.no_grad():
            y3t.mul_(2.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            lt.backward()
        xt, y4t = fresh_base(real_torch)
        s4t = y4t[1:]
        with real_torch.no_grad():
            y4t.add_(1.0)
        (s4t * 2.0).sum().backward()
        np.testing.assert_array_equal(xt.grad.numpy(), [0, 2, 2, 2, 2, 2])


def test_an_ode_stays_lazy_until_its_result_is_read():
    """RK4 on y' = f(y), f_0 = x_0, f_i = x_i y_(i-1), its state built with cat (an_ode):
    every intermediate is lazy, the flush runs at the sum, and the gradient is PyTorch's."""
    from tapegrad.bench.workloads import an_ode_state

    a = np.random.default_rng(4).uniform(0, 1, 20)
    x = tapegrad.tensor(a, requires_grad=True)
    y = an_ode_state(tapegrad, x, 3)
    assert _is_lazy(y) and E.state.seg.lazy_off == 0
    y.sum().backward()
    if real_torch is not None:
        xt = real_torch.tensor(a, requires_grad=True)
        an_ode_state(real_torch, xt, 3).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-13)
    assert gradcheck(lambda v: an_ode_state(tapegrad, v, 3).sum(),
                     (tapegrad.tensor(a, requires_grad=True),))


def _leaf_sliced(t, x):
    """Slices of a leaf (steps 1 to 3, from the end, of slices) used by products that save
    them, a one-element slice (eager) and a cat: an ODE stage's use of its parameters."""
    a = x[1:] * x[:-1]
    b = x[::2][1:] * x[1::3][:2].sum()
    c = t.cat([x[:1], a[1:] * x[2:]])
    return (a.sum() + b.sum() * 0.5 + (c * c).sum()), c


def test_slices_of_a_leaf_are_lazy_and_give_pytorchs_values():
    """x[1:] of a 1-d float64 leaf stages a lazy SLICE gathered from the leaf's record: the
    values (those read and those the products saved) and the gradients are the eager ones
    and PyTorch's."""
    a = _values(11, 41, special=False)
    x = tapegrad.tensor(a, requires_grad=True)
    assert _is_lazy(x[1:]) and _is_lazy(x[::2]) and _is_lazy(x[2:][::3])
    assert not _is_lazy(x[3:4]) and not _is_lazy(x[:0])
    loss, c = _leaf_sliced(tapegrad, x)
    assert _is_lazy(c)
    loss.backward()
    got = [c.detach().numpy(), x.grad.numpy()]
    with tapegrad.no_grad():
        eager = _leaf_sliced(tapegrad, tapegrad.tensor(a))[1]
    np.testing.assert_array_equal(_bits(got[0]), _bits(eager.numpy()))
    if real_torch is not None:
        xt = real_torch.tensor(a, requires_grad=True)
        lt, ct = _leaf_sliced(real_torch, xt)
        lt.backward()
        np.testing.assert_allclose(float(loss.detach()), float(lt.detach()), rtol=1e-14)
        np.testing.assert_allclose(got[0], ct.detach().numpy(), rtol=1e-14)
        np.testing.assert_allclose(got[1], xt.grad.numpy(), rtol=1e-12)
    assert gradcheck(lambda v: _leaf_sliced(tapegrad, v)[0],
                     (tapegrad.tensor(a, requires_grad=True),))
