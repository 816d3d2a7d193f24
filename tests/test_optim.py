"""``tapegrad.optim``: each optimizer and scheduler against PyTorch's, plus the contract that
updates are in place, unrecorded and visible to the version counter."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn
import tapegrad.optim as optim

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

_RNG = np.random.default_rng(0)
A = _RNG.standard_normal((6, 4))
Y = _RNG.standard_normal(6)
W0 = _RNG.standard_normal(4)
B0 = _RNG.standard_normal(1)


def _objective(lib, w, b):
    """A smooth non-quadratic loss, so that every optimizer's state matters."""
    r = lib.tensor(A, dtype=w.dtype) @ w + b - lib.tensor(Y, dtype=w.dtype)
    return (r * r).mean() + 0.05 * (w**4).sum() + (b * b).sum()


def _train(lib, optim_mod, name: str, kwargs: dict, steps: int = 20, dtype: str = "float64",
           groups: bool = False):
    dt = getattr(lib, dtype)
    Param = lib.nn.Parameter
    w = Param(lib.tensor(W0, dtype=dt))
    b = Param(lib.tensor(B0, dtype=dt))
    params = [{"params": [w]}, {"params": [b], "lr": 0.02}] if groups else [w, b]
    opt = getattr(optim_mod, name)(params, **kwargs)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = _objective(lib, w, b)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return opt, [w, b], losses


CONFIGS = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.005, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05, "amsgrad": True}),
    ("Adam", {"lr": 0.05, "maximize": True}),
    ("AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True,
                 "weight_decay": 0.1}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.2, "eps": 1e-8}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CONFIGS]


@needs_torch
@pytest.mark.parametrize("groups", [False, True], ids=["one_group", "two_groups"])
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_optimizer_matches_torch_float64(name, kwargs, groups):
    _, ours, losses_o = _train(tapegrad, optim, name, kwargs, groups=groups)
    _, theirs, losses_t = _train(torch, torch.optim, name, kwargs, groups=groups)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(losses_o, losses_t, rtol=1e-10)
    assert losses_o[-1] != losses_o[0]  # it did optimise


@needs_torch
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS[::3], ids=IDS[::3])
def test_optimizer_matches_torch_float32(name, kwargs):
    _, ours, _ = _train(tapegrad, optim, name, kwargs, dtype="float32")
    _, theirs, _ = _train(torch, torch.optim, name, kwargs, dtype="float32")
    for p, q in zip(ours, theirs):
        assert p.dtype is tapegrad.float32
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-4, atol=1e-5)


@needs_torch
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_state_dict_matches_torch(name, kwargs):
    opt_o, _, _ = _train(tapegrad, optim, name, kwargs, steps=3, groups=True)
    opt_t, _, _ = _train(torch, torch.optim, name, kwargs, steps=3, groups=True)
    sd_o, sd_t = opt_o.state_dict(), opt_t.state_dict()
    assert sd_o["param_groups"] == sd_t["param_groups"]
    assert list(sd_o["state"]) == list(sd_t["state"])
    for i, state in sd_t["state"].items():
        assert list(sd_o["state"][i]) == list(state)
        for key, value in state.items():
            ours = sd_o["state"][i][key]
            assert ours.dtype.name == str(value.dtype).rsplit(".", 1)[-1], key
            np.testing.assert_allclose(np.asarray(ours), value.numpy(), rtol=1e-10, atol=1e-12)
    assert repr(opt_o) == repr(opt_t)


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_load_state_dict_resumes_exactly(name, kwargs):
    """Training 6 steps equals training 3, saving, loading into a fresh optimizer, then 3."""
    _, straight, _ = _train(tapegrad, optim, name, kwargs, steps=6)
    opt, params, _ = _train(tapegrad, optim, name, kwargs, steps=3)
    saved = opt.state_dict()
    fresh = getattr(optim, name)(params, **kwargs)
    fresh.load_state_dict(saved)
    for _ in range(3):
        fresh.zero_grad()
        _objective(tapegrad, *params).backward()
        fresh.step()
    for p, q in zip(params, straight):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_step_is_in_place_and_unrecorded(name, kwargs):
    w = nn.Parameter(tapegrad.tensor(W0))
    opt = getattr(optim, name)([w], **kwargs)
    ident, storage = id(w), w.data
    before = w.detach().numpy().copy()
    (w * w).sum().backward()
    version = w._version
    opt.step()
    assert id(w) == ident and w.is_leaf and w.grad_fn is None and w.requires_grad
    assert w._version > version
    assert not np.array_equal(w.detach().numpy(), before)
    np.testing.assert_array_equal(storage.numpy(), w.detach().numpy())  # same storage
    for state in opt.state[w].values():
        assert not state.requires_grad and state.grad_fn is None


def test_stale_graph_raises_after_step():
    """A graph that saved the old parameter value must not backpropagate silently."""
    w = nn.Parameter(tapegrad.tensor(W0))
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    loss = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_zero_grad_and_closure():
    w = nn.Parameter(tapegrad.tensor(W0))
    opt = optim.Adam([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with tapegrad.no_grad():  # the closure still records: step enables grad for it
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(float((W0 * W0).sum()))
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and not grad.numpy().any()
    opt.zero_grad()
    assert w.grad is None
    opt.step()  # parameters without gradients are skipped
    assert opt.state[w]["step"].item() == 1


def test_parameters_without_grad_are_skipped():
    w, v = nn.Parameter(tapegrad.tensor(W0)), nn.Parameter(tapegrad.tensor(W0))
    opt = optim.SGD([w, v], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_array_equal(v.detach().numpy(), W0)
    assert "momentum_buffer" in opt.state[w] and v not in opt.state


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: optim.SGD([], lr=0.1), ValueError, "optimizer got an empty parameter list"),
    (lambda: optim.SGD(tapegrad.ones(2), lr=0.1), TypeError, "should be an iterable"),
    (lambda: optim.Adam([nn.Parameter(tapegrad.ones(1))], lr=-1), ValueError,
     "Invalid learning rate"),
    (lambda: optim.SGD([nn.Parameter(tapegrad.ones(1))], lr=0.1, nesterov=True), ValueError,
     "Nesterov momentum requires a momentum and zero dampening"),
    (lambda: optim.SGD([tapegrad.ones(1, requires_grad=True) * 2], lr=0.1), ValueError,
     "can't optimize a non-leaf Tensor"),
])
def test_constructor_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_parameter_in_two_groups_is_rejected():
    w = nn.Parameter(tapegrad.ones(1))
    with pytest.raises(ValueError, match="some parameters appear in more than one"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)


def test_trains_a_module():
    tapegrad.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = optim.Adam(net.parameters(), lr=0.05)
    x, y = tapegrad.tensor(A, dtype=tapegrad.float32), tapegrad.tensor(Y[:, None],
                                                                        dtype=tapegrad.float32)
    first = None
    for _ in range(100):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.05 * first


# ---------------------------------------------------------------- schedulers

def _schedule(lib, optim_mod, name: str, kwargs: dict, epochs: int = 40):
    w = lib.nn.Parameter(lib.ones(1))
    opt = optim_mod.SGD([{"params": [w]}, {"params": [lib.nn.Parameter(lib.ones(1))],
                                            "lr": 0.3}], lr=0.1)
    sched = getattr(optim_mod.lr_scheduler, name)(opt, **kwargs)
    lrs = [sched.get_last_lr()]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
    return lrs, sched


SCHEDULES = [("StepLR", {"step_size": 7}), ("StepLR", {"step_size": 3, "gamma": 0.5}),
             ("CosineAnnealingLR", {"T_max": 10}),
             ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01})]


@needs_torch
@pytest.mark.parametrize(("name", "kwargs"), SCHEDULES,
                         ids=[f"{n}-{kw}" for n, kw in SCHEDULES])
def test_scheduler_matches_torch(name, kwargs):
    ours, sched_o = _schedule(tapegrad, optim, name, kwargs)
    theirs, sched_t = _schedule(torch, torch.optim, name, kwargs)
    assert ours == theirs  # PyTorch's recursive formulas, so exactly equal
    sd_o, sd_t = sched_o.state_dict(), sched_t.state_dict()
    assert {k: sd_o[k] for k in sd_t if k in sd_o} == {k: sd_t[k] for k in sd_t if k in sd_o}
    assert {"base_lrs", "last_epoch", "_step_count", "_last_lr"} <= set(sd_o)


def test_scheduler_values():
    lrs, _ = _schedule(tapegrad, optim, "StepLR", {"step_size": 2, "gamma": 0.5}, epochs=5)
    assert [round(x[0], 12) for x in lrs] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    lrs, _ = _schedule(tapegrad, optim, "CosineAnnealingLR", {"T_max": 4}, epochs=4)
    expected = [0.05 * (1 + math.cos(math.pi * t / 4)) for t in range(5)]
    np.testing.assert_allclose([x[0] for x in lrs], expected, atol=1e-15)


def test_scheduler_warns_when_stepped_before_optimizer():
    opt = optim.SGD([nn.Parameter(tapegrad.ones(1))], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
