"""Slices of a leaf made again in one segment (``_tensor._slice_1d``).

``x[1:]`` of a leaf that was sliced the same way before in the segment returns the earlier
slice when nothing but the segment refers to it and it is as valid as a new one: the leaf
unchanged since, bound by the same record.  It must be impossible to tell from a new slice:
the same values and gradients (against PyTorch when installed, always against central
differences), and never returned while anything could tell (a reference, a weak reference,
a hook, a retained grad, a grad_fn read, an element of it, a write to the leaf).
"""
from __future__ import annotations

import gc
import weakref

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


def _x(t=tapegrad, n=7, seed=3):
    return t.tensor(np.random.default_rng(seed).uniform(-1.0, 1.0, n), dtype=t.float64,
                    requires_grad=True)


def _records():
    return E.state.seg.nrec


def _ode(t, x, steps=3):
    """RK-style stages that slice the parameters at every stage, as an_ode does."""
    y = t.zeros(x.shape[0], dtype=t.float64)
    for _ in range(steps):
        k1 = t.cat([x[:1], x[1:] * y[:-1]])
        k2 = t.cat([x[:1], x[1:] * (y + 0.25 * k1)[:-1]])
        y = y + 0.5 * (k1 + k2) + x[2:5].sum() * 0.01
    return (y * y).sum()


def test_a_dead_slice_is_made_again_without_a_record():
    x = _x()
    s = x[1:]
    (s * 2.0).sum()
    del s
    n = _records()
    s2 = x[1:]
    one = x[:1]
    assert _records() == n + 1  # x[:1] recorded; x[1:] given back
    np.testing.assert_array_equal(s2.detach().numpy(), x.detach().numpy()[1:])
    np.testing.assert_array_equal(one.detach().numpy(), x.detach().numpy()[:1])


def test_slices_made_again_in_a_loop_give_pytorchs_gradients():
    x = _x()
    loss = _ode(tapegrad, x)
    loss.backward()
    if real_torch is not None:
        xt = _x(real_torch)
        lt = _ode(real_torch, xt)
        lt.backward()
        np.testing.assert_allclose(float(loss.detach()), float(lt.detach()), rtol=1e-13)
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert gradcheck(lambda v: _ode(tapegrad, v), (_x(),))


def test_gradients_are_those_of_new_slices():
    """The same loop with every slice held (none given back) gives the same gradient, to the
    rounding of the order the adjoints add in (a slice given back sums its uses' adjoints
    before its SliceBackward0 adds them into the leaf's; new slices add each in turn)."""
    x = _x()
    _ode(tapegrad, x).backward()
    held = []
    real_getitem = tapegrad.Tensor.__getitem__

    def holding(self, index):
        out = real_getitem(self, index)
        held.append(out)
        return out

    x2 = _x()
    tapegrad.Tensor.__getitem__ = holding
    try:
        _ode(tapegrad, x2).backward()
    finally:
        tapegrad.Tensor.__getitem__ = real_getitem
    assert len({id(t) for t in held}) == len(held)
    np.testing.assert_allclose(x.grad.numpy(), x2.grad.numpy(), rtol=1e-14, atol=1e-300)


def test_a_held_slice_is_not_given_back():
    x = _x()
    a = x[1:]
    b = x[1:]
    assert a is not b
    (a * 2.0 + b * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0] + [5.0] * 6)


def test_a_weakly_held_slice_is_not_given_back():
    x = _x()
    w = weakref.ref(x[1:])
    b = x[1:]  # (outside an assert: pytest's rewriting keeps its operands alive)
    same = b is w()
    assert not same


def test_a_hooked_slice_sees_only_its_own_gradient():
    x = _x()
    seen = []
    s = x[1:]
    s.register_hook(lambda g: seen.append(g.clone()))
    u = (s * 2.0).sum()
    del s
    v = (x[1:] * 3.0).sum()
    (u + v).backward()
    np.testing.assert_array_equal(seen[0].numpy(), [2.0] * 6)
    np.testing.assert_array_equal(x.grad.numpy(), [0.0] + [5.0] * 6)


def test_a_retained_slice_is_not_given_back():
    """retain_grad keeps the slice in its segment: held, so a new slice is recorded and the
    retained grad stays the first slice's own."""
    x = _x()
    s = x[1:]
    s.retain_grad()
    u = (s * 2.0).sum()
    seg = E.state.seg
    (r,) = [r for r, t in seg.retained.items() if t is s]
    del s
    n = _records()
    v = (x[1:] * 3.0).sum()
    assert _records() > n + 1
    kept = seg.retained[r]
    (u + v).backward()
    np.testing.assert_array_equal(kept.grad.numpy(), [2.0] * 6)
    np.testing.assert_array_equal(x.grad.numpy(), [0.0] + [5.0] * 6)


def test_a_slice_whose_grad_fn_was_read_is_not_given_back():
    x = _x()
    s = x[1:]
    node = s.grad_fn
    del s
    s2 = x[1:]
    assert s2.grad_fn is not node
    assert s2.grad_fn.name() == "SliceBackward0"


def test_a_slice_with_a_live_element_is_not_given_back():
    x = _x()
    s = x[1:]
    e = s[0]
    del s
    s2 = x[1:]
    assert e._x.elem[0] is not s2
    (e * 10.0 + s2.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 11.0] + [1.0] * 5)


@pytest.mark.parametrize("write", ["in place", "through .data", ".data assigned"])
def test_a_slice_after_a_write_to_the_leaf_has_the_new_values(write):
    x = _x()
    s = x[1:]
    (s * 2.0).sum()  # recorded, never differentiated
    del s
    if write == "in place":
        with tapegrad.no_grad():
            x.mul_(2.0)
    elif write == "through .data":
        x.data.mul_(2.0)
    else:
        x.data = x.detach() * 2.0
    n = _records()
    s2 = x[1:]
    assert _records() > n
    np.testing.assert_array_equal(s2.detach().numpy(), x.detach().numpy()[1:])
    (s2 * s2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[1:], 2.0 * x.detach().numpy()[1:], rtol=1e-15)


def test_a_backward_starts_anew():
    x = _x()
    for k in range(3):
        (x[1:] * float(k + 1)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0] + [6.0] * 6)


def test_the_slices_kept_do_not_keep_a_segment_alive():
    """The segment's arrays go back to the pool when its tensors die: the slices it keeps
    to give back are dropped at backward, as before rotation, not left in a cycle."""
    x = _x()
    gc.collect()
    seg = weakref.ref(E.state.seg)
    s = x[1:]
    loss = (s * x[:-1]).sum()
    del s
    loss.backward()
    del loss
    assert seg() is None or seg() is E.state.seg
    assert seg() is not E.state.seg or not E.state.seg.slices


def test_a_trace_records_every_slice():
    """A traced function that slices its argument twice the same way: the replay's value and
    gradient are the eager ones."""
    def f(v):
        return (v[1:] * v[:-1]).sum() + (v[1:] * 2.0).sum()

    a = np.random.default_rng(5).uniform(-1.0, 1.0, 6)
    tr = tapegrad.trace(f, a)
    b = np.random.default_rng(6).uniform(-1.0, 1.0, 6)
    value, g = tr.value_and_grad(b)
    x = tapegrad.tensor(b, requires_grad=True)
    loss = f(x)
    loss.backward()
    np.testing.assert_allclose(value, float(loss.detach()), rtol=1e-15)
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-15)


# ---------------------------------------------------------------- elements


def _det3(x):
    """det_by_minor's 3 x 3 expansion: each entry of a minor is read once per product."""
    def minor(rows, cols):
        if len(rows) == 1:
            return x[rows[0] * 3 + cols[0]]
        det = None
        for j, c in enumerate(cols):
            term = x[rows[0] * 3 + c] * minor(rows[1:], cols[:j] + cols[j + 1:])
            det = term if det is None else (det - term if j % 2 else det + term)
        return det
    return minor((0, 1, 2), (0, 1, 2))


def test_dead_elements_are_given_back_with_pytorchs_gradients():
    x = _x(n=9)
    n = _records()
    d = _det3(x)
    assert _records() - n == 1 + 9 + 14  # the leaf, 9 distinct entries (of 15 reads), 14 ops
    d.backward()
    a = x.detach().numpy().reshape(3, 3)
    np.testing.assert_allclose(float(d.detach()), np.linalg.det(a), rtol=1e-13)
    np.testing.assert_allclose(x.grad.numpy().reshape(3, 3), np.linalg.det(a) * np.linalg.inv(a).T,
                               rtol=1e-12)
    if real_torch is not None:
        xt = _x(real_torch, n=9)
        _det3(xt).backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-14)
    assert gradcheck(_det3, (_x(n=9),))


def test_a_held_or_watched_element_is_not_given_back():
    x = _x()
    e = x[2]
    assert x[2] is not e
    w = weakref.ref(x[3])
    again = x[3]  # (outside an assert: pytest's rewriting keeps its operands alive)
    same = again is w()
    assert not same
    seen = []
    h = x[4]
    h.register_hook(lambda g: seen.append(float(g)))
    u = h * 2.0
    del h
    v = x[4] * 3.0
    (u + v + e).backward()
    assert seen == [2.0]
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 0, 5, 0, 0])


def test_an_element_after_a_write_has_the_new_value():
    x = _x()
    (x[1] * 2.0).sum()
    with tapegrad.no_grad():
        x.mul_(3.0)
    e = x[1]
    assert float(e) == float(x.detach()[1])
    y = x * 1.0  # a non-leaf owner, written in place
    (y[0] * 1.0).backward(retain_graph=True)
    with tapegrad.no_grad():
        y.add_(1.0)
    assert float(y[0]) == float(x.detach()[0]) + 1.0
    x.data.mul_(2.0)
    assert float(x[1]) == float(x.detach()[1])


def test_a_write_after_a_forward_scans_for_no_elements():
    """The elements a segment keeps to give back are dropped before a write to their leaf
    looks for live elements: no gc scan (_tensor._track_elements) for a training loop's
    optimizer step, even without a backward in between."""
    from tapegrad import _tensor as TT
    x = _x(n=9)
    budget = TT._MARKS[0]
    _det3(x)
    with tapegrad.no_grad():
        x.sub_(0.1)
    assert TT._MARKS[0] == budget
    d = _det3(x)
    d.backward()
    a = x.detach().numpy().reshape(3, 3)
    np.testing.assert_allclose(float(d.detach()), np.linalg.det(a), rtol=1e-13)


def test_a_segment_keeps_a_bounded_number_of_slices_and_elements():
    """Scalar code reading each entry of a long vector once keeps at most _KEEP elements for
    the segment to give back, not one per entry (each ~350 B until backward)."""
    from tapegrad import _tensor as TT
    x = _x(n=5000)
    s = x[0]
    for k in range(1, 5000):
        s = s + x[k]
    assert len(E.state.seg.slices) <= TT._KEEP
    s.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(5000))


# ---------------------------------------------------------------- with the rest of autograd


def _sliced_loss(t, x):
    """Slices and elements of x taken again and again, used by products that save them."""
    s = 0.0
    for k in range(4):
        s = s + (x[1:] * x[:-1]).sum() * x[k] + (x[:1] * x[2]).sum()
    return s


@pytest.mark.parametrize("how", ["backward", "autograd.grad", "retain_graph", "func.grad"])
def test_given_back_slices_under_each_way_to_a_gradient(how):
    def grad_of(t, x):
        if how == "backward":
            _sliced_loss(t, x).backward()
            return x.grad.numpy()
        if how == "autograd.grad":
            (g,) = t.autograd.grad(_sliced_loss(t, x), x)
            return g.numpy()
        if how == "retain_graph":
            loss = _sliced_loss(t, x)
            loss.backward(retain_graph=True)
            loss.backward()
            return x.grad.numpy() / 2.0
        return t.func.grad(lambda v: _sliced_loss(t, v))(x.detach()).numpy()

    got = grad_of(tapegrad, _x())
    if real_torch is not None:
        np.testing.assert_allclose(got, grad_of(real_torch, _x(real_torch)), rtol=1e-13)
    assert gradcheck(lambda v: _sliced_loss(tapegrad, v), (_x(),))


def test_second_derivatives_through_given_back_slices():
    x = _x()
    (g,) = tapegrad.autograd.grad(_sliced_loss(tapegrad, x), x, create_graph=True)
    (h,) = tapegrad.autograd.grad((g * g).sum(), x)
    if real_torch is not None:
        xt = _x(real_torch)
        (gt,) = real_torch.autograd.grad(_sliced_loss(real_torch, xt), xt, create_graph=True)
        (ht,) = real_torch.autograd.grad((gt * gt).sum(), xt)
        np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-13)
        np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-12)
    # central differences of the first derivative (itself checked above and by gradcheck)
    def gsq(a):
        v = tapegrad.tensor(a, requires_grad=True)
        (gv,) = tapegrad.autograd.grad(_sliced_loss(tapegrad, v), v)
        return float((gv * gv).sum())

    a, eps = _x().detach().numpy(), 1e-6
    num = [(gsq(a + eps * e) - gsq(a - eps * e)) / (2 * eps) for e in np.eye(a.size)]
    np.testing.assert_allclose(h.numpy(), num, rtol=1e-6, atol=1e-8)


def test_a_leaf_hook_sees_the_whole_gradient_once():
    x = _x()
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    _sliced_loss(tapegrad, x).backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], x.grad.numpy())


def test_threads_slicing_one_leaf_each_record_their_own():
    import threading
    x = _x()
    want = None
    results = []

    def run():
        (g,) = tapegrad.autograd.grad(_sliced_loss(tapegrad, x), x)
        results.append(g.numpy())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    (want,) = tapegrad.autograd.grad(_sliced_loss(tapegrad, x), x)
    assert len(results) == 4
    for g in results:
        np.testing.assert_allclose(g, want.numpy(), rtol=1e-15)
