"""Functional losses beyond the basic ones, pooling over 1, 2 and 3 dims, unpooling,
interpolation, and 3-d and transposed convolution.

Losses PyTorch writes in Python or as a composite ATen function are the same
composition here, so their graphs' node names agree; those PyTorch computes in
one kernel (soft margin, multi-margin, multilabel margin) are a ``composite``
carrying that kernel's node name.  Every gradient comes from the primitives.

Pooling follows ``_conv``: window index maps from ``_windows``, the argmax of
max pooling found in NumPy (the first maximum of a window, as PyTorch), then
one gather of the input so the gradient is the tape's scatter-add.  Unpooling is
a scatter; interpolation gathers and weighted sums with ATen's index and weight
rules; a transposed convolution is a convolution of the spread-out input.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _dtype as D
from .._library import composite, where
from .._tensor import Tensor, ones_like, tensor, zeros, zeros_like
from ..autograd.grad_mode import is_grad_enabled
from ._conv import _conv, _rows_with_fill, avg_pool2d, check_conv_shapes, max_pool2d
from ._loss import _check, _reduce, _reduction, _short
from ._windows import ntuple, out_size, window_offsets
from .functional import logsigmoid

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d", "adaptive_max_pool3d_with_indices",
    "avg_pool1d", "avg_pool3d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d",
    "cosine_embedding_loss", "gaussian_nll_loss", "hinge_embedding_loss", "interpolate",
    "kl_div",
    "lp_pool1d", "lp_pool2d", "lp_pool3d",
    "margin_ranking_loss", "max_pool1d", "max_pool1d_with_indices", "max_pool2d_with_indices",
    "max_pool3d", "max_pool3d_with_indices", "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "multi_margin_loss", "multilabel_margin_loss", "multilabel_soft_margin_loss",
    "poisson_nll_loss", "soft_margin_loss", "triplet_margin_loss",
    "triplet_margin_with_distance_loss", "upsample", "upsample_bilinear", "upsample_nearest",
]


# ---------------------------------------------------------------- losses

def _legacy(size_average, reduce, reduction: str) -> str:
    reduction = _reduction(size_average, reduce, reduction)
    _check(reduction)
    return reduction


def _not_differentiable(kernel: str, argument: str, t: Tensor | None) -> None:
    if t is not None and t.requires_grad and is_grad_enabled():
        raise RuntimeError(f"The function '{kernel}' is not differentiable with respect to "
                           f"argument '{argument}'. This input cannot have requires_grad True.")


def _clamp_min(t: Tensor, floor: float) -> Tensor:
    """``t.clamp_min(floor)`` named as PyTorch's (``ClampMinBackward0``)."""
    with composite("ClampMinBackward0", (t,)) as c:
        return c.output(t.clamp_min(floor))


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """``target (log target - input)`` pointwise (``xlogy(t, t) - t x``, or with a log target
    ``exp(t) (t - x)``); 'batchmean' sums and divides by the batch size."""
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    kernel_reduction = "sum" if reduction == "batchmean" else reduction
    _check(kernel_reduction)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = target.xlogy(target) - target * input
    reduced = _reduce(loss, kernel_reduction)
    if reduction == "batchmean" and input.ndim != 0:
        reduced = reduced / input.shape[0]
    return reduced


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _legacy(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError("margin_ranking_loss : All input tensors should have same dimension "
                           f"but got sizes: input1: {input1.size()}, input2: {input2.size()}, "
                           f"target: {target.size()} ")
    return _reduce(_clamp_min(-target * (input1 - input2) + margin, 0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    """``x`` where the target is 1, ``max(0, margin - x)`` where it is -1 (ATen's form: each
    term is selected by ``target != -1`` and ``target != 1``)."""
    reduction = _legacy(size_average, reduce, reduction)
    zeros = zeros_like(input)
    beyond_margin = where(target != 1, _clamp_min(margin - input, 0), zeros)
    itself = where(target != -1, input, zeros)
    return _reduce(beyond_margin + itself, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """``1 - cos`` where the target is 1, ``max(0, cos - margin)`` where it is -1; the squared
    norms get 1e-12 added before the square root, as ATen's."""
    reduction = _legacy(size_average, reduce, reduction)
    dim = target.ndim
    if dim not in (0, 1):
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if input1.ndim != dim + 1 or input2.ndim != dim + 1:
        raise RuntimeError(f"{dim}D target tensor expects {dim + 1}D input tensors, but found "
                           f"inputs with sizes {list(input1.shape)} and {list(input2.shape)}.")
    eps = 1e-12
    prod_sum = (input1 * input2).sum(dim)
    mag_square1 = (input1 * input1).sum(dim) + eps
    mag_square2 = (input2 * input2).sum(dim) + eps
    cos = prod_sum / (mag_square1 * mag_square2).sqrt()
    zeros = zeros_like(cos)
    positive = where(target == 1, 1 - cos, zeros)
    negative = where(target == -1, _clamp_min(cos - margin, 0), zeros)
    return _reduce(positive + negative, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """``log(1 + exp(-target * input))`` (``SoftMarginLossBackward0``)."""
    reduction = _legacy(size_average, reduce, reduction)
    _not_differentiable("soft_margin_loss", "target", target)
    with composite("SoftMarginLossBackward0", (input, target)) as c:
        return c.output(_reduce((-input * target).exp().log1p(), reduction))


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None,
                                reduction: str = "mean") -> Tensor:
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.ndim - 1
    loss = loss.sum(dim=class_dim) / input.shape[class_dim]
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    return _reduce(loss, reduction)


def _frames(input: Tensor) -> tuple[int, int]:
    """(samples, classes) of a margin loss's 0-d, 1-d or 2-d input."""
    nd = input.ndim
    if not ((nd == 2 and input.shape[1] != 0) or (nd == 1 and input.shape[0] != 0) or nd == 0):
        raise RuntimeError("Expected non-empty vector or matrix with optional 0-dim batch size, "
                           f"but got: {list(input.shape)}")
    return (1 if nd <= 1 else input.shape[0]), (1 if nd == 0 else input.shape[nd - 1])


def _long(target: Tensor) -> np.ndarray:
    if target.dtype is not D.int64:
        raise RuntimeError(f"expected scalar type Long but found {_short(target.dtype)}")
    return np.asarray(target)


def _per_frame(losses: Tensor, reduction: str, frames_out: bool) -> Tensor:
    """(samples,) losses reduced; 'none' keeps the samples' dim only for batched inputs."""
    if reduction == "none":
        return losses if frames_out else losses.reshape(())
    return losses.sum() if reduction == "sum" else losses.sum() / losses.shape[0]


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    """Per sample, ``sum max(0, 1 - (x[y] - x[i])) / C`` over its targets y (the target row up
    to its first -1, repeats counted) and the non-target classes i
    (``MultilabelMarginLossBackward0``)."""
    reduction = _legacy(size_average, reduce, reduction)
    frames, classes = _frames(input)
    t = _long(target)
    if input.ndim <= 1:
        if target.ndim > 1 or t.size != classes:
            raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of "
                               f"size: {list(input.shape)}")
    elif target.ndim != 2 or tuple(t.shape) != (frames, classes):
        raise RuntimeError(f"inconsistent target size: {list(target.shape)} for input of size: "
                           f"{list(input.shape)}")
    t = t.reshape(frames, classes)
    listed = np.cumprod(t >= 0, axis=1).astype(bool)  # the entries before the first -1
    checked = listed | (np.cumsum(~listed, axis=1) == 1)  # ... and the one that ends them
    if ((t[checked] < -1) | (t[checked] >= classes)).any():
        raise RuntimeError("argument #2 'target' is out of range")
    counts = np.zeros((frames, classes))
    rows = np.nonzero(listed)[0]
    np.add.at(counts, (rows, t[listed]), 1.0)
    others = counts == 0
    pair_weights = (counts[:, :, None] * others[:, None, :]).astype(input.dtype.np)
    with composite("MultilabelMarginLossBackward0", (input,)) as c:
        x = input.reshape(frames, classes)
        margins = (1 - x.unsqueeze(2) + x.unsqueeze(1)).clamp_min(0)
        losses = (margins * tensor(pair_weights, dtype=input.dtype)).sum((1, 2)) / classes
        return c.output(_per_frame(losses, reduction, input.ndim == 2))


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    """Per sample, ``sum_{i != y} w[y] max(0, margin - x[y] + x[i])^p / C``
    (``MultiMarginLossBackward0``)."""
    reduction = _legacy(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    _not_differentiable("multi_margin_loss", "weight", weight)
    frames, classes = _frames(input)
    if target.ndim > 1 or target.numel() != frames:
        raise RuntimeError("multi_margin_loss: target tensor should be 1-D with size equal to "
                           "the number of input samples (batch size). Expected target size "
                           f"[{frames}], but got {list(target.shape)}. Input has shape "
                           f"{list(input.shape)}.")
    if weight is not None and weight.numel() != classes:
        raise RuntimeError(f"inconsistent weight size, expected {classes} but got "
                           f"{list(weight.shape)}")
    t = _long(target).reshape(frames)
    if t.size and (t.min() < 0 or t.max() >= classes):
        raise RuntimeError("target out of range")
    others = np.ones((frames, classes), dtype=bool)
    others[np.arange(frames), t] = False
    scale = others.astype(np.float64)
    if weight is not None:
        scale = scale * np.asarray(weight.detach(), dtype=np.float64)[t][:, None]
    with composite("MultiMarginLossBackward0", (input,)) as c:
        x = input.reshape(frames, classes)
        picked = x[np.arange(frames), t].unsqueeze(1)
        z = (margin - picked + x).clamp_min(0)
        if p == 2:
            z = z * z
        losses = (z * tensor(scale.astype(input.dtype.np), dtype=input.dtype)).sum(1) / classes
        return c.output(_per_frame(losses, reduction, target.ndim > 0))


def _pairwise_distance(x1: Tensor, x2: Tensor, p: float, eps: float) -> Tensor:
    """ATen's ``pairwise_distance``: the p-norm of ``x1 - x2 + eps`` over the last dim."""
    return (x1 - x2 + eps).norm(p, max(x1.ndim, x2.ndim) - 1)


def _triplet_dims(anchor: Tensor, positive: Tensor, negative: Tensor) -> None:
    a, p, n = anchor.ndim, positive.ndim, negative.ndim
    if not (a == p and p == n):
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the "
                           f"same number of dimensions, but got: anchor {a}D, positive {p}D, "
                           f"and negative {n}D inputs")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False, size_average=None,
                        reduce=None, reduction: str = "mean") -> Tensor:
    reduction = _legacy(size_average, reduce, reduction)
    _triplet_dims(anchor, positive, negative)
    dist_pos = _pairwise_distance(anchor, positive, p, eps)
    dist_neg = _pairwise_distance(anchor, negative, p, eps)
    if swap:
        dist_neg = dist_neg.minimum(_pairwise_distance(positive, negative, p, eps))
    return _reduce(_clamp_min(margin + dist_pos - dist_neg, 0), reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0,
                                      swap: bool = False, reduction: str = "mean") -> Tensor:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    _triplet_dims(anchor, positive, negative)
    if distance_function is None:
        def distance_function(x1, x2):
            return _pairwise_distance(x1, x2, 2.0, 1e-6)
    dist_pos = distance_function(anchor, positive)
    dist_neg = distance_function(anchor, negative)
    if swap:
        dist_neg = dist_neg.minimum(distance_function(positive, negative))
    return _reduce(_clamp_min(margin + dist_pos - dist_neg, 0), reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean") -> Tensor:
    """``exp(x) - t x`` (log_input) or ``x - t log(x + eps)``, plus with ``full`` Stirling's
    ``t log t - t + log(2 pi t) / 2`` where t > 1."""
    reduction = _legacy(size_average, reduce, reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        stirling = target * target.log() - target + 0.5 * (2 * math.pi * target).log()
        loss = loss + stirling.masked_fill(target <= 1, 0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """``(log max(var, eps) + (x - t)^2 / max(var, eps)) / 2``; the clamp is not
    differentiated, as PyTorch's."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * ones_like(input)
    elif bool((np.asarray(var.detach()) < 0).any()):
        raise ValueError("var has negative entry/entries")
    if var.shape != input.shape:
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (input.ndim == var.ndim and sum(
                y for x, y in zip(input.shape, var.shape) if x != y) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    floor = np.asarray(var.detach()) < eps
    if floor.any():  # PyTorch clamps in place under no_grad: the gradient passes unchanged
        var = where(tensor(floor), var - var.detach() + eps, var)
    d = input - target
    loss = 0.5 * (var.log() + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- pooling

def _check_3d(input: Tensor) -> None:
    if input.ndim not in (4, 5) or input.numel() == 0:
        raise RuntimeError("non-empty 4D or 5D (batch mode) tensor expected for input")


def _first_max(a: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Per row of ``a`` (rows, plane) and window row of ``win`` (L, K; -1 is padding), the flat
    position of the window's first maximum, or of its last nan (ATen's ``val > maxval ||
    isnan(val)`` scan)."""
    plane = a.shape[1]
    if (win < 0).any():
        a = np.concatenate([a, np.full((a.shape[0], 1), -np.inf, dtype=a.dtype)], 1)
    values = a[:, np.where(win < 0, plane, win)]  # (rows, L, K)
    pick = values.argmax(-1)
    nans = np.isnan(values)
    if nans.any():
        last_nan = nans.shape[-1] - 1 - nans[..., ::-1].argmax(-1)
        pick = np.where(nans.any(-1), last_nan, pick)
    return win[np.arange(win.shape[0]), pick]  # (rows, L)


def _gather_max(input: Tensor, win: np.ndarray, out: tuple[int, ...], name: str,
                return_indices: bool):
    """The maxima of the windows ``win`` over the last ``len(out)`` dims of a batched input."""
    nd = len(out)
    lead = tuple(input.shape[:-nd])
    plane = math.prod(input.shape[-nd:])
    rows = math.prod(lead)
    best = _first_max(np.asarray(input).reshape(rows, plane), win)
    flat = (np.arange(rows)[:, None] * plane + best).reshape(*lead, *out)
    with composite(name, (input,)) as comp:
        result = comp.output(input.reshape(-1)[flat])
    if return_indices:
        return result, tensor(best.reshape(*lead, *out))
    return result


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    """``max_pool2d`` over a height-1 view (PyTorch's graph: ``SqueezeBackward1``)."""
    if input.ndim not in (2, 3) or input.numel() == 0:
        raise RuntimeError("max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 "
                           f"dim batch size for input, but got:{list(input.shape)}")
    k = ntuple(kernel_size, 1, "kernel_size")[0]
    s = k if stride is None or stride == [] or stride == () else ntuple(stride, 1, "stride")[0]
    p = ntuple(padding, 1, "padding")[0]
    d = ntuple(dilation, 1, "dilation")[0]
    if p > k // 2:
        raise RuntimeError(f"max_pool1d() padding should be at most half of kernel size, but got "
                           f"padding={p} and kernel_size={k}")
    length = out_size(input.shape[-1], k, s, p, d, ceil_mode)
    if length <= 0:
        raise RuntimeError(f"max_pool1d() Invalid computed output size: {length}")
    out = max_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d), ceil_mode, True)
    return (out[0].squeeze(-2), out[1].squeeze(-2)) if return_indices else out[0].squeeze(-2)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    return max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _pool3d_args(input, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = ntuple(kernel_size, 3, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () \
        else ntuple(stride, 3, "stride")
    padding = ntuple(padding, 3, "padding")
    dilation = ntuple(dilation, 3, "dilation")
    for k, p, d in zip(kernel, padding, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={d}")
    spatial = tuple(input.shape[-3:])
    out = tuple(out_size(s, k, st, p, d, ceil_mode) for s, k, st, p, d in
                zip(spatial, kernel, stride, padding, dilation))
    if min(out) <= 0:
        raise RuntimeError(f"Given input size: ({'x'.join(str(s) for s in input.shape[-4:])}). "
                           f"Calculated output size: ({input.shape[-4]}x"
                           f"{'x'.join(str(max(o, 0)) for o in out)}). Output size is too small")
    return kernel, stride, padding, dilation, spatial, out


def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):
    """Max over each 3-d window (``MaxPool3DWithIndicesBackward0``); indices are flat within
    each input volume."""
    _check_3d(input)
    kernel, stride, padding, dilation, spatial, out = _pool3d_args(
        input, kernel_size, stride, padding, dilation, ceil_mode)
    win = window_offsets(spatial, kernel, stride, padding, dilation, out)
    return _gather_max(input, win, out, "MaxPool3DWithIndicesBackward0", return_indices)


def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    return max_pool3d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode,
                                   return_indices)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """``avg_pool2d`` over a height-1 view (PyTorch's graph: ``SqueezeBackward1``)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional tensor "
                           "for argument #1 'self' (while checking arguments for avg_pool1d)")
    k = ntuple(kernel_size, 1, "kernel_size")[0]
    s = k if stride is None or stride == [] or stride == () else ntuple(stride, 1, "stride")[0]
    p = ntuple(padding, 1, "padding")[0]
    return avg_pool2d(input.unsqueeze(-2), (1, k), (1, s), (0, p), ceil_mode,
                      count_include_pad).squeeze(-2)


def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Window sums divided as PyTorch's (``AvgPool3DBackward0``)."""
    _check_3d(input)
    x = input
    kernel, stride, padding, _, spatial, out = _pool3d_args(
        x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    win = window_offsets(spatial, kernel, stride, padding, (1, 1, 1), out)
    divisor = _divisors(spatial, kernel, stride, padding, out, count_include_pad,
                        divisor_override)
    lead = tuple(x.shape[:-3])
    plane = math.prod(spatial)
    with composite("AvgPool3DBackward0", (x,)) as comp:
        cols = _rows_with_fill(x.reshape(math.prod(lead), plane),
                               np.where(win < 0, plane, win), 0.0)
        y = cols.sum(-1) / tensor(divisor, dtype=x.dtype)
        return comp.output(y.reshape(*lead, *out))


def _divisors(spatial, kernel, stride, padding, out, count_include_pad, divisor_override):
    """Per output position, PyTorch's divisor: the window clipped to the padded input
    (count_include_pad) or to the input, or the override."""
    if divisor_override is not None:
        return np.full(math.prod(out), float(divisor_override))
    total = np.ones(1)
    for s, k, st, p, o in zip(spatial, kernel, stride, padding, out):
        start = np.arange(o) * st - p
        end = np.minimum(start + k, s + p)
        size = end - start if count_include_pad else np.minimum(end, s) - np.maximum(start, 0)
        total = np.multiply.outer(total, size).reshape(-1)
    return total.astype(np.float64)


# ---------------------------------------------------------------- adaptive pooling

def _adaptive_sizes(output_size, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """``output_size`` as a tuple; None keeps the input's size."""
    nd = len(spatial)
    sizes = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * nd
    if len(sizes) != nd:
        raise ValueError(f"output_size must be {nd}")
    return tuple(s if o is None else int(o) for o, s in zip(sizes, spatial))


def _adaptive_offsets(spatial: tuple[int, ...], out: tuple[int, ...]) -> np.ndarray:
    """(L, K) flat offsets of PyTorch's adaptive windows, ``[floor(i s / o), ceil((i+1) s / o))``
    along each dim; windows shorter than the longest are filled with -1."""
    nd = len(spatial)
    offsets = np.zeros(1, dtype=np.int64).reshape((1,) * (2 * nd))
    valid = np.ones_like(offsets, dtype=bool)
    plane_strides = [math.prod(spatial[d + 1:]) for d in range(nd)]
    for d, (s, o) in enumerate(zip(spatial, out)):
        i = np.arange(o)
        start = (i * s) // o
        end = -((-(i + 1) * s) // o)
        k = int((end - start).max()) if o else 1
        pos = start[:, None] + np.arange(k)[None, :]
        shape = [1] * (2 * nd)
        shape[d] = o
        shape[nd + d] = k
        valid = valid & (pos < end[:, None]).reshape(shape)
        offsets = offsets + (pos * plane_strides[d]).reshape(shape)
    return np.where(valid, offsets, -1).reshape(math.prod(out), math.prod(valid.shape[nd:]))


def _adaptive_avg(input: Tensor, output_size, nd: int, name: str) -> Tensor:
    spatial = tuple(input.shape[-nd:])
    out = _adaptive_sizes(output_size, spatial)
    if all(o == 1 for o in out):  # ATen takes the mean here
        return input.mean(tuple(range(-nd, 0)), keepdim=True)
    win = _adaptive_offsets(spatial, out)
    lead = tuple(input.shape[:-nd])
    plane = math.prod(spatial)
    counts = (win >= 0).sum(1).astype(np.float64)
    with composite(name, (input,)) as comp:
        cols = _rows_with_fill(input.reshape(math.prod(lead), plane),
                               np.where(win < 0, plane, win), 0.0)
        y = cols.sum(-1) / tensor(counts, dtype=input.dtype)
        return comp.output(y.reshape(*lead, *out))


def _adaptive_check(input: Tensor, nd: int, name: str) -> None:
    if nd == 1:
        if input.ndim not in (2, 3):
            raise RuntimeError(f"Expected 2 to 3 dimensions, but got {input.ndim}-dimensional "
                               f"tensor for argument #1 'self' (while checking arguments for "
                               f"{name})")
        return
    if input.ndim not in (nd + 1, nd + 2):
        colon = ":" if "max" in name else ""
        raise RuntimeError(f"{name}(): Expected {nd + 1}D or {nd + 2}D tensor, but got{colon} "
                           f"{list(input.shape)}")


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    _adaptive_check(input, 1, "adaptive_avg_pool1d")
    size = _adaptive_sizes(output_size, (input.shape[-1],))
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size[0])).squeeze(-2)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    _adaptive_check(input, 2, "adaptive_avg_pool2d")
    return _adaptive_avg(input, output_size, 2, "AdaptiveAvgPool2DBackward0")


def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    _adaptive_check(input, 3, "adaptive_avg_pool3d")
    return _adaptive_avg(input, output_size, 3, "AdaptiveAvgPool3DBackward0")


def _adaptive_max(input: Tensor, output_size, nd: int, name: str, return_indices: bool):
    spatial = tuple(input.shape[-nd:])
    out = _adaptive_sizes(output_size, spatial)
    win = _adaptive_offsets(spatial, out)
    return _gather_max(input, win, out, name, return_indices)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    """``adaptive_max_pool2d`` over a height-1 view (PyTorch's graph: ``SqueezeBackward1``)."""
    _adaptive_check(input, 1, "adaptive_max_pool1d")
    size = _adaptive_sizes(output_size, (input.shape[-1],))
    out = _adaptive_max(input.unsqueeze(-2), (1, size[0]), 2, "AdaptiveMaxPool2DBackward0",
                        True)
    return (out[0].squeeze(-2), out[1].squeeze(-2)) if return_indices else out[0].squeeze(-2)


def adaptive_max_pool1d(input: Tensor, output_size, return_indices: bool = False):
    return adaptive_max_pool1d_with_indices(input, output_size, return_indices)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    _adaptive_check(input, 2, "adaptive_max_pool2d")
    return _adaptive_max(input, output_size, 2, "AdaptiveMaxPool2DBackward0", return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices: bool = False):
    return adaptive_max_pool2d_with_indices(input, output_size, return_indices)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices: bool = False):
    _adaptive_check(input, 3, "adaptive_max_pool3d")
    return _adaptive_max(input, output_size, 3, "AdaptiveMaxPool3DBackward0", return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices: bool = False):
    return adaptive_max_pool3d_with_indices(input, output_size, return_indices)


# ---------------------------------------------------------------- power-average pooling

def _lp_pool(input: Tensor, norm_type, kernel_size, stride, ceil_mode, nd: int) -> Tensor:
    """PyTorch's composition: ``(sign(s) relu(|s|) * K)^(1/p)`` of the average ``s`` of
    ``x^p``; p = +-inf is the max (min) of |x|."""
    from .functional import relu

    max_pool = (max_pool1d, max_pool2d, max_pool3d)[nd - 1]
    avg_pool = (avg_pool1d, avg_pool2d, avg_pool3d)[nd - 1]
    if norm_type == float("inf"):
        return max_pool(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -max_pool(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    k = math.prod(ntuple(kernel_size, nd, "kernel_size"))
    out = avg_pool(input.pow(norm_type), kernel_size, stride, 0, ceil_mode)
    return (out.sign() * relu(out.abs())).mul(k).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(input: Tensor, norm_type, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool3d(input: Tensor, norm_type, kernel_size, stride=None,
              ceil_mode: bool = False) -> Tensor:
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3)


# ---------------------------------------------------------------- unpooling

def _unpool_size(input: Tensor, kernel, stride, padding, output_size, nd: int) -> tuple:
    """PyTorch's ``_unpool_output_size``: ``(in - 1) stride + kernel - 2 padding``, or the
    given size when it is within a stride of that."""
    kernel = ntuple(kernel, nd, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () \
        else ntuple(stride, nd, "stride")
    padding = ntuple(padding, nd, "padding")
    default = [(input.shape[input.ndim - nd + d] - 1) * stride[d] + kernel[d] - 2 * padding[d]
               for d in range(nd)]
    if output_size is None:
        return tuple(default)
    output_size = tuple(output_size)
    if len(output_size) == nd + 2:
        output_size = output_size[2:]
    if len(output_size) != nd:
        raise ValueError(f"output_size should be a sequence containing {nd} or {nd + 2} "
                         f"elements, but it has a length of '{len(output_size)}'")
    for d in range(nd):
        low, high = default[d] - stride[d], default[d] + stride[d]
        if not low < output_size[d] < high:
            raise ValueError(f'invalid output_size "{output_size}" (dim {d} must be between '
                             f'{low} and {high})')
    return tuple(int(s) for s in output_size)


def _max_unpool(input: Tensor, indices: Tensor, out: tuple, nd: int, name: str) -> Tensor:
    """Zeros of the output's shape with each input value written at its index (the last
    write wins for repeated indices); each input value's gradient is the output's gradient
    at its index (``MaxUnpool{2,3}DBackward0``)."""
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Input to max_unpooling{nd}d should be a {nd + 1}d or {nd + 2}d "
                           f"Tensor, but got a tensor with {input.ndim} dimensions.")
    if indices.dtype is not D.int64:
        raise RuntimeError(f"elements in indices should be type int64 but got: "
                           f"{_short(indices.dtype)}")
    if tuple(indices.shape) != tuple(input.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({list(input.shape)}) but got indices tensor with shape: "
                           f"{list(indices.shape)}")
    lead = tuple(input.shape[:-nd])
    rows = math.prod(lead)
    plane = math.prod(out)
    idx = np.asarray(indices).reshape(rows, -1)
    bad = (idx < 0) | (idx >= plane)
    if bad.any():
        raise RuntimeError(f"Found an invalid max index: {int(idx[bad][0])} (output volumes are "
                           f"of size {'x'.join(str(s) for s in out)})")
    with composite(name, (input,)) as comp:
        result = zeros(rows, plane, dtype=input.dtype).scatter(1, tensor(idx),
                                                               input.reshape(rows, -1))
        return comp.output(result.reshape(*lead, *out))


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    """``max_unpool2d`` over a width-1 view (PyTorch's graph: ``SqueezeBackward1``)."""
    out = _unpool_size(input, kernel_size, stride, padding, output_size, 1)
    return _max_unpool(input.unsqueeze(-1), indices.unsqueeze(-1), (*out, 1), 2,
                       "MaxUnpool2DBackward0").squeeze(-1)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    out = _unpool_size(input, kernel_size, stride, padding, output_size, 2)
    return _max_unpool(input, indices, out, 2, "MaxUnpool2DBackward0")


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:
    out = _unpool_size(input, kernel_size, stride, padding, output_size, 3)
    return _max_unpool(input, indices, out, 3, "MaxUnpool3DBackward0")


# ---------------------------------------------------------------- 3-d and transposed convolution

def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3)


def _conv_transpose(input: Tensor, weight: Tensor, bias: Tensor | None, stride, padding,
                    output_padding, groups: int, dilation, nd: int) -> Tensor:
    """The gradient of a convolution with respect to its input, as a forward op: the input
    spread out by ``stride`` (zeros between), padded by ``dilation (k - 1) - padding`` (plus
    ``output_padding`` after), convolved with the flipped kernel whose in/out channels are
    swapped within each group (``ConvolutionBackward0``)."""
    check_conv_shapes(input, weight, nd, f"conv_transpose{nd}d")
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    stride = ntuple(stride, nd, "stride")
    padding = ntuple(padding, nd, "padding")
    output_padding = ntuple(output_padding, nd, "output_padding")
    dilation = ntuple(dilation, nd, "dilation")
    cin, og = weight.shape[:2]
    kernel = tuple(weight.shape[2:])
    if groups < 1 or cin % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} "
                           f"at dimension 0, but got weight of size [{list(weight.shape)}] "
                           "instead")
    if x.shape[1] != cin:
        raise RuntimeError(f"Given transposed=1, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cin} channels, but got {x.shape[1]} "
                           "channels instead")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        names = ("depth", "height", "width")[3 - nd:] if nd > 1 else ("width",)
        parts = [f"output_padding_{n}: {v}" for n, v in zip(names, output_padding)]
        parts += [f"stride_{n}: {v}" for n, v in zip(names, stride)]
        parts += [f"dilation_{n}: {v}" for n, v in zip(names, dilation)]
        raise RuntimeError("output padding must be smaller than either stride or dilation, but "
                           f"got {' '.join(parts)}")
    spatial = tuple(x.shape[2:])
    out = tuple((s - 1) * st - 2 * p + d * (k - 1) + op + 1 for s, st, p, d, k, op in
                zip(spatial, stride, padding, dilation, kernel, output_padding))
    if min(out) <= 0:
        raise RuntimeError(f"Given input size per channel: ({' x '.join(map(str, spatial))}). "
                           f"Calculated output size per channel: "
                           f"({' x '.join(str(max(o, 0)) for o in out)}). Output size is too "
                           "small")
    # per dim, the source of each position of the spread and padded input (-1: a zero)
    sources = []
    for s, st, p, d, k, o in zip(spatial, stride, padding, dilation, kernel, out):
        u = np.arange(o + d * (k - 1)) - (d * (k - 1) - p)
        sources.append(np.where((u >= 0) & (u % st == 0) & (u // st < s), u // st, -1))
    grids = np.ix_(*sources)
    flat = np.zeros(tuple(len(g) for g in sources), dtype=np.int64)
    inside = np.ones(flat.shape, dtype=bool)
    for d in range(nd):
        flat = flat + grids[d] * math.prod(spatial[d + 1:])
        inside = inside & (grids[d] >= 0)
    plane = math.prod(spatial)
    index = np.where(inside, flat, plane)
    n = x.shape[0]
    w = weight.reshape(groups, cin // groups, og, *kernel).transpose(1, 2)
    w = w.reshape(groups * og, cin // groups, *kernel).flip(tuple(range(2, nd + 2)))
    with composite("ConvolutionBackward0", (x, weight, bias)) as comp:
        spread = _rows_with_fill(x.reshape(n * cin, plane), index, 0.0)
        spread = spread.reshape(n, cin, *index.shape)
        y = comp.output(_conv(spread, w, bias, 1, 0, dilation, groups, nd))
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3)


# ---------------------------------------------------------------- interpolation

_INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")
_MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
_NODE = {"nearest": "UpsampleNearest{}DBackward0",
         "nearest-exact": "UpsampleNearestExact{}DBackward0",
         "linear": "UpsampleLinear1DBackward0", "bilinear": "UpsampleBilinear2DBackward0",
         "bicubic": "UpsampleBicubic2DBackward0", "trilinear": "UpsampleTrilinear3DBackward0"}


def _scale(dtype, size: int, out: int, align_corners: bool, scale) -> np.floating:
    """ATen's ``area_pixel_compute_scale`` in the op's compute type (float for float32)."""
    if align_corners:
        return dtype((size - 1) / (out - 1)) if out > 1 else dtype(0)
    if scale is not None and scale > 0:
        return dtype(1.0 / scale)
    return dtype(size) / dtype(out)


def _source(dtype, ratio, out: int, align_corners: bool, cubic: bool) -> np.ndarray:
    """ATen's ``area_pixel_compute_source_index`` for every output position."""
    i = np.arange(out).astype(dtype)
    if align_corners:
        return ratio * i
    src = ratio * (i + dtype(0.5)) - dtype(0.5)
    return src if cubic else np.maximum(src, dtype(0))


def _nearest_sources(size: int, out: int, scale, exact: bool) -> np.ndarray:
    """ATen's ``nearest_idx`` / ``nearest_exact_idx`` (float arithmetic, whatever the dtype)."""
    i = np.arange(out)
    if not exact and out == size:
        return i
    if not exact and out == 2 * size:
        return i >> 1
    s = np.float32(1.0 / scale) if scale is not None and scale > 0 \
        else np.float32(size) / np.float32(out)
    if exact:
        src = np.floor(((i + 0.5) * np.float64(s)).astype(np.float32))
    else:
        src = np.floor(i.astype(np.float32) * s)
    return np.minimum(src.astype(np.int64), size - 1)


def _taps(dtype, size: int, out: int, align_corners: bool, scale, mode: str):
    """Per output position along one dim, the source indices and weights (columns)."""
    if mode == "bicubic":
        ratio = _scale(dtype, size, out, align_corners, scale)
        src = _source(dtype, ratio, out, align_corners, True)
        index = np.minimum(np.floor(src).astype(np.int64), size - 1)
        t = np.clip(src - index.astype(dtype), dtype(0), dtype(1)).astype(dtype)
        a = dtype(-0.75)

        def near(x):  # ATen's cubic_convolution1, |x| <= 1
            return ((a + 2) * x - (a + 3)) * x * x + 1

        def far(x):  # cubic_convolution2, 1 < |x| < 2
            return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

        one = dtype(1)
        weights = np.stack([far(t + one), near(t), near(one - t), far((one - t) + one)], 1)
        sources = np.clip(index[:, None] + np.arange(-1, 3)[None, :], 0, size - 1)
        return sources, weights.astype(dtype)
    if out == size:
        return np.arange(out)[:, None], np.ones((out, 1), dtype=dtype)
    ratio = _scale(dtype, size, out, align_corners, scale)
    src = _source(dtype, ratio, out, align_corners, False)
    index = np.minimum(np.floor(src).astype(np.int64), size - 1)
    lambda1 = np.clip(src - index.astype(dtype), dtype(0), dtype(1)).astype(dtype)
    step = (index < size - 1).astype(np.int64)
    return np.stack([index, index + step], 1), np.stack([dtype(1) - lambda1, lambda1], 1)


def _upsample(input: Tensor, out: list, scales, mode: str, align_corners: bool) -> Tensor:
    nd = input.ndim - 2
    spatial = tuple(input.shape[2:])
    if any(o <= 0 for o in out):
        raise RuntimeError(f"Input and output sizes should be greater than 0, but got input "
                           f"({', '.join(map(str, spatial))}) output "
                           f"({', '.join(map(str, out))})")
    scales = scales or [None] * nd
    name = _NODE[mode].format(nd)
    with composite(name, (input,)) as comp:
        if mode in ("nearest", "nearest-exact"):
            sources = [_nearest_sources(s, o, sc, mode == "nearest-exact")
                       for s, o, sc in zip(spatial, out, scales)]
            return comp.output(input[(slice(None), slice(None), *np.ix_(*sources))])
        dtype = input.dtype.np.type
        y = input
        for d in reversed(range(nd)):  # innermost dim first, as ATen nests the sums
            sources, weights = _taps(dtype, spatial[d], out[d], align_corners, scales[d], mode)
            shape = [1] * (nd + 2)
            shape[2 + d] = out[d]
            total = None
            for k in range(sources.shape[1]):
                term = y.index_select(2 + d, tensor(sources[:, k])) * \
                    tensor(weights[:, k].reshape(shape), dtype=input.dtype)
                total = term if total is None else total + term
            y = total
        return comp.output(y)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """PyTorch's ``F.interpolate``: gathers of the input and sums weighted as ATen's kernels
    (their index and weight rules, in float for float32 inputs); 'area' is adaptive average
    pooling."""
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    dim = input.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        scale_factors = None
        if isinstance(size, (list, tuple)):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but got "
                    f"input with spatial dimensions of {list(input.shape[2:])} and output size "
                    f"of {size}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                    "and output size in (o1, o2, ...,oK) format.")
            if not all(isinstance(s, (int, np.integer)) for s in size):
                raise TypeError("expected size to be one of int or Tuple[int] or Tuple[int, "
                                "int] or Tuple[int, int, int], but got size with types "
                                f"{[type(s) for s in size]}")
            output_size = [int(s) for s in size]
        else:
            output_size = [int(size)] * dim
    elif scale_factor is not None:
        output_size = None
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, "
                    f"but got input with spatial dimensions of {list(input.shape[2:])} and "
                    f"scale_factor of shape {scale_factor}. Please provide input tensor in (N, "
                    "C, d1, d2, ...,dK) format and scale_factor in (s1, s2, ...,sK) format.")
            scale_factors = [float(s) for s in scale_factor]
        else:
            scale_factors = [float(scale_factor)] * dim
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output_size is None:
        recompute_scale_factor = True
    if recompute_scale_factor:
        output_size = [int(input.shape[i + 2] * scale_factors[i]) for i in range(dim)]
        scale_factors = None
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and input.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos "
                         "modes and requires a 4-D tensor as input")
    if antialias:
        raise NotImplementedError("tapegrad: interpolate(antialias=True) is not supported")
    if output_size is None:
        output_size = [math.floor(float(input.shape[i + 2]) * scale_factors[i])
                       for i in range(dim)]
    if 1 <= dim <= 3 and mode in ("nearest", "nearest-exact"):
        return _upsample(input, output_size, scale_factors, mode, False)
    if 1 <= dim <= 3 and mode == "area":
        pool = (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[dim - 1]
        return pool(input, output_size)
    if mode in _MODE_DIMS and dim == _MODE_DIMS[mode]:
        return _upsample(input, output_size, scale_factors, mode, align_corners)
    for m, needs in (("bilinear", 4), ("trilinear", 5), ("linear", 3)):
        if mode == m and input.ndim in (3, 4, 5):
            raise NotImplementedError(f"Got {input.ndim}D input, but {m} mode needs {needs}D "
                                      "input")
    raise NotImplementedError(
        f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for the "
        "modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
        f"nearest-exact (got {mode})")


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    warnings.warn("nn.functional.upsample is deprecated. Use nn.functional.interpolate "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    warnings.warn("nn.functional.upsample_nearest is deprecated. Use nn.functional.interpolate "
                  "instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    warnings.warn("nn.functional.upsample_bilinear is deprecated. Use "
                  "nn.functional.interpolate instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
