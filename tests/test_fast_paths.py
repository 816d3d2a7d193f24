"""The eager fast paths: float64 arrays, elements, slices and ``cat`` of 1-d tensors, and the
compact staging of array records.

Each fast path skips checks the general path makes, so each test feeds it the inputs at its
edges (mixed dtypes, broadcasting, non-contiguous arrays, empty pieces, writes through views)
and compares values and gradients with PyTorch (when installed) and with central differences.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tapegrad
from tapegrad import _engine as E
from tapegrad import _tensor as TT
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")


def _mixed(t, x, v, reps):
    """Every staged form in turn: elements, scalar-vector broadcasts, vector ops with and
    without a constant, slices, cat, sin and tanh, a division, sums."""
    acc = v
    total = x[0] * 0.0
    for k in range(reps):
        e = x[k % x.shape[0]]                         # an element (its index map shared)
        w = e * acc                                   # a 0-d scalar broadcast to a vector
        w = w * 0.5 + v                               # MULC (a constant), ADD
        w = t.cat([w[:1], w[1:] * acc[:-1]])          # slices and cat
        w = t.sin(w) if k % 2 else t.tanh(w)          # unary ops on arrays
        acc = w / 3.0 - acc * 0.25                    # DIVC, SUB
        total = total + e * 2.0 + acc.sum()
    return total + (acc * acc).sum()


def _inputs(t, requires_grad=True):
    rng = np.random.default_rng(7)
    x = t.tensor(rng.uniform(-1, 1, 5), dtype=t.float64, requires_grad=requires_grad)
    v = t.tensor(rng.uniform(-1, 1, 6), dtype=t.float64, requires_grad=requires_grad)
    return x, v


def test_staged_forms_across_flushes_keep_every_value_in_place():
    """300 repetitions stage ~4 000 records, past two flushes of the staging list: the
    record columns must put each array record's values where the previous one's end (the
    offsets of the compact ARR form are not staged, the flush counts them).  A recorded sin or
    cos of 128 or more elements (SINC, COSC: none here, but an earlier test's may share the
    segment) keeps its derivative in the arena just before its values."""
    x, v = _inputs(tapegrad)
    y = _mixed(tapegrad, x, v, 300)
    seg = y._seg
    assert seg.nrec > 2 * E.STAGE_LIMIT // 4  # more records than two stage lists hold
    seg.flush()
    n, off = seg.cols[5][:seg.nrec], seg.cols[6][:seg.nrec]
    arrays = np.flatnonzero(n != 1)
    assert arrays.size > 1000
    saved = np.isin(seg.cols[0][arrays], (E.T.SINC, E.T.COSC))  # (their derivative first)
    taken = n[arrays] * np.where(saved, 2, 1)
    expected = np.concatenate(([0], np.cumsum(taken)[:-1])) + np.where(saved, n[arrays], 0)
    np.testing.assert_array_equal(off[arrays], expected)
    # and the values stored there are the values the tensors hold (copied first when
    # deferred: TAPEGRAD_DEFER_MIN=2)
    w = x[1] * v
    w._seg.save_all()
    np.testing.assert_array_equal(w._seg.bulk[w._seg.nbulk - 6:w._seg.nbulk], w.detach().numpy())


def test_staged_forms_gradient_matches_finite_differences():
    x, v = _inputs(tapegrad)
    assert gradcheck(lambda a, b: _mixed(tapegrad, a, b, 40), (x, v))


@requires_torch
def test_staged_forms_gradient_matches_torch():
    outs = {}
    for lib in (tapegrad, real_torch):
        x, v = _inputs(lib)
        y = _mixed(lib, x, v, 300)
        y.backward()
        outs[lib.__name__] = [y.detach().numpy(), x.grad.numpy(), v.grad.numpy()]
    for a, b in zip(outs["tapegrad"], outs["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _edge_binaries(t):
    """+ - * on float64 arrays next to what the fast path must hand on: other dtypes,
    broadcasting, non-contiguous arrays, a 0-d array operand, Python numbers."""
    a = t.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]], dtype=t.float64, requires_grad=True)
    b = t.tensor([0.25, 2.0, -3.0], dtype=t.float64, requires_grad=True)
    s = t.tensor(1.5, dtype=t.float64, requires_grad=True)
    f32 = t.tensor([1.0, 2.0, 3.0], dtype=t.float32)
    i64 = t.tensor([1, 2, 3])
    outs = [
        a * b, a - b, b + a,                    # broadcasting: the general path
        a.t() * a.t(), a.t() + 1.0,             # non-contiguous (transposed) operands
        b * f32, f32 - b, b + i64, i64 * 2.5,   # mixed dtypes: promoted as PyTorch does
        s * b, b - s, s - b, b[0] * b, 2.0 - b, b / 4.0, b / 0.5, b / -8.0,
        a[0] * b[1:].sum(),
    ]
    loss = sum((o.double() * (k + 1)).sum() for k, o in enumerate(outs) if o.requires_grad)
    loss.backward()
    return outs, a.grad, b.grad, s.grad


@requires_torch
def test_binary_fast_path_edges_match_torch():
    got = _edge_binaries(tapegrad)
    want = _edge_binaries(real_torch)
    for g, w in zip(got[0], want[0]):
        assert str(g.dtype).split(".")[-1] == str(w.dtype).split(".")[-1]
        assert tuple(g.shape) == tuple(w.shape)
        np.testing.assert_array_equal(g.detach().numpy(), w.detach().numpy())
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-14)


def test_binary_fast_path_edges_hand():
    outs, ga, gb, gs = _edge_binaries(tapegrad)
    assert outs[0].shape == (2, 3)
    assert outs[5].dtype == tapegrad.float64 and outs[8].dtype == tapegrad.float32
    np.testing.assert_array_equal(outs[11].detach().numpy(), [1.25, -0.5, 4.5])  # s - b
    np.testing.assert_array_equal(outs[15].detach().numpy(), [0.5, 4.0, -6.0])  # b / 0.5
    assert gradcheck(lambda a, b, s: (a * b + s * b - b / 0.5 + a.t().t() * 2.0).sum(),
                     _edge_binaries_inputs())


def _edge_binaries_inputs():
    rng = np.random.default_rng(3)
    return (tapegrad.tensor(rng.normal(size=(2, 3)), requires_grad=True),
            tapegrad.tensor(rng.normal(size=3), requires_grad=True),
            tapegrad.tensor(0.7, dtype=tapegrad.float64, requires_grad=True))


def _large_operands(shape, transposed):
    """Two float64 arrays of >= 2048 elements (the compiled loop's size) with inf, nan, 0.0
    and -0.0 among them; ``transposed``: the first one a non-contiguous view's values."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=shape)
    b = rng.normal(size=shape)
    a.flat[:5] = [np.inf, -0.0, np.nan, 0.0, -np.inf]
    b.flat[:5] = [0.0, -0.0, 1.0, -0.0, np.inf]
    if transposed:
        a = np.ascontiguousarray(a.T).T  # the same values, Fortran order
    return a, b


@pytest.mark.parametrize("shape, transposed", [((64, 64), False), ((2048,), False),
                                                ((3, 700), False), ((64, 40), True)])
def test_large_float64_add_sub_mul_take_the_compiled_loop_and_match_numpy(
        monkeypatch, shape, transposed):
    """+ - * of same-shape float64 arrays of >= 2048 elements run _tape.binary_into instead of
    NumPy: the same values bit for bit (inf, nan, signed zeros), no warning, and gradients
    that are the other operand's values.  (Recorded ones of up to LAZY_ARITH elements are
    lazy, computed by the flush: tests/test_lazy.py; here they are not.)"""
    monkeypatch.setattr(TT, "_LAZY_MAX", (0,) * len(E.T.OPS))
    monkeypatch.setattr(TT, "_LAZY_BIG", (1,) * len(E.T.OPS))
    calls = []
    kernel = E.T.binary_into
    monkeypatch.setattr(E.T, "binary_into", lambda *args: calls.append(1) or kernel(*args))
    a, b = _large_operands(shape, transposed)
    leaf = tapegrad.tensor(a.T if transposed else a, requires_grad=True)
    x = leaf.t() if transposed else leaf  # a view: not C-contiguous
    y = tapegrad.tensor(b, requires_grad=True)
    w = np.random.default_rng(5).normal(size=shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outs = [x + y, x - y, x * y]
    assert len(calls) == 3
    with np.errstate(all="ignore"):
        want = [a + b, a - b, a * b]
    for got, exp in zip(outs, want):
        assert got.shape == exp.shape and got.dtype == tapegrad.float64
        g = got.detach().numpy()
        np.testing.assert_array_equal(g, exp)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(exp))
    sum(((o * tapegrad.tensor(w * (k + 1))).sum() for k, o in enumerate(outs))).backward()
    with np.errstate(all="ignore"):
        want_gx = w + 2 * w + 3 * w * b
        want_gy = w - 2 * w + 3 * w * a
    np.testing.assert_allclose(y.grad.numpy(), want_gy, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(leaf.grad.numpy(), want_gx.T if transposed else want_gx,
                               rtol=1e-15, atol=1e-15)


@requires_torch
def test_large_float64_add_sub_mul_match_torch():
    a, b = _large_operands((64, 64), False)
    w = np.random.default_rng(5).normal(size=(64, 64))
    res = {}
    for lib in (tapegrad, real_torch):
        x = lib.tensor(a, requires_grad=True)
        y = lib.tensor(b, requires_grad=True)
        outs = [x + y, x - y, x * y]
        sum(((o * lib.tensor(w * (k + 1))).sum() for k, o in enumerate(outs))).backward()
        res[lib] = [o.detach().numpy() for o in outs] + [x.grad.numpy(), y.grad.numpy()]
    for got, want in zip(res[tapegrad][:3], res[real_torch][:3]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(res[tapegrad][3:], res[real_torch][3:]):
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


def test_large_float64_add_sub_mul_match_finite_differences():
    rng = np.random.default_rng(2)
    x = tapegrad.tensor(rng.normal(size=2048), requires_grad=True)
    y = tapegrad.tensor(rng.normal(size=2048), requires_grad=True)
    assert gradcheck(lambda x, y: ((x * y - x) * (y + x)).sum(), (x, y))


def test_binary_fast_path_shape_mismatch_is_pytorch_error():
    a = tapegrad.ones(3, dtype=tapegrad.float64, requires_grad=True)
    b = tapegrad.ones(2, dtype=tapegrad.float64)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of "
                                           r"tensor b \(2\) at non-singleton dimension 0"):
        a * b


def test_quiet_ops_warn_nothing_and_restore_numpy_state():
    before = np.geterr()
    x = tapegrad.tensor([1000.0, -1.0, 0.0, np.inf], dtype=tapegrad.float64, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outs = [tapegrad.exp(x), tapegrad.log(x), x / 0.0, x**2, x / 1e-300, tapegrad.sin(x),
                tapegrad.cos(x), tapegrad.sqrt(x), 1.0 / x, x / x]
        sum(o.sum() for o in outs).backward()
    assert np.geterr() == before
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(outs[0].detach().numpy(), np.exp(x.detach().numpy()))
        np.testing.assert_array_equal(outs[2].detach().numpy(), [np.inf, -np.inf, np.nan, np.inf])
    # a user's own error state is theirs again after each op
    with np.errstate(divide="raise"):
        tapegrad.log(x)
        with pytest.raises(FloatingPointError):
            np.log(np.zeros(1))


@requires_torch
@pytest.mark.parametrize("n", [1, 2, 5, 63, 64, 200])
def test_sin_cos_of_small_arrays_match_torch(n):
    rng = np.random.default_rng(n)
    a = rng.uniform(-20, 20, n)
    for name in ("sin", "cos"):
        got = getattr(tapegrad, name)(tapegrad.tensor(a)).numpy()
        want = getattr(real_torch, name)(real_torch.tensor(a)).numpy()
        np.testing.assert_array_max_ulp(got, want, maxulp=1)


def _slices(t):
    v = t.tensor([1.0, -2.0, 3.0, 0.5, 4.0, -1.5, 2.5], dtype=t.float64, requires_grad=True)
    parts = [v[1:], v[:-1], v[::2], v[-3:], v[5:2], v[:100], v[2:3], v[1:6:3]]
    loss = sum((p * (k + 1.0)).sum() for k, p in enumerate(parts) if p.numel())
    loss = loss + (t.cat([v[:1], v[1:] * v[:-1]]) * t.cat((v[3:], v[:3]))).sum()
    loss.backward()
    return parts, loss, v.grad


@requires_torch
def test_slices_and_cat_match_torch():
    got, want = _slices(tapegrad), _slices(real_torch)
    for g, w in zip(got[0], want[0]):
        assert tuple(g.shape) == tuple(w.shape)
        np.testing.assert_array_equal(g.detach().numpy(), w.detach().numpy())
        if g.numel():
            assert type(g.grad_fn).__name__ == type(w.grad_fn).__name__
    np.testing.assert_allclose(got[2].numpy(), want[2].numpy(), rtol=1e-14)


def test_slices_and_cat_hand():
    parts, _, grad = _slices(tapegrad)
    assert parts[0].grad_fn.name() == "SliceBackward0"
    assert parts[4].shape == (0,)
    np.testing.assert_array_equal(parts[7].detach().numpy(), [-2.0, 4.0])

    def f(v, w):
        return (tapegrad.cat([v[:2] * w[1:3], w, v[3:] * 2.0], -1) ** 2).sum()

    rng = np.random.default_rng(5)
    v = tapegrad.tensor(rng.normal(size=6), requires_grad=True)
    w = tapegrad.tensor(rng.normal(size=4), requires_grad=True)
    assert gradcheck(f, (v, w))
    y = tapegrad.cat((v[:2], w))
    assert y.grad_fn.name() == "CatBackward0"
    assert len(y.grad_fn.next_functions) == 2


def test_slice_first_then_the_whole_tensor():
    """A leaf's first use in a segment is a slice (its LEAF record is made then), then the leaf
    itself is an operand whose values the backward reads; and a slice of a tensor recorded in an
    older segment (an IMPORT record made then)."""
    def f(t, v, w):
        a = v[1:4]
        b = (v * w).sum() + (a * a).sum()
        return b + (w[:2] * v[:2]).sum()

    rng = np.random.default_rng(12)
    v0, w0 = rng.normal(size=5), rng.normal(size=5)

    def run(t):
        v = t.tensor(v0, dtype=t.float64, requires_grad=True)
        w = t.tensor(w0, dtype=t.float64, requires_grad=True)
        f(t, v, w).backward()
        return v.grad.numpy(), w.grad.numpy()

    got = run(tapegrad)
    want = (w0 + np.r_[0.0, 2 * v0[1:4], 0.0] + np.r_[w0[:2], 0, 0, 0],
            v0 + np.r_[v0[:2], 0, 0, 0])
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=1e-14)
    if real_torch is not None:
        for g, e in zip(got, run(real_torch)):
            np.testing.assert_allclose(g, e, rtol=1e-14)
    v = tapegrad.tensor(v0, dtype=tapegrad.float64, requires_grad=True)
    y = v * 3.0
    E.state.seg = E.Segment()  # y's segment is an older one now (as after a rotation)
    (y[1:] * y[:-1]).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), 9.0 * (np.r_[v0[1:], 0] + np.r_[0, v0[:-1]]),
                               rtol=1e-14)


def test_slice_is_a_view_of_its_base():
    a = tapegrad.zeros(5, dtype=tapegrad.float64)
    a[1:3].add_(1.0)
    a[::2].mul_(3.0)
    np.testing.assert_array_equal(a.numpy(), [0.0, 1.0, 3.0, 0.0, 0.0])
    w = tapegrad.ones(4, dtype=tapegrad.float64, requires_grad=True)
    y = w * 2.0
    s = y[1:3]
    s.mul_(5.0)  # a write through the view: y's history becomes CopySlices
    assert y.grad_fn.name() == "torch::autograd::CopySlices"
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 10.0, 10.0, 2.0])


def test_cat_falls_back_for_empty_and_other_dtypes():
    a = tapegrad.tensor([1.0, 2.0], dtype=tapegrad.float64, requires_grad=True)
    e = tapegrad.tensor([], dtype=tapegrad.float64)
    f = tapegrad.tensor([3.0], dtype=tapegrad.float32)
    y = tapegrad.cat([a, e, f])
    assert y.dtype == tapegrad.float64 and y.shape == (3,)
    (y * tapegrad.tensor([1.0, 2.0, 3.0], dtype=tapegrad.float64)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 2.0])
    with pytest.raises(RuntimeError, match="zero-dimensional tensor"):
        tapegrad.cat([a, a[0]])


def test_elements_share_index_maps_in_a_trace():
    """Elements and broadcasts share their index maps within a segment; a trace of them
    replays and optimizes to eager's gradient."""
    def f(x):
        return (x[0] * x + x[1] * x[2] * x + x[0]).sum() + x[0] * x[3]

    x0 = np.array([0.3, -1.2, 0.7, 2.0])
    tr = tapegrad.trace(f, x0)
    x = tapegrad.tensor(x0, requires_grad=True)
    f(x).backward()
    np.testing.assert_allclose(tr.gradient(x0), x.grad.numpy(), rtol=1e-14)
    x1 = np.array([1.0, 2.0, -0.5, 0.25])
    x = tapegrad.tensor(x1, requires_grad=True)
    f(x).backward()
    np.testing.assert_allclose(tr.gradient(x1), x.grad.numpy(), rtol=1e-14)
    tr.optimize()
    np.testing.assert_allclose(tr.gradient(x1), x.grad.numpy(), rtol=1e-14)


def _elements_of_every_owner(t, x):
    """Elements of a leaf, of a non-leaf, of a slice (whose root is another tensor), at
    negative indices, and of an owner written in place between two reads of it."""
    y = x * 1.5 - 0.25                    # a non-leaf owner
    s = y[1:]                             # a view: its elements' root is y
    total = x[0] * x[-1] + y[2] * s[0] - s[-2] * x[1]
    z = x * 1.0
    a = z[3]                              # read before z is written
    z.mul_(3.0)                           # the owner changes: later elements see it
    total = total + a * z[3] + z[-1] * z[0]
    for k in range(x.shape[0]):           # many elements of one leaf, one shared map each
        total = total + x[k] * y[k - 1]
    return total


@pytest.mark.parametrize("seed", [0, 1])
def test_elements_of_leaves_non_leaves_views_and_written_owners(seed):
    """x[k] of a 1-d float64 tensor takes the inline element path (one staged row, no side
    fields): its values and gradients match PyTorch's and central differences for every
    kind of owner."""
    x0 = np.random.default_rng(seed).normal(size=6)
    x = tapegrad.tensor(x0, requires_grad=True)
    out = _elements_of_every_owner(tapegrad, x)
    assert out.grad_fn.name() == "AddBackward0"
    out.backward()
    assert gradcheck(lambda x: _elements_of_every_owner(tapegrad, x),
                     (tapegrad.tensor(x0, requires_grad=True),))
    if real_torch is not None:
        xt = real_torch.tensor(x0, requires_grad=True)
        ref = _elements_of_every_owner(real_torch, xt)
        ref.backward()
        assert float(out.detach()) == pytest.approx(float(ref.detach()), rel=1e-14)
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-13)
        assert x[2].grad_fn.name() == xt[2].grad_fn.name() == "SelectBackward0"


def test_elements_below_and_above_the_preset_maps_over_backwards_and_a_trace():
    """The maps of x[k], k < 256, sit in every aux table from the start; larger k get a
    shared entry per segment.  Both kinds give the right gradient in a first segment, in
    the pooled ones after each backward, and in a trace's replay."""
    ks = (0, 1, 2, 255, 256, 257, 299, 254)

    def f(x):
        total = x[ks[0]] * 0.5
        for i, k in enumerate(ks):
            total = total + x[k] * x[ks[i - 1]] * float(i + 1)
        return total

    rng = np.random.default_rng(7)
    for _ in range(3):
        x0 = rng.normal(size=300)
        x = tapegrad.tensor(x0, requires_grad=True)
        f(x).backward()
        assert gradcheck(f, (tapegrad.tensor(x0, requires_grad=True),))
        if real_torch is not None:
            xt = real_torch.tensor(x0, requires_grad=True)
            f(xt).backward()
            np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-13)
        tr = tapegrad.trace(f, x0)
        np.testing.assert_allclose(tr.gradient(x0 * 2.0), _grad_of(f, x0 * 2.0), rtol=1e-13)


def _grad_of(f, x0):
    x = tapegrad.tensor(x0, requires_grad=True)
    f(x).backward()
    return x.grad.numpy()


def test_many_live_elements_stay_cheap_and_follow_their_base():
    """Thousands of live elements of one tensor: the weak list of them is pruned at powers
    of two (not at every new element past 4 096), and each still follows writes."""
    w = tapegrad.tensor(np.arange(10_000.0), requires_grad=True)
    elems = [w[k] for k in range(10_000)]
    with tapegrad.no_grad():
        w.mul_(2.0)
    assert [float(e.detach()) for e in elems[::999]] == [2.0 * k for k in range(0, 10_000, 999)]
    sum(elems[:3], elems[3]).backward()
    np.testing.assert_array_equal(w.grad.numpy()[:5], [1.0, 1.0, 1.0, 1.0, 0.0])



def _scans(monkeypatch):
    """Count the gc.get_referrers scans _tensor._track_elements makes."""
    calls = []
    real = TT.gc.get_referrers

    def counting(*objs):
        calls.append(len(objs))
        return real(*objs)
    monkeypatch.setattr(TT.gc, "get_referrers", counting)
    return calls


def test_a_write_with_no_live_element_scans_nothing(monkeypatch):
    """A root's elements refer to its mark: a write after they died (an optimizer step after
    backward) reads the mark's reference count and scans nothing."""
    calls = _scans(monkeypatch)
    w = tapegrad.tensor([1.0, 2.0, 3.0], dtype=tapegrad.float64, requires_grad=True)
    for _ in range(3):
        (w[0] * w[1] + w[2]).backward()
        assert w._x.elems.__class__ is TT._ElementMark
        with tapegrad.no_grad():
            w -= 0.1 * w.grad
        w.grad = None
    assert calls == []
    v = np.array([1.0, 2.0, 3.0])
    for _ in range(3):
        v = v - 0.1 * np.array([v[1], v[0], 1.0])
    np.testing.assert_allclose(w.detach().numpy(), v, rtol=1e-15)


@pytest.mark.parametrize("owner", ["leaf", "slice", "non-leaf"])
def test_elements_alive_at_a_write_are_found_once_then_tracked(monkeypatch, owner):
    """Elements of a leaf alive when it is written are found through its mark (two scans),
    follow the new values and differentiate through them; the root then tracks its elements
    by weak reference and later writes scan nothing."""
    calls = _scans(monkeypatch)

    def prog(t):
        w = t.tensor([1.0, 2.0, 3.0, 4.0], dtype=t.float64, requires_grad=True)
        src = {"leaf": lambda: w, "slice": lambda: w[1:], "non-leaf": lambda: w * 1.0}[owner]()
        root = w if owner != "non-leaf" else src
        e, f = src[0], src[2]
        g = src[1] * 1.0  # (dead elements are not found)
        with t.no_grad():
            root.mul_(3.0)
        seen = [float(e.detach()), float(f.detach())]
        h = src[1]
        with t.no_grad():
            root.add_(1.0)
        seen += [float(e.detach()), float(h.detach())]
        y = e * f + h * g
        y.backward()
        return [np.array(seen), np.array(float(y.detach())), w.grad.numpy()]

    got = prog(tapegrad)
    # once for the extras, once for their tensors, at the first write only; a non-leaf root
    # (written while recording, its elements often alive) tracks them from the start
    assert len(calls) == (0 if owner == "non-leaf" else 2)
    off = 1 if owner == "slice" else 0
    v = np.array([1.0, 2.0, 3.0, 4.0])[off:]
    np.testing.assert_allclose(got[0], [3 * v[0], 3 * v[2], 3 * v[0] + 1, 3 * v[1] + 1])
    if real_torch is not None:
        want = prog(real_torch)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-14)


def test_the_scan_budget_ends_marks_for_new_roots(monkeypatch):
    """After _MARK_SCANS scans every new root tracks its elements by weak reference from its
    first element: code that keeps elements across writes to fresh roots scans a bounded
    number of times, and its elements still follow the writes."""
    calls = _scans(monkeypatch)
    monkeypatch.setattr(TT, "_MARKS", [2])
    values = []
    for i in range(5):
        w = tapegrad.tensor([1.0, 2.0], dtype=tapegrad.float64, requires_grad=True)
        assert w._x is None or w._x.elems is None
        e = w[1]
        with tapegrad.no_grad():
            w.add_(float(i))
        values.append(float(e.detach()))
        assert isinstance(w._x.elems, list)
    assert values == [2.0 + i for i in range(5)]
    assert len(calls) == 4 and TT._MARKS[0] == 0


_FIRST_REACH_OPS = {
    "atan": lambda x, w: tapegrad.atan(x),
    "log1p": lambda x, w: tapegrad.log1p(x * x),
    "sqrt": lambda x, w: tapegrad.sqrt(x * x + 1.0),
    "tanh": lambda x, w: tapegrad.tanh(x),
    "relu": lambda x, w: tapegrad.relu(x),
    "mul": lambda x, w: x * w,
    "div": lambda x, w: w / (x * x + 1.0),
    "atan2": lambda x, w: tapegrad.atan2(x, w),
    "pow": lambda x, w: (x * x + 1.0) ** w,
    "maximum": lambda x, w: tapegrad.maximum(x, w),
}


@pytest.mark.parametrize("name", sorted(_FIRST_REACH_OPS))
def test_first_reached_adjoints_are_written_where_the_gradient_is_zero(name):
    """An elementwise adjoint writes (not adds to) the adjoint of an operand it reaches first,
    with no zero fill before: elements whose incoming gradient is zero must still be written,
    or an earlier backward's values left in the arena would leak into the gradient."""
    rng = np.random.default_rng(11)
    for _ in range(3):  # leave large values behind in the pooled arenas
        a = tapegrad.tensor(rng.normal(size=4096) * 1e6, requires_grad=True)
        (a * a * a).sum().backward()
    op = _FIRST_REACH_OPS[name]
    mask = tapegrad.tensor((np.arange(64) % 3 == 0).astype(np.float64))
    w = tapegrad.tensor(rng.uniform(0.5, 1.5, 64), requires_grad=True)
    x = tapegrad.tensor(rng.normal(size=64), requires_grad=True)
    assert gradcheck(lambda x, w: (op(x, w) * mask).sum(), (x, w))
    x.grad = w.grad = None
    (op(x, w) * mask).sum().backward()
    assert np.all(x.grad.numpy()[mask.numpy() == 0.0] == 0.0)
    if w.grad is not None:  # the binary ops
        assert np.all(w.grad.numpy()[mask.numpy() == 0.0] == 0.0)


def test_norm_of_a_float64_vector_is_a_scalar_with_its_gradient():
    x = tapegrad.tensor([3.0, -4.0, 0.5], dtype=tapegrad.float64, requires_grad=True)
    n = x.norm()
    assert n.grad_fn.name() == "LinalgVectorNormBackward0" and n.shape == ()
    assert (n < 6.0) and not (n < 5.0)
    (n * 2.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * np.array([3.0, -4.0, 0.5]) / n.item())
    assert gradcheck(lambda x: x.norm() * x.sum(), (x,))
    z = tapegrad.zeros(3, dtype=tapegrad.float64, requires_grad=True)
    z.norm().backward()
    np.testing.assert_array_equal(z.grad.numpy(), [0.0, 0.0, 0.0])  # PyTorch's subgradient 0


def test_scalar_comparisons_with_numbers_compare_as_float64():
    """A float64 scalar against a Python number: compared in float64 as PyTorch does (an int
    past 2**53 rounds first), nan unordered, the result a 0-d bool tensor."""
    a = tapegrad.tensor(2.5, dtype=tapegrad.float64, requires_grad=True)
    nan = tapegrad.tensor(float("nan"), dtype=tapegrad.float64)
    big = tapegrad.tensor(2.0**53, dtype=tapegrad.float64)
    got = [bool(a < 3), bool(a <= 2.5), bool(a > 2), bool(a >= 3), bool(a == 2.5),
           bool(a != 2.5), bool(nan < 1), bool(nan != 0.5), bool(nan == nan.item()),
           bool(big < 2**53 + 1), bool(big == 2**53 + 1)]
    assert got == [True, True, True, False, True, False, False, True, False, False, True]
    r = a < 3
    assert r.dtype == tapegrad.bool and r.shape == () and not r.requires_grad


_RANDOM_OPS = (
    lambda t, a, b, s: a + b, lambda t, a, b, s: a - b, lambda t, a, b, s: a * b,
    lambda t, a, b, s: a / 3.0, lambda t, a, b, s: t.sin(a), lambda t, a, b, s: t.tanh(a),
    lambda t, a, b, s: t.relu(a), lambda t, a, b, s: t.cat([a[:1], a[1:] * b[:-1]]),
    lambda t, a, b, s: s * a, lambda t, a, b, s: a - s, lambda t, a, b, s: 2.0 - a,
    lambda t, a, b, s: t.cat((a[a.shape[0] // 2:], a[:a.shape[0] // 2])),
    lambda t, a, b, s: a[::2].sum() * a, lambda t, a, b, s: t.cos(a) * a.norm(),
    lambda t, a, b, s: a * 0.5 + b,
)


def _random_program(t, x, w, seed, steps=60):
    """A random mix of the fast paths (and their fallbacks) on two float64 vectors: new
    values join a pool later ops draw from, new elements times scalars join another."""
    rnd = np.random.default_rng(seed)
    pool = [x, w, x * 1.0]
    scal = [x[0], w[1]]
    for _ in range(steps):
        k = int(rnd.integers(len(_RANDOM_OPS) + 1))
        a = pool[int(rnd.integers(len(pool)))]
        b = pool[int(rnd.integers(len(pool)))]
        s = scal[int(rnd.integers(len(scal)))]
        if k == len(_RANDOM_OPS):
            scal.append(a[int(rnd.integers(a.shape[0]))] * s + 1.0)
        else:
            pool.append(_RANDOM_OPS[k](t, a, b, s))
    return sum(p.sum() for p in pool[-5:]) + sum(scal[-3:])


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    x = tapegrad.tensor(rng.normal(size=n), requires_grad=True)
    w = tapegrad.tensor(rng.normal(size=n), requires_grad=True)
    assert gradcheck(lambda x, w: _random_program(tapegrad, x, w, seed, steps=25), (x, w),
                     atol=1e-6, rtol=1e-5)


@requires_torch
@pytest.mark.parametrize("seed", range(60))
def test_random_programs_match_torch(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    x0, w0 = rng.normal(size=n), rng.normal(size=n)
    got = []
    for lib in (tapegrad, real_torch):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        w = lib.tensor(w0, dtype=lib.float64, requires_grad=True)
        y = _random_program(lib, x, w, seed)
        y.backward()
        got.append([y.item()] + [np.zeros(n) if g is None else g.numpy() for g in (x.grad, w.grad)])
    for a, b in zip(*got):  # products can reach 1e13: libraries' roundings differ by ~1e-9
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("seed", range(40))
def test_random_float32_programs_match_float64_and_torch(seed):
    """The same programs on float32 vectors (PyTorch's default dtype: float32 arrays take
    their own short paths): gradients float32, close to the float64 program's (checked above
    against PyTorch and finite differences) and to PyTorch's float32 ones."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    x0, w0 = rng.normal(size=n), rng.normal(size=n)
    runs = [(tapegrad, "float32"), (tapegrad, "float64")]
    if real_torch is not None:
        runs.append((real_torch, "float32"))
    got = []
    for lib, dt in runs:
        x = lib.tensor(x0, dtype=getattr(lib, dt), requires_grad=True)
        w = lib.tensor(w0, dtype=getattr(lib, dt), requires_grad=True)
        y = _random_program(lib, x, w, seed, steps=25)
        y.backward()
        grads = [np.zeros(n, dtype=dt) if g is None else g.numpy() for g in (x.grad, w.grad)]
        assert all(g.dtype == dt for g in grads) and y.dtype == getattr(lib, dt)
        got.append([np.float64(y.item())] + [g.astype(np.float64) for g in grads])
    for other in got[1:]:
        for a, b in zip(got[0], other):
            scale = max(1.0, float(np.max(np.abs(b))))
            np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3 * scale)


def test_quiet_fallback_for_other_numpy_versions_silences_and_restores():
    """_quiet sets NumPy's error-state context variable directly; on a NumPy without it the
    fallback is np.errstate. Both must silence the op and leave the caller's state alone."""
    from tapegrad import _tensor as TT

    before = np.geterr()
    for quiet in (TT._quiet, TT._make_quiet(TT._quiet_set, TT._quiet_reset, None)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = quiet(np.log, np.array([0.0, -1.0, 1.0]))
        assert np.isneginf(out[0]) and np.isnan(out[1]) and out[2] == 0.0
        assert np.geterr() == before
        with pytest.raises(ZeroDivisionError):  # an exception inside still restores the state
            quiet(lambda: 1 / 0)
        assert np.geterr() == before


BROADCAST_SHAPES = [((2, 1), (3,)), ([2, 1], [1, 3]), (2, (3, 1)), ((), (4,)),
                    ((1, 2), (3, 1), (1, 1, 1)), (), (3,), ((0,), (1,)), ((0,), (2,)),
                    ((2,), (3,)), ((2, 3), (4, 3)), ((2,), (1, 1), (3,)), ((2, 1), (1, 3, 4)),
                    ((2, -1), (3,)), ((1,), (-2,)), ((2,), None, (1,))]


def _shapes_or_error(lib, shapes):
    try:
        return repr(lib.broadcast_shapes(*shapes))
    except (RuntimeError, ValueError) as e:
        return f"{type(e).__name__}: {e}"


@requires_torch
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES, ids=str)
def test_broadcast_shapes_matches_torch(shapes):
    """The public function's shapes and errors are PyTorch's (the operators keep theirs, "The
    size of tensor a ... must match ...", through the cached two-shape helper)."""
    assert _shapes_or_error(tapegrad, shapes) == _shapes_or_error(real_torch, shapes)


def test_broadcast_shapes_hand():
    assert tapegrad.broadcast_shapes((2, 1), [3]) == (2, 3)
    assert repr(tapegrad.broadcast_shapes(2, (3, 1))) == "torch.Size([3, 2])"
    with pytest.raises(RuntimeError, match=r"length 3 at -2! Mismatching argument at index 1 "
                       r"had \(1, 3, 4\); but expected shape should be broadcastable to "
                       r"\[1, 2, 4\]"):
        tapegrad.broadcast_shapes((2, 1), (1, 3, 4))
    with pytest.raises(ValueError, match="negative length"):
        tapegrad.broadcast_shapes((2, -1), (3,))
    a, b = tapegrad.zeros(2, requires_grad=True), tapegrad.zeros(3)
    for f in (lambda: a + b, lambda: tapegrad.broadcast_tensors(a, b),
              lambda: tapegrad.where(a > 0, a, b)):
        with pytest.raises(RuntimeError, match=r"The size of tensor a \(2\) must match the size "
                           r"of tensor b \(3\) at non-singleton dimension 0"):
            f()


def test_mean_values_gradients_and_silence():
    """mean() without a dtype now takes the everything-to-one-float path (it took the general
    one, ~15 us more per call; benchmarks/ measures that): its value and gradient, PyTorch's
    silence on inf - inf and on empty groups, and a dtype kept."""
    rng = np.random.default_rng(3)
    x = tapegrad.tensor(rng.standard_normal((32, 10)), requires_grad=True)
    m = x.mean()
    assert m.item() == pytest.approx(x.detach().numpy().mean(), rel=1e-15)
    m.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((32, 10), 1.0 / 320))
    assert gradcheck(lambda a: (a * a).mean(), (x,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = tapegrad.tensor([np.inf, -np.inf, 1.0]).mean()
        e = tapegrad.tensor(np.zeros((0, 3))).mean(dim=0)
    assert np.isnan(v.item()) and e.shape == (3,) and np.all(np.isnan(e.numpy()))
    assert tapegrad.tensor([[1.0, 2.0]], dtype=tapegrad.float32).mean(dim=1).dtype \
        is tapegrad.float32


def test_overflow_and_inf_minus_inf_in_add_sub_mul_warn_nothing():
    """NumPy warns on 1e308 * 10, inf - inf and 0 * inf in + - *; PyTorch is silent, and so
    are the fast paths (same shapes, a scalar times a vector, a constant) and the general
    ones (float32, broadcasting, in place), forward and backward."""
    before = np.geterr()
    big = [1e308, 2.0, np.inf, -np.inf, 0.0]
    x = tapegrad.tensor(big, dtype=tapegrad.float64, requires_grad=True)
    y = tapegrad.tensor([1e308, 2.0, -np.inf, np.inf, np.inf], dtype=tapegrad.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outs = [x * 10.0, x + 1e308, 1e308 - x, x - (-1e308), x * x, x + y, x - y, x * y,
                x * 0.0, x[0] * y, x[2] - x, x.reshape(5, 1) + y,
                x.to(tapegrad.float32) * 1e38, tapegrad.add(x, y, alpha=2.0),
                x.detach().to(tapegrad.int64)]
        sum(o.sum() for o in outs).backward()
        with tapegrad.no_grad():
            w = x.detach().clone()
            w.add_(y)
            w.mul_(1e308)
            w.sub_(w)
    assert np.geterr() == before
    with np.errstate(all="ignore"):
        xs, ys = np.array(big), np.array(y.detach().numpy())
        np.testing.assert_array_equal(outs[0].detach().numpy(), xs * 10.0)
        np.testing.assert_array_equal(outs[6].detach().numpy(), xs - ys)
        np.testing.assert_array_equal(outs[8].detach().numpy(), xs * 0.0)
    assert np.isinf(outs[0][0].item()) and np.isnan(outs[5][2].item())


def test_quiet_on_off_fallback_silences_and_restores():
    from tapegrad import _tensor as TT

    before = np.geterr()
    for on, off, ignore in ((TT._quiet_on, TT._quiet_off, TT._IGNORE),
                            (TT._quiet_set, TT._quiet_reset, None)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            token = on(ignore)
            try:
                out = np.array([1e308, np.inf]) * np.array([10.0, 0.0])
            finally:
                off(token)
        assert np.isinf(out[0]) and np.isnan(out[1])
        assert np.geterr() == before


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_of_inf_and_nan_is_silent(dtype):
    """np.matmul is a ufunc and warns on inf * 0 or nan (and spuriously from some float32
    BLAS kernels); PyTorch's matmul never warns."""
    dt = getattr(tapegrad, dtype)
    a = tapegrad.tensor([[np.inf, 1.0], [np.nan, 2.0]], dtype=dt, requires_grad=True)
    b = tapegrad.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=dt)
    batched = tapegrad.stack([a, a])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = a @ b
        out3 = batched @ tapegrad.stack([b, b])
    expected = np.array([[np.nan, np.inf], [np.nan, np.nan]])
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    np.testing.assert_array_equal(out3.detach().numpy()[1], expected)
    if real_torch is not None:
        ref = real_torch.tensor(a.detach().numpy()) @ real_torch.tensor(b.numpy())
        np.testing.assert_array_equal(ref.numpy(), expected)


def test_a_backward_inside_a_hook_shares_the_threads_buffers_safely():
    """backward() keeps its hit list and the staged lists' conversion buffers per thread; a
    hook that runs another backward (a bigger tape: the buffers grow) in the middle of a
    sweep leaves the outer sweep's gradients right."""
    def inner_graph(t, v):
        assert not t.is_grad_enabled()  # hooks run without grad mode, as in PyTorch
        with t.enable_grad():
            w = t.tensor(v, requires_grad=True)
            y = w
            for _ in range(3000):  # more records than the outer tape and a flush's worth
                y = y * 1.0001 + 0.001
            y.sum().backward()
        return w.grad

    def outer(t, x0, inner_grads):
        x = t.tensor(x0, requires_grad=True)
        h = x * x
        h.register_hook(lambda g: inner_grads.append(inner_graph(t, x0 * 0.5)) or g * 3.0)
        out = (h.sin() * x).sum() + x[0] * x[1]
        out.backward()
        return x.grad

    x0 = np.array([0.3, -0.7, 1.1])
    got_inner: list = []
    got = outer(tapegrad, x0, got_inner)
    assert len(got_inner) == 1
    if real_torch is not None:
        want_inner: list = []
        want = outer(real_torch, x0, want_inner)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
        np.testing.assert_allclose(got_inner[0].numpy(), want_inner[0].numpy(), rtol=1e-10)
    # by hand: d/dx [sum(sin(x^2) x) + x0 x1] with the hook tripling the gradient through h
    hand = 3.0 * np.cos(x0 * x0) * x0 * 2 * x0 + np.sin(x0 * x0) + np.array([x0[1], x0[0], 0.0])
    np.testing.assert_allclose(got.numpy(), hand, rtol=1e-12)
    np.testing.assert_allclose(got_inner[0].numpy(), np.full(3, 1.0001 ** 3000), rtol=1e-9)


SQUARES = [1.5, -2.25, 0.0, -0.0, 1e200, -1e-200, 5e-324, np.inf, -np.inf, np.nan, 1e154,
           1.3407807929942596e154, 3.0000000000000004]


@pytest.mark.parametrize("exponent", [2, 2.0])
def test_square_of_a_scalar_is_the_bits_of_numpy_power_and_its_gradient(exponent):
    """x ** 2 on a fast-path scalar (Tensor.__pow__'s x * x): NumPy's power bits, inf where
    Python's ** overflows, PowBackward0, 2x as gradient; other exponents the general path."""
    rng = np.random.default_rng(5)
    values = SQUARES + list(rng.standard_normal(200) * 10.0 ** rng.integers(-160, 160, 200))
    for v in values:
        x = tapegrad.tensor(v, dtype=tapegrad.float64, requires_grad=True)
        y = x * 1.0
        z = y ** exponent
        with np.errstate(all="ignore"):
            want = np.power(np.float64(v), 2)
        assert np.float64(z.item()).view(np.int64) == want.view(np.int64), v
        assert type(z.grad_fn).__name__ == "PowBackward0"
        z.backward()
        g = x.grad.item()
        assert g == 2.0 * v or (np.isnan(g) and np.isnan(v)), v


@requires_torch
def test_scalar_powers_match_torch():
    for v in SQUARES:
        got = []
        for t in (tapegrad, real_torch):
            x = t.tensor(v, dtype=t.float64, requires_grad=True)
            y = x ** 2 + (x * 0.5) ** 2.0 + x ** 3 + (x * x) ** 2
            y.backward()
            got.append((y.item(), x.grad.item()))
        np.testing.assert_array_equal(np.array(got[0]), np.array(got[1]))
    x = tapegrad.tensor([0.5, 1.5, -2.0], dtype=tapegrad.float64, requires_grad=True)
    assert gradcheck(lambda a: (a[0] ** 2 * a[1] + a[2] ** 2) ** 2, (x,))


def _strided_relu_tanh(t, a, big):
    """Recorded relu and tanh (large: tanh's one-pass path) of contiguous arrays first, then of
    strided views of them: the compiled kernel's entry, made for the first call's contiguous
    arrays, must not be handed a view (relu of y[::2] gave y[:10] once)."""
    x = t.tensor(a, dtype=t.float64, requires_grad=True)
    y = x * 1.5 - 0.25
    b = t.tensor(big, dtype=t.float64, requires_grad=True)
    z = b * 0.5
    parts = [t.relu(y), t.relu(y[0, ::2]), t.relu(y.t()), t.relu(y[:, 3]), t.relu(y[1, 1::3]),
             t.tanh(z), t.tanh(z[::2]), t.tanh(z[1::3])]
    w = [t.tensor(np.linspace(-1.0, 2.0, p.numel()).reshape(tuple(p.shape)), dtype=t.float64)
         for p in parts]
    return parts, sum(((p * c).sum() for p, c in zip(parts, w)), t.tensor(0.0, dtype=t.float64)), \
        (x, b)


def _strided_inputs():
    rng = np.random.default_rng(11)
    return rng.standard_normal((6, 40)), rng.standard_normal(1200)


def test_recorded_relu_and_tanh_of_strided_views_match_numpy():
    a, big = _strided_inputs()
    parts, _, _ = _strided_relu_tanh(tapegrad, a, big)
    y, z = a * 1.5 - 0.25, big * 0.5
    want = [np.maximum(y, 0.0), np.maximum(y[0, ::2], 0.0), np.maximum(y.T, 0.0),
            np.maximum(y[:, 3], 0.0), np.maximum(y[1, 1::3], 0.0),
            np.tanh(z), np.tanh(z[::2]), np.tanh(z[1::3])]
    for p, v in zip(parts[:5], want[:5]):  # relu: exact
        np.testing.assert_array_equal(p.detach().numpy(), v)
    for p, v in zip(parts[5:], want[5:]):  # tanh_big: within 2 ulp of NumPy's
        np.testing.assert_allclose(p.detach().numpy(), v, rtol=5e-16, atol=1e-300)


@requires_torch
def test_recorded_relu_and_tanh_of_strided_views_gradients_match_torch():
    a, big = _strided_inputs()
    got, want = [], []
    for t, out in ((tapegrad, got), (real_torch, want)):
        _, loss, leaves = _strided_relu_tanh(t, a, big)
        loss.backward()
        out.extend(leaf.grad.numpy().copy() for leaf in leaves)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


def test_recorded_relu_and_tanh_of_strided_views_gradients_match_finite_differences():
    a, big = _strided_inputs()
    a, big = a[:, :12], big[:600]

    def loss(av, bv):
        with tapegrad.no_grad():
            return float(_strided_relu_tanh(tapegrad, av, bv)[1])

    _, total, (x, b) = _strided_relu_tanh(tapegrad, a, big)
    total.backward()
    h = 1e-6
    rng = np.random.default_rng(5)
    for _ in range(6):  # directional derivatives (relu's kinks are ~1e-2 away at most rarely)
        da, db = rng.standard_normal(a.shape), rng.standard_normal(big.shape)
        fd = (loss(a + h * da, big + h * db) - loss(a - h * da, big - h * db)) / (2 * h)
        ad = float((x.grad.numpy() * da).sum() + (b.grad.numpy() * db).sum())
        assert abs(fd - ad) <= 1e-6 * max(1.0, abs(ad))
