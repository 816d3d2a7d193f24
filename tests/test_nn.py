"""``tapegrad.nn``: functional ops, modules, parameters, init and gradient clipping.

* every row of ``tests/nn_cases.py`` against PyTorch (forward values, gradients of
  ``(out * r).sum()``, grad_fn names) in float64 and float32, and against central
  differences in float64 (no PyTorch needed);
* every module against PyTorch with PyTorch's weights loaded through ``load_state_dict``;
* printing (``repr(net)`` equal to PyTorch's), ``state_dict`` round trips and errors, the
  Module protocol, ``Parameter``, ``nn.init`` and ``clip_grad_norm_``.
"""
from __future__ import annotations

import copy
import math
import pickle
from collections import OrderedDict

import numpy as np
import pytest
from nn_cases import CASES, FCase, inputs_for, seed_of

import tapegrad
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad import _tensor as TT
from tapegrad.testing import gradcheck

try:
    import torch
except ImportError:  # the PyTorch comparisons skip, everything else runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
# PyTorch warns about its own even-kernel 'same' padding; tapegrad pads the same way
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

CASE_PARAMS = [pytest.param(c, id=c.name) for c in CASES]


def _lib_f(lib):
    return F if lib is tapegrad else torch.nn.functional


def _np(t) -> np.ndarray:
    return np.array(t.detach().numpy())


def _tensors(lib, arrays, dtype: str, requires_grad: bool = True):
    return [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=requires_grad)
            for a in arrays]


def _tol(case: FCase, dtype: str) -> tuple[float, float]:
    return (1e-10, 1e-12) if dtype == "float64" else (case.rtol32, case.atol32)


def _name(t) -> str | None:
    return None if t.grad_fn is None else t.grad_fn.name()


# ---------------------------------------------------------------- functional ops

@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_functional_against_torch(case: FCase, dtype: str):
    rtol, atol = _tol(case, dtype)
    arrays = inputs_for(case)
    ours = _tensors(tapegrad, arrays, dtype)
    theirs = _tensors(torch, arrays, dtype)
    out_o = case.fn(tapegrad, F, *ours)
    out_t = case.fn(torch, torch.nn.functional, *theirs)
    assert tuple(out_o.shape) == tuple(out_t.shape)
    assert out_o.dtype.name == str(out_t.dtype).rsplit(".", 1)[-1]
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=rtol, atol=atol, err_msg="forward")
    assert _name(out_o) == _name(out_t)

    r = np.random.default_rng(seed_of(case.name + "/r")).standard_normal(tuple(out_t.shape))
    (out_o * tapegrad.tensor(r, dtype=out_o.dtype)).sum().backward()
    (out_t * torch.tensor(r, dtype=out_t.dtype)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert (a.grad is None) == (b.grad is None), f"presence of the gradient of input {i}"
        if b.grad is not None:
            assert a.grad.dtype is a.dtype
            np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=rtol * 10,
                                       atol=atol * 10, err_msg=f"gradient of input {i}")


@pytest.mark.parametrize("case", [p for p in CASE_PARAMS if p.values[0].gradcheck])
def test_functional_gradcheck(case: FCase):
    arrays = inputs_for(case)
    xs = _tensors(tapegrad, arrays, "float64")
    assert gradcheck(lambda *t: case.fn(tapegrad, F, *t), xs)


@needs_torch
@pytest.mark.parametrize(("fn", "inputs"), [
    (lambda lib, x, w, b: _lib_f(lib).linear(x, w, b), ((4, 5), (3, 5), (3,))),
    (lambda lib, x: _lib_f(lib).cross_entropy(x, lib.tensor([1, 0, 2, 2])), ((4, 3),)),
    (lambda lib, x, w, b: _lib_f(lib).conv2d(x, w, b), ((1, 2, 4, 4), (3, 2, 2, 2), (3,))),
    (lambda lib, x: _lib_f(lib).max_pool2d(_lib_f(lib).relu(x), 2), ((1, 2, 4, 4),)),
    (lambda lib, x: _lib_f(lib).mse_loss(x, lib.ones(3, 2)), ((3, 2),)),
], ids=["linear", "cross_entropy", "conv2d", "max_pool2d", "mse_loss"])
def test_next_functions_match_torch(fn, inputs):
    """One level below the output, the graph has PyTorch's nodes."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in inputs]
    out_o = fn(tapegrad, *_tensors(tapegrad, arrays, "float64"))
    out_t = fn(torch, *_tensors(torch, arrays, "float64"))
    names_o = [None if n is None else n.name() for n, _ in out_o.grad_fn.next_functions]
    names_t = [None if n is None else n.name() for n, _ in out_t.grad_fn.next_functions]
    assert names_o == names_t


@needs_torch
@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=(2, 3), dilation=(2, 1), ceil_mode=True)])
def test_max_pool2d_indices_match_torch(kwargs):
    x = np.random.default_rng(3).integers(-3, 4, size=(2, 3, 7, 8)).astype(np.float64)
    out_o, idx_o = F.max_pool2d(tapegrad.tensor(x), return_indices=True, **kwargs)
    out_t, idx_t = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(_np(out_o), _np(out_t))
    np.testing.assert_array_equal(_np(idx_o), _np(idx_t))
    assert idx_o.dtype is tapegrad.int64


@needs_torch
def test_mse_loss_broadcast_warns_like_torch():
    x = np.arange(6.0).reshape(2, 3)
    with pytest.warns(UserWarning, match="Using a target size"):
        ours = F.mse_loss(tapegrad.tensor(x), tapegrad.tensor([1.0, 2.0, 3.0]))
    with pytest.warns(UserWarning, match="Using a target size"):
        theirs = torch.nn.functional.mse_loss(torch.tensor(x), torch.tensor([1.0, 2.0, 3.0]))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)


@needs_torch
def test_mse_loss_with_long_target_promotes_like_torch():
    x = np.linspace(-1, 1, 10).reshape(1, 10)
    a = tapegrad.tensor(x, dtype=tapegrad.float32, requires_grad=True)
    b = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    la = F.mse_loss(a, tapegrad.arange(1, 11).view(1, -1))
    lb = torch.nn.functional.mse_loss(b, torch.arange(1, 11).view(1, -1))
    assert la.dtype is tapegrad.float32
    la.backward()
    lb.backward()
    assert la.item() == pytest.approx(lb.item(), rel=1e-6)
    np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=1e-6)


def test_nll_loss_all_ignored_is_nan():
    x = tapegrad.randn(2, 3, requires_grad=True)
    loss = F.nll_loss(x, tapegrad.tensor([-100, -100]))
    assert math.isnan(loss.item())


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: F.cross_entropy(tapegrad.randn(3, 4), tapegrad.tensor([0, 4, 1])), IndexError,
     "Target 4 is out of bounds"),
    (lambda: F.nll_loss(tapegrad.randn(3, 4), tapegrad.tensor([0, 1])), ValueError,
     r"Expected input batch_size \(3\) to match target batch_size \(2\)"),
    (lambda: F.mse_loss(tapegrad.randn(2), tapegrad.randn(2), reduction="avg"), ValueError,
     "avg is not a valid value for reduction"),
    (lambda: F.binary_cross_entropy(tapegrad.tensor([1.5]), tapegrad.tensor([1.0])),
     RuntimeError, "all elements of input should be between 0 and 1"),
    (lambda: F.conv2d(tapegrad.randn(1, 2, 3, 3), tapegrad.randn(1, 1, 2, 2)), RuntimeError,
     "expected input\\[1, 2, 3, 3\\] to have 1 channels, but got 2 channels instead"),
    (lambda: F.conv2d(tapegrad.randn(1, 1, 3, 3), tapegrad.randn(1, 1, 5, 5)), RuntimeError,
     "Kernel size can't be greater than actual input size"),
    (lambda: F.max_pool2d(tapegrad.randn(1, 1, 5, 5), 2, padding=2), RuntimeError,
     "pad should be at most half of effective kernel size"),
    (lambda: F.pad(tapegrad.randn(1, 5), (5, 1), mode="reflect"), RuntimeError,
     "Padding size should be less than the corresponding input dimension"),
    (lambda: F.dropout(tapegrad.randn(2), 1.5), ValueError,
     "dropout probability has to be between 0 and 1"),
    (lambda: F.one_hot(tapegrad.tensor([0.0, 1.0])), RuntimeError,
     "one_hot is only applicable to index tensor"),
    (lambda: F.layer_norm(tapegrad.randn(2, 3), (4,)), RuntimeError,
     r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\]"),
])
def test_functional_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@needs_torch
@pytest.mark.parametrize("classes", [-1, 6])
def test_one_hot_matches_torch(classes):
    idx = np.array([[0, 3], [2, 2]])
    ours = F.one_hot(tapegrad.tensor(idx), classes)
    theirs = torch.nn.functional.one_hot(torch.tensor(idx), classes)
    assert ours.dtype is tapegrad.int64
    np.testing.assert_array_equal(_np(ours), _np(theirs))


@needs_torch
def test_embedding_max_norm_renormalises_rows_like_torch():
    w = np.random.default_rng(5).standard_normal((6, 3)) * 2
    wo = tapegrad.tensor(w, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    out_o = F.embedding(tapegrad.tensor(IDX_ROWS), wo, max_norm=1.5)
    out_t = torch.nn.functional.embedding(torch.tensor(IDX_ROWS), wt, max_norm=1.5)
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=1e-12)
    np.testing.assert_allclose(_np(wo), _np(wt), rtol=1e-12)  # rows rescaled in place
    assert wo.is_leaf and wo.grad_fn is None


IDX_ROWS = np.array([[0, 2], [2, 5]])


class TestDropout:
    def test_mask_and_scale(self):
        tapegrad.manual_seed(0)
        x = tapegrad.ones(2000, dtype=tapegrad.float64, requires_grad=True)
        y = F.dropout(x, 0.3)
        v = _np(y)
        assert set(np.unique(v)) <= {0.0, 1 / 0.7}
        assert 0.25 < (v == 0).mean() < 0.35
        assert _name(y) == "MulBackward0"
        y.sum().backward()
        np.testing.assert_array_equal(_np(x.grad), v)  # d(x * mask / 0.7)/dx

    def test_identity_when_not_training_or_p0(self):
        x = tapegrad.randn(3, requires_grad=True)
        assert F.dropout(x, 0.5, training=False) is x
        assert F.dropout(x, 0.0) is x

    def test_p1_zeroes(self):
        x = tapegrad.randn(4, requires_grad=True)
        y = F.dropout(x, 1.0)
        assert not _np(y).any() and _name(y) == "MulBackward0"

    def test_reproducible_with_manual_seed(self):
        tapegrad.manual_seed(7)
        a = _np(F.dropout(tapegrad.ones(50), 0.5))
        tapegrad.manual_seed(7)
        b = _np(F.dropout(tapegrad.ones(50), 0.5))
        np.testing.assert_array_equal(a, b)

    def test_gradcheck_with_fixed_mask(self):
        def fn(x):
            tapegrad.manual_seed(3)
            return F.dropout(x, 0.4)
        assert gradcheck(fn, tapegrad.randn(10, dtype=tapegrad.float64, requires_grad=True))

    def test_module_respects_train_and_eval(self):
        drop = nn.Dropout(0.5)
        x = tapegrad.ones(100)
        tapegrad.manual_seed(1)
        assert (_np(drop(x)) == 0).any()
        drop.eval()
        assert drop(x) is x


def test_inplace_relu_bumps_version_and_keeps_history():
    x = tapegrad.randn(4, requires_grad=True)
    h = x * 2
    out = F.relu(h, inplace=True)
    assert out is h and _name(h) == "ReluBackward0" and h._version == 1
    h.sum().backward()
    np.testing.assert_array_equal(_np(x.grad), np.where(_np(x) > 0, 2.0, 0.0))


# ---------------------------------------------------------------- modules against PyTorch

def _pair(lib_nn_factory, dtype: str = "float64", seed: int = 0):
    """The same module in both libraries: PyTorch's initial weights loaded into tapegrad."""
    torch.manual_seed(seed)
    theirs = lib_nn_factory(torch.nn).to(getattr(torch, dtype))
    ours = lib_nn_factory(nn).to(getattr(tapegrad, dtype))
    result = ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert repr(result) == "<All keys matched successfully>"
    return ours, theirs


MODULES = [
    ("Linear", lambda m: m.Linear(5, 3), (4, 5)),
    ("Linear.nobias.3d", lambda m: m.Linear(5, 3, bias=False), (2, 4, 5)),
    ("Conv1d", lambda m: m.Conv1d(3, 4, 3, stride=2, padding=1), (2, 3, 8)),
    ("Conv2d", lambda m: m.Conv2d(2, 4, (3, 2), padding=(1, 0), dilation=(1, 2), groups=2),
     (2, 2, 6, 6)),
    ("Conv2d.reflect", lambda m: m.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
     (1, 2, 5, 5)),
    ("Conv2d.circular.same", lambda m: m.Conv2d(1, 2, 4, padding="same", padding_mode="circular"),
     (1, 1, 5, 5)),
    ("Conv2d.replicate", lambda m: m.Conv2d(1, 2, 3, padding=2, bias=False,
                                            padding_mode="replicate"), (1, 1, 4, 4)),
    ("LayerNorm", lambda m: m.LayerNorm(6), (3, 6)),
    ("LayerNorm.2d", lambda m: m.LayerNorm([2, 3], eps=1e-3), (4, 2, 3)),
    ("MaxPool2d", lambda m: m.MaxPool2d(2), (1, 2, 4, 6)),
    ("AvgPool2d", lambda m: m.AvgPool2d(3, stride=2, padding=1), (1, 2, 5, 5)),
    ("Flatten", lambda m: m.Flatten(), (2, 3, 4)),
    ("Flatten.range", lambda m: m.Flatten(0, 1), (2, 3, 4)),
    ("Identity", lambda m: m.Identity(7, unused=True), (2, 3)),
    ("ReLU", lambda m: m.ReLU(), (3, 4)),
    ("GELU", lambda m: m.GELU(approximate="tanh"), (3, 4)),
    ("SiLU", lambda m: m.SiLU(), (3, 4)),
    ("Tanh", lambda m: m.Tanh(), (3, 4)),
    ("Sigmoid", lambda m: m.Sigmoid(), (3, 4)),
    ("Softmax", lambda m: m.Softmax(dim=1), (3, 4)),
    ("Dropout.eval", lambda m: m.Dropout(0.2).eval(), (3, 4)),
    ("Sequential", lambda m: m.Sequential(m.Linear(4, 8), m.ReLU(), m.Linear(8, 2)), (5, 4)),
    ("CNN", lambda m: m.Sequential(m.Conv2d(1, 3, 3), m.ReLU(), m.MaxPool2d(2), m.Flatten(),
                                   m.Linear(12, 4), m.LayerNorm(4)), (2, 1, 6, 6)),
]


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "factory", "shape"), MODULES, ids=[m[0] for m in MODULES])
def test_module_against_torch(name, factory, shape, dtype):
    ours, theirs = _pair(factory, dtype)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (2e-5, 2e-5)
    x = np.random.default_rng(seed_of(name)).standard_normal(shape)
    xo = tapegrad.tensor(x, dtype=getattr(tapegrad, dtype), requires_grad=True)
    xt = torch.tensor(x, dtype=getattr(torch, dtype), requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    np.testing.assert_allclose(_np(yo), _np(yt), rtol=rtol, atol=atol)
    assert _name(yo) == _name(yt)
    r = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    (yo * tapegrad.tensor(r, dtype=yo.dtype)).sum().backward()
    (yt * torch.tensor(r, dtype=yt.dtype)).sum().backward()
    np.testing.assert_allclose(_np(xo.grad), _np(xt.grad), rtol=rtol * 10, atol=atol * 10)
    grads_t = {k: p.grad for k, p in theirs.named_parameters()}
    for k, p in ours.named_parameters():
        np.testing.assert_allclose(_np(p.grad), _np(grads_t[k]), rtol=rtol * 10, atol=atol * 10,
                                   err_msg=k)
        assert p.grad.dtype is p.dtype


LOSSES = [
    ("MSELoss", lambda m, lib: m.MSELoss(), "real"),
    ("MSELoss.sum", lambda m, lib: m.MSELoss(reduction="sum"), "real"),
    ("L1Loss", lambda m, lib: m.L1Loss(), "real"),
    ("SmoothL1Loss", lambda m, lib: m.SmoothL1Loss(beta=0.5), "real"),
    ("HuberLoss", lambda m, lib: m.HuberLoss(delta=0.8), "real"),
    ("CrossEntropyLoss", lambda m, lib: m.CrossEntropyLoss(
        weight=lib.tensor([1.0, 2.0, 0.5], dtype=lib.float64), label_smoothing=0.1), "classes"),
    ("NLLLoss", lambda m, lib: m.NLLLoss(ignore_index=1), "classes"),
    ("BCELoss", lambda m, lib: m.BCELoss(), "prob"),
    ("BCEWithLogitsLoss", lambda m, lib: m.BCEWithLogitsLoss(
        pos_weight=lib.tensor([2.0, 0.5, 1.0], dtype=lib.float64)), "logits"),
]


@needs_torch
@pytest.mark.parametrize(("name", "factory", "kind"), LOSSES, ids=[x[0] for x in LOSSES])
def test_loss_module_against_torch(name, factory, kind):
    rng = np.random.default_rng(seed_of(name))
    x = rng.uniform(0.1, 0.9, (4, 3)) if kind == "prob" else rng.standard_normal((4, 3))
    if kind == "classes":
        target = np.array([0, 2, 1, 1])
    elif kind in ("prob", "logits"):
        target = rng.uniform(0, 1, (4, 3))
    else:
        target = rng.standard_normal((4, 3))
    results = []
    for lib, mod in ((tapegrad, nn), (torch, torch.nn)):
        xin = lib.tensor(x, requires_grad=True)
        if kind == "classes" and name == "NLLLoss":
            xin_used = torch.log_softmax(xin, 1) if lib is torch else F.log_softmax(xin, 1)
        else:
            xin_used = xin
        loss = factory(mod, lib)(xin_used, lib.tensor(target))
        loss.backward()
        results.append((loss.item(), _np(xin.grad), _name(loss), repr(factory(mod, lib))))
    (lo, go, no, ro), (lt, gt, nt, rt) = results
    assert lo == pytest.approx(lt, rel=1e-12)
    np.testing.assert_allclose(go, gt, rtol=1e-10, atol=1e-14)
    assert no == nt and ro == rt


@needs_torch
def test_cross_entropy_loss_registers_weight_buffer():
    w = [1.0, 2.0]
    ours = nn.CrossEntropyLoss(weight=tapegrad.tensor(w))
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_embedding_module_against_torch(dtype):
    ours, theirs = _pair(lambda m: m.Embedding(7, 3, padding_idx=-2), dtype)
    idx = np.array([[0, 5, 6], [5, 2, 2]])
    yo, yt = ours(tapegrad.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(_np(yo), _np(yt))
    r = np.random.default_rng(0).standard_normal((2, 3, 3))
    (yo * tapegrad.tensor(r, dtype=yo.dtype)).sum().backward()
    (yt * torch.tensor(r, dtype=yt.dtype)).sum().backward()
    np.testing.assert_allclose(_np(ours.weight.grad), _np(theirs.weight.grad), rtol=1e-6)
    assert not _np(ours.weight.grad)[5].any()  # the padding row gets no gradient
    assert ours.padding_idx == theirs.padding_idx == 5


def test_embedding_from_pretrained():
    w = tapegrad.tensor([[1.0, 2.0], [3.0, 4.0]])
    emb = nn.Embedding.from_pretrained(w)
    assert not emb.weight.requires_grad and repr(emb) == "Embedding(2, 2)"
    np.testing.assert_array_equal(_np(emb(tapegrad.tensor([1, 1]))), [[3.0, 4.0], [3.0, 4.0]])
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad


def test_embedding_padding_row_starts_at_zero():
    tapegrad.manual_seed(0)
    emb = nn.Embedding(4, 3, padding_idx=2)
    w = _np(emb.weight)
    assert not w[2].any() and w[[0, 1, 3]].all()


# ---------------------------------------------------------------- printing

def _printing_net(m):
    class Block(m.Module):
        def __init__(self):
            super().__init__()
            self.norm = m.LayerNorm(8)
            self.act = m.GELU()
            self.layers = m.ModuleList([m.Linear(8, 8) for _ in range(3)] + [m.Linear(8, 4)])

        def forward(self, x):
            return x

    class Net(m.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = m.Conv2d(1, 6, 5)
            self.conv2 = m.Conv2d(6, 16, (3, 2), stride=2, padding=1, dilation=2, groups=2,
                                  bias=False, padding_mode="reflect")
            self.conv3 = m.Conv1d(4, 4, 3, padding="same")
            self.pool = m.MaxPool2d(2, 1, ceil_mode=True)
            self.avg = m.AvgPool2d((2, 3))
            self.feature = m.Sequential(OrderedDict(flat=m.Flatten(), drop=m.Dropout(0.25),
                                                    relu=m.ReLU(inplace=True)))
            self.head = m.Sequential(m.Linear(400, 120), m.SiLU(), m.Tanh(), m.Sigmoid(),
                                     m.Softmax(dim=-1), m.Identity(), m.Linear(10, 2, False))
            self.emb = m.Embedding(10, 3, padding_idx=0, max_norm=1.0)
            self.blocks = m.ModuleDict({"a": Block(), "b": m.ModuleList()})
            self.loss = m.CrossEntropyLoss()
            self.mse = m.MSELoss()
            self.others = m.ModuleList([m.LeakyReLU(0.2, inplace=True), m.LogSoftmax(dim=1),
                                        m.HuberLoss(delta=2.0), m.SmoothL1Loss(), m.BCELoss(),
                                        m.BCEWithLogitsLoss(), m.NLLLoss(), m.L1Loss(),
                                        m.LayerNorm((2, 3), elementwise_affine=False),
                                        m.Embedding(5, 2), m.Conv1d(2, 2, 1, bias=False)])

        def forward(self, x):
            return x

    return Net()


@needs_torch
def test_repr_matches_torch():
    ours = repr(_printing_net(nn))
    theirs = repr(_printing_net(torch.nn))
    assert ours == theirs
    assert "(0-2): 3 x Linear(in_features=8, out_features=8, bias=True)" in ours


@needs_torch
def test_parameter_repr_matches_torch():
    a = np.array([[1.5, -2.0], [0.25, 3.0]])
    for dtype in ("float32", "float64"):
        ours = repr(nn.Parameter(tapegrad.tensor(a, dtype=getattr(tapegrad, dtype))))
        theirs = repr(torch.nn.Parameter(torch.tensor(a, dtype=getattr(torch, dtype))))
        assert ours.replace("tapegrad.", "torch.") == theirs
    ours = repr(nn.Parameter(tapegrad.tensor(a), requires_grad=False))
    assert ours == repr(torch.nn.Parameter(torch.tensor(a), requires_grad=False)).replace(
        "torch.float64", "tapegrad.float64")


# ---------------------------------------------------------------- state dicts

@needs_torch
def test_state_dict_keys_and_round_trip_with_torch():
    tapegrad.manual_seed(0)
    ours = _printing_net(nn)
    theirs = _printing_net(torch.nn)
    sd_o, sd_t = ours.state_dict(), theirs.state_dict()
    assert list(sd_o) == list(sd_t)
    for k in sd_o:
        assert tuple(sd_o[k].shape) == tuple(sd_t[k].shape), k
    # tapegrad -> torch -> (perturbed) -> tapegrad
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in sd_o.items()})
    with torch.no_grad():
        for p in theirs.parameters():
            p.mul_(-0.5)
    result = ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), sd_t[k].numpy(), err_msg=k)


def test_state_dict_shares_storage_and_is_detached():
    lin = nn.Linear(3, 2)
    sd = lin.state_dict()
    assert sd["weight"].grad_fn is None and not sd["weight"].requires_grad
    with tapegrad.no_grad():
        lin.weight.mul_(2)
    np.testing.assert_array_equal(sd["weight"].numpy(), _np(lin.weight))
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight


def test_load_state_dict_copies_in_place():
    src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    weight_id = id(dst.weight)
    dst.load_state_dict(src.state_dict())
    assert id(dst.weight) == weight_id and dst.weight.is_leaf and dst.weight.requires_grad
    np.testing.assert_array_equal(_np(dst.weight), _np(src.weight))


def test_buffers_in_state_dict():
    m = nn.Module()
    m.register_buffer("kept", tapegrad.ones(2))
    m.register_buffer("dropped", tapegrad.zeros(2), persistent=False)
    assert list(m.state_dict()) == ["kept"]
    assert [k for k, _ in m.named_buffers()] == ["kept", "dropped"]
    m.kept = tapegrad.full((2,), 3.0)  # assigning a tensor to a buffer name replaces the buffer
    assert _np(m.state_dict()["kept"]).tolist() == [3.0, 3.0]


@needs_torch
@pytest.mark.parametrize("case", ["missing", "unexpected", "shape"])
def test_load_state_dict_errors_match_torch(case):
    def broken(sd):
        sd = dict(sd)
        if case == "missing":
            del sd["0.bias"]
        elif case == "unexpected":
            sd["2.weight"] = sd["0.weight"]
        else:
            sd["0.weight"] = sd["0.weight"][:1]
        return sd

    def message(mod, lib, make):
        net = mod.Sequential(mod.Linear(2, 3), mod.ReLU())
        with pytest.raises(RuntimeError) as info:
            net.load_state_dict(broken(make(net.state_dict())))
        return str(info.value)

    ours = message(nn, tapegrad, lambda sd: sd)
    theirs = message(torch.nn, torch, lambda sd: sd)
    assert ours == theirs
    if case != "shape":
        net = nn.Sequential(nn.Linear(2, 3))
        result = net.load_state_dict(broken(net.state_dict()), strict=False)
        assert (result.missing_keys, result.unexpected_keys) == (
            (["0.bias"], []) if case == "missing" else ([], ["2.weight"]))


# ---------------------------------------------------------------- the Module protocol

@needs_torch
def test_traversal_matches_torch():
    ours, theirs = _printing_net(nn), _printing_net(torch.nn)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert len(list(ours.parameters(recurse=False))) == 0
    assert [n for n, _ in ours.blocks.named_parameters(prefix="x")] == \
        [n for n, _ in theirs.blocks.named_parameters(prefix="x")]


def test_shared_modules_and_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4


def test_setattr_routing():
    m = nn.Module()
    m.w = nn.Parameter(tapegrad.ones(2))
    m.sub = nn.Linear(2, 2)
    m.plain = tapegrad.ones(2)  # a plain tensor is an ordinary attribute
    assert list(m._parameters) == ["w"] and list(m._modules) == ["sub"]
    assert "plain" in m.__dict__ and [n for n, _ in m.named_parameters()] == [
        "w", "sub.weight", "sub.bias"]
    m.w = None
    assert m.w is None and list(m.named_parameters())[0][0] == "sub.weight"
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' as parameter 'w'"):
        m.w = tapegrad.ones(2)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'sub'"):
        m.sub = 3
    del m.sub
    assert not hasattr(m, "sub")
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing  # noqa: B018
    with pytest.raises(KeyError, match="attribute 'plain' already exists"):
        m.register_parameter("plain", None)
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' object to parameter"):
        m.register_parameter("q", nn.Parameter(tapegrad.ones(2)) * 2)  # type: ignore[arg-type]


def test_assignment_before_init_fails():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tapegrad.ones(1))

    with pytest.raises(AttributeError, match="cannot assign parameters before"):
        Bad()


def test_train_eval_apply_requires_grad():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.ReLU()))
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Dropout", "ReLU", "Sequential", "Sequential"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        net.train("yes")


def test_zero_grad_set_to_none_and_zeros():
    lin = nn.Linear(3, 1)
    lin(tapegrad.ones(2, 3)).sum().backward()
    grad = lin.weight.grad
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad is grad and not _np(grad).any()
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_to_dtype_keeps_parameter_objects():
    net = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
    net.register_buffer("steps", tapegrad.tensor([1, 2]))
    ids = [id(p) for p in net.parameters()]
    net(tapegrad.ones(1, 3)).sum().backward()
    before = _np(net[0].weight).astype(np.float64)
    assert net.double() is net
    assert [id(p) for p in net.parameters()] == ids
    assert all(p.dtype is tapegrad.float64 and p.grad.dtype is tapegrad.float64
               for p in net.parameters())
    assert net.steps.dtype is tapegrad.int64  # integer buffers keep their dtype
    np.testing.assert_array_equal(_np(net[0].weight), before)
    out = net(tapegrad.ones(1, 3, dtype=tapegrad.float64))
    assert out.dtype is tapegrad.float64
    net.float()
    assert all(p.dtype is tapegrad.float32 for p in net.parameters())
    net.to(tapegrad.float64)
    assert net[0].weight.dtype is tapegrad.float64
    with pytest.raises(TypeError, match="only accepts floating point"):
        net.to(tapegrad.int64)


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    pre = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    y = lin(tapegrad.ones(1, 2))
    np.testing.assert_allclose(_np(y), _np(lin.bias)[None] + 1, rtol=1e-6)
    assert calls == [(1, 2)]
    pre.remove()
    post.remove()
    np.testing.assert_allclose(_np(lin(tapegrad.zeros(1, 2))), _np(lin.bias)[None], rtol=1e-6)


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    seq.append(nn.Sigmoid())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and isinstance(seq[1], nn.Linear)
    ml = nn.ModuleList([nn.ReLU()])
    ml.extend([nn.Tanh(), nn.ReLU()])
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "ReLU", "Tanh", "ReLU"]
    md = nn.ModuleDict({"a": nn.ReLU()})
    md["b"] = nn.Linear(1, 1)
    assert list(md) == ["a", "b"] and "b" in md and len(list(md.parameters())) == 2
    with pytest.raises(IndexError):
        seq[5]  # noqa: B018


def test_custom_module_with_manual_parameters_trains():
    class Affine(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(tapegrad.tensor(2.0, dtype=tapegrad.float64))
            self.shift = nn.Parameter(tapegrad.zeros(3, dtype=tapegrad.float64))

        def forward(self, x):
            return x * self.scale + self.shift

    m = Affine()
    x = tapegrad.tensor([1.0, 2.0, 3.0], dtype=tapegrad.float64)
    m(x).sum().backward()
    assert m.scale.grad.item() == 6.0
    np.testing.assert_array_equal(_np(m.shift.grad), [1.0, 1.0, 1.0])


# ---------------------------------------------------------------- Parameter

class TestParameter:
    def test_is_a_leaf_tensor_sharing_storage(self):
        data = tapegrad.ones(3)
        p = nn.Parameter(data)
        assert isinstance(p, tapegrad.Tensor) and type(p) is nn.Parameter
        assert p.is_leaf and p.requires_grad and not data.requires_grad
        with tapegrad.no_grad():
            p.mul_(2)
        np.testing.assert_array_equal(_np(data), [2.0, 2.0, 2.0])
        assert nn.Parameter().shape == (0,)
        assert not nn.Parameter(tapegrad.ones(1), requires_grad=False).requires_grad

    @pytest.mark.parametrize("op", [
        lambda p, x: p + 1, lambda p, x: 1 - p, lambda p, x: p * x.t(), lambda p, x: x.t() / p,
        lambda p, x: p**2, lambda p, x: -p, lambda p, x: p @ x, lambda p, x: x @ p,
        lambda p, x: p.exp(), lambda p, x: p.sum(), lambda p, x: p.mean(0),
        lambda p, x: p[1], lambda p, x: p[:, 1:], lambda p, x: p[tapegrad.tensor([0, 0])],
        lambda p, x: p.t(), lambda p, x: p.reshape(-1), lambda p, x: p.view(3, 2),
        lambda p, x: p.unsqueeze(0), lambda p, x: p.expand(2, 2, 3),
        lambda p, x: tapegrad.cat([p, x.t()]), lambda p, x: tapegrad.stack([p, p]),
        lambda p, x: tapegrad.where(p > 0, p, x.t()), lambda p, x: p.clamp(-0.5, 0.5),
        lambda p, x: p.amax(1), lambda p, x: p.max(), lambda p, x: p.softmax(-1),
        lambda p, x: F.relu(p), lambda p, x: F.linear(x.t(), p),
        lambda p, x: F.mse_loss(p, x.t()), lambda p, x: p.to(tapegrad.float32),
        lambda p, x: p.norm(), lambda p, x: p.clone(), lambda p, x: p.gather(
            1, tapegrad.tensor([[0], [2]])), lambda p, x: p.masked_fill(p > 0, 0.0),
    ])
    def test_works_in_ops_like_a_tensor(self, op):
        """Every op gives a plain Tensor with the same values and gradients as on a Tensor."""
        a = np.array([[0.5, -1.0, 2.0], [1.5, -0.25, 0.75]])
        x = tapegrad.tensor(a.T.copy() * 0.5, dtype=tapegrad.float64)
        p = nn.Parameter(tapegrad.tensor(a, dtype=tapegrad.float64))
        t = tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True)
        out_p, out_t = op(p, x), op(t, x)
        assert type(out_p) in (tapegrad.Tensor, TT._Lazy)  # (a lazy result until read)
        np.testing.assert_array_equal(_np(out_p), _np(out_t))
        assert type(out_p) is tapegrad.Tensor
        out_p.sum().backward()
        out_t.sum().backward()
        np.testing.assert_array_equal(_np(p.grad), _np(t.grad))

    def test_in_place_under_no_grad_and_data(self):
        p = nn.Parameter(tapegrad.zeros(2, dtype=tapegrad.float64))
        with tapegrad.no_grad():
            p.add_(1.0)
            p[0] = 5.0
        p.data.sub_(tapegrad.ones(2, dtype=tapegrad.float64))
        assert _np(p).tolist() == [4.0, 0.0] and p.is_leaf and type(p) is nn.Parameter
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            p.add_(1.0)

    def test_deepcopy_and_pickle(self):
        p = nn.Parameter(tapegrad.tensor([1.0, 2.0]))
        for q in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
            assert type(q) is nn.Parameter and q.requires_grad and q is not p
            np.testing.assert_array_equal(_np(q), _np(p))
        net = copy.deepcopy(nn.Sequential(nn.Linear(2, 2)))
        assert type(net[0].weight) is nn.Parameter

    def test_scalar_float64_parameter(self):
        p = nn.Parameter(tapegrad.tensor(3.0, dtype=tapegrad.float64))
        (p * p + p).backward()
        assert p.grad.item() == 7.0
        with tapegrad.no_grad():
            p.sub_(p.grad * 0.5)
        assert p.item() == -0.5


# ---------------------------------------------------------------- init

class TestInit:
    def test_linear_and_conv_default_bounds(self):
        tapegrad.manual_seed(0)
        lin = nn.Linear(50, 40)
        bound = 1 / math.sqrt(50)
        for t in (lin.weight, lin.bias):
            v = _np(t)
            assert np.abs(v).max() <= bound and np.abs(v).max() > 0.9 * bound
        conv = nn.Conv2d(3, 8, 3)
        assert np.abs(_np(conv.weight)).max() <= 1 / math.sqrt(27)

    @pytest.mark.parametrize(("fn", "check"), [
        (lambda t: nn.init.uniform_(t, -2, 3), lambda v: v.min() >= -2 and v.max() <= 3
         and abs(v.mean() - 0.5) < 0.05),
        (lambda t: nn.init.normal_(t, 1.0, 0.5), lambda v: abs(v.mean() - 1) < 0.02
         and abs(v.std() - 0.5) < 0.02),
        (lambda t: nn.init.constant_(t, 0.3), lambda v: np.allclose(v, 0.3)),
        (nn.init.zeros_, lambda v: not v.any()),
        (nn.init.ones_, lambda v: (v == 1).all()),
        (lambda t: nn.init.xavier_uniform_(t, gain=2.0),
         lambda v: np.abs(v).max() <= 2 * math.sqrt(6 / (100 + 80))),
        (nn.init.xavier_normal_, lambda v: abs(v.std() - math.sqrt(2 / 180)) < 0.01),
        (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"),
         lambda v: np.abs(v).max() <= math.sqrt(6 / 100)),
        (lambda t: nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
         lambda v: abs(v.std() - math.sqrt(2 / 80)) < 0.01),
    ])
    def test_distributions(self, fn, check):
        tapegrad.manual_seed(0)
        p = nn.Parameter(tapegrad.empty(80, 100))
        assert fn(p) is p
        assert p.is_leaf and p.grad_fn is None and p.requires_grad
        assert check(_np(p))

    def test_reproducible(self):
        tapegrad.manual_seed(4)
        a = _np(nn.Linear(3, 3).weight)
        tapegrad.manual_seed(4)
        b = _np(nn.Linear(3, 3).weight)
        np.testing.assert_array_equal(a, b)

    def test_gain_and_fan_errors(self):
        assert nn.init.calculate_gain("relu") == math.sqrt(2)
        assert nn.init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
        with pytest.raises(ValueError, match="fewer than 2 dimensions"):
            nn.init.xavier_uniform_(tapegrad.empty(3))
        with pytest.raises(ValueError, match="Unsupported nonlinearity"):
            nn.init.calculate_gain("softsign")


# ---------------------------------------------------------------- clip_grad

@needs_torch
@pytest.mark.parametrize(("max_norm", "norm_type"), [(0.5, 2.0), (100.0, 2.0), (0.3, math.inf),
                                                     (1.0, 1.0)])
def test_clip_grad_norm_matches_torch(max_norm, norm_type):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    results = []
    for lib, utils in ((tapegrad, nn.utils), (torch, torch.nn.utils)):
        params = [lib.zeros(g.shape, dtype=lib.float64, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g)
        total = utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
        results.append((total.item(), [_np(p.grad) for p in params]))
    (to, go), (tt, gt) = results
    assert to == pytest.approx(tt, rel=1e-12)
    for a, b in zip(go, gt):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_clip_grad_value_and_nonfinite():
    p = tapegrad.zeros(3, requires_grad=True)
    p.grad = tapegrad.tensor([-2.0, 0.5, 3.0])
    nn.utils.clip_grad_value_([p], 1.0)
    assert _np(p.grad).tolist() == [-1.0, 0.5, 1.0]
    p.grad = tapegrad.tensor([float("inf"), 0.0, 0.0])
    with pytest.raises(RuntimeError, match="is non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
