"""Adamax, NAdam, RAdam, Adadelta, ASGD, Rprop and LBFGS against PyTorch's; the ``nn.init``
additions by their exact properties; ``parameters_to_vector`` / ``vector_to_parameters``;
anomaly-mode switches and ``Variable``."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn
import tapegrad.optim as optim
from tapegrad.testing import gradcheck

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

_RNG = np.random.default_rng(7)
A = _RNG.standard_normal((6, 4))
Y = _RNG.standard_normal(6)
W0 = _RNG.standard_normal(4)
B0 = _RNG.standard_normal(1)
H = np.diag([1.0, 3.0, 0.5, 2.0]) + 0.1


def _smooth(lib, w, b):
    """A tiny linear model's loss plus a quartic term, so that every state matters."""
    r = lib.tensor(A, dtype=w.dtype) @ w + b - lib.tensor(Y, dtype=w.dtype)
    return (r * r).mean() + 0.05 * (w**4).sum() + (b * b).sum()


def _quadratic(lib, w, b):
    return 0.5 * (w * (lib.tensor(H, dtype=w.dtype) @ w)).sum() + (b * b).sum() - w.sum()


def _rosenbrock(lib, w, b):
    x = w.reshape(2, 2)
    return ((1 - x[:, 0]) ** 2 + 10 * (x[:, 1] - x[:, 0] ** 2) ** 2).sum() + (b * b).sum()


PROBLEMS = {"smooth": _smooth, "quadratic": _quadratic, "rosenbrock": _rosenbrock}


def _train(lib, name, kwargs, problem="smooth", steps=30, dtype="float64", groups=False):
    dt = getattr(lib, dtype)
    w = lib.nn.Parameter(lib.tensor(W0 * (0.3 if problem == "rosenbrock" else 1), dtype=dt))
    b = lib.nn.Parameter(lib.tensor(B0, dtype=dt))
    params = [{"params": [w]}, {"params": [b], "lr": 0.02}] if groups else [w, b]
    opt = getattr(lib.optim, name)(params, **kwargs)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = PROBLEMS[problem](lib, w, b)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return opt, [w, b], losses


CONFIGS = [
    ("Adamax", {}),
    ("Adamax", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.05, "maximize": True}),
    ("NAdam", {"lr": 0.05}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.05}),
    ("RAdam", {"lr": 0.05, "betas": (0.9, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.05, "betas": (0.8, 0.8), "weight_decay": 0.1,
               "decoupled_weight_decay": True, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1}),
    ("ASGD", {"lr": 0.01}),
    ("ASGD", {"lr": 0.01, "lambd": 0.01, "alpha": 0.5, "t0": 5, "weight_decay": 0.1}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}),
    ("Rprop", {"lr": 0.05, "maximize": True}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for n, kw in CONFIGS]


def _close(ours, theirs, rtol=1e-12, atol=1e-14):
    for p, q in zip(ours, theirs):
        assert np.isfinite(p.detach().numpy()).all()
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=rtol, atol=atol)


@needs_torch
@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_matches_torch_float64(name, kwargs, problem):
    opt_o, ours, losses_o = _train(tapegrad, name, kwargs, problem)
    opt_t, theirs, losses_t = _train(torch, name, kwargs, problem)
    _close(ours, theirs)
    for p, q in zip(ours, theirs):  # every state tensor (ASGD's average ax included)
        for key, value in opt_t.state[q].items():
            np.testing.assert_allclose(np.asarray(opt_o.state[p][key]), value.numpy(),
                                       rtol=1e-12, atol=1e-15, err_msg=key)
    np.testing.assert_allclose(losses_o, losses_t, rtol=1e-12)
    assert losses_o[-1] != losses_o[0]


@needs_torch
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_matches_torch_two_groups_and_float32(name, kwargs):
    _, ours, _ = _train(tapegrad, name, kwargs, steps=10, groups=True)
    _, theirs, _ = _train(torch, name, kwargs, steps=10, groups=True)
    _close(ours, theirs)
    _, ours, _ = _train(tapegrad, name, kwargs, steps=10, dtype="float32")
    _, theirs, _ = _train(torch, name, kwargs, steps=10, dtype="float32")
    for p in ours:
        assert p.dtype is tapegrad.float32
    _close(ours, theirs, rtol=1e-5, atol=1e-6)


@needs_torch
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_state_dict_and_repr_match_torch(name, kwargs):
    opt_o, _, _ = _train(tapegrad, name, kwargs, steps=3, groups=True)
    opt_t, _, _ = _train(torch, name, kwargs, steps=3, groups=True)
    sd_o, sd_t = opt_o.state_dict(), opt_t.state_dict()
    assert sd_o["param_groups"] == sd_t["param_groups"]
    assert list(sd_o["state"]) == list(sd_t["state"])
    for i, state in sd_t["state"].items():
        assert list(sd_o["state"][i]) == list(state)
        for key, value in state.items():
            ours = sd_o["state"][i][key]
            assert ours.dtype.name == str(value.dtype).rsplit(".", 1)[-1], key
            assert tuple(ours.shape) == tuple(value.shape), key
            np.testing.assert_allclose(np.asarray(ours), value.numpy(), rtol=1e-12, atol=1e-15)
    assert repr(opt_o) == repr(opt_t)


def _resumed(lib, name, kwargs):
    """3 steps, a state dict loaded into a fresh optimizer, 3 more steps."""
    opt, params, _ = _train(lib, name, kwargs, steps=3)
    fresh = getattr(lib.optim, name)(params, **kwargs)
    fresh.load_state_dict(opt.state_dict())
    for _ in range(3):
        fresh.zero_grad()
        _smooth(lib, *params).backward()
        fresh.step()
    return params


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=IDS)
def test_load_state_dict_resumes(name, kwargs):
    """Loading casts state to the parameter's dtype except ``step`` (as PyTorch does, so
    NAdam's ``mu_product`` and ASGD's ``eta`` and ``mu`` continue in float64)."""
    _, straight, _ = _train(tapegrad, name, kwargs, steps=6)
    resumed = _resumed(tapegrad, name, kwargs)
    _close(resumed, straight, rtol=1e-8)
    if torch is not None:
        _close(resumed, _resumed(torch, name, kwargs))


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS[::3], ids=IDS[::3])
def test_step_is_in_place_unrecorded_and_descends(name, kwargs):
    w = nn.Parameter(tapegrad.tensor(W0))
    opt = getattr(optim, name)([w], **kwargs)
    ident = id(w)
    (w * w).sum().backward()
    version = w._version
    opt.step()
    assert id(w) == ident and w.is_leaf and w.grad_fn is None and w.requires_grad
    assert w._version > version
    for value in opt.state[w].values():
        assert not value.requires_grad and value.grad_fn is None
    _, _, losses = _train(tapegrad, name, kwargs, "quadratic", steps=40)
    assert (losses[-1] > losses[0]) if kwargs.get("maximize") else (losses[-1] < losses[0])


def test_hand_computed_first_steps():
    """One step of each from w = 1 with gradient 2 (the loss w^2), by the papers' formulas."""
    def one_step(name, **kwargs):
        w = nn.Parameter(tapegrad.tensor([1.0], dtype=tapegrad.float64))
        opt = getattr(optim, name)([w], **kwargs)
        (w * w).sum().backward()
        opt.step()
        return w.item()

    assert one_step("Adamax", lr=0.1) == pytest.approx(1 - 0.1 * 2 / (2 + 1e-8), rel=1e-15)
    assert one_step("Rprop", lr=0.1) == pytest.approx(0.9, rel=1e-15)
    delta = math.sqrt(1e-6) / math.sqrt(0.1 * 4 + 1e-6) * 2
    assert one_step("Adadelta") == pytest.approx(1 - delta, rel=1e-15)
    eta = float(np.float32(0.1))  # kept in a 0-d tensor of the default dtype, as PyTorch's
    assert one_step("ASGD", lr=0.1, lambd=0.5) == pytest.approx((1 - 0.5 * eta) - eta * 2,
                                                                rel=1e-15)
    assert one_step("RAdam", lr=0.1) == pytest.approx(1 - 0.1 * 2, rel=1e-15)  # rho_1 <= 5


ERRORS = [
    ("Adamax", {"lr": -1}, "Invalid learning rate: -1"),
    ("Adamax", {"eps": -1}, "Invalid epsilon value: -1"),
    ("NAdam", {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0: 1.0"),
    ("NAdam", {"momentum_decay": -1}, "Invalid momentum_decay value: -1"),
    ("RAdam", {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
    ("RAdam", {"weight_decay": -1}, "Invalid weight_decay value: -1"),
    ("Adadelta", {"rho": 1.5}, "Invalid rho value: 1.5"),
    ("ASGD", {"weight_decay": -0.5}, "Invalid weight_decay value: -0.5"),
    ("Rprop", {"etas": (1.5, 2.0)}, "Invalid eta values: 1.5, 2.0"),
    ("LBFGS", {"lr": -0.5}, "Invalid learning rate: -0.5"),
    ("LBFGS", {"groups": True}, "LBFGS doesn't support per-parameter options (parameter groups)"),
]


@pytest.mark.parametrize(("name", "kwargs", "message"), ERRORS,
                         ids=[f"{n}-{kw}" for n, kw, _ in ERRORS])
def test_constructor_errors(name, kwargs, message):
    for lib in (tapegrad, torch) if torch is not None else (tapegrad,):
        params = [lib.nn.Parameter(lib.ones(1)), lib.nn.Parameter(lib.ones(1))]
        options = dict(kwargs)
        if options.pop("groups", False):
            params = [{"params": params[:1]}, {"params": params[1:]}]
        with pytest.raises(ValueError) as error:
            getattr(lib.optim, name)(params, **options)
        assert str(error.value) == message, lib.__name__


# ---------------------------------------------------------------- LBFGS

def _lbfgs(lib, kwargs, steps=4, x0=(-1.5, 2.0, 0.7, 0.3), dtype="float64"):
    x = lib.nn.Parameter(lib.tensor(list(x0), dtype=getattr(lib, dtype)))
    opt = lib.optim.LBFGS([x], **kwargs)
    losses = []

    def closure():
        opt.zero_grad()
        y = x.reshape(2, 2)
        loss = ((1 - y[:, 0]) ** 2 + 100 * (y[:, 1] - y[:, 0] ** 2) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(opt.step(closure).item())
    return x, opt, losses


LBFGS_CONFIGS = [
    {"lr": 0.01},
    {"lr": 0.05, "history_size": 3, "max_iter": 7},
    {"line_search_fn": "strong_wolfe"},
    {"line_search_fn": "strong_wolfe", "history_size": 2, "max_iter": 5, "max_eval": 9},
    {"lr": 0.5, "line_search_fn": "strong_wolfe", "tolerance_grad": 1e-4},
]


@needs_torch
@pytest.mark.parametrize("kwargs", LBFGS_CONFIGS, ids=[str(k) for k in LBFGS_CONFIGS])
def test_lbfgs_matches_torch(kwargs):
    x_o, opt_o, losses_o = _lbfgs(tapegrad, kwargs)
    x_t, opt_t, losses_t = _lbfgs(torch, kwargs)
    np.testing.assert_allclose(x_o.detach().numpy(), x_t.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(losses_o, losses_t, rtol=1e-10, atol=1e-15)
    s_o, s_t = opt_o.state[x_o], opt_t.state[x_t]
    assert list(s_o) == list(s_t)
    assert (s_o["func_evals"], s_o["n_iter"]) == (s_t["func_evals"], s_t["n_iter"])
    for key in ("d", "prev_flat_grad"):
        np.testing.assert_allclose(s_o[key].numpy(), s_t[key].numpy(), rtol=1e-8, atol=1e-10)
    assert len(s_o["old_dirs"]) == len(s_t["old_dirs"])
    assert isinstance(s_o["t"], tapegrad.Tensor) == isinstance(s_t["t"], torch.Tensor)
    assert repr(opt_o) == repr(opt_t)
    x32, _, _ = _lbfgs(tapegrad, kwargs, steps=1, dtype="float32")
    t32, _, _ = _lbfgs(torch, kwargs, steps=1, dtype="float32")
    # float32 roundings (dot products summed in another order) grow over 20 iterations
    np.testing.assert_allclose(x32.detach().numpy(), t32.detach().numpy(), rtol=1e-3, atol=1e-3)


def test_lbfgs_converges_on_rosenbrock():
    x, opt, losses = _lbfgs(tapegrad, {"line_search_fn": "strong_wolfe"}, steps=6)
    np.testing.assert_allclose(x.detach().numpy(), np.ones(4), atol=1e-4)
    assert opt.state[x]["n_iter"] > 20 and losses[-1] < 1e-8
    x, _, losses = _lbfgs(tapegrad, {"lr": 0.01}, steps=5)
    assert losses[-1] < 0.5 * losses[0]


def test_lbfgs_load_state_dict_resumes():
    x, _, _ = _lbfgs(tapegrad, {"line_search_fn": "strong_wolfe", "max_iter": 3}, steps=4)
    y, opt, _ = _lbfgs(tapegrad, {"line_search_fn": "strong_wolfe", "max_iter": 3}, steps=2)
    saved = opt.state_dict()
    fresh = optim.LBFGS([y], line_search_fn="strong_wolfe", max_iter=3)
    fresh.load_state_dict(saved)
    assert fresh.state[y]["old_dirs"] is not saved["state"][0]["old_dirs"]

    def closure():
        fresh.zero_grad()
        z = y.reshape(2, 2)
        loss = ((1 - z[:, 0]) ** 2 + 100 * (z[:, 1] - z[:, 0] ** 2) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(2):
        fresh.step(closure)
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy(), rtol=1e-12)


def test_lbfgs_stops_at_optimum_and_rejects_other_line_searches():
    x, opt, _ = _lbfgs(tapegrad, {}, steps=1, x0=(1.0, 1.0, 1.0, 1.0))
    assert opt.state[x] == {"func_evals": 1, "n_iter": 0}  # gradient zero: nothing to do
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        _lbfgs(tapegrad, {"line_search_fn": "backtracking"}, steps=1)


# ---------------------------------------------------------------- nn.init

def _empty(*shape, dtype=tapegrad.float64):
    return tapegrad.empty(*shape, dtype=dtype)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (1, 6), (3, 4, 5), (6, 2, 2, 3)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal(shape, gain):
    w = nn.Parameter(_empty(*shape))
    assert nn.init.orthogonal_(w, gain=gain) is w and w.requires_grad and w.grad_fn is None
    q = w.detach().numpy().reshape(shape[0], -1) / gain
    small = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
    np.testing.assert_allclose(small, np.eye(len(small)), atol=1e-12)
    f = nn.init.orthogonal_(_empty(*shape, dtype=tapegrad.float32)).numpy().reshape(shape[0], -1)
    small = f @ f.T if f.shape[0] <= f.shape[1] else f.T @ f
    np.testing.assert_allclose(small, np.eye(len(small)), atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (1, 1)])
def test_eye(shape):
    w = nn.Parameter(_empty(*shape))
    assert nn.init.eye_(w) is w
    np.testing.assert_array_equal(w.detach().numpy(), np.eye(*shape))
    assert w.requires_grad and w.is_leaf


@pytest.mark.parametrize(("shape", "groups"), [((4, 4, 3), 1), ((3, 5, 3, 3), 1),
                                               ((6, 2, 2, 4), 2), ((4, 3, 1, 2, 3), 1),
                                               ((6, 2, 3), 3)])
def test_dirac(shape, groups):
    w = nn.init.dirac_(_empty(*shape), groups)
    value = w.numpy()
    per = shape[0] // groups
    expected = np.zeros(shape)
    for g in range(groups):
        for d in range(min(per, shape[1])):
            expected[(g * per + d, d) + tuple(s // 2 for s in shape[2:])] = 1
    np.testing.assert_array_equal(value, expected)
    if torch is not None:
        theirs = torch.nn.init.dirac_(torch.empty(*shape, dtype=torch.float64), groups)
        np.testing.assert_array_equal(value, theirs.numpy())
    # a dirac-initialised convolution is the identity on the channels it keeps
    if len(shape) == 4 and groups == 1:
        x = tapegrad.randn(1, shape[1], 5, 5, dtype=tapegrad.float64)
        out = nn.functional.conv2d(x, w, padding=(shape[2] // 2, shape[3] // 2))
        k = min(shape[0], shape[1])
        np.testing.assert_allclose(out.numpy()[:, :k], x.numpy()[:, :k], atol=1e-15)


@pytest.mark.parametrize(("mean", "std", "a", "b"), [(0.0, 1.0, -2.0, 2.0),
                                                     (0.5, 2.0, -0.1, 0.3),
                                                     (0.0, 1.0, 1.0, 3.0)])
def test_trunc_normal(mean, std, a, b):
    tapegrad.manual_seed(0)
    for dtype in (tapegrad.float64, tapegrad.float32):
        v = nn.init.trunc_normal_(_empty(200, 100, dtype=dtype), mean, std, a, b).numpy()
        lo, hi = dtype.np.type(a), dtype.np.type(b)
        assert v.dtype == dtype.np and v.min() >= lo and v.max() <= hi
    # the truncated normal's mean and variance
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = [math.exp(-z * z / 2) / math.sqrt(2 * math.pi) for z in (alpha, beta)]
    cdf = [(1 + math.erf(z / math.sqrt(2))) / 2 for z in (alpha, beta)]
    z = cdf[1] - cdf[0]
    mu = mean + std * (pdf[0] - pdf[1]) / z
    var = std**2 * (1 + (alpha * pdf[0] - beta * pdf[1]) / z - ((pdf[0] - pdf[1]) / z) ** 2)
    assert abs(v.mean() - mu) < 5 * math.sqrt(var / v.size)
    assert abs(v.var() / var - 1) < 0.05


def test_trunc_normal_warns_far_from_bounds():
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        nn.init.trunc_normal_(_empty(10), mean=10.0, a=-1.0, b=1.0)


@pytest.mark.parametrize(("rows", "cols", "sparsity"), [(10, 7, 0.1), (10, 3, 0.35), (4, 5, 0.0),
                                                        (6, 2, 1.0)])
def test_sparse(rows, cols, sparsity):
    tapegrad.manual_seed(1)
    w = nn.init.sparse_(_empty(rows, cols), sparsity, std=0.5).numpy()
    zeros = math.ceil(sparsity * rows)
    assert ((w == 0).sum(axis=0) == zeros).all()
    if zeros < rows:
        assert 0.2 < w[w != 0].std() < 1.0


@pytest.mark.parametrize(("call", "message"), [
    (lambda: nn.init.eye_(_empty(3)), "Only tensors with 2 dimensions are supported"),
    (lambda: nn.init.eye_(_empty(2, 2, 2)), "Only tensors with 2 dimensions are supported"),
    (lambda: nn.init.dirac_(_empty(3, 3)), "Only tensors with 3, 4, or 5 dimensions are supported"),
    (lambda: nn.init.dirac_(_empty(3, 3, 3), 2), "dim 0 must be divisible by groups"),
    (lambda: nn.init.orthogonal_(_empty(3)),
     "Only tensors with 2 or more dimensions are supported"),
    (lambda: nn.init.sparse_(_empty(3, 3, 3), 0.1), "Only tensors with 2 dimensions are supported"),
])
def test_init_errors(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == message


@pytest.mark.parametrize(("old", "args"), [("uniform", ()), ("normal", ()), ("constant", (0.5,)),
                                           ("eye", ()), ("xavier_uniform", ()),
                                           ("xavier_normal", ()), ("kaiming_uniform", ()),
                                           ("kaiming_normal", ()), ("orthogonal", ()),
                                           ("sparse", (0.5,))])
def test_deprecated_aliases_warn(old, args):
    w = _empty(4, 3)
    with pytest.warns(FutureWarning) as record:
        assert getattr(nn.init, old)(w, *args) is w
    message = f"`nn.init.{old}` is now deprecated in favor of `nn.init.{old}_`."
    assert str(record[0].message) == message
    with pytest.warns(FutureWarning, match="nn.init.dirac_"):
        nn.init.dirac(_empty(2, 2, 3))


# ---------------------------------------------------------------- nn.utils

def test_parameters_to_vector_and_back():
    w = nn.Parameter(tapegrad.arange(6.0, dtype=tapegrad.float64).reshape(2, 3))
    b = nn.Parameter(tapegrad.ones(2, dtype=tapegrad.float64))
    s = nn.Parameter(tapegrad.tensor(5.0, dtype=tapegrad.float64))
    vec = nn.utils.parameters_to_vector([w, b, s])
    assert vec.grad_fn.name() == "CatBackward0"
    np.testing.assert_array_equal(vec.detach().numpy(), [0, 1, 2, 3, 4, 5, 1, 1, 5])
    weights = tapegrad.arange(9.0, dtype=tapegrad.float64)
    (vec * weights).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(s.grad.numpy(), 8)
    assert gradcheck(lambda x, y: nn.utils.parameters_to_vector([x, y]) ** 2,
                     (tapegrad.randn(2, 3, dtype=tapegrad.float64, requires_grad=True),
                      tapegrad.randn(4, dtype=tapegrad.float64, requires_grad=True)))

    new = tapegrad.arange(10.0, 19.0, dtype=tapegrad.float64)
    assert nn.utils.vector_to_parameters(new, [w, b, s]) is None
    np.testing.assert_array_equal(w.detach().numpy(), [[10, 11, 12], [13, 14, 15]])
    assert s.shape == () and s.item() == 18 and w.is_leaf and w.requires_grad
    new.add_(1)  # the parameters share the vector's storage, as PyTorch's
    assert b.detach().numpy().tolist() == [17, 18]
    with pytest.raises(TypeError, match="^expected torch.Tensor, but got: list$"):
        nn.utils.vector_to_parameters([1.0], [w])
    with pytest.raises(TypeError, match="^expected torch.Tensor, but got: numpy.ndarray$"):
        nn.utils.vector_to_parameters(np.zeros(2), [w])


# ---------------------------------------------------------------- autograd extras

def test_anomaly_mode_switches():
    ag = tapegrad.autograd
    assert not ag.is_anomaly_enabled()
    with pytest.warns(UserWarning, match="^Anomaly Detection has been enabled. This mode will "
                                         "increase the runtime and should only be enabled for "
                                         "debugging.$"):
        manager = ag.detect_anomaly(check_nan=False)
    with manager:
        assert ag.is_anomaly_enabled() and not ag.is_anomaly_check_nan_enabled()
        x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()  # backward still runs
    assert not ag.is_anomaly_enabled() and ag.is_anomaly_check_nan_enabled()
    ag.set_detect_anomaly(True)
    assert ag.is_anomaly_enabled()
    ag.set_detect_anomaly(False)
    assert not ag.is_anomaly_enabled()
    with ag.set_detect_anomaly(True, check_nan=False):
        assert ag.is_anomaly_enabled() and not ag.is_anomaly_check_nan_enabled()
    assert not ag.is_anomaly_enabled() and ag.is_anomaly_check_nan_enabled()


def test_variable_is_a_detached_tensor():
    Variable = tapegrad.autograd.Variable
    t = tapegrad.ones(3)
    v = Variable(t, requires_grad=True)
    assert type(v) is tapegrad.Tensor and v is not t and v.is_leaf and v.requires_grad
    assert isinstance(t, Variable) and not isinstance(1.0, Variable)
    t.add_(1)
    assert v.detach().numpy().tolist() == [2, 2, 2] and v._version == t._version
    y = tapegrad.ones(2, requires_grad=True) * 3
    assert Variable(y).grad_fn is None and not Variable(y).requires_grad
    with pytest.raises(TypeError, match="^Variable data has to be a tensor, but got list$"):
        Variable([1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="volatile was removed"):
            Variable(t, volatile=True)
