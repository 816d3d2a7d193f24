"""Deferred values (``Segment.defer``): a recorded float64 result of ``DEFER_MIN`` or more
elements that its own backward does not read is not copied into the arena; the flush of the
first row that reads it (``_tape.READS``) copies it, and a lazy record copies every deferred
value of its segment when staged.

The whole suite also runs with ``TAPEGRAD_DEFER_MIN=2 TAPEGRAD_DEFER_POISON=1`` in ``.ci/run``:
every array result deferred, its place in the arena nan until copied, so that any reader the
rules above miss produces nan gradients there. Here, at the default size, programs of big
arrays are checked against PyTorch (when installed) and central differences, the deferral is
checked to happen (and to end when a reader comes), and in-place writes before and after the
copy behave as PyTorch's.
"""
from __future__ import annotations

import numpy as np
import pytest
from random_programs import random_program

import tapegrad
from tapegrad import _config
from tapegrad import _engine as E
from tapegrad import _tape as T
from tapegrad.bench.workloads import elementwise_chain
from tapegrad.testing import gradcheck

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the finite-difference checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")

# big enough to be deferred (128 x 128 at the default DEFER_MIN), and a vector as big
SIDE = max(64, int(np.ceil(np.sqrt(_config.DEFER_MIN))))
SHAPE = (SIDE, SIDE)
BIG = max(4096, _config.DEFER_MIN)


def _chain(t, x, w):  # the products and sums are never read, the tanh and sin outputs are
    return elementwise_chain(t, (x,), {"n_ops": 8}) * w


def _readers(t, x, w):  # every deferred value read by the next op: all copied
    y = x * w
    z = y * x
    u = z / (w * w + 1.0)
    return t.exp(u * 0.1) * y


def _mixed(t, x, w):  # a value read by a later record, past records that do not read it
    y = x * w  # deferred
    s = y + 1.0  # does not read y
    c = t.cos(s)  # reads s
    return c * y + s.sum()  # reads y, long after it was made


def _matmul_of_deferred(t, x, w):
    y = x + w  # deferred; the matmul reads it
    return t.tanh(y @ w.T) @ (x - 1.0)


def _views_of_deferred(t, x, w):
    y = x * w
    return y[1:, :3] * y[:-1, :3].exp() + y.T[2, :3]


def _cat_of_deferred(t, x, w):
    y = x.reshape(-1) * w.reshape(-1)
    return t.cat([y * 2.0, y[:100] * y[100:200]])


def _reductions(t, x, w):
    y = x * w
    return (y.sum(0) * y.mean(1)).sum() + y.norm() + y.amax()


PROGRAMS = [("chain", _chain), ("readers", _readers), ("mixed", _mixed),
            ("matmul", _matmul_of_deferred), ("views", _views_of_deferred),
            ("cat", _cat_of_deferred), ("reductions", _reductions)]
IDS = [p[0] for p in PROGRAMS]


def _arrays(seed=0, shape=SHAPE):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, shape), rng.uniform(0.5, 1.5, shape)


def _grads(module, fn, arrays, seed):
    x, w = (module.tensor(a, dtype=module.float64, requires_grad=True) for a in arrays)
    out = fn(module, x, w)
    out.backward(module.tensor(seed, dtype=module.float64))
    return out.detach().numpy().copy(), x.grad.numpy().copy(), w.grad.numpy().copy()


@pytest.mark.parametrize("name,fn", PROGRAMS, ids=IDS)
def test_big_programs_match_torch_and_no_grad(name, fn):
    arrays = _arrays(1)
    with tapegrad.no_grad():
        plain = fn(tapegrad, *(tapegrad.tensor(a) for a in arrays)).numpy()
    rng = np.random.default_rng(2)
    seed = rng.standard_normal(plain.shape)
    out, gx, gw = _grads(tapegrad, fn, arrays, seed)
    np.testing.assert_array_equal(out, plain)  # the values the user sees are untouched
    assert np.isfinite(gx).all() and np.isfinite(gw).all()
    if real_torch is not None:
        t_out, t_gx, t_gw = _grads(real_torch, fn, arrays, seed)
        np.testing.assert_allclose(out, t_out, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gx, t_gx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gw, t_gw, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,fn", PROGRAMS, ids=IDS)
def test_big_programs_match_finite_differences(name, fn, monkeypatch):
    """Central differences on the same programs with a small DEFER_MIN (every array result
    deferred: gradcheck's inputs are small)."""
    from tapegrad import _tensor as TT

    monkeypatch.setattr(TT, "_DEFER_MIN", 2)
    monkeypatch.setattr(TT, "_LAZY_BIG", TT._lazy_big(2))
    x, w = (tapegrad.tensor(a, requires_grad=True) for a in _arrays(3, (5, 5)))
    if name == "cat":
        x, w = (tapegrad.tensor(a, requires_grad=True) for a in _arrays(3, (16, 16)))
    assert gradcheck(lambda a, b: fn(tapegrad, a, b).sum(), (x, w), atol=1e-6, rtol=1e-5)


def test_a_value_stays_deferred_until_a_reader_is_flushed():
    x, w = (tapegrad.tensor(a, requires_grad=True) for a in _arrays(4))
    y = x * w
    seg = y._seg
    assert y._rec in seg.unsaved  # MUL does not read its own output
    s = y + 1.0
    t = tapegrad.tanh(s)
    seg.flush()
    assert y._rec in seg.unsaved and s._rec in seg.unsaved  # ADDC and TANH read no input
    assert t._rec not in seg.unsaved  # TANH's backward reads its output: copied at once
    z = y * w
    assert y._rec in seg.unsaved  # (staged, not flushed yet)
    seg.flush()
    assert y._rec not in seg.unsaved
    o = int(seg.cols[6][y._rec])
    np.testing.assert_array_equal(seg.bulk[o:o + y.numel()], y.detach().numpy().reshape(-1))
    (z.sum() + t.sum()).backward()
    wa, ta = w.detach().numpy(), t.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), wa * wa + (1.0 - ta * ta) * wa, rtol=1e-14)


def test_small_results_and_traces_are_copied_at_once():
    x = tapegrad.tensor(np.ones(_config.DEFER_MIN - 1), requires_grad=True)
    y = x * x
    assert y._rec not in y._seg.unsaved
    big = np.ones(max(_config.DEFER_MIN, 2))
    tr = tapegrad.trace(lambda a: (a * a + 1.0).sum(), big)  # a trace copies the arena
    np.testing.assert_allclose(tr.gradient(big * 3.0), big * 6.0)


def test_read_nothing_ops_are_listed_as_non_readers():
    """READS is conservative: only the listed ops skip the copy, sources have no operands,
    and an op whose operands are in aux counts as reading all (READS_AUX)."""
    assert T.READS[T.MUL]
    assert T.READS[T.SINC] and T.READS[T.MM] and T.READS[T.POW] and T.READS[T.DIV]
    for op in (T.ADD, T.ADDC, T.SUM, T.TANH, T.EXP, T.SLICE, T.CAT, T.LEAF, T.CONST):
        assert not T.READS[op]
    assert T.READS_AUX[T.COPYSLICES] and not T.READS_AUX[T.MUL]
    # the ops whose operands are listed in aux read no value: save_read needs a and b only
    # for every op today (READS_AUX guards ops to come)
    for op in np.flatnonzero(T.KIND == T.CONCAT):
        assert not T.READS[op]


# --- in-place writes, as PyTorch ----------------------------------------------------------------

def _inplace_program(module, arrays, write, when):
    """y = x * w (deferred), z = y * w (reads y); ``write`` applied to y before z is made, or
    after (then the backward needs y's old value)."""
    x, w = (module.tensor(a, dtype=module.float64, requires_grad=True) for a in arrays)
    y = x * w
    if when == "before":
        write(module, y)
    z = y * w
    if when == "after":
        write(module, y)
    z.sum().backward()
    return x.grad.numpy().copy(), w.grad.numpy().copy()


WRITES = [
    ("add_", lambda m, y: y.add_(1.0)),
    ("view_mul_", lambda m, y: y[1:].mul_(2.0)),
    ("no_grad_add_", lambda m, y: _no_grad(m, lambda: y.add_(1.0))),
    ("detach_add_", lambda m, y: y.detach().add_(1.0)),
]


def _no_grad(module, fn):
    with module.no_grad():
        fn()


@requires_torch
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("name,write", WRITES, ids=[w[0] for w in WRITES])
def test_inplace_writes_to_a_deferred_value_behave_as_torch(name, write, when):
    arrays = _arrays(5)
    results = []
    for module in (tapegrad, real_torch):
        try:
            results.append(("ok", _inplace_program(module, arrays, write, when)))
        except RuntimeError as exc:  # (the message up to the tensor's description)
            results.append(("error", str(exc).split(":")[0]))
    assert results[0][0] == results[1][0], results
    if results[0][0] == "ok":
        for g, h in zip(results[0][1], results[1][1]):
            np.testing.assert_allclose(g, h, rtol=1e-12, atol=1e-12)
    else:
        assert results[0][1] == results[1][1]


def test_data_assigned_after_a_reader_reaches_the_backward_as_before():
    """``y.data = v`` writes v where the tape keeps y's value (_write_through): a deferred
    copy of y's old array must not bring it back at the flush."""
    arrays = _arrays(6)
    for flush_first in (False, True):
        x, w = (tapegrad.tensor(a, requires_grad=True) for a in arrays)
        y = x * w
        z = y * w
        if flush_first:
            z._seg.flush()
        new = np.full(SHAPE, 2.0)
        y.data = tapegrad.tensor(new)
        z.sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), new + arrays[1] * arrays[0], rtol=1e-14)
        if real_torch is not None:
            tx, tw = (real_torch.tensor(a, requires_grad=True) for a in arrays)
            ty = tx * tw
            tz = ty * tw
            ty.data = real_torch.tensor(new)
            tz.sum().backward()
            np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-14)


def test_data_assigned_before_a_reader_reaches_it():
    """``y.data = v`` while y's value is deferred, then a record that reads y: the backward
    reads v (the copy of y's old array is dropped), as PyTorch's."""
    arrays = _arrays(8)
    x, w = (tapegrad.tensor(a, requires_grad=True) for a in arrays)
    y = x * w
    assert y._rec in y._seg.unsaved
    new = np.full(SHAPE, 3.0)
    y.data = tapegrad.tensor(new)
    z = y * w
    z.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), new + arrays[1] * arrays[0], rtol=1e-14)
    if real_torch is not None:
        tx, tw = (real_torch.tensor(a, requires_grad=True) for a in arrays)
        ty = tx * tw
        ty.data = real_torch.tensor(new)
        (ty * tw).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-14)


def _paused_then_lazy(x):
    """x * 1.0 recorded as an array (laziness paused by a read), laziness then resumed."""
    (x * 1.0).tolist()  # a lazy result read at once: laziness paused for a while
    src = x * 1.0  # so an array, deferred
    assert src._rec in src._seg.unsaved
    E.state.seg.lazy_off = 0  # lazy again
    return src


def test_lazy_cat_of_a_deferred_part_keeps_the_value_it_was_made_with():
    a = np.random.default_rng(9).uniform(1.0, 2.0, BIG)
    x = tapegrad.tensor(a, requires_grad=True)
    src = _paused_then_lazy(x)
    small = x[:3] * 2.0  # lazy
    c = tapegrad.cat([small, src])
    assert c.__class__ is not tapegrad.Tensor  # (lazy)
    src.detach().numpy()[:] = -1.0  # a write without a version, before the flush
    np.testing.assert_array_equal(c.detach().numpy(), np.concatenate((a[:3] * 2.0, a)))
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.concatenate(([3.0] * 3, [1.0] * (BIG - 3))))


def test_lazy_result_of_a_deferred_operand_keeps_the_value_it_was_made_with():
    """A lazy record's value is computed at the flush from its operands' values in the arena:
    a deferred operand written in place (without a version: .data, numpy()) between must not
    change it (its operands are copied when it is staged)."""
    a = np.random.default_rng(7).uniform(1.0, 2.0, BIG)
    for write in (lambda t: t.data.add_(1.0), lambda t: t.detach().numpy().__setitem__(0, 9.0)):
        x = tapegrad.tensor(a, requires_grad=True)
        src = _paused_then_lazy(x)
        y = src * 2.0
        assert y.__class__ is not tapegrad.Tensor  # (lazy)
        assert src._rec not in src._seg.unsaved  # copied when y was staged
        write(src)
        np.testing.assert_array_equal(y.detach().numpy(), a * 2.0)


# --- random programs: deferred against copied at once, bit for bit -------------------------------

def test_random_programs_give_the_bits_of_copying_at_once(monkeypatch):
    """The lazy tests' random programs on vectors of BIG elements, whose results of + - * and
    the like are deferred: the output, the gradients and every value read are the bits of
    the same programs with every value copied at once."""
    from tapegrad import _tensor as TT

    for seed in range(40):
        deferred = random_program(seed, BIG)
        with monkeypatch.context() as m:
            m.setattr(TT, "_DEFER_MIN", 1 << 62)
            m.setattr(TT, "_LAZY_BIG", TT._lazy_big(1 << 62))
            copied = random_program(seed, BIG)
        assert len(deferred) == len(copied)
        for got, want in zip(deferred, copied):
            np.testing.assert_array_equal(got, want, err_msg=f"seed {seed}")
