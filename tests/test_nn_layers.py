"""Activation, normalization, dropout, padding, shape and distance layers (``nn/_f_layers.py``,
``nn/modules/layers.py``).

* every row of ``CASES`` against PyTorch (forward values in float64 and float32, gradients of
  ``(out * r).sum()`` for every input, the grad_fn name) and against central differences in
  float64 (no PyTorch needed);
* gradients at the activations' kinks against PyTorch's derivative formulas;
* modules with the same parameters as PyTorch's (outputs, parameter gradients, ``repr``);
* random layers (dropout variants, rrelu): statistics, scaling, gradient equal to the mask;
* error messages against PyTorch's.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import tapegrad
import tapegrad.nn as nn
import tapegrad.nn.functional as F
from tapegrad.testing import gradcheck

try:
    import torch
except ImportError:  # the PyTorch comparisons skip, everything else runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _F(lib):
    return F if lib is tapegrad else torch.nn.functional


@dataclass
class Case:
    name: str
    fn: Callable  # fn(lib, F, *inputs)
    shapes: tuple
    grads: tuple | None = None  # which inputs require grad (default: all floating inputs)
    away: float = 0.0  # keep inputs this far from the kinks at 0 and ±kinks
    kinks: tuple = ()
    positive: tuple = ()  # indices of inputs drawn from (0.5, 1.5)
    grad_fn: bool = True
    fd: bool = True
    extra: dict = field(default_factory=dict)


def _inputs(case: Case, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i, shape in enumerate(case.shapes):
        a = rng.uniform(-2.0, 2.0, size=shape)
        if i in case.positive:
            a = rng.uniform(0.5, 1.5, size=shape)
        for k in (0.0, *case.kinks):
            near = np.abs(a - k) < case.away
            a = np.where(near, k + np.where(a >= k, case.away, -case.away), a)
        out.append(a)
    return out


CASES = [
    Case("selu", lambda L, f, x: f.selu(x), ((3, 4),), away=0.05),
    Case("selu_0d", lambda L, f, x: f.selu(x), ((),), away=0.05),
    Case("celu", lambda L, f, x: f.celu(x, 1.5), ((2, 3, 2),), away=0.05),
    Case("elu_1d", lambda L, f, x: f.elu(x, 0.7), ((5,),), away=0.05),
    Case("glu_last", lambda L, f, x: f.glu(x), ((3, 4),)),
    Case("glu_neg_dim", lambda L, f, x: f.glu(x, -2), ((2, 4, 3),)),
    Case("glu_dim0", lambda L, f, x: f.glu(x, 0), ((6,),)),
    # PyTorch's float64 backward multiplies by float32(1/6); tapegrad by the exact 1/6
    Case("hardsigmoid", lambda L, f, x: f.hardsigmoid(x * 2.5), ((4, 5),), away=0.05,
         kinks=(1.2, -1.2), extra={"grad_rtol": 1e-7}),
    Case("hardswish", lambda L, f, x: f.hardswish(x * 2.5), ((4, 5),), away=0.05,
         kinks=(1.2, -1.2)),
    Case("hardtanh", lambda L, f, x: f.hardtanh(x, -0.5, 1.0), ((3, 4),), away=0.05,
         kinks=(-0.5, 1.0)),
    Case("relu6", lambda L, f, x: f.relu6(x * 4), ((3, 4),), away=0.05, kinks=(1.5,)),
    Case("hardshrink", lambda L, f, x: f.hardshrink(x, 0.6), ((3, 4),), away=0.05,
         kinks=(0.6, -0.6)),
    Case("softshrink", lambda L, f, x: f.softshrink(x), ((2, 3, 4),), away=0.05,
         kinks=(0.5, -0.5)),
    Case("tanhshrink", lambda L, f, x: f.tanhshrink(x), ((3, 4),)),
    Case("softsign", lambda L, f, x: f.softsign(x), ((3, 4),), away=0.05),
    Case("softplus_beta", lambda L, f, x: f.softplus(x, 2.0, 3.0), ((3, 4),), away=0.05,
         kinks=(1.5,)),
    Case("logsigmoid", lambda L, f, x: f.logsigmoid(x), ((3,),)),
    Case("mish", lambda L, f, x: f.mish(x), ((3, 4),)),
    Case("mish_0d", lambda L, f, x: f.mish(x), ((),)),
    Case("threshold", lambda L, f, x: f.threshold(x, 0.3, -2.0), ((3, 4),), away=0.05,
         kinks=(0.3,)),
    Case("softmin", lambda L, f, x: f.softmin(x, 1), ((3, 4),)),
    Case("softmin_neg", lambda L, f, x: f.softmin(x, -1), ((2, 3, 4),)),
    Case("prelu_channels", lambda L, f, x, w: f.prelu(x, w), ((2, 3, 4), (3,)), away=0.05),
    Case("prelu_single", lambda L, f, x, w: f.prelu(x, w), ((2, 3), (1,)), away=0.05),
    Case("prelu_1d", lambda L, f, x, w: f.prelu(x, w), ((5,), (1,)), away=0.05),
    Case("rrelu_eval", lambda L, f, x: f.rrelu(x, 0.1, 0.3), ((3, 4),), away=0.05),
    Case("group_norm", lambda L, f, x, w, b: f.group_norm(x, 2, w, b), ((2, 4, 3), (4,), (4,))),
    Case("group_norm_4d", lambda L, f, x: f.group_norm(x, 3, eps=1e-3), ((2, 6, 2, 2),)),
    Case("group_norm_1", lambda L, f, x: f.group_norm(x, 1), ((2, 3),)),
    Case("instance_norm", lambda L, f, x, w, b: f.instance_norm(x, weight=w, bias=b),
         ((2, 3, 4), (3,), (3,))),
    Case("instance_norm_2d", lambda L, f, x: f.instance_norm(x), ((2, 2, 3, 2),)),
    Case("instance_norm_eval", lambda L, f, x, m, v: f.instance_norm(
        x, m, v, use_input_stats=False), ((2, 3, 4), (3,), (3,)), grads=(0,), positive=(2,)),
    Case("rms_norm", lambda L, f, x, w: f.rms_norm(x, (4,), w), ((3, 4), (4,))),
    Case("rms_norm_2", lambda L, f, x: f.rms_norm(x, [2, 3], eps=1e-3), ((2, 2, 3),)),
    Case("rms_norm_1d", lambda L, f, x: f.rms_norm(x, (5,)), ((5,),)),
    Case("lrn_3d", lambda L, f, x: f.local_response_norm(x, 3, 0.5, 0.7, 1.5), ((2, 5, 3),)),
    Case("lrn_4d", lambda L, f, x: f.local_response_norm(x, 2, 0.3), ((2, 4, 2, 3),)),
    Case("lrn_5d", lambda L, f, x: f.local_response_norm(x, 4, 1.0), ((1, 3, 2, 2, 2),)),
    Case("pad_reflect_1d", lambda L, f, x: f.pad(x, (2, 1), "reflect"), ((2, 4),)),
    Case("pad_reflect_2d", lambda L, f, x: f.pad(x, (1, 2, 2, 0), "reflect"), ((1, 2, 3, 4),)),
    Case("pad_reflect_3d", lambda L, f, x: f.pad(x, (1, 1, 0, 1, 1, 0), "reflect"),
         ((2, 2, 3, 2),)),
    Case("pad_replicate_1d", lambda L, f, x: f.pad(x, (3, 1), "replicate"), ((2, 3, 2),)),
    Case("pad_replicate_2d", lambda L, f, x: f.pad(x, (2, -1, 1, 3), "replicate"), ((2, 3, 3),)),
    Case("pad_replicate_3d", lambda L, f, x: f.pad(x, (1, 2, 1, 0, 0, 2), "replicate"),
         ((1, 1, 2, 2, 3),)),
    Case("pad_circular_1d", lambda L, f, x: f.pad(x, (2, 3), "circular"), ((1, 2, 3),)),
    Case("pad_circular_2d", lambda L, f, x: f.pad(x, (1, -1, 2, 1), "circular"),
         ((1, 2, 3, 3),)),
    Case("pad_circular_3d", lambda L, f, x: f.pad(x, (1, 1, 1, 0, 0, 2), "circular"),
         ((2, 2, 2, 3),)),
    Case("pad_constant", lambda L, f, x: f.pad(x, (1, 2, -1, 1), value=1.5), ((2, 3, 3),)),
    Case("pixel_shuffle", lambda L, f, x: f.pixel_shuffle(x, 2), ((2, 8, 2, 3),)),
    Case("pixel_shuffle_3d", lambda L, f, x: f.pixel_shuffle(x, 3), ((9, 1, 2),)),
    Case("pixel_shuffle_5d", lambda L, f, x: f.pixel_shuffle(x, 2), ((2, 1, 4, 2, 2),)),
    Case("pixel_unshuffle", lambda L, f, x: f.pixel_unshuffle(x, 2), ((2, 2, 4, 6),)),
    Case("pixel_unshuffle_3d", lambda L, f, x: f.pixel_unshuffle(x, 1), ((2, 3, 3),)),
    Case("channel_shuffle", lambda L, f, x: f.channel_shuffle(x, 2), ((2, 6, 3),)),
    Case("channel_shuffle_4d", lambda L, f, x: f.channel_shuffle(x, 3), ((1, 6, 2, 2),)),
    Case("unfold", lambda L, f, x: f.unfold(x, 2), ((2, 3, 4, 4),)),
    Case("unfold_args", lambda L, f, x: f.unfold(x, (2, 3), dilation=(2, 1), padding=1,
                                                  stride=(1, 2)), ((1, 2, 5, 6),)),
    Case("unfold_unbatched", lambda L, f, x: f.unfold(x, 3, padding=1, stride=2), ((2, 4, 5),)),
    Case("fold", lambda L, f, x: f.fold(x, (3, 3), 2), ((2, 8, 4),)),
    Case("fold_args", lambda L, f, x: f.fold(x, (5, 6), (2, 3), dilation=(2, 1), padding=1,
                                             stride=(1, 2)), ((1, 12, 15),)),
    Case("fold_unbatched", lambda L, f, x: f.fold(x, (4, 5), 3, padding=1, stride=2),
         ((18, 6),)),
    Case("cosine_similarity", lambda L, f, a, b: f.cosine_similarity(a, b), ((3, 4), (3, 4))),
    Case("cosine_similarity_bc", lambda L, f, a, b: f.cosine_similarity(a, b, -1),
         ((2, 3, 4), (3, 4))),
    Case("cosine_similarity_1d", lambda L, f, a, b: f.cosine_similarity(a, b, 0),
         ((5,), (5,))),
    Case("pairwise_distance", lambda L, f, a, b: f.pairwise_distance(a, b), ((3, 4), (3, 4))),
    Case("pairwise_distance_p1", lambda L, f, a, b: f.pairwise_distance(a, b, 1.0, keepdim=True),
         ((3, 4), (4,)), away=0.01),
    Case("pairwise_distance_p3", lambda L, f, a, b: f.pairwise_distance(a, b, 3.0),
         ((2, 3, 4), (2, 3, 4))),
    Case("bilinear", lambda L, f, a, b, w, c: f.bilinear(a, b, w, c),
         ((3, 2), (3, 4), (5, 2, 4), (5,))),
    Case("bilinear_nobias", lambda L, f, a, b, w: f.bilinear(a, b, w),
         ((2, 3, 2), (2, 3, 4), (5, 2, 4))),
    Case("bilinear_1d", lambda L, f, a, b, w: f.bilinear(a, b, w), ((2,), (3,), (4, 2, 3))),
]
PARAMS = [pytest.param(c, id=c.name) for c in CASES]


def _run(lib, case: Case, arrays, dtype):
    grads = case.grads if case.grads is not None else tuple(range(len(arrays)))
    if lib is tapegrad:
        ts = [tapegrad.tensor(a, dtype=getattr(tapegrad, dtype), requires_grad=i in grads)
              for i, a in enumerate(arrays)]
    else:
        ts = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=i in grads)
              for i, a in enumerate(arrays)]
    out = case.fn(lib, _F(lib), *ts)
    return ts, out, grads


def _grads(lib, case, arrays, dtype, r):
    ts, out, grads = _run(lib, case, arrays, dtype)
    rr = (tapegrad if lib is tapegrad else torch).tensor(r, dtype=out.dtype)
    (out * rr).sum().backward()
    return out, [np.asarray(ts[i].grad.detach().numpy() if lib is torch else ts[i].grad)
                 for i in grads]


@needs_torch
@pytest.mark.parametrize("case", PARAMS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_against_torch(case: Case, dtype: str) -> None:
    arrays = _inputs(case, 0)
    out_t, grads_t = _grads(torch, case, arrays, dtype,
                            np.random.default_rng(1).standard_normal(
                                _run(torch, case, arrays, "float64")[1].shape))
    r = np.random.default_rng(1).standard_normal(tuple(out_t.shape))
    out, grads = _grads(tapegrad, case, arrays, dtype, r)
    assert tuple(out.shape) == tuple(out_t.shape)
    assert str(out.dtype).split(".")[-1] == str(out_t.dtype).split(".")[-1]
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.detach()), out_t.detach().numpy(), **tol)
    if "grad_rtol" in case.extra:
        tol["rtol"] = max(tol["rtol"], case.extra["grad_rtol"])
    for g, gt in zip(grads, grads_t):
        np.testing.assert_allclose(g, gt, **tol)
    if case.grad_fn:
        assert type(out.grad_fn).__name__ == type(out_t.grad_fn).__name__


@pytest.mark.parametrize("case", [p for p in PARAMS if p.values[0].fd])
def test_finite_differences(case: Case) -> None:
    arrays = _inputs(case, 2)
    grads = case.grads if case.grads is not None else tuple(range(len(arrays)))
    ts = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=i in grads)
          for i, a in enumerate(arrays)]

    def fn(*differentiated):
        args = list(ts)
        for i, x in zip(grads, differentiated):
            args[i] = x
        return case.fn(tapegrad, F, *args)
    assert gradcheck(fn, [ts[i] for i in grads], eps=1e-6, atol=1e-6)


# ---------------------------------------------------------------- kinks

KINK_POINTS = np.array([-3.0, -1.0, -0.5, 0.0, 0.3, 0.5, 1.0, 3.0, 6.0, 20.0])
KINKS = [
    ("elu", lambda f, x: f.elu(x, 2.0)),
    ("selu", lambda f, x: f.selu(x)),
    ("celu", lambda f, x: f.celu(x, 0.5)),
    ("hardsigmoid", lambda f, x: f.hardsigmoid(x)),
    ("hardswish", lambda f, x: f.hardswish(x)),
    ("hardtanh", lambda f, x: f.hardtanh(x)),
    ("relu6", lambda f, x: f.relu6(x)),
    ("hardshrink", lambda f, x: f.hardshrink(x)),
    ("softshrink", lambda f, x: f.softshrink(x)),
    ("softsign", lambda f, x: f.softsign(x)),
    ("mish", lambda f, x: f.mish(x)),
    ("threshold", lambda f, x: f.threshold(x, 0.3, 5.0)),
    ("prelu", lambda f, x: f.prelu(x, x.new_tensor([0.2]) if hasattr(x, "new_tensor")
                                   else x.new_ones(1) * 0.2)),
    ("rrelu_eval", lambda f, x: f.rrelu(x)),
]


@needs_torch
@pytest.mark.parametrize("name,fn", KINKS, ids=[k[0] for k in KINKS])
def test_kink_gradients(name, fn) -> None:
    x = tapegrad.tensor(KINK_POINTS, requires_grad=True)
    xt = torch.tensor(KINK_POINTS, requires_grad=True)
    y, yt = fn(F, x), fn(torch.nn.functional, xt)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(np.asarray(y.detach()), yt.detach().numpy(), rtol=1e-12)
    rtol = 1e-7 if name == "hardsigmoid" else 1e-12  # float32(1/6) in PyTorch's backward
    np.testing.assert_allclose(np.asarray(x.grad), xt.grad.numpy(), rtol=rtol, atol=1e-15)


@needs_torch
def test_cosine_similarity_small_norms() -> None:
    """Norms below eps are clamped as values only; the gradient goes through the norm."""
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [1e-9, 0.0, 0.0]])
    b = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    x, y = (tapegrad.tensor(v, requires_grad=True) for v in (a, b))
    xt, yt = (torch.tensor(v, requires_grad=True) for v in (a, b))
    out, out_t = F.cosine_similarity(x, y), torch.nn.functional.cosine_similarity(xt, yt)
    out.sum().backward()
    out_t.sum().backward()
    np.testing.assert_allclose(np.asarray(out.detach()), out_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(x.grad), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(y.grad), yt.grad.numpy(), rtol=1e-12)


def test_second_order_through_composition() -> None:
    x = tapegrad.tensor([-1.5, -0.2, 0.4, 1.3], dtype=tapegrad.float64, requires_grad=True)
    for fn in (F.selu, F.mish, F.hardswish, F.softsign):
        (g,) = tapegrad.autograd.grad(fn(x).sum(), x, create_graph=True)
        (h,) = tapegrad.autograd.grad(g.sum(), x)
        eps = 1e-6
        with tapegrad.no_grad():
            xp, xm = x + eps, x - eps
        gp = tapegrad.autograd.grad(fn(xp.requires_grad_()).sum(), xp)[0]
        gm = tapegrad.autograd.grad(fn(xm.requires_grad_()).sum(), xm)[0]
        np.testing.assert_allclose(np.asarray(h), (np.asarray(gp) - np.asarray(gm)) / (2 * eps),
                                   rtol=1e-5, atol=1e-7)


SECOND_ORDER = ["glu_neg_dim", "prelu_channels", "group_norm", "instance_norm", "rms_norm",
                "lrn_3d", "cosine_similarity", "pairwise_distance_p3", "bilinear", "softmin",
                "mish", "selu", "hardswish", "softsign"]


@needs_torch
@pytest.mark.parametrize("name", SECOND_ORDER)
def test_double_backward_against_torch(name: str) -> None:
    """Hessian-vector products (create_graph through the composition) equal PyTorch's."""
    case = next(c for c in CASES if c.name == name)
    arrays = _inputs(case, 3)
    rng = np.random.default_rng(4)
    results = []
    for lib in (tapegrad, torch):
        ts, out, grads = _run(lib, case, arrays, "float64")
        rng = np.random.default_rng(4)
        r = lib.tensor(rng.standard_normal(tuple(out.shape)), dtype=out.dtype)
        diff = [ts[i] for i in grads]
        gs = lib.autograd.grad((out * r).sum(), diff, create_graph=True)
        vs = [lib.tensor(rng.standard_normal(tuple(g.shape)), dtype=g.dtype) for g in gs]
        total = sum((g * g * v).sum() for g, v in zip(gs, vs))
        hs = lib.autograd.grad(total, diff, allow_unused=True)
        results.append([np.zeros(tuple(x.shape)) if h is None else np.asarray(h.detach())
                        for h, x in zip(hs, diff)])
    for h, ht in zip(*results):
        np.testing.assert_allclose(h, ht, rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------- in-place forms

INPLACE = [
    ("elu_", lambda f, x: f.elu_(x, 0.5), lambda f, x: f.elu(x, 0.5)),
    ("hardtanh_", lambda f, x: f.hardtanh_(x, -0.3, 0.4), lambda f, x: f.hardtanh(x, -0.3, 0.4)),
    ("leaky_relu_", lambda f, x: f.leaky_relu_(x, 0.2), lambda f, x: f.leaky_relu(x, 0.2)),
    ("threshold_", lambda f, x: f.threshold_(x, 0.1, 3.0), lambda f, x: f.threshold(x, 0.1, 3.0)),
    ("celu_", lambda f, x: f.celu_(x, 2.0), lambda f, x: f.celu(x, 2.0)),
    ("selu_", lambda f, x: f.selu_(x), lambda f, x: f.selu(x)),
    ("relu6", lambda f, x: f.relu6(x, inplace=True), lambda f, x: f.relu6(x)),
    ("hardswish", lambda f, x: f.hardswish(x, inplace=True), lambda f, x: f.hardswish(x)),
    ("hardsigmoid", lambda f, x: f.hardsigmoid(x, inplace=True), lambda f, x: f.hardsigmoid(x)),
    ("mish", lambda f, x: f.mish(x, inplace=True), lambda f, x: f.mish(x)),
    ("rrelu_", lambda f, x: f.rrelu_(x, 0.1, 0.2), lambda f, x: f.rrelu(x, 0.1, 0.2)),
]


@pytest.mark.parametrize("name,inplace,outplace", INPLACE, ids=[i[0] for i in INPLACE])
def test_inplace_forms(name, inplace, outplace) -> None:
    a = np.linspace(-4.0, 7.0, 12).reshape(3, 4) + 0.01
    leaf = tapegrad.tensor(a, requires_grad=True)
    x = leaf * 1.0
    v = x._version
    y = inplace(F, x)
    assert y is x and x._version > v
    (y * tapegrad.tensor(np.arange(12.0).reshape(3, 4))).sum().backward()
    leaf2 = tapegrad.tensor(a, requires_grad=True)
    (outplace(F, leaf2) * tapegrad.tensor(np.arange(12.0).reshape(3, 4))).sum().backward()
    np.testing.assert_allclose(np.asarray(x.detach()),
                               np.asarray(outplace(F, tapegrad.tensor(a))), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(leaf.grad), np.asarray(leaf2.grad), rtol=1e-12)
    plain = tapegrad.tensor(a)
    assert inplace(F, plain) is plain
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used"):
        inplace(F, tapegrad.tensor(a, requires_grad=True))


# ---------------------------------------------------------------- random layers

def test_channel_dropout_masks_and_scaling() -> None:
    tapegrad.manual_seed(0)
    # (fn, shape, number of leading dims sharing one decision)
    for fn, shape, lead in ((F.dropout1d, (40, 50, 3), 2), (F.dropout1d, (800, 3), 1),
                            (F.dropout2d, (40, 50, 2, 2), 2), (F.dropout3d, (40, 50, 1, 2, 2), 2),
                            (F.dropout3d, (800, 1, 2, 2), 1)):
        x = tapegrad.ones(*shape, dtype=tapegrad.float64, requires_grad=True)
        y = fn(x, 0.3)
        y.sum().backward()
        out = np.asarray(y.detach())
        channels = out.reshape(*shape[:lead], -1)
        assert set(np.unique(out).round(12)) <= {0.0, round(1 / 0.7, 12)}
        assert np.all(channels.min(-1) == channels.max(-1))  # one decision per channel
        assert abs((out == 0).mean() - 0.3) < 0.06
        np.testing.assert_array_equal(np.asarray(x.grad), out)  # the gradient is the mask
        for same in (fn(x, 0.3, training=False), fn(x, 0.0)):
            # the batched forms return the input itself, the unbatched ones a view of it
            assert same is x if lead == 2 else np.all(np.asarray(same.detach()) == 1.0)
        np.testing.assert_array_equal(np.asarray(fn(x, 1.0).detach()), 0 * out)
        assert tuple(y.shape) == shape


def test_alpha_dropout_statistics() -> None:
    tapegrad.manual_seed(1)
    x = tapegrad.randn(200, 300, dtype=tapegrad.float64, requires_grad=True)
    y = F.alpha_dropout(x, 0.2, training=True)
    out, a = np.asarray(y.detach()), np.asarray(x.detach())
    assert abs(out.mean()) < 0.02 and abs(out.std() - 1.0) < 0.02  # SELU's fixed point kept
    alpha = 1.7580993408473766
    scale = 1.0 / np.sqrt((alpha * alpha * 0.2 + 1) * 0.8)
    kept = np.isclose(out, a * scale + alpha * scale * 0.2)
    dropped = np.isclose(out, -alpha * scale + alpha * scale * 0.2)
    assert np.all(kept | dropped) and abs(dropped.mean() - 0.2) < 0.01
    y.sum().backward()
    np.testing.assert_allclose(np.asarray(x.grad), np.where(kept, scale, 0.0))
    assert F.alpha_dropout(x, 0.2) is x  # training=False by default
    assert type(y.grad_fn).__name__ == "AddBackward0"


def test_feature_alpha_dropout_per_channel() -> None:
    tapegrad.manual_seed(2)
    x = tapegrad.ones(30, 40, 5, dtype=tapegrad.float64)
    out = np.asarray(F.feature_alpha_dropout(x, 0.5, training=True))
    assert np.all(out.min(-1) == out.max(-1)) and len(np.unique(out.round(12))) == 2
    with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions"):
        F.feature_alpha_dropout(tapegrad.ones(3), 0.5, True)


def test_rrelu_training_slopes() -> None:
    tapegrad.manual_seed(3)
    x = tapegrad.tensor(np.linspace(-2, 2, 4001), requires_grad=True)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    y.sum().backward()
    a, g = np.asarray(x.detach()), np.asarray(x.grad)
    neg = a <= 0
    assert np.all(g[~neg] == 1.0)
    assert np.all((g[neg] >= 0.1) & (g[neg] <= 0.3)) and len(np.unique(g[neg])) > 100
    np.testing.assert_allclose(np.asarray(y.detach()), a * g)
    assert type(y.grad_fn).__name__ == "RreluWithNoiseBackward0"
    m = nn.RReLU(0.1, 0.3).eval()
    np.testing.assert_allclose(np.asarray(m(x).detach()), np.where(neg, 0.2 * a, a))


# ---------------------------------------------------------------- modules

def _torch_reprs():
    return [
        ("ELU()", "ELU()"), ("ELU(0.5, True)", None), ("CELU(2.0)", None), ("SELU()", None),
        ("SELU(True)", None), ("GLU(1)", None), ("Hardsigmoid()", None),
        ("Hardswish(True)", None), ("Hardtanh(-2.0, 3.0)", None), ("Hardtanh(inplace=True)", None),
        ("ReLU6()", None), ("ReLU6(True)", None), ("Hardshrink(0.3)", None),
        ("Softshrink()", None), ("Tanhshrink()", None), ("Softsign()", None),
        ("Softplus(2, 10)", None), ("LogSigmoid()", None), ("Mish()", None),
        ("Threshold(0.1, 20)", None), ("Threshold(0.1, 2.5, True)", None), ("Softmin(1)", None),
        ("Softmax2d()", None), ("PReLU()", None), ("PReLU(3, 0.1)", None), ("RReLU()", None),
        ("RReLU(0.1, 0.3, True)", None), ("GroupNorm(2, 4)", None),
        ("GroupNorm(1, 3, affine=False)", None), ("GroupNorm(2, 4, bias=False)", None),
        ("InstanceNorm1d(3)", None), ("InstanceNorm2d(3, affine=True)", None),
        ("InstanceNorm3d(2, momentum=None, track_running_stats=True)", None),
        ("RMSNorm(3)", None), ("RMSNorm([2, 3], eps=1e-3, elementwise_affine=False)", None),
        ("LocalResponseNorm(2)", None), ("Dropout1d()", None), ("Dropout2d(0.2, True)", None),
        ("Dropout3d()", None), ("AlphaDropout(0.1)", None), ("FeatureAlphaDropout()", None),
        ("ZeroPad1d(1)", None), ("ZeroPad2d((1, 2, 3, 4))", None), ("ZeroPad3d(2)", None),
        ("ConstantPad1d(1, 2.0)", None), ("ConstantPad2d((1, 2, 3, 4), 2)", None),
        ("ConstantPad3d(1, -1.5)", None), ("ReflectionPad1d(1)", None),
        ("ReflectionPad2d((1, 0, 2, 1))", None), ("ReflectionPad3d(1)", None),
        ("ReplicationPad1d((2, 1))", None), ("ReplicationPad2d(1)", None),
        ("ReplicationPad3d(1)", None), ("CircularPad1d(1)", None),
        ("CircularPad2d((1, 0, 1, 2))", None), ("CircularPad3d(1)", None),
        ("PixelShuffle(2)", None), ("PixelUnshuffle(3)", None), ("Unflatten(1, (2, 3))", None),
        ("ChannelShuffle(2)", None), ("Fold((3, 3), 2)", None),
        ("Fold(output_size=(4, 5), kernel_size=(2, 3), stride=2, padding=1)", None),
        ("Unfold(2)", None), ("Unfold((2, 3), dilation=2)", None), ("CosineSimilarity()", None),
        ("PairwiseDistance()", None), ("Bilinear(2, 3, 4)", None),
        ("Bilinear(2, 3, 4, bias=False)", None),
    ]


REPRS = [r[0] for r in _torch_reprs()]


@needs_torch
@pytest.mark.parametrize("expr", REPRS)
def test_module_repr(expr: str) -> None:
    assert repr(eval("nn." + expr)) == repr(eval("torch.nn." + expr))


def _copy_params(module, module_t) -> None:
    state = {k: tapegrad.tensor(v.detach().numpy()) for k, v in module_t.state_dict().items()}
    module.load_state_dict(state)


MODULES = [
    # (constructor, input shapes, train mode)
    ("PReLU(3, 0.1)", ((2, 3, 4),), True),
    ("ELU(0.5)", ((3, 4),), True),
    ("Softmax2d()", ((2, 3, 2, 2),), True),
    ("Softmax2d()", ((3, 2, 2),), True),
    ("Softmin(-1)", ((3, 4),), True),
    ("GroupNorm(2, 4)", ((3, 4, 5),), True),
    ("GroupNorm(3, 3, bias=False)", ((2, 3, 2, 2),), True),
    ("InstanceNorm1d(3, affine=True, track_running_stats=True)", ((2, 3, 5),), True),
    ("InstanceNorm1d(3, affine=True, track_running_stats=True)", ((2, 3, 5),), False),
    ("InstanceNorm1d(3)", ((3, 5),), True),
    ("InstanceNorm2d(2, affine=True, momentum=None, track_running_stats=True)",
     ((2, 2, 3, 3),), True),
    ("InstanceNorm3d(2, affine=True)", ((2, 2, 2, 2, 2),), True),
    ("RMSNorm([3, 4])", ((2, 3, 4),), True),
    ("LocalResponseNorm(3, 0.2)", ((2, 4, 3),), True),
    ("ReflectionPad2d((1, 0, 2, 1))", ((2, 3, 4),), True),
    ("ReplicationPad1d((2, 1))", ((2, 3, 4),), True),
    ("CircularPad2d(1)", ((1, 2, 3, 3),), True),
    ("ZeroPad2d((1, -1, 0, 2))", ((1, 2, 3, 3),), True),
    ("ConstantPad3d(1, 2.5)", ((1, 2, 2, 2),), True),
    ("PixelShuffle(2)", ((1, 4, 2, 2),), True),
    ("PixelUnshuffle(2)", ((1, 1, 4, 2),), True),
    ("ChannelShuffle(2)", ((1, 4, 2, 2),), True),
    ("Unflatten(-1, (2, 3))", ((4, 6),), True),
    ("Fold((4, 5), (2, 3), stride=2, padding=1)", ((2, 12, 9),), True),
    ("Unfold((2, 3), dilation=(1, 2))", ((1, 2, 4, 6),), True),
    ("CosineSimilarity(0)", ((3, 4), (3, 4)), True),
    ("PairwiseDistance(1.5, keepdim=True)", ((3, 4), (3, 4)), True),
    ("Bilinear(2, 3, 4)", ((5, 2), (5, 3)), True),
    ("Threshold(0.2, -1.0)", ((3, 4),), True),
    ("Hardtanh(-0.5, 0.7)", ((3, 4),), True),
    ("ReLU6()", ((3, 4),), True),
    ("Softplus(2.0, 1.0)", ((3, 4),), True),
    ("CELU(0.5)", ((3, 4),), True),
    ("SELU()", ((3, 4),), True),
    ("GLU(1)", ((3, 4),), True),
    ("Hardshrink(0.3)", ((3, 4),), True),
    ("Softshrink(0.3)", ((3, 4),), True),
    ("Mish()", ((3, 4),), True),
    ("Hardswish()", ((3, 4),), True),
    ("Hardsigmoid()", ((3, 4),), True),
    ("Tanhshrink()", ((3, 4),), True),
    ("Softsign()", ((3, 4),), True),
    ("LogSigmoid()", ((3, 4),), True),
    ("RReLU(0.1, 0.3)", ((3, 4),), False),
    ("InstanceNorm2d(2, affine=True, track_running_stats=True)", ((2, 3, 3),), True),
    ("Dropout2d(0.4)", ((2, 3, 2, 2),), False),
    ("AlphaDropout(0.4)", ((2, 3),), False),
]


@needs_torch
@pytest.mark.parametrize("expr,shapes,train", MODULES,
                         ids=[f"{m[0]}-{'train' if m[2] else 'eval'}" for m in MODULES])
def test_module_against_torch(expr, shapes, train) -> None:
    torch.manual_seed(0)
    module_t = eval("torch.nn." + expr).double()
    for p in module_t.parameters():  # break the default initialisation's symmetry
        with torch.no_grad():
            p.add_(torch.rand_like(p) * 0.5)
    module = eval("nn." + expr)
    module.double()
    _copy_params(module, module_t)
    module.train(train)
    module_t.train(train)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [tapegrad.tensor(a, requires_grad=True) for a in arrays]
    xts = [torch.tensor(a, requires_grad=True) for a in arrays]
    for _ in range(2):  # twice, so running statistics feed the second call
        out, out_t = module(*xs), module_t(*xts)
    r = rng.standard_normal(tuple(out_t.shape))
    (out * tapegrad.tensor(r)).sum().backward()
    (out_t * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(np.asarray(out.detach()), out_t.detach().numpy(), rtol=1e-10,
                               atol=1e-12)
    rtol = 1e-7 if expr == "Hardsigmoid()" else 1e-10  # float32(1/6) in PyTorch's backward
    for x, xt in zip(xs, xts):
        np.testing.assert_allclose(np.asarray(x.grad), xt.grad.numpy(), rtol=rtol, atol=1e-12)
    params = dict(module.named_parameters())
    for name, p_t in module_t.named_parameters():
        np.testing.assert_allclose(np.asarray(params[name].grad), p_t.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)
    state = module.state_dict()
    for name, b in module_t.state_dict().items():
        np.testing.assert_allclose(np.asarray(state[name]), b.numpy(), rtol=1e-10, atol=1e-12)


def test_module_defaults() -> None:
    assert np.all(np.asarray(nn.PReLU(3).weight) == 0.25)
    assert tuple(nn.Bilinear(4, 3, 2).weight.shape) == (2, 4, 3)
    w = np.asarray(nn.Bilinear(16, 3, 50).weight)
    assert np.all(np.abs(w) <= 0.25) and w.std() > 0.1
    assert nn.InstanceNorm1d(3).running_mean is None
    assert nn.RMSNorm(3).weight.shape == (3,)
    with pytest.raises(ValueError, match="num_channels must be divisible by num_groups"):
        nn.GroupNorm(2, 3)


def test_gradcheck_modules() -> None:
    tapegrad.manual_seed(0)
    m = nn.Bilinear(2, 3, 2).double()
    a = tapegrad.randn(4, 2, dtype=tapegrad.float64, requires_grad=True)
    b = tapegrad.randn(4, 3, dtype=tapegrad.float64, requires_grad=True)
    assert gradcheck(lambda a, b, w, c: F.bilinear(a, b, w, c), (a, b, m.weight, m.bias))
    g = nn.GroupNorm(2, 4).double()
    x = tapegrad.randn(2, 4, 3, dtype=tapegrad.float64, requires_grad=True)
    assert gradcheck(lambda x, w, c: F.group_norm(x, 2, w, c), (x, g.weight, g.bias))


# ---------------------------------------------------------------- errors

ERRORS = [
    ("glu_0d", lambda f, L: f.glu(L.tensor(1.0))),
    ("glu_odd", lambda f, L: f.glu(L.ones(2, 5), 1)),
    ("glu_odd_neg", lambda f, L: f.glu(L.ones(5, 2), -2)),
    ("prelu_mismatch", lambda f, L: f.prelu(L.ones(2, 5, 3), L.ones(2))),
    ("group_norm_groups", lambda f, L: f.group_norm(L.ones(2, 5, 4), 2)),
    ("group_norm_1d", lambda f, L: f.group_norm(L.ones(4), 2)),
    ("instance_norm_spatial", lambda f, L: f.instance_norm(L.ones(2, 5, 1, 1))),
    ("rms_norm_shape", lambda f, L: f.rms_norm(L.ones(2, 5), (3,))),
    ("lrn_2d", lambda f, L: f.local_response_norm(L.ones(4, 4), 2)),
    ("dropout_p", lambda f, L: f.dropout1d(L.ones(2, 3), 1.5)),
    ("dropout1d_dims", lambda f, L: f.dropout1d(L.ones(2, 3, 4, 5), 0.5)),
    ("alpha_dropout_p", lambda f, L: f.alpha_dropout(L.ones(2, 3), -0.1)),
    ("pixel_shuffle_2d", lambda f, L: f.pixel_shuffle(L.ones(4, 4), 2)),
    ("pixel_shuffle_channels", lambda f, L: f.pixel_shuffle(L.ones(5, 4, 4), 2)),
    ("pixel_shuffle_factor", lambda f, L: f.pixel_shuffle(L.ones(5, 4, 4), -1)),
    ("pixel_unshuffle_h", lambda f, L: f.pixel_unshuffle(L.ones(2, 3, 4), 2)),
    ("pixel_unshuffle_w", lambda f, L: f.pixel_unshuffle(L.ones(2, 4, 3), 2)),
    ("channel_shuffle_groups", lambda f, L: f.channel_shuffle(L.ones(2, 5, 4), 2)),
    ("channel_shuffle_2d", lambda f, L: f.channel_shuffle(L.ones(4, 4), 2)),
    ("unfold_too_big", lambda f, L: f.unfold(L.ones(2, 5, 4, 4), 5)),
    ("fold_kernel", lambda f, L: f.fold(L.ones(1, 5, 4), (3, 3), 2)),
    ("fold_blocks", lambda f, L: f.fold(L.ones(1, 4, 5), (3, 3), 2)),
    ("softmax2d", lambda f, L: (nn if L is tapegrad else torch.nn).Softmax2d()(L.ones(2, 3))),
    ("softshrink_neg", lambda f, L: f.softshrink(L.ones(2), -1.0)),
    ("instance_norm_no_stats",
     lambda f, L: f.instance_norm(L.ones(2, 3, 4), use_input_stats=False)),
    ("instance_norm_stats_size", lambda f, L: f.instance_norm(L.ones(2, 3, 4), L.zeros(2))),
    ("celu_alpha", lambda f, L: f.celu(L.ones(2), 0.0)),
    ("group_norm_weight", lambda f, L: f.group_norm(L.ones(2, 4, 3), 2, L.ones(3))),
    ("rms_norm_weight", lambda f, L: f.rms_norm(L.ones(2, 3), (3,), L.ones(2))),
    ("pixel_unshuffle_2d", lambda f, L: f.pixel_unshuffle(L.ones(2, 3), 2)),
    ("channel_shuffle_0", lambda f, L: f.channel_shuffle(L.ones(2, 4, 3), 0)),
    ("fold_1d", lambda f, L: f.fold(L.ones(3), (2, 2), 1)),
    ("circular_pad_dims", lambda f, L: (nn if L is tapegrad else torch.nn).CircularPad2d(1)(
        L.ones(3, 3))),
    ("bilinear_input2", lambda f, L: f.bilinear(L.ones(2, 3), L.ones(2, 4), L.ones(5, 3, 3))),
    ("bilinear_batch", lambda f, L: f.bilinear(L.ones(2, 3), L.ones(3, 4), L.ones(5, 3, 4))),
    ("bilinear_dims", lambda f, L: f.bilinear(L.ones(2, 3), L.ones(3), L.ones(4, 3, 3))),
]


@needs_torch
@pytest.mark.parametrize("name,fn", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_torch(name, fn) -> None:
    with pytest.raises(Exception) as expected:
        fn(torch.nn.functional, torch)
    with pytest.raises(type(expected.value)) as got:
        fn(F, tapegrad)
    assert str(got.value) == str(expected.value)


def test_softmin_implicit_dim_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = F.softmin(tapegrad.tensor([[1.0, 2.0], [3.0, 5.0]]))
    assert any("Implicit dimension choice for softmin" in str(w.message) for w in caught)
    np.testing.assert_allclose(np.asarray(y).sum(1), [1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("name,call", [
    ("conv2d", lambda L, a, k: L.conv2d(a, k, None, 1, 1)),
    ("conv_transpose2d", lambda L, a, k: L.conv_transpose2d(a, k.transpose(0, 1), None, 2)),
    ("max_pool2d", lambda L, a, k: L.max_pool2d(a, 2)),
    ("selu", lambda L, a, k: L.selu(a)), ("celu", lambda L, a, k: L.celu(a, 0.5)),
    ("layer_norm", lambda L, a, k: L.layer_norm(a, (6,))),
    ("group_norm", lambda L, a, k: L.group_norm(a, 2)),
    ("cosine_similarity", lambda L, a, k: L.cosine_similarity(a, a * a, 1)),
    ("pairwise_distance", lambda L, a, k: L.pairwise_distance(a, a * 2.0)),
    ("pixel_shuffle", lambda L, a, k: L.pixel_shuffle(a, 2)),
    ("threshold", lambda L, a, k: L.threshold(a, 0.1, 20.0)),
    ("hardshrink", lambda L, a, k: L.hardshrink(a, 0.3)),
    ("dropout p=0", lambda L, a, k: L.dropout(a, 0.0, True))])
def test_top_level_forms_of_functional_ops(name, call):
    # torch.conv2d, torch.selu, ... exist at the top level too, with the same arguments
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 4, 6, 6)), rng.normal(size=(3, 4, 3, 3))
    out = []
    for L in (tapegrad, torch):
        a = L.tensor(x, requires_grad=True)
        y = call(L, a, L.tensor(w))
        (y * y).sum().backward()
        out.append((y.detach().numpy(), a.grad.numpy()))
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-10, atol=1e-11)
