"""Losses, pooling, unpooling, interpolation, 3-d and transposed convolution of
``tapegrad.nn._f_losspool`` and ``nn.modules.losspool``.

Each row of ``CASES`` runs against PyTorch (forward values in float64 and float32,
gradients of ``(out * r).sum()`` for every input, grad_fn names) and, without PyTorch,
against central differences in float64.  Then second derivatives, max indices (ties, nan),
error messages, and the modules (outputs, gradients, parameters and repr).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

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
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")


@dataclass
class Case:
    name: str
    fn: Callable  # fn(lib, F, *differentiable tensors, *constants) -> tensor
    shapes: tuple  # shapes of the differentiable inputs (float64 normals, or domain samples)
    consts: Callable = lambda lib: ()  # the non-differentiable inputs, built per library
    domain: str = "normal"  # 'normal', 'positive', 'distinct' (no ties: max pooling)
    fd: bool = True  # also check against central differences

    def arrays(self) -> list[np.ndarray]:
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        out = []
        for shape in self.shapes:
            if self.domain == "positive":
                out.append(rng.uniform(0.2, 2.0, shape))
            elif self.domain == "distinct":
                n = int(np.prod(shape))
                out.append((rng.permutation(n) * 0.1 + rng.uniform(0, 0.01, n)).reshape(shape))
            else:
                out.append(rng.standard_normal(shape))
        return out


def _signs(*shape, seed=0):
    def build(lib):
        a = np.where(np.random.default_rng(seed).standard_normal(shape) > 0, 1.0, -1.0)
        return (lib.tensor(a, dtype=lib.float64),)
    return build


def _long(values):
    return lambda lib: (lib.tensor(np.asarray(values, dtype=np.int64)),)


def _probs(*shape):
    def build(lib):
        a = np.random.default_rng(3).uniform(0.0, 1.0, shape)
        a[(0,) * len(shape)] = 0.0  # xlogy's 0 log 0
        return (lib.tensor(a, dtype=lib.float64),)
    return build


def _c(t, like):
    """A float64 constant cast to the dtype of ``like``."""
    return t.to(like.dtype)


CASES = [
    # kl_div
    *[Case(f"kl_div/{red}/{s}", lambda lib, F, x, t, red=red: F.kl_div(x, _c(t, x),
                                                                        reduction=red),
           (s,), _probs(*s)) for red in ("none", "sum", "mean", "batchmean")
      for s in ((), (5,), (3, 4), (2, 3, 2))],
    Case("kl_div/log_target", lambda lib, F, x, t: F.kl_div(x, t, reduction="batchmean",
                                                            log_target=True), ((3, 4), (3, 4))),
    Case("kl_div/log_target/none", lambda lib, F, x, t: F.kl_div(x, t, reduction="none",
                                                                 log_target=True),
         ((2, 3), (2, 3))),
    # margin ranking, hinge, soft margin
    *[Case(f"margin_ranking/{red}/{s}",
           lambda lib, F, a, b, y, red=red: F.margin_ranking_loss(a, b, _c(y, a), 0.3,
                                                                  reduction=red),
           (s, s), _signs(*s)) for red in ("none", "mean", "sum") for s in ((), (6,), (2, 3))],
    *[Case(f"hinge_embedding/{red}/{s}",
           lambda lib, F, x, y, red=red: F.hinge_embedding_loss(x, _c(y, x), 0.7,
                                                                reduction=red),
           (s,), _signs(*s, seed=1)) for red in ("none", "mean", "sum")
      for s in ((), (6,), (2, 3, 2))],
    *[Case(f"soft_margin/{red}/{s}",
           lambda lib, F, x, y, red=red: F.soft_margin_loss(x, _c(y, x), reduction=red),
           (s,), _signs(*s, seed=2)) for red in ("none", "mean", "sum") for s in ((), (3, 4))],
    # cosine embedding
    *[Case(f"cosine_embedding/{red}", lambda lib, F, a, b, y, red=red:
           F.cosine_embedding_loss(a, b, y, 0.1, reduction=red), ((4, 3), (4, 3)),
           lambda lib: (lib.tensor([1, -1, 1, -1]),)) for red in ("none", "mean", "sum")],
    Case("cosine_embedding/1d", lambda lib, F, a, b, y: F.cosine_embedding_loss(a, b, y, -0.5),
         ((5,), (5,)), lambda lib: (lib.tensor(-1),)),
    # multilabel losses
    *[Case(f"multilabel_soft_margin/{red}/{s}", lambda lib, F, x, t, red=red:
           F.multilabel_soft_margin_loss(x, _c(t, x), reduction=red),
           (s,), lambda lib, s=s: (lib.tensor((np.arange(np.prod(s)).reshape(s) % 3 == 0)
                                               .astype(np.float64)),))
      for red in ("none", "mean", "sum") for s in ((4,), (3, 4))],
    Case("multilabel_soft_margin/weight", lambda lib, F, x, w: F.multilabel_soft_margin_loss(
        x, lib.tensor([[1.0, 0, 1], [0, 0, 1]], dtype=x.dtype), weight=w), ((2, 3), (3,))),
    *[Case(f"multilabel_margin/{red}", lambda lib, F, x, t, red=red:
           F.multilabel_margin_loss(x, t, reduction=red), ((3, 4),),
           _long([[3, 0, -1, 1], [0, 1, 2, 3], [1, 1, -1, 2]]))
      for red in ("none", "mean", "sum")],
    Case("multilabel_margin/1d", lambda lib, F, x, t: F.multilabel_margin_loss(
        x, t, reduction="none"), ((4,),), _long([2, -1, 0, 0])),
    Case("multilabel_margin/0d", lambda lib, F, x, t: F.multilabel_margin_loss(x, t), ((),),
         _long([0])),
    *[Case(f"multi_margin/p{p}/{red}", lambda lib, F, x, t, p=p, red=red:
           F.multi_margin_loss(x, t, p=p, margin=0.8, reduction=red), ((4, 5),),
           _long([1, 0, 4, 2])) for p in (1, 2) for red in ("none", "mean", "sum")],
    Case("multi_margin/weight", lambda lib, F, x, t: F.multi_margin_loss(
        x, t, weight=lib.tensor([0.5, 1.0, 2.0], dtype=x.dtype)), ((2, 3),), _long([2, 0])),
    Case("multi_margin/1d", lambda lib, F, x, t: F.multi_margin_loss(x, t, reduction="none"),
         ((5,),), _long(3)),
    # triplet
    *[Case(f"triplet_margin/{red}/swap{swap}", lambda lib, F, a, p, n, red=red, swap=swap:
           F.triplet_margin_loss(a, p, n, margin=1.5, swap=swap, reduction=red),
           ((4, 3), (4, 3), (4, 3))) for red in ("none", "mean", "sum") for swap in (False, True)],
    Case("triplet_margin/p1/1d", lambda lib, F, a, p, n: F.triplet_margin_loss(a, p, n, p=1),
         ((5,), (5,), (5,))),
    Case("triplet_margin_with_distance/default", lambda lib, F, a, p, n:
         F.triplet_margin_with_distance_loss(a, p, n, swap=True), ((4, 3), (4, 3), (4, 3))),
    Case("triplet_margin_with_distance/l1", lambda lib, F, a, p, n:
         F.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y:
                                             (x - y).abs().sum(-1), margin=2.0,
                                             reduction="none"),
         ((4, 3), (4, 3), (4, 3))),
    # poisson, gaussian
    *[Case(f"poisson_nll/log{log}/full{full}/{red}", lambda lib, F, x, t, log=log, full=full,
           red=red: F.poisson_nll_loss(x, _c(t, x), log_input=log, full=full,
                                       reduction=red),
           ((3, 4),), lambda lib: (lib.tensor(np.arange(12.0).reshape(3, 4) / 3),),
           domain="positive") for log in (True, False) for full in (False, True)
      for red in ("none", "mean")],
    *[Case(f"gaussian_nll/{red}/full{full}", lambda lib, F, x, t, v, red=red, full=full:
           F.gaussian_nll_loss(x, t, v, full=full, reduction=red),
           ((3, 4), (3, 4), (3, 4)), domain="positive")
      for red in ("none", "mean", "sum") for full in (False, True)],
    Case("gaussian_nll/homoscedastic", lambda lib, F, x, t, v: F.gaussian_nll_loss(x, t, v),
         ((3, 4), (3, 4), (3,)), domain="positive"),
    Case("gaussian_nll/one_var_dim", lambda lib, F, x, t, v: F.gaussian_nll_loss(x, t, v),
         ((3, 4), (3, 4), (3, 1)), domain="positive"),
    Case("gaussian_nll/float_var", lambda lib, F, x, t: F.gaussian_nll_loss(x, t, 0.5),
         ((3, 4), (3, 4))),
    Case("gaussian_nll/clamped", lambda lib, F, x, t, v: F.gaussian_nll_loss(
        x, t, v * lib.tensor([1.0, 1e-9, 1.0], dtype=v.dtype), eps=1e-3),
         ((2, 3), (2, 3), (2, 3)),
         domain="positive", fd=False),
    # max pooling (distinct values: no ties, so central differences apply)
    *[Case(f"max_pool1d/{s}/{kw}", lambda lib, F, x, kw=kw: F.max_pool1d(x, **kw), (s,),
           domain="distinct")
      for s in ((3, 7), (2, 3, 8)) for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2,
                                                                       padding=1),
                                              dict(kernel_size=2, dilation=2, ceil_mode=True))],
    *[Case(f"max_pool3d/{s}/{kw}", lambda lib, F, x, kw=kw: F.max_pool3d(x, **kw), (s,),
           domain="distinct")
      for s in ((2, 4, 5, 3), (1, 2, 3, 4, 5)) for kw in (
          dict(kernel_size=2), dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=1),
          dict(kernel_size=2, stride=2, ceil_mode=True), dict(kernel_size=2, dilation=(1, 2, 1)))],
    Case("max_pool1d/ties", lambda lib, F, x: F.max_pool1d(x.round(), 3, 1), ((2, 9),),
         fd=False),
    Case("max_pool3d/ties", lambda lib, F, x: F.max_pool3d(x.round(), 2, 1), ((1, 3, 3, 3),),
         fd=False),
    # average pooling
    *[Case(f"avg_pool1d/{s}/{kw}", lambda lib, F, x, kw=kw: F.avg_pool1d(x, **kw), (s,))
      for s in ((3, 7), (2, 3, 8)) for kw in (
          dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
          dict(kernel_size=3, stride=2, padding=1, count_include_pad=False, ceil_mode=True))],
    *[Case(f"avg_pool3d/{s}/{kw}", lambda lib, F, x, kw=kw: F.avg_pool3d(x, **kw), (s,))
      for s in ((2, 4, 5, 3), (1, 2, 3, 4, 5)) for kw in (
          dict(kernel_size=2), dict(kernel_size=(3, 2, 2), stride=(2, 1, 2), padding=1),
          dict(kernel_size=3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
          dict(kernel_size=2, divisor_override=3))],
    # adaptive pooling
    *[Case(f"adaptive_avg_pool1d/{s}/{o}", lambda lib, F, x, o=o: F.adaptive_avg_pool1d(x, o),
           (s,)) for s in ((3, 7), (2, 3, 5)) for o in (1, 3, 5)],
    *[Case(f"adaptive_avg_pool2d/{s}/{o}", lambda lib, F, x, o=o: F.adaptive_avg_pool2d(x, o),
           (s,)) for s in ((3, 7, 5), (2, 1, 5, 4)) for o in (1, (3, 2), (None, 3), 6)],
    *[Case(f"adaptive_avg_pool3d/{s}/{o}", lambda lib, F, x, o=o: F.adaptive_avg_pool3d(x, o),
           (s,)) for s in ((2, 3, 5, 4), (1, 2, 4, 3, 5)) for o in (1, (2, 3, 2), 3)],
    *[Case(f"adaptive_max_pool{nd}d/{s}/{o}", lambda lib, F, x, o=o, nd=nd:
           getattr(F, f"adaptive_max_pool{nd}d")(x, o), (s,), domain="distinct")
      for nd, s, o in ((1, (3, 7), 3), (1, (2, 3, 5), 5), (2, (3, 7, 5), (3, 2)),
                       (2, (2, 1, 5, 4), (None, 3)), (3, (2, 3, 5, 4), (2, 3, 2)),
                       (3, (1, 2, 4, 3, 5), 1))],
    # power-average pooling
    *[Case(f"lp_pool{nd}d/{s}/{p}", lambda lib, F, x, nd=nd, p=p:
           getattr(F, f"lp_pool{nd}d")(x, p, 2, ceil_mode=True), (s,), domain="positive")
      for nd, s in ((1, (2, 3, 7)), (2, (2, 5, 4)), (3, (1, 3, 4, 3))) for p in (2, 3.0)],
    Case("lp_pool2d/stride", lambda lib, F, x: F.lp_pool2d(x, 1.5, (2, 3), 1), ((2, 4, 5),),
         domain="positive"),
    Case("lp_pool1d/inf", lambda lib, F, x: F.lp_pool1d(x, float("inf"), 2), ((2, 6),),
         domain="distinct"),
]



def _unpool_indices(pool: str, shape, *args):
    """The indices a max pooling of distinct values gives (computed with tapegrad)."""
    n = int(np.prod(shape))
    a = (np.random.default_rng(9).permutation(n) * 1.0).reshape(shape)
    idx = np.asarray(getattr(F, pool)(tapegrad.tensor(a), *args, return_indices=True)[1])
    return lambda lib: (lib.tensor(idx),)


CASES += [
    Case("max_unpool1d", lambda lib, F, x, i: F.max_unpool1d(x, i, 2), ((2, 3, 3),),
         _unpool_indices("max_pool1d", (2, 3, 7), 2)),
    Case("max_unpool1d/size", lambda lib, F, x, i: F.max_unpool1d(x, i, 2, output_size=[7]),
         ((3, 3),), _unpool_indices("max_pool1d", (3, 7), 2)),
    # overlapping windows repeat an index: PyTorch's gradient reaches every repeat
    Case("max_unpool1d/repeats", lambda lib, F, x, i: F.max_unpool1d(x, i, 3, 2, 1, [7]),
         ((3, 4),), _unpool_indices("max_pool1d", (3, 7), 3, 2, 1), fd=False),
    Case("max_unpool2d", lambda lib, F, x, i: F.max_unpool2d(x, i, 2), ((2, 3, 2, 2),),
         _unpool_indices("max_pool2d", (2, 3, 5, 4), 2)),
    Case("max_unpool2d/size", lambda lib, F, x, i: F.max_unpool2d(x, i, 2, output_size=(2, 3, 5,
                                                                                     4)),
         ((2, 3, 2, 2),), _unpool_indices("max_pool2d", (2, 3, 5, 4), 2)),
    Case("max_unpool3d", lambda lib, F, x, i: F.max_unpool3d(x, i, 2, output_size=(5, 5, 3)),
         ((1, 2, 2, 2, 1),), _unpool_indices("max_pool3d", (1, 2, 4, 5, 3), 2)),
    Case("max_unpool3d/unbatched", lambda lib, F, x, i: F.max_unpool3d(x, i, (1, 2, 2),
                                                                     output_size=(3, 4, 5)),
         ((2, 3, 2, 2),), _unpool_indices("max_pool3d", (2, 3, 4, 5), (1, 2, 2))),
]

CASES += [
    Case("conv3d", lambda lib, F, x, w, b: F.conv3d(x, w, b), ((2, 3, 3, 4, 3), (2, 3, 2, 2, 1),
                                                              (2,))),
    Case("conv3d/args", lambda lib, F, x, w: F.conv3d(x, w, None, (1, 2, 1), (1, 0, 1), (2, 1, 1),
                                                      2), ((4, 4, 4, 3), (2, 2, 2, 1, 2))),
    Case("conv_transpose1d", lambda lib, F, x, w, b: F.conv_transpose1d(x, w, b),
         ((2, 4, 5), (4, 3, 3), (3,))),
    Case("conv_transpose1d/unbatched", lambda lib, F, x, w: F.conv_transpose1d(
        x, w, stride=3, output_padding=2, dilation=3, padding=2), ((4, 5), (4, 2, 3))),
    Case("conv_transpose2d", lambda lib, F, x, w, b: F.conv_transpose2d(
        x, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)),
         ((2, 4, 3, 3), (4, 1, 3, 2), (2,))),
    Case("conv_transpose2d/crop", lambda lib, F, x, w: F.conv_transpose2d(x, w, padding=(3, 1)),
         ((1, 2, 5, 4), (2, 3, 3, 3))),
    Case("conv_transpose3d", lambda lib, F, x, w, b: F.conv_transpose3d(
        x, w, b, stride=(1, 2, 2), padding=(0, 1, 0)), ((1, 2, 2, 3, 2), (2, 3, 2, 2, 2), (3,))),
]

INTERPOLATIONS = [
    ((2, 3, 5), dict(size=8)), ((2, 3, 5), dict(scale_factor=2.5)),
    ((2, 3, 5), dict(size=3)), ((2, 3, 5), dict(scale_factor=0.7, mode="nearest-exact")),
    ((1, 2, 4, 5), dict(size=(7, 3))), ((1, 2, 4, 5), dict(size=(7, 3), mode="nearest-exact")),
    ((1, 2, 3, 4, 5), dict(scale_factor=(2, 1.5, 0.5))),
    ((2, 3, 5), dict(size=8, mode="linear")),
    ((2, 3, 5), dict(size=8, mode="linear", align_corners=True)),
    ((2, 3, 5), dict(scale_factor=1.7, mode="linear")),
    ((2, 3, 5), dict(scale_factor=1.7, mode="linear", recompute_scale_factor=True)),
    ((2, 3, 5), dict(size=1, mode="linear", align_corners=True)),
    ((1, 2, 4, 5), dict(size=(7, 3), mode="bilinear")),
    ((1, 2, 4, 5), dict(scale_factor=(2.2, 0.6), mode="bilinear", align_corners=True)),
    ((1, 2, 4, 5), dict(size=(9, 7), mode="bicubic")),
    ((1, 2, 4, 5), dict(scale_factor=1.3, mode="bicubic", align_corners=True)),
    ((1, 2, 4, 5), dict(size=(2, 3), mode="bicubic")),
    ((1, 2, 3, 4, 5), dict(size=(5, 2, 7), mode="trilinear")),
    ((1, 2, 3, 4, 5), dict(scale_factor=1.5, mode="trilinear", align_corners=True)),
    ((1, 2, 4, 5), dict(size=(3, 2), mode="area")), ((1, 2, 7), dict(scale_factor=0.5,
                                                                     mode="area")),
]
CASES += [Case(f"interpolate/{s}/{kw}", lambda lib, F, x, kw=kw: F.interpolate(x, **kw), (s,))
          for s, kw in INTERPOLATIONS]

CASE_PARAMS = [pytest.param(c, id=c.name) for c in CASES]


def _np(t) -> np.ndarray:
    return np.array(t.detach().numpy())


def _name(t) -> str | None:
    return None if t.grad_fn is None else t.grad_fn.name()


def _run(case: Case, lib, dtype: str):
    leaves = [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True)
              for a in case.arrays()]
    consts = case.consts(lib)
    return leaves, case.fn(lib, F if lib is tapegrad else torch.nn.functional, *leaves,
                           *consts)


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_against_torch(case: Case, dtype: str):
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-5, 1e-6)
    ours, out_o = _run(case, tapegrad, dtype)
    theirs, out_t = _run(case, torch, dtype)
    assert tuple(out_o.shape) == tuple(out_t.shape)
    assert out_o.dtype.name == str(out_t.dtype).rsplit(".", 1)[-1]
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=rtol, atol=atol, err_msg="forward")
    assert _name(out_o) == _name(out_t)
    r = np.random.default_rng(1).standard_normal(tuple(out_t.shape))
    (out_o * tapegrad.tensor(r, dtype=out_o.dtype)).sum().backward()
    (out_t * torch.tensor(r, dtype=out_t.dtype)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if b.grad is None:
            assert a.grad is None, f"input {i}"
            continue
        np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


@pytest.mark.parametrize("case", [p for p in CASE_PARAMS if p.values[0].fd])
def test_central_differences(case: Case):
    leaves = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True)
              for a in case.arrays()]
    consts = case.consts(tapegrad)
    assert gradcheck(lambda *xs: case.fn(tapegrad, F, *xs, *consts), leaves)


SECOND_ORDER = [
    ("gaussian_nll", lambda F, x, t, v: F.gaussian_nll_loss(x, t, v), ((3, 4), (3, 4), (3, 4))),
    ("bicubic", lambda F, x: F.interpolate(x * x, size=(5, 6), mode="bicubic"), ((1, 2, 3, 4),)),
    ("conv_transpose2d", lambda F, x, w: F.conv_transpose2d(x, w, stride=2) ** 2,
     ((1, 2, 3, 3), (2, 3, 2, 2))),
    ("triplet_margin", lambda F, a, p, n: F.triplet_margin_loss(a, p, n, margin=5),
     ((4, 3), (4, 3), (4, 3))),
    ("lp_pool2d", lambda F, x: F.lp_pool2d(x, 3, 2), ((1, 4, 4),)),
    ("poisson_nll", lambda F, x: F.poisson_nll_loss(x, x.detach() * 3, log_input=False,
                                                    full=True), ((3, 4),)),
]


@needs_torch
@pytest.mark.parametrize("fn,shapes", [pytest.param(f, s, id=n) for n, f, s in SECOND_ORDER])
def test_second_order_against_torch(fn, shapes):
    """The gradient of the squared gradient norm (create_graph) agrees with PyTorch's."""
    rng = np.random.default_rng(4)
    arrays = [rng.uniform(0.3, 2.0, s) for s in shapes]
    results = []
    for lib, functional in ((tapegrad, F), (torch, torch.nn.functional)):
        xs = [lib.tensor(a, requires_grad=True) for a in arrays]
        y = fn(functional, *xs)
        grads = lib.autograd.grad(y.sum(), xs, create_graph=True)
        total = sum((g * g).sum() for g in grads)
        results.append([_np(g) for g in lib.autograd.grad(total, xs)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- indices and ties

@needs_torch
@pytest.mark.parametrize("call", [
    lambda F, x: F.max_pool1d(x.round(), 3, 1, return_indices=True),
    lambda F, x: F.max_pool1d_with_indices(x.round(), 2, 1, 1, return_indices=True),
    lambda F, x: F.max_pool2d_with_indices(x.reshape(1, 3, 12).round(), 2, 1, return_indices=True),
    lambda F, x: F.max_pool3d(x.reshape(2, 3, 2, 3).round(), 2, 1, return_indices=True),
    lambda F, x: F.max_pool3d_with_indices(x.reshape(2, 3, 2, 3), 2, 1, 1, (2, 1, 1),
                                           return_indices=True),
    lambda F, x: F.adaptive_max_pool1d(x, 4, return_indices=True),
    lambda F, x: F.adaptive_max_pool2d(x.reshape(1, 3, 12).round(), (2, 5), return_indices=True),
    lambda F, x: F.adaptive_max_pool3d(x.reshape(1, 3, 4, 3), (2, 3, 2), return_indices=True),
    lambda F, x: F.adaptive_max_pool2d_with_indices(x.reshape(3, 2, 6), 2, return_indices=True),
])
def test_max_indices(call):
    a = np.random.default_rng(5).standard_normal((3, 6, 2)).reshape(3, 12) * 2
    ours = call(F, tapegrad.tensor(a))
    theirs = call(torch.nn.functional, torch.tensor(a))
    for o, t in zip(ours, theirs):
        assert o.dtype.name == str(t.dtype).rsplit(".", 1)[-1]
        np.testing.assert_array_equal(_np(o), _np(t))


@needs_torch
def test_max_with_nan_and_inf():
    row = [np.inf, np.nan, 1.0, np.nan, 2.0, -np.inf]
    a = np.array(row * 4).reshape(1, 4, 1, 6)
    for call in (lambda F, x: F.max_pool3d(x, (1, 1, 3), return_indices=True),
                 lambda F, x: F.adaptive_max_pool3d(x, (1, 1, 2), return_indices=True),
                 lambda F, x: F.adaptive_max_pool2d(x[0], (1, 4), return_indices=True)):
        x_o = tapegrad.tensor(a, requires_grad=True)
        x_t = torch.tensor(a, requires_grad=True)
        (out_o, idx_o), (out_t, idx_t) = call(F, x_o), call(torch.nn.functional, x_t)
        np.testing.assert_array_equal(_np(out_o), _np(out_t))
        np.testing.assert_array_equal(_np(idx_o), _np(idx_t))
        out_o.sum().backward()
        out_t.sum().backward()
        np.testing.assert_array_equal(_np(x_o.grad), _np(x_t.grad))


# ---------------------------------------------------------------- errors

_x = np.random.default_rng(0).standard_normal((3, 4))
ERRORS = [
    ("kl_div", lambda lib, F: F.kl_div(lib.tensor(_x), lib.tensor(_x), reduction="bad")),
    ("margin_ranking", lambda lib, F: F.margin_ranking_loss(lib.tensor(_x), lib.tensor(_x),
                                                            lib.tensor(_x[0]))),
    ("multilabel_margin/range", lambda lib, F: F.multilabel_margin_loss(
        lib.tensor(_x), lib.tensor([[5, 0, -1, 1], [0, 1, 2, 3], [1, -1, 0, 0]]))),
    ("multilabel_margin/neg", lambda lib, F: F.multilabel_margin_loss(
        lib.tensor(_x), lib.tensor([[1, 0, -2, 1], [0, 1, 2, 3], [1, -1, 0, 0]]))),
    ("multilabel_margin/size", lambda lib, F: F.multilabel_margin_loss(lib.tensor(_x),
                                                                       lib.tensor([1, 0]))),
    ("multi_margin/size", lambda lib, F: F.multi_margin_loss(lib.tensor(_x), lib.tensor([1, 0]))),
    ("multi_margin/range", lambda lib, F: F.multi_margin_loss(lib.tensor(_x),
                                                              lib.tensor([1, 0, 4]))),
    ("multi_margin/weight", lambda lib, F: F.multi_margin_loss(
        lib.tensor(_x), lib.tensor([1, 0, 1]), weight=lib.ones(3, dtype=lib.float64))),
    ("multi_margin/p", lambda lib, F: F.multi_margin_loss(lib.tensor(_x), lib.tensor([1, 0, 1]),
                                                          p=3)),
    ("multi_margin/float", lambda lib, F: F.multi_margin_loss(lib.tensor(_x),
                                                              lib.tensor([1, 0, 1.0]))),
    ("cosine/target2d", lambda lib, F: F.cosine_embedding_loss(lib.tensor(_x), lib.tensor(_x),
                                                               lib.ones(3, 1))),
    ("cosine/0d", lambda lib, F: F.cosine_embedding_loss(lib.tensor(_x), lib.tensor(_x),
                                                         lib.ones(()))),
    ("cosine/1d", lambda lib, F: F.cosine_embedding_loss(lib.tensor(_x[0]), lib.tensor(_x[0]),
                                                         lib.ones(3))),
    ("triplet/dims", lambda lib, F: F.triplet_margin_loss(lib.tensor(_x), lib.tensor(_x),
                                                          lib.tensor(_x[0]))),
    ("triplet_distance/margin", lambda lib, F: F.triplet_margin_with_distance_loss(
        lib.tensor(_x), lib.tensor(_x), lib.tensor(_x), margin=0)),
    ("gaussian/size", lambda lib, F: F.gaussian_nll_loss(lib.tensor(_x), lib.tensor(_x),
                                                         lib.ones(2))),
    ("gaussian/negative", lambda lib, F: F.gaussian_nll_loss(lib.tensor(_x), lib.tensor(_x),
                                                             -lib.ones(3, 4))),
    ("poisson/reduction", lambda lib, F: F.poisson_nll_loss(lib.tensor(_x), lib.tensor(_x),
                                                            reduction="x")),
    ("soft_margin/target_grad", lambda lib, F: F.soft_margin_loss(
        lib.tensor(_x), lib.tensor(_x, requires_grad=True))),
    ("multi_margin/weight_grad", lambda lib, F: F.multi_margin_loss(
        lib.tensor(_x), lib.tensor([1, 0, 1]), weight=lib.ones(4, dtype=lib.float64,
                                                                requires_grad=True))),
    ("max_unpool/index", lambda lib, F: F.max_unpool2d(lib.ones(1, 2, 1, 3),
                                                       lib.tensor([[[[0, 1, 99]], [[0, 1, 2]]]]),
                                                       2)),
    ("max_unpool/float", lambda lib, F: F.max_unpool2d(lib.ones(1, 1, 3), lib.ones(1, 1, 3), 2)),
    ("max_unpool/shape", lambda lib, F: F.max_unpool2d(lib.ones(1, 1, 3),
                                                       lib.zeros(1, 1, 2, dtype=lib.int64), 2)),
    ("max_unpool/dims", lambda lib, F: F.max_unpool3d(lib.ones(1, 1, 3),
                                                      lib.zeros(1, 1, 3, dtype=lib.int64), 2)),
    ("max_unpool/size_len", lambda lib, F: F.max_unpool1d(
        lib.ones(1, 3), lib.zeros(1, 3, dtype=lib.int64), 2, output_size=(1, 2))),
    ("max_unpool/size", lambda lib, F: F.max_unpool2d(
        lib.ones(1, 1, 3), lib.zeros(1, 1, 3, dtype=lib.int64), 2, output_size=(5, 6))),
    ("conv_transpose/channels", lambda lib, F: F.conv_transpose2d(lib.ones(1, 5, 6, 6),
                                                                  lib.ones(4, 3, 3, 3))),
    ("conv_transpose/output_padding", lambda lib, F: F.conv_transpose2d(
        lib.ones(1, 4, 6, 6), lib.ones(4, 3, 3, 3), stride=2, output_padding=2)),
    ("conv_transpose/groups", lambda lib, F: F.conv_transpose2d(
        lib.ones(1, 4, 6, 6), lib.ones(4, 3, 3, 3), groups=3)),
    ("conv_transpose/small", lambda lib, F: F.conv_transpose2d(
        lib.ones(1, 4, 6, 6), lib.ones(4, 3, 3, 3), padding=4)),
    ("interpolate/align", lambda lib, F: F.interpolate(lib.ones(1, 1, 3), 4,
                                                       align_corners=True)),
    ("interpolate/both", lambda lib, F: F.interpolate(lib.ones(1, 1, 3), 4, 2.0)),
    ("interpolate/neither", lambda lib, F: F.interpolate(lib.ones(1, 1, 3))),
    ("interpolate/size_len", lambda lib, F: F.interpolate(lib.ones(1, 1, 3), (4, 4))),
    ("interpolate/scale_len", lambda lib, F: F.interpolate(lib.ones(1, 1, 3),
                                                           scale_factor=(2.0, 2.0))),
    ("interpolate/recompute", lambda lib, F: F.interpolate(lib.ones(1, 1, 3), 4,
                                                           recompute_scale_factor=True)),
    ("interpolate/mode_dims", lambda lib, F: F.interpolate(lib.ones(1, 1, 3), 4,
                                                           mode="bilinear")),
    ("interpolate/linear_dims", lambda lib, F: F.interpolate(lib.ones(1, 1, 3, 3), 4,
                                                             mode="linear")),
    ("interpolate/bad_mode", lambda lib, F: F.interpolate(lib.ones(1, 1, 3), 4, mode="cubic")),
    ("max_pool1d/dims", lambda lib, F: F.max_pool1d(lib.tensor(_x[0, 0]), 2)),
    ("max_pool1d/size", lambda lib, F: F.max_pool1d(lib.tensor(_x), 8)),
    ("max_pool1d/pad", lambda lib, F: F.max_pool1d(lib.tensor(_x), 2, padding=2)),
    ("max_pool3d/dims", lambda lib, F: F.max_pool3d(lib.tensor(_x), 2)),
    ("max_pool3d/size", lambda lib, F: F.max_pool3d(lib.ones(3, 5, 6, 4), 8)),
    ("avg_pool1d/dims", lambda lib, F: F.avg_pool1d(lib.tensor(_x[0]), 2)),
    ("avg_pool1d/size", lambda lib, F: F.avg_pool1d(lib.tensor(_x), 8)),
    ("avg_pool3d/pad", lambda lib, F: F.avg_pool3d(lib.ones(3, 5, 6, 4), 2, padding=2)),
    ("adaptive_avg_pool1d/dims", lambda lib, F: F.adaptive_avg_pool1d(lib.tensor(_x[0]), 2)),
    ("adaptive_max_pool1d/dims", lambda lib, F: F.adaptive_max_pool1d(lib.tensor(_x[0]), 2)),
    ("adaptive_avg_pool3d/dims", lambda lib, F: F.adaptive_avg_pool3d(lib.tensor(_x), 2)),
    ("adaptive_max_pool3d/dims", lambda lib, F: F.adaptive_max_pool3d(lib.tensor(_x), 2)),
    ("adaptive_max_pool2d/dims", lambda lib, F: F.adaptive_max_pool2d(lib.tensor(_x[0]), 2)),
]


def _error(call, lib):
    try:
        call(lib, F if lib is tapegrad else torch.nn.functional)
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None


@needs_torch
@pytest.mark.parametrize("call", [pytest.param(c, id=n) for n, c in ERRORS])
def test_errors_match_torch(call):
    expected = _error(call, torch)
    assert expected is not None
    got = _error(call, tapegrad)
    assert got is not None
    assert got[0].__name__ == expected[0].__name__
    assert got[1] == expected[1].replace("torch.Size", "torch.Size")


# ---------------------------------------------------------------- modules

MODULES = [
    ("KLDivLoss(reduction='batchmean')", ((3, 4),), "kl"),
    ("KLDivLoss(reduction='sum', log_target=True)", ((3, 4), (3, 4)), None),
    ("MarginRankingLoss(margin=0.2)", ((5,), (5,)), "sign5"),
    ("HingeEmbeddingLoss(margin=0.5, reduction='sum')", ((5,),), "sign5"),
    ("CosineEmbeddingLoss(margin=0.1)", ((5, 3), (5, 3)), "sign5"),
    ("SoftMarginLoss()", ((5,),), "sign5"),
    ("MultiLabelSoftMarginLoss(reduction='none')", ((5, 3),), "labels53"),
    ("MultiLabelMarginLoss()", ((5, 3),), "multilabel53"),
    ("MultiMarginLoss(p=2, margin=0.5)", ((5, 3),), "class5"),
    ("TripletMarginLoss(margin=2.0, p=1.0, swap=True)", ((5, 3), (5, 3), (5, 3)), None),
    ("TripletMarginWithDistanceLoss(margin=3.0)", ((5, 3), (5, 3), (5, 3)), None),
    ("PoissonNLLLoss(full=True)", ((5,),), "counts5"),
    ("GaussianNLLLoss(full=True)", ((5,), (5,)), "var5"),
    ("MaxUnpool1d(2)", (), "unpool1d"),
    ("MaxUnpool2d(2, stride=1)", (), "unpool2d"),
    ("MaxUnpool3d((1, 2, 2))", (), "unpool3d"),
    ("Upsample(scale_factor=2, mode='bilinear')", ((1, 2, 3, 4),), None),
    ("Upsample(size=(5, 3), mode='nearest')", ((1, 2, 3, 4),), None),
    ("Upsample(scale_factor=(2, 1.5, 1), mode='trilinear', align_corners=True)",
     ((1, 1, 3, 4, 2),), None),
    ("UpsamplingNearest2d(scale_factor=3)", ((1, 2, 3, 4),), None),
    ("UpsamplingBilinear2d(size=(7, 2))", ((1, 2, 3, 4),), None),
    ("MaxPool1d(3, stride=2, padding=1)", ((2, 3, 7),), None),
    ("MaxPool3d((2, 1, 2), ceil_mode=True)", ((1, 2, 3, 3, 3),), None),
    ("AvgPool1d(3, padding=1, count_include_pad=False)", ((2, 7),), None),
    ("AvgPool3d(2, stride=1, divisor_override=3)", ((2, 3, 3, 3),), None),
    ("AdaptiveAvgPool1d(4)", ((2, 3, 7),), None),
    ("AdaptiveAvgPool2d((None, 2))", ((2, 3, 5),), None),
    ("AdaptiveAvgPool3d(2)", ((1, 2, 3, 4, 5),), None),
    ("AdaptiveMaxPool1d(3)", ((2, 3, 7),), None),
    ("AdaptiveMaxPool2d(3)", ((2, 3, 5),), None),
    ("AdaptiveMaxPool3d((1, 2, 3))", ((1, 2, 3, 4, 5),), None),
    ("LPPool1d(2, 3)", ((2, 3, 7),), "positive"),
    ("LPPool2d(1.5, (2, 3), stride=1)", ((2, 3, 5),), "positive"),
    ("LPPool3d(3, 2)", ((1, 2, 3, 4, 5),), "positive"),
]


def _module_extra(kind, lib):
    rng = np.random.default_rng(11)
    if kind is None:
        return ()
    if kind.startswith("unpool"):
        shape, args = {"unpool1d": ((2, 3, 7), (2,)), "unpool2d": ((2, 4, 5), (2, 1)),
                       "unpool3d": ((1, 2, 3, 4, 4), ((1, 2, 2),))}[kind]
        pool = "max_pool" + kind[-2:]
        a = rng.permutation(int(np.prod(shape))).reshape(shape) * 1.0
        out, idx = getattr(F, pool)(tapegrad.tensor(a), *args, return_indices=True)
        return lib.tensor(_np(out), requires_grad=True), lib.tensor(_np(idx))
    if kind == "kl":
        return (lib.tensor(rng.uniform(0, 1, (3, 4))),)
    if kind == "sign5":
        return (lib.tensor(np.where(rng.standard_normal(5) > 0, 1.0, -1.0)),)
    if kind == "labels53":
        return (lib.tensor((rng.standard_normal((5, 3)) > 0).astype(np.float64)),)
    if kind == "multilabel53":
        return (lib.tensor([[0, 2, -1], [1, -1, 0], [2, 1, 0], [0, 0, 1], [-1, 0, 0]]),)
    if kind == "class5":
        return (lib.tensor([0, 2, 1, 1, 0]),)
    if kind == "counts5":
        return (lib.tensor([0.0, 1.0, 2.0, 5.0, 3.0]),)
    if kind == "var5":
        return (lib.tensor(rng.uniform(0.5, 2.0, 5)),)
    return ()


@needs_torch
@pytest.mark.parametrize("spec,shapes,kind", MODULES, ids=[m[0] for m in MODULES])
def test_module_against_torch(spec, shapes, kind):
    ours = eval("nn." + spec)  # noqa: S307
    theirs = eval("torch.nn." + spec)  # noqa: S307
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(7)
    arrays = [rng.uniform(0.2, 2.0, s) if kind == "positive" else rng.standard_normal(s)
              for s in shapes]
    xo = [tapegrad.tensor(a, requires_grad=True) for a in arrays]
    xt = [torch.tensor(a, requires_grad=True) for a in arrays]
    extra_o, extra_t = _module_extra(kind, tapegrad), _module_extra(kind, torch)
    out_o = ours(*xo, *extra_o)
    out_t = theirs(*xt, *extra_t)
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=1e-10, atol=1e-12)
    out_o.sum().backward()
    out_t.sum().backward()
    xo += [e for e in extra_o if e.requires_grad]
    xt += [e for e in extra_t if e.requires_grad]
    for a, b in zip(xo, xt, strict=True):
        np.testing.assert_allclose(_np(a.grad), _np(b.grad), rtol=1e-10, atol=1e-12)


def test_module_weights_are_buffers():
    w = tapegrad.tensor([1.0, 2.0, 0.5])
    loss = nn.MultiMarginLoss(weight=w)
    assert list(loss.state_dict()) == ["weight"]
    assert list(nn.MultiLabelSoftMarginLoss(weight=w).state_dict()) == ["weight"]
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="expected margin to be greater than 0, got 0"):
        nn.TripletMarginLoss(margin=0)


def test_pool_module_return_indices():
    x = tapegrad.tensor(np.arange(24.0).reshape(2, 3, 4))
    out, idx = nn.MaxPool1d(2, return_indices=True)(x)
    assert idx.tolist() == [[[1, 3]] * 3] * 2
    out, idx = nn.AdaptiveMaxPool1d(2, return_indices=True)(x)
    assert idx.tolist() == [[[1, 3]] * 3] * 2


CONVS = [
    ("Conv3d(4, 6, (1, 2, 3), stride=2, padding=1, groups=2)", (2, 4, 3, 4, 5)),
    ("Conv3d(2, 3, 2, bias=False, padding=1, padding_mode='circular')", (2, 3, 3, 3)),
    ("ConvTranspose1d(4, 6, 3)", (2, 4, 5)),
    ("ConvTranspose2d(4, 6, 3, stride=2, output_padding=1, groups=2, dilation=2)", (1, 4, 3, 3)),
    ("ConvTranspose3d(2, 3, (1, 2, 2), bias=False, padding=1)", (1, 2, 3, 3, 3)),
]


@needs_torch
@pytest.mark.parametrize("spec,shape", CONVS, ids=[c[0] for c in CONVS])
def test_conv_module_against_torch(spec, shape):
    ours = eval("nn." + spec).double()  # noqa: S307
    theirs = eval("torch.nn." + spec).double()  # noqa: S307
    assert repr(ours) == repr(theirs)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    ours.load_state_dict({k: tapegrad.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    a = np.random.default_rng(2).standard_normal(shape)
    x_o, x_t = tapegrad.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out_o, out_t = ours(x_o), theirs(x_t)
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=1e-10, atol=1e-12)
    r = np.random.default_rng(3).standard_normal(tuple(out_t.shape))
    (out_o * tapegrad.tensor(r)).sum().backward()
    (out_t * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(_np(x_o.grad), _np(x_t.grad), rtol=1e-10, atol=1e-12)
    for (name, p_o), (_, p_t) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(_np(p_o.grad), _np(p_t.grad), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


@needs_torch
def test_conv_transpose_output_size():
    ours = nn.ConvTranspose2d(2, 3, 3, stride=3)
    theirs = torch.nn.ConvTranspose2d(2, 3, 3, stride=3)
    x_o, x_t = tapegrad.ones(1, 2, 4, 4), torch.ones(1, 2, 4, 4)
    assert tuple(ours(x_o, output_size=[13, 14]).shape) == \
        tuple(theirs(x_t, output_size=[13, 14]).shape) == (1, 3, 13, 14)
    for bad in ([20, 20], [1, 13, 14]):
        with pytest.raises(ValueError) as e_t:
            theirs(x_t, output_size=bad)
        with pytest.raises(ValueError) as e_o:
            ours(x_o, output_size=bad)
        assert str(e_o.value) == str(e_t.value)


def test_conv_initialisation_bounds():
    """Kaiming-uniform(a=sqrt(5)) weights and biases within 1/sqrt(fan_in), fan_in from dim 1
    (for a transposed convolution: out_channels / groups times the kernel), as PyTorch."""
    for layer, fan_in in ((nn.Conv3d(4, 6, (1, 2, 3)), 4 * 6),
                          (nn.ConvTranspose2d(4, 6, 3, groups=2), 3 * 9)):
        bound = 1 / np.sqrt(fan_in)
        w, b = _np(layer.weight), _np(layer.bias)
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(w).max() > bound / 2


@pytest.mark.filterwarnings("ignore:nn.functional.upsample")
def test_upsample_aliases():
    x = tapegrad.tensor(np.arange(12.0).reshape(1, 1, 3, 4))
    for got, want in ((F.upsample(x, scale_factor=2, mode="bilinear"),
                       F.interpolate(x, scale_factor=2, mode="bilinear")),
                      (F.upsample_nearest(x, size=(5, 5)), F.interpolate(x, size=(5, 5))),
                      (F.upsample_bilinear(x, scale_factor=2),
                       F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))):
        np.testing.assert_array_equal(_np(got), _np(want))
    with pytest.warns(UserWarning, match="upsample_nearest is deprecated"):
        F.upsample_nearest(x, 4)


def test_adaptive_pool_empty_output():
    x = tapegrad.ones(1, 2, 3, 3, requires_grad=True)
    assert tuple(F.adaptive_avg_pool2d(x, (0, 2)).shape) == (1, 2, 0, 2)
    out = F.adaptive_max_pool2d(x, (0, 2))
    assert tuple(out.shape) == (1, 2, 0, 2)
    out.sum().backward()
    assert float(x.grad.abs().sum()) == 0.0
