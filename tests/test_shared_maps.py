"""A segment's shared index maps (``Segment.shared_aux``) stay in its aux table for the table's
next owner (a segment made from the pool, or one reset in place): a training step records the
same maps every time and no longer adds them again.  Reusing a map must never give a record
another map's ints: gradients are checked against central differences (and PyTorch when
installed) while programs with different maps alternate over the same tables."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import _engine as E

try:
    import torch as real_torch
except ImportError:  # pragma: no cover
    real_torch = None


def _layer(lib, x, w, b):
    return (lib.relu(x @ w + b) ** 2).mean()


def _inputs(rows, k, n, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, k)), rng.standard_normal((k, n)), rng.standard_normal(n)


def _grads(lib, x, w, b):
    wt = lib.tensor(w, dtype=lib.float64, requires_grad=True)
    bt = lib.tensor(b, dtype=lib.float64, requires_grad=True)
    _layer(lib, lib.tensor(x, dtype=lib.float64), wt, bt).backward()
    return wt.grad.numpy().copy(), bt.grad.numpy().copy()


def _central(x, w, b, eps=1e-6):
    def f(w, b):
        return float((np.maximum(x @ w + b, 0.0) ** 2).mean())
    gw = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        d = np.zeros_like(w)
        d[i] = eps
        gw[i] = (f(w + d, b) - f(w - d, b)) / (2 * eps)
    gb = np.zeros_like(b)
    for i in range(b.size):
        d = np.zeros_like(b)
        d[i] = eps
        gb[i] = (f(w, b + d) - f(w, b - d)) / (2 * eps)
    return gw, gb


def test_a_repeated_step_adds_no_maps(monkeypatch):
    x, w, b = _inputs(32, 8, 16, 0)  # 512 elements: the bias add's compiled pass
    first = _grads(tg, x, w, b)
    for _ in range(3):  # (a loop alternates between array sets: each gets the maps once)
        _grads(tg, x, w, b)
    added = []
    add_aux = E.Segment.add_aux
    monkeypatch.setattr(E.Segment, "add_aux", lambda seg, ints: added.append(ints) or add_aux(
        seg, ints))
    for _ in range(4):
        got = _grads(tg, x, w, b)
        np.testing.assert_array_equal(got[0], first[0])
        np.testing.assert_array_equal(got[1], first[1])
    assert added == []


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2, 1, 0)])
def test_programs_with_other_maps_alternating(order):
    shapes = [(32, 8, 16), (4, 3, 5), (16, 32, 9)]
    cases = [_inputs(*s, seed=k) for k, s in enumerate(shapes)]
    want = [_central(*c) for c in cases]
    ref = [_grads(real_torch, *c) for c in cases] if real_torch is not None else None
    for _ in range(3):
        for k in order:
            gw, gb = _grads(tg, *cases[k])
            np.testing.assert_allclose(gw, want[k][0], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(gb, want[k][1], rtol=1e-5, atol=1e-7)
            if ref is not None:
                np.testing.assert_allclose(gw, ref[k][0], rtol=1e-13, atol=1e-15)
                np.testing.assert_allclose(gb, ref[k][1], rtol=1e-13, atol=1e-15)


def test_a_segment_that_dies_unflushed_leaves_no_maps():
    # a map still waiting to be written (auxq) is not in the table: its position must not
    # reach the next owner
    saved = E._pool[:]
    E._pool.clear()
    try:
        seg = E.Segment()
        seg.shared_aux((7, 7, 7, 1))
        assert seg.auxq
        del seg
        (entry,) = E._pool
        assert entry[5:] == ({}, E.ELEM_AUX)
        fresh = E.Segment()  # (its arrays)
        assert fresh.auxi is entry[3]
        at = fresh.shared_aux((7, 7, 7, 1))
        assert at == E.ELEM_AUX  # added again, at the first free place
        fresh.flush()
        assert list(fresh.auxi[at:at + 4]) == [7, 7, 7, 1]
    finally:
        E._pool[:] = saved


def test_kept_maps_are_bounded():
    seg = E.Segment()
    for k in range(E._KEEP_AUX // 4 + 8):
        seg.shared_aux((k, 1, 1, 1))
    seg.flush()
    assert seg.naux > E._KEEP_AUX
    seg._reset()
    assert seg.naux == E.ELEM_AUX and seg.maps == {}
