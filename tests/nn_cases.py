"""The ``nn.functional`` table: one ``FCase`` row per op form, shared by ``tests/test_nn.py``.

Each row names a form, a function ``fn(lib, F, *tensors)`` (``lib`` is tapegrad or torch,
``F`` its ``nn.functional``), the shapes of its differentiable inputs and the domain each is
drawn from.  Integer targets, weights and masks are module constants, the same for both
libraries.  Domains: ``real`` (signed, 0.25 <= |x| <= 2: away from the kinks of relu/abs and
from window ties), ``prob`` (0.05..0.95), ``ties`` (small integers: max-pool windows and
relu see ties, so these rows are checked against PyTorch's convention only, not against
finite differences).
"""
from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FCase:
    name: str
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    domain: str | tuple[str, ...] = "real"
    gradcheck: bool = True
    rtol32: float = 2e-5
    atol32: float = 2e-5

    def domains(self) -> tuple[str, ...]:
        if isinstance(self.domain, str):
            return (self.domain,) * len(self.shapes)
        return self.domain


def seed_of(text: str) -> int:
    return zlib.crc32(text.encode())


def sample(domain: str, shape, rng: np.random.Generator) -> np.ndarray:
    if domain == "real":
        mag = rng.uniform(0.25, 2.0, size=shape)
        return mag * np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
    if domain == "prob":
        return rng.uniform(0.05, 0.95, size=shape)
    if domain == "ties":
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    if domain == "simplex":  # rows (dim 1) summing to one: class probabilities
        a = rng.uniform(0.1, 1.0, size=shape)
        return a / a.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
    raise ValueError(domain)


def inputs_for(case: FCase) -> list[np.ndarray]:
    rng = np.random.default_rng(seed_of(case.name))
    return [sample(d, s, rng) for d, s in zip(case.domains(), case.shapes)]


# ---------------------------------------------------------------- constants

_RNG = np.random.default_rng(1234)
T4 = np.array([0, 2, 1, 4])  # class targets for a (4, 5) input
T4_IGNORED = np.array([0, -100, 1, 4])
T4_SEVEN = np.array([0, 7, 3, 7])  # with ignore_index=7
T_2D = _RNG.integers(0, 5, size=(2, 3, 3))  # for (2, 5, 3, 3)
T_1D = _RNG.integers(0, 5, size=(2, 4))  # for (2, 5, 4)
T_3D = _RNG.integers(0, 5, size=(2, 2, 3, 2))  # for (2, 5, 2, 3, 2)
W5 = np.array([0.5, 1.0, 2.0, 0.3, 1.5])
IDX = np.array([[1, 2, 4], [4, 3, 1]])  # embedding lookups into 6 rows
IDX_PAD = np.array([[1, 2, 0], [0, 3, 1]])


def _t(lib, a, like=None):
    """A constant: integers stay int64, floats take ``like``'s dtype."""
    if np.asarray(a).dtype.kind in "iu":
        return lib.tensor(a)
    return lib.tensor(a, dtype=like.dtype if like is not None else lib.float64)


def _ce(**kw):
    def fn(lib, F, x):
        t = kw.get("_target", T4)
        args = {k: v for k, v in kw.items() if k != "_target"}
        if "weight" in args:
            args["weight"] = _t(lib, args["weight"], x)
        return F.cross_entropy(x, _t(lib, t), **args)
    return fn


def _nll(target, **kw):
    def fn(lib, F, x):
        args = dict(kw)
        if "weight" in args:
            args["weight"] = _t(lib, args["weight"], x)
        return F.nll_loss(F.log_softmax(x, 1 if x.ndim > 1 else 0), _t(lib, target), **args)
    return fn


def _loss2(name, **kw):
    return lambda lib, F, x, t: getattr(F, name)(x, t, **kw)


def _weighted2(name, **kw):
    return lambda lib, F, x, t, w: getattr(F, name)(x, t, weight=w, **kw)


CASES: tuple[FCase, ...] = (
    # linear: PyTorch's graph differs by rank and bias
    FCase("linear.2d_bias", lambda lib, F, x, w, b: F.linear(x, w, b), ((4, 5), (3, 5), (3,))),
    FCase("linear.2d", lambda lib, F, x, w: F.linear(x, w), ((4, 5), (3, 5))),
    FCase("linear.1d_bias", lambda lib, F, x, w, b: F.linear(x, w, b), ((5,), (3, 5), (3,))),
    FCase("linear.1d", lambda lib, F, x, w: F.linear(x, w), ((5,), (3, 5))),
    FCase("linear.3d_bias", lambda lib, F, x, w, b: F.linear(x, w, b),
          ((2, 4, 5), (3, 5), (3,))),
    FCase("linear.3d", lambda lib, F, x, w: F.linear(x, w), ((2, 4, 5), (3, 5))),
    # activations
    FCase("relu", lambda lib, F, x: F.relu(x), ((3, 4),)),
    FCase("relu.ties", lambda lib, F, x: F.relu(x), ((3, 4),), "ties", gradcheck=False),
    FCase("gelu", lambda lib, F, x: F.gelu(x), ((3, 4),)),
    FCase("gelu.tanh", lambda lib, F, x: F.gelu(x, approximate="tanh"), ((3, 4),)),
    FCase("silu", lambda lib, F, x: F.silu(x), ((3, 4),)),
    FCase("tanh", lambda lib, F, x: F.tanh(x), ((3, 4),)),
    FCase("sigmoid", lambda lib, F, x: F.sigmoid(x), ((3, 4),)),
    FCase("softmax.dim1", lambda lib, F, x: F.softmax(x, dim=1), ((3, 4),)),
    FCase("softmax.dim0", lambda lib, F, x: F.softmax(x, dim=0), ((3, 4, 2),)),
    FCase("log_softmax.dim1", lambda lib, F, x: F.log_softmax(x, dim=1), ((3, 4),)),
    FCase("log_softmax.dim-1", lambda lib, F, x: F.log_softmax(x, dim=-1), ((2, 3, 4),)),
    FCase("dropout.eval", lambda lib, F, x: F.dropout(x, 0.5, training=False) * 1.0, ((3, 4),)),
    # regression losses (target differentiable too)
    FCase("mse_loss", _loss2("mse_loss"), ((3, 4), (3, 4))),
    FCase("mse_loss.sum", _loss2("mse_loss", reduction="sum"), ((3, 4), (3, 4))),
    FCase("mse_loss.none", _loss2("mse_loss", reduction="none"), ((3, 4), (3, 4))),
    FCase("mse_loss.weight", _weighted2("mse_loss"), ((3, 4), (3, 4), (3, 4)),
          ("real", "real", "prob")),
    FCase("l1_loss", _loss2("l1_loss"), ((3, 4), (3, 4))),
    FCase("l1_loss.none", _loss2("l1_loss", reduction="none"), ((3, 4), (3, 4))),
    FCase("l1_loss.weight.sum", _weighted2("l1_loss", reduction="sum"),
          ((3, 4), (3, 4), (3, 4)), ("real", "real", "prob")),
    FCase("smooth_l1_loss", _loss2("smooth_l1_loss"), ((3, 4), (3, 4))),
    FCase("smooth_l1_loss.beta", _loss2("smooth_l1_loss", beta=0.5, reduction="sum"),
          ((3, 4), (3, 4))),
    FCase("smooth_l1_loss.beta0", _loss2("smooth_l1_loss", beta=0.0), ((3, 4), (3, 4))),
    FCase("huber_loss", _loss2("huber_loss"), ((3, 4), (3, 4))),
    FCase("huber_loss.delta", _loss2("huber_loss", delta=0.7, reduction="none"),
          ((3, 4), (3, 4))),
    FCase("huber_loss.weight", _weighted2("huber_loss", delta=1.5), ((3, 4), (3, 4), (3, 4)),
          ("real", "real", "prob")),
    # classification losses
    FCase("cross_entropy", _ce(), ((4, 5),)),
    FCase("cross_entropy.sum", _ce(reduction="sum"), ((4, 5),)),
    FCase("cross_entropy.none", _ce(reduction="none"), ((4, 5),)),
    FCase("cross_entropy.weight", _ce(weight=W5), ((4, 5),)),
    FCase("cross_entropy.ignore", _ce(_target=T4_IGNORED), ((4, 5),)),
    FCase("cross_entropy.ignore7.weight", _ce(_target=T4_SEVEN, ignore_index=7, weight=W5),
          ((4, 5),)),
    FCase("cross_entropy.smoothing", _ce(label_smoothing=0.1), ((4, 5),)),
    FCase("cross_entropy.smoothing.weight.ignore",
          _ce(_target=T4_IGNORED, label_smoothing=0.2, weight=W5), ((4, 5),)),
    FCase("cross_entropy.smoothing.none", _ce(label_smoothing=0.2, reduction="none"),
          ((4, 5),)),
    FCase("cross_entropy.smoothing.sum", _ce(label_smoothing=0.2, reduction="sum"), ((4, 5),)),
    FCase("cross_entropy.1d", lambda lib, F, x: F.cross_entropy(x, _t(lib, np.array(3))),
          ((5,),)),
    FCase("cross_entropy.2d", lambda lib, F, x: F.cross_entropy(x, _t(lib, T_2D)),
          ((2, 5, 3, 3),)),
    FCase("cross_entropy.2d.none",
          lambda lib, F, x: F.cross_entropy(x, _t(lib, T_2D), reduction="none"),
          ((2, 5, 3, 3),)),
    FCase("cross_entropy.probs", lambda lib, F, x, p: F.cross_entropy(x, p),
          ((4, 5), (4, 5)), ("real", "simplex")),
    FCase("cross_entropy.probs.none", lambda lib, F, x, p: F.cross_entropy(x, p,
                                                                            reduction="none"),
          ((4, 5), (4, 5)), ("real", "simplex")),
    FCase("cross_entropy.probs.smoothing.weight",
          lambda lib, F, x, p: F.cross_entropy(x, p, weight=_t(lib, W5, x),
                                               label_smoothing=0.3),
          ((4, 5), (4, 5)), ("real", "simplex")),
    FCase("nll_loss", _nll(T4), ((4, 5),)),
    FCase("nll_loss.weight.sum", _nll(T4, weight=W5, reduction="sum"), ((4, 5),)),
    FCase("nll_loss.ignore.none", _nll(T4_IGNORED, reduction="none"), ((4, 5),)),
    FCase("nll_loss.3d", _nll(T_1D), ((2, 5, 4),)),
    FCase("nll_loss.3d.none", _nll(T_1D, reduction="none"), ((2, 5, 4),)),
    FCase("nll_loss.4d.weight", _nll(T_2D, weight=W5), ((2, 5, 3, 3),)),
    FCase("nll_loss.5d.none", _nll(T_3D, reduction="none"), ((2, 5, 2, 3, 2),)),
    FCase("binary_cross_entropy", lambda lib, F, x, t: F.binary_cross_entropy(x, t),
          ((3, 4), (3, 4)), "prob"),
    FCase("binary_cross_entropy.weight.none",
          lambda lib, F, x, t: F.binary_cross_entropy(x, t, weight=_t(lib, W5[:4], x),
                                                      reduction="none"),
          ((3, 4), (3, 4)), "prob"),
    FCase("bce_with_logits",
          lambda lib, F, x, t: F.binary_cross_entropy_with_logits(x, t),
          ((3, 4), (3, 4)), ("real", "prob")),
    FCase("bce_with_logits.pos_weight.weight",
          lambda lib, F, x, t: F.binary_cross_entropy_with_logits(
              x, t, weight=_t(lib, W5[:4], x), pos_weight=_t(lib, W5[1:], x), reduction="sum"),
          ((3, 4), (3, 4)), ("real", "prob")),
    # normalisation, embedding
    FCase("normalize", lambda lib, F, x: F.normalize(x), ((3, 4),)),
    FCase("normalize.p1.dim0", lambda lib, F, x: F.normalize(x, p=1.0, dim=0), ((3, 4),)),
    FCase("layer_norm", lambda lib, F, x, w, b: F.layer_norm(x, (4,), w, b),
          ((3, 4), (4,), (4,))),
    FCase("layer_norm.2d_shape", lambda lib, F, x: F.layer_norm(x, (3, 4)), ((2, 3, 4),)),
    FCase("layer_norm.weight_only", lambda lib, F, x, w: F.layer_norm(x, [4], w, eps=1e-3),
          ((2, 4), (4,))),
    FCase("embedding", lambda lib, F, w: F.embedding(_t(lib, IDX), w), ((6, 3),)),
    # the padding row gets no gradient by definition: PyTorch's convention, not a derivative
    FCase("embedding.padding_idx",
          lambda lib, F, w: F.embedding(_t(lib, IDX_PAD), w, padding_idx=0), ((6, 3),),
          gradcheck=False),
    # padding
    FCase("pad.constant", lambda lib, F, x: F.pad(x, (1, 2)), ((2, 3),)),
    FCase("pad.constant.value.2d", lambda lib, F, x: F.pad(x, (1, 0, 2, 1), value=0.5),
          ((2, 3, 3),)),
    FCase("pad.constant.crop", lambda lib, F, x: F.pad(x, (-1, 2, 1, -1)), ((3, 4),)),
    FCase("pad.constant.3dims", lambda lib, F, x: F.pad(x, (0, 1, 1, 0, 1, 1)), ((2, 2, 3),)),
    FCase("pad.reflect.1d", lambda lib, F, x: F.pad(x, (2, 1), mode="reflect"), ((2, 4),)),
    FCase("pad.reflect.2d", lambda lib, F, x: F.pad(x, (1, 2, 2, 1), mode="reflect"),
          ((1, 2, 3, 4),)),
    FCase("pad.replicate.2d", lambda lib, F, x: F.pad(x, (2, 1, 1, 3), mode="replicate"),
          ((1, 2, 3, 3),)),
    FCase("pad.circular.1d", lambda lib, F, x: F.pad(x, (2, 3), mode="circular"), ((1, 2, 4),)),
    FCase("pad.circular.2d", lambda lib, F, x: F.pad(x, (1, 2, 2, 1), mode="circular"),
          ((1, 2, 3, 3),)),
    # convolution
    FCase("conv1d", lambda lib, F, x, w, b: F.conv1d(x, w, b), ((2, 3, 7), (4, 3, 3), (4,))),
    FCase("conv1d.stride.pad.dil", lambda lib, F, x, w: F.conv1d(x, w, stride=2, padding=2,
                                                                   dilation=2),
          ((2, 3, 9), (4, 3, 3))),
    FCase("conv1d.groups", lambda lib, F, x, w, b: F.conv1d(x, w, b, groups=2),
          ((2, 4, 6), (6, 2, 2), (6,))),
    FCase("conv1d.same.even_kernel", lambda lib, F, x, w: F.conv1d(x, w, padding="same"),
          ((2, 2, 6), (3, 2, 4))),
    FCase("conv1d.unbatched", lambda lib, F, x, w: F.conv1d(x, w, padding=1),
          ((3, 5), (2, 3, 3))),
    FCase("conv2d", lambda lib, F, x, w, b: F.conv2d(x, w, b), ((2, 2, 5, 5), (3, 2, 3, 3), (3,))),
    FCase("conv2d.pad", lambda lib, F, x, w, b: F.conv2d(x, w, b, padding=1),
          ((2, 2, 4, 4), (3, 2, 3, 3), (3,))),
    FCase("conv2d.stride.dilation", lambda lib, F, x, w: F.conv2d(x, w, stride=(2, 1),
                                                                    padding=(1, 2),
                                                                    dilation=(1, 2)),
          ((1, 2, 6, 6), (2, 2, 3, 2))),
    FCase("conv2d.groups", lambda lib, F, x, w, b: F.conv2d(x, w, b, stride=2, groups=2),
          ((2, 4, 5, 5), (4, 2, 2, 2), (4,))),
    FCase("conv2d.depthwise", lambda lib, F, x, w: F.conv2d(x, w, padding="same", groups=3),
          ((1, 3, 4, 4), (3, 1, 3, 3))),
    FCase("conv2d.valid", lambda lib, F, x, w: F.conv2d(x, w, padding="valid"),
          ((1, 1, 4, 5), (2, 1, 2, 3))),
    FCase("conv2d.unbatched", lambda lib, F, x, w, b: F.conv2d(x, w, b),
          ((2, 4, 4), (3, 2, 2, 2), (3,))),
    # pooling
    FCase("max_pool2d", lambda lib, F, x: F.max_pool2d(x, 2), ((2, 2, 4, 4),)),
    FCase("max_pool2d.ties", lambda lib, F, x: F.max_pool2d(F.relu(x), 2), ((2, 2, 6, 6),),
          "ties", gradcheck=False),
    FCase("max_pool2d.stride.pad", lambda lib, F, x: F.max_pool2d(x, 3, stride=2, padding=1),
          ((1, 2, 5, 5),)),
    FCase("max_pool2d.dilation.ceil", lambda lib, F, x: F.max_pool2d(
        x, (2, 3), stride=(2, 2), dilation=(1, 2), ceil_mode=True), ((1, 2, 5, 7),)),
    FCase("max_pool2d.unbatched", lambda lib, F, x: F.max_pool2d(x, (2, 2)), ((3, 4, 5),)),
    FCase("avg_pool2d", lambda lib, F, x: F.avg_pool2d(x, 2), ((2, 2, 4, 4),)),
    FCase("avg_pool2d.stride.pad", lambda lib, F, x: F.avg_pool2d(x, 3, stride=2, padding=1),
          ((1, 2, 5, 5),)),
    FCase("avg_pool2d.no_pad_count.ceil", lambda lib, F, x: F.avg_pool2d(
        x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), ((1, 2, 6, 6),)),
    FCase("avg_pool2d.divisor", lambda lib, F, x: F.avg_pool2d(x, (2, 3), divisor_override=4),
          ((1, 1, 4, 6),)),
    FCase("avg_pool2d.unbatched", lambda lib, F, x: F.avg_pool2d(x, 2, stride=1),
          ((2, 3, 3),)),
)
