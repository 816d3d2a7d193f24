"""Memory stays flat in loops whose iterations leave graphs that are never backwarded.

The tape lives in segments (``_engine.Segment``); what a loop holds is measured by counting the
live Segment objects and the bytes of their arrays, after a garbage collection.
"""
import gc

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import _engine as E

F = tg.nn.functional

MAX_SEGMENTS = 4
MAX_BYTES = 4 << 20  # a fresh segment's arrays are ~0.6 MB


def _segment_memory():
    gc.collect()
    segs = [o for o in gc.get_objects() if isinstance(o, E.Segment)]
    nbytes = sum(sum(a.nbytes for a in s.cols) + s.bulk.nbytes + s.badj.nbytes + s.auxi.nbytes
                 for s in segs)
    return len(segs), nbytes


def _run_bounded(step, iterations, checks=5):
    """Run step(i) ``iterations`` times; the live segments stay few and small throughout."""
    seen = []
    keep = None
    for i in range(iterations):
        keep = step(i)
        if i % (iterations // checks) == iterations // checks - 1:
            seen.append(_segment_memory())
    for count, nbytes in seen:
        assert count <= MAX_SEGMENTS, seen
        assert nbytes <= MAX_BYTES, seen
    return keep


@pytest.fixture(autouse=True)
def fresh_tape():
    """Start from default-sized arrays: earlier tests may have left grown ones in the pool."""
    E._pool.clear()
    E.state.seg = E.Segment()
    E.sync(E.state)  # (state.rec: the segment ops record into)
    gc.collect()
    E._pool.clear()
    E._prune[:] = [0, 1]  # _drop_dead_imports tries at the first rotation
    yield


@pytest.fixture
def mlp():
    rng = np.random.default_rng(0)
    ws = [tg.tensor(rng.standard_normal((16, 16)) * 0.1, requires_grad=True) for _ in range(3)]
    x = tg.tensor(rng.standard_normal((8, 16)), requires_grad=True)

    def forward(inp):
        h = inp
        for w in ws:
            h = F.softplus(F.linear(h, w))
        return h

    return forward, x, ws


def test_graph_never_backwarded_is_released(mlp):
    forward, x, _ = mlp
    held = {}

    def step(i):
        h = forward(x)
        out = h.sum()
        out2 = (h * h).sum()  # never backwarded: dies when rebound, as in PyTorch
        out.backward()
        held["h"], held["out2"] = h, out2

    _run_bounded(step, 3000)


def test_kept_graph_still_works_after_the_loop(mlp):
    forward, x, ws = mlp
    held = {}

    def step(i):
        h = forward(x)
        out2 = (h * h).sum()  # not backwarded in the loop
        u = forward(x * 2.0)
        u.sum().backward()
        held["out2"], held["u"] = out2, u

    _run_bounded(step, 1500)
    for t in (x, *ws):
        t.grad = None
    held["out2"].backward()  # still referenced: its graph is intact
    g = x.grad.numpy().copy()
    x.grad = None
    h = forward(x)
    (h * h).sum().backward()
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        held["u"].sum().backward()  # its saved values were freed by the loop's backward


def test_retain_graph_loop(mlp):
    forward, x, _ = mlp

    def step(i):
        h = forward(x)
        h.sum().backward(retain_graph=True)
        return h

    _run_bounded(step, 2000)


def test_gradient_penalty_loop(mlp):
    forward, x, ws = mlp

    def step(i):
        loss = forward(x).pow(2).mean()
        g, = tg.autograd.grad(loss, x, create_graph=True)
        (loss + g.pow(2).sum()).backward()
        for w in ws:
            w.grad = None

    _run_bounded(step, 800)


def test_gradient_penalty_loop_holding_results(mlp):
    forward, x, ws = mlp

    def step(i):
        loss = forward(x).pow(2).mean()
        g, = tg.autograd.grad(loss, x, create_graph=True)
        total = loss + g.pow(2).sum()
        total.backward()
        return loss, g, total

    _run_bounded(step, 800)


def test_training_loop_keeping_predictions():
    rng = np.random.default_rng(1)
    model = tg.nn.Sequential(tg.nn.Linear(16, 32), tg.nn.Tanh(), tg.nn.Linear(32, 1))
    opt = tg.optim.SGD(model.parameters(), lr=1e-3)
    xb = tg.tensor(rng.standard_normal((8, 16)), dtype=tg.float32)
    yb = tg.tensor(rng.standard_normal((8, 1)), dtype=tg.float32)

    def step(i):
        opt.zero_grad()
        pred = model(xb)
        loss = F.mse_loss(pred, yb)
        loss.backward()
        opt.step()
        return pred, loss  # held past the backward, rebound next iteration

    _run_bounded(step, 2000)


def test_scalar_loop_with_unused_graph():
    def step(i):
        a = tg.tensor(1.5, dtype=tg.float64, requires_grad=True)
        y = a * a + a
        z = y * 3.0  # never backwarded
        y.backward()
        assert a.grad.item() == 4.0
        return z

    _run_bounded(step, 3000)


def _flat_after_warmup(step, iterations, checks=6):
    """Run step(i): the live segments stay few, and hold no more in the loop's second half
    than in its first (segments grow by doubling, so the sizes seen vary in between)."""
    seen = []
    for i in range(iterations):
        step(i)
        if i % (iterations // checks) == iterations // checks - 1:
            seen.append(_segment_memory())
    assert max(count for count, _ in seen) <= MAX_SEGMENTS, seen
    half = len(seen) // 2
    assert max(b for _, b in seen[half:]) <= max(b for _, b in seen[:half]), seen
    return seen


def test_forward_only_scalar_loop_is_released():
    """An evaluation loop outside no_grad: graphs recorded and dropped, never backwarded.

    Each iteration's graph crosses into a new segment now and then (the segment fills while
    the running value still refers to it); the IMPORT linking the two must not keep the
    older segment, and through it every older one, alive."""
    w = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)

    def step(i):
        y = w
        for _ in range(700):
            y = y * 0.999 + 0.001
        return y.item()

    _flat_after_warmup(step, 600)


def test_forward_only_array_loop_is_released():
    w = tg.tensor(np.linspace(-1.0, 1.0, 4096), requires_grad=True)

    def step(i):
        y = w
        for _ in range(12):
            y = tg.tanh(y * w + 0.5)
        return y.sum().item()

    _flat_after_warmup(step, 600)


@pytest.mark.parametrize("crossing", [1, 2])
def test_graph_kept_from_a_forward_only_loop_still_works(crossing):
    """Dropping the IMPORT links nothing needs keeps those a held tensor's graph needs: the
    loop keeps the graph of an iteration that crossed into a new segment (the ``crossing``-th
    such), records on through later crossings, then differentiates the kept one."""
    w = tg.tensor(np.linspace(-1.0, 1.0, 8), requires_grad=True)
    kept = {}

    def forward(scale):
        y = w
        for k in range(300):
            y = tg.sin(y * w + scale) if k % 2 else y * 0.9 + w
        return y

    crossings = 0
    for i in range(500):
        first = E.state.seg
        y = forward(0.01 * i)
        if y._seg is not first:
            crossings += 1
            if crossings == crossing:
                kept["y"], kept["at"] = y, i
    assert crossings >= crossing + 2 and "y" in kept
    assert _segment_memory()[0] <= MAX_SEGMENTS + 1
    (kept["y"] * 0.5).sum().backward()
    g = w.grad.numpy().copy()
    w.grad = None
    (forward(0.01 * kept["at"]) * 0.5).sum().backward()
    np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-12, atol=0)


def test_kept_graph_survives_gc_freeze():
    """gc.get_referrers does not see objects gc.freeze() set aside: a tensor kept and frozen
    must still count as a root (the pruning is skipped while anything is frozen)."""
    w = tg.tensor(np.linspace(-1.0, 1.0, 8), requires_grad=True)

    def forward(scale):
        y = w
        for k in range(300):
            y = tg.sin(y * w + scale) if k % 2 else y * 0.9 + w
        return y

    kept = None
    for i in range(300):
        first = E.state.seg
        y = forward(0.01 * i)
        if y._seg is not first:
            kept, at = y, i
            break
    assert kept is not None
    gc.freeze()
    try:
        crossings = 0
        for _ in range(400):
            first = E.state.seg
            if forward(0.5)._seg is not first:
                crossings += 1
        assert crossings >= 2
    finally:
        gc.unfreeze()
    kept.sum().backward()
    g = w.grad.numpy().copy()
    w.grad = None
    forward(0.01 * at).sum().backward()
    np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-12, atol=0)
