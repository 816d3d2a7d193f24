"""Functional forms of the activation, normalization, dropout, shape and distance layers.

Each is a composition of recorded primitives (``where``, indexing, reductions...), so its
gradient, double backward and version checks come from the primitives; ``composite`` gives
the result PyTorch's grad_fn name.  The ``where`` compositions pick the branch PyTorch's
derivatives.yaml uses at each kink (e.g. ELU's negative branch at 0, zero gradient at
hardsigmoid's and hardshrink's edges).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _dtype as D
from .._library import composite, where
from .._library import softmax as _softmax
from .._tensor import Tensor, _write_result, rand, tensor, zeros
from ..autograd import no_grad
from .functional import _moments, batch_norm, pad, softplus

__all__ = [
    "alpha_dropout", "bilinear", "celu", "celu_", "channel_shuffle", "cosine_similarity",
    "dropout1d", "dropout2d", "dropout3d", "elu_", "feature_alpha_dropout", "fold", "glu",
    "group_norm", "hardshrink", "hardsigmoid", "hardswish", "hardtanh_", "instance_norm",
    "leaky_relu_", "local_response_norm", "mish", "pairwise_distance", "pixel_shuffle",
    "pixel_unshuffle", "prelu", "rms_norm", "rrelu", "rrelu_", "selu", "selu_", "softmin",
    "softshrink", "softsign", "tanhshrink", "threshold", "threshold_", "unfold",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _const(value, like: Tensor) -> Tensor:
    return tensor(value, dtype=like.dtype)


def _maybe_inplace(input: Tensor, inplace: bool, compute) -> Tensor:
    return _write_result(input, lambda: compute(input)) if inplace else compute(input)


# ---------------------------------------------------------------- activations

def _elu(input: Tensor, alpha: float, scale: float, input_scale: float, name: str) -> Tensor:
    """ATen's ``elu(x, alpha, scale, input_scale)``; x <= 0 takes the exponential branch,
    whose derivative PyTorch also uses at 0."""
    with composite(name, (input,)) as c:
        negative = (input * input_scale).expm1() * (alpha * scale)
        positive = input * scale if scale != 1.0 else input
        return c.output(where(input > 0, positive, negative))


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    return _maybe_inplace(input, inplace,
                          lambda x: _elu(x, _SELU_ALPHA, _SELU_SCALE, 1.0, "EluBackward0"))


def selu_(input: Tensor) -> Tensor:
    return selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _maybe_inplace(input, inplace,
                          lambda x: _elu(x, alpha, 1.0, 1.0 / alpha, "CeluBackward0"))


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return celu(input, alpha, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    from .functional import elu
    return elu(input, alpha, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    from .functional import hardtanh
    return hardtanh(input, min_val, max_val, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    from .functional import leaky_relu
    return leaky_relu(input, negative_slope, inplace=True)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``value`` where ``input <= threshold``, else input (zero gradient there)."""
    def compute(x: Tensor) -> Tensor:
        with composite("ThresholdBackward0", (x,)) as c:
            return c.output(where(x <= threshold, _const(value, x), x))
    return _maybe_inplace(input, inplace, compute)


_threshold = threshold


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    return _threshold(input, threshold, value, inplace=True)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim + input.ndim if dim < 0 else dim
    if not 0 <= d < input.ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-input.ndim}, {input.ndim - 1}], but got {dim})")
    n = input.shape[d]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    with composite("GluBackward0", (input,)) as c:
        a, b = input.narrow(d, 0, n // 2), input.narrow(d, n // 2, n // 2)
        return c.output(a * b.sigmoid())


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``; the gradient is 1/6 strictly inside (-3, 3), 0 elsewhere."""
    def compute(x: Tensor) -> Tensor:
        with composite("HardsigmoidBackward0", (x,)) as c:
            inside = (x > -3) & (x < 3)
            return c.output(where(inside, (x + 3) / 6, (x >= 3).to(x.dtype)))
    return _maybe_inplace(input, inplace, compute)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``; strictly inside (-3, 3) the gradient is x/3 + 1/2, 0 at and
    below -3, 1 at and above 3, as PyTorch's."""
    def compute(x: Tensor) -> Tensor:
        with composite("HardswishBackward0", (x,)) as c:
            middle = where(x < 3, x * (x + 3) / 6, x)
            # x * 0 below: -0.0 there, as ATen's x * 0 / 6
            return c.output(where(x <= -3, x * 0, middle))
    return _maybe_inplace(input, inplace, compute)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    with composite("HardshrinkBackward0", (input,)) as c:
        return c.output(where((input >= -lambd) & (input <= lambd), _const(0.0, input), input))


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    if lambd < 0:
        biggest = np.finfo(input.dtype.np).max
        raise RuntimeError(f"lambda must be in range [0, {biggest:g}] for input dtype "
                           f"{_c_name(input)}, "
                           f"but found {lambd:g}")
    with composite("SoftshrinkBackward0", (input,)) as c:
        shrunk = where(input > lambd, input - lambd, input + lambd)
        # x * 0 in the middle: -0.0 for negative inputs, as ATen's
        return c.output(where((input >= -lambd) & (input <= lambd), input * 0, shrunk))


def _c_name(t: Tensor) -> str:
    return {"float64": "Double", "float32": "Float", "float16": "Half",
            "bfloat16": "BFloat16"}.get(t.dtype.name, t.dtype.name)


def tanhshrink(input: Tensor) -> Tensor:
    return input - input.tanh()


def softsign(input: Tensor) -> Tensor:
    return input / (input.abs() + 1)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    def compute(x: Tensor) -> Tensor:
        with composite("MishBackward0", (x,)) as c:
            return c.output(x * softplus(x).tanh())
    return _maybe_inplace(input, inplace, compute)


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype=None) -> Tensor:
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim, _stacklevel)
    return _softmax(-input, dim, dtype)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` where positive, ``weight * x`` elsewhere; weight has one slope or one per
    channel (dim 1)."""
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() != 1 and weight.numel() != channels:
        raise RuntimeError("Mismatch of parameter numbers and input channel size. Found "
                           f"parameter numbers = {weight.numel()} and channel size = "
                           f"{channels}.")
    if weight.ndim > 1:
        raise RuntimeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                           f"ndim = {weight.ndim}")
    with composite("PreluKernelBackward0", (input, weight)) as c:
        if weight.numel() == 1:
            slope = weight.reshape(())
        elif input.ndim >= 2:
            slope = weight.reshape((channels,) + (1,) * (input.ndim - 2))
        else:
            slope = weight
        return c.output(where(input > 0, input, slope * input))


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
          training: bool = False, inplace: bool = False) -> Tensor:
    """Negative inputs times a slope drawn from U(lower, upper) per element in training,
    times (lower + upper) / 2 in evaluation; the gradient is that slope."""
    def compute(x: Tensor) -> Tensor:
        a = np.asarray(x.detach())
        if training:
            u = np.asarray(rand(*x.shape, dtype=D.float64))
            slopes = np.where(a <= 0, lower + (upper - lower) * u, 1.0)
        else:
            slopes = np.where(a > 0, 1.0, (lower + upper) / 2)
        with composite("RreluWithNoiseBackward0", (x,)) as c:
            return c.output(x * tensor(slopes.astype(x.dtype.np), dtype=x.dtype))
    return _maybe_inplace(input, inplace, compute)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, inplace=True)


# ---------------------------------------------------------------- normalization

def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalize each sample's channel groups by their mean and biased variance, then scale
    and shift per channel (``NativeGroupNormBackward0``)."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received "
                           f"{input.ndim}")
    n, ch = input.shape[0], input.shape[1]
    if ch % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by "
                           f"num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    for t in (weight, bias):
        if t is not None and (t.ndim != 1 or t.numel() != ch):
            what = "weight" if t is weight else "bias"
            raise RuntimeError(f"Expected {what} to be a vector of size equal to the number of "
                               f"channels in input, but got {what} of shape {list(t.shape)} "
                               f"and input of shape {list(input.shape)}")
    shape = (1, ch) + (1,) * (input.ndim - 2)
    with composite("NativeGroupNormBackward0", (input, weight, bias)) as c:
        grouped = input.reshape(n, num_groups, -1)
        _, centred, var = _moments(grouped, (2,))
        out = (centred * (var + eps).rsqrt()).reshape(input.shape)
        if weight is not None:
            out = out * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        return c.output(out)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch norm of the input viewed as one batch of N*C channels, as ATen's: the running
    statistics (when given) move towards the batch average of the instances' statistics."""
    if use_input_stats and math.prod(input.shape[2:]) <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"torch.Size({list(input.shape)})")
    if not use_input_stats and (running_mean is None or running_var is None):
        raise RuntimeError("Expected running_mean and running_var to be defined when "
                           "use_input_stats is false")
    n, ch = input.shape[0], input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.numel() != ch:
            raise RuntimeError(f"{name} should contain {n * ch} elements not {t.numel() * n}")
    folded = input.reshape(1, n * ch, *input.shape[2:])
    mean_rep = None if running_mean is None else running_mean.repeat(n)
    var_rep = None if running_var is None else running_var.repeat(n)
    out = batch_norm(folded, mean_rep, var_rep,
                     None if weight is None else weight.repeat(n),
                     None if bias is None else bias.repeat(n), use_input_stats, momentum, eps)
    if use_input_stats:
        with no_grad():
            if running_mean is not None:
                running_mean.copy_(mean_rep.view(n, ch).mean(0))
            if running_var is not None:
                running_var.copy_(var_rep.view(n, ch).mean(0))
    return out.view(input.shape)


def rms_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing dims; eps defaults to the
    dtype's machine epsilon."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) \
        else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*{', '.join(str(s) for s in shape)}], but got input of size"
                           f"{list(input.shape)}")
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got "
                           f"weight of shape {list(weight.shape)} and normalized_shape = "
                           f"{list(shape)}")
    if eps is None:
        eps = float(np.finfo(input.dtype.np).eps)
    dims = tuple(range(input.ndim - k, input.ndim))
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """``x / (k + alpha * mean of x**2 over size neighbouring channels) ** beta`` (the
    window zero-padded at the channel edges, the mean over all ``size`` places)."""
    if input.ndim < 3:
        raise ValueError("Expected 3D or higher dimensionality                          "
                         f"input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    ch = input.shape[1]
    square = (input * input).movedim(1, -1)
    padded = pad(square, (size // 2, (size - 1) // 2))
    window = padded.narrow(-1, 0, ch)
    for j in range(1, size):
        window = window + padded.narrow(-1, j, ch)
    div = (window / size).movedim(-1, 1)
    return input / (div * alpha + k).pow(beta)


# ---------------------------------------------------------------- dropout variants

def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _noise_dropout(input: Tensor, p: float, training: bool, inplace: bool, feature: bool,
                   alpha: bool) -> Tensor:
    """ATen's ``_dropout_impl``: a Bernoulli(1 - p) mask per element, or per channel
    (``feature``); kept values scaled by 1/(1-p), or for alpha dropout the affine map that
    keeps SELU's zero mean and unit variance."""
    if feature and input.ndim < 2:
        raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:
        zero = _const(0.0, input)
        return input.mul_(zero) if inplace else input * zero
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else tuple(input.shape)
    keep = (np.asarray(rand(*shape, dtype=D.float64)) >= p).astype(np.float64)
    if not alpha:
        noise = tensor((keep / (1 - p)).astype(input.dtype.np), dtype=input.dtype)
        return input.mul_(noise) if inplace else input * noise
    selu_alpha = 1.7580993408473766
    a = 1.0 / math.sqrt((selu_alpha * selu_alpha * p + 1) * (1 - p))
    shift = tensor(((keep - 1) * (selu_alpha * a) + selu_alpha * a * p).astype(input.dtype.np),
                   dtype=input.dtype)
    noise = tensor((keep * a).astype(input.dtype.np), dtype=input.dtype)
    if inplace:
        return input.mul_(noise).add_(shift)
    return input * noise + shift


def _channel_dropout(input: Tensor, p: float, training: bool, inplace: bool,
                     batched: bool) -> Tensor:
    if batched:
        return _noise_dropout(input, p, training, inplace, True, False)
    x = input.unsqueeze_(0) if inplace else input.unsqueeze(0)
    out = _noise_dropout(x, p, training, inplace, True, False)
    return out.squeeze_(0) if inplace else out.squeeze(0)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    _check_p(p)
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs).")
    return _channel_dropout(input, p, training, inplace, input.ndim == 3)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    _check_p(p)
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout2d "
            "exists to provide channel-wise dropout on inputs with 2 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    return _noise_dropout(input, p, training, inplace, True, False)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True,
              inplace: bool = False) -> Tensor:
    _check_p(p)
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated "
            "and will result in an error in a future release. To retain the behavior "
            "and silence this warning, please use dropout instead. Note that dropout3d "
            "exists to provide channel-wise dropout on inputs with 3 spatial dimensions, "
            "a channel dimension, and an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2)
    return _channel_dropout(input, p, training, inplace, input.ndim == 5)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    _check_p(p)
    return _noise_dropout(input, p, training, inplace, False, True)


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    _check_p(p)
    return _noise_dropout(input, p, training, inplace, True, True)


# ---------------------------------------------------------------- shape layers

def _check_positive_factor(name: str, what: str, factor: int) -> None:
    if factor <= 0:
        raise RuntimeError(f"{name} expects a positive {what}, but got {factor}")


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r², H, W) -> (*, C, H r, W r)."""
    r = int(upscale_factor)
    if input.ndim < 3:
        raise RuntimeError("pixel_shuffle expects input to have at least 3 dimensions, but got "
                           f"input with {input.ndim} dimension(s)")
    _check_positive_factor("pixel_shuffle", "upscale_factor", r)
    c, h, w = input.shape[-3:]
    if c % (r * r):
        raise RuntimeError("pixel_shuffle expects its input's 'channel' dimension to be "
                           "divisible by the square of upscale_factor, but input.size(-3)="
                           f"{c} is not divisible by {r * r}")
    lead = tuple(input.shape[:-3])
    k = len(lead)
    with composite("PixelShuffleBackward0", (input,)) as comp:
        x = input.reshape(*lead, c // (r * r), r, r, h, w)
        x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
        return comp.output(x.reshape(*lead, c // (r * r), h * r, w * r).clone())


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r², H, W)."""
    r = int(downscale_factor)
    if input.ndim < 3:
        raise RuntimeError("pixel_unshuffle expects input to have at least 3 dimensions, but "
                           f"got input with {input.ndim} dimension(s)")
    _check_positive_factor("pixel_unshuffle", "downscale_factor", r)
    c, h, w = input.shape[-3:]
    if h % r:
        raise RuntimeError("pixel_unshuffle expects height to be divisible by downscale_factor, "
                           f"but input.size(-2)={h} is not divisible by {r}")
    if w % r:
        raise RuntimeError("pixel_unshuffle expects width to be divisible by downscale_factor, "
                           f"but input.size(-1)={w} is not divisible by {r}")
    lead = tuple(input.shape[:-3])
    k = len(lead)
    with composite("PixelUnshuffleBackward0", (input,)) as comp:
        x = input.reshape(*lead, c, h // r, r, w // r, r)
        x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
        return comp.output(x.reshape(*lead, c * r * r, h // r, w // r).clone())


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """Interleave the channels (dim 1) of ``groups`` groups."""
    if input.ndim <= 2:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with "
                           f"sizes {list(input.shape)}")
    if groups <= 0:
        raise RuntimeError(f"Number of groups to divide channels in must be positive. Value "
                           f"of groups:{groups}")
    c = input.shape[1]
    if c % groups:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels "
                           f"and {groups} groups.")
    with composite("ChannelShuffleBackward0", (input,)) as comp:
        x = input.reshape(input.shape[0], groups, c // groups, *input.shape[2:]).transpose(1, 2)
        return comp.output(x.reshape(input.shape).clone())


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(x) for x in v)
    if len(v) != 2:
        raise RuntimeError(f"It is expected {name} equals to 2, but got size {len(v)}")
    return v


def _blocks(size, kernel, dilation, padding, stride) -> tuple[np.ndarray, int, int]:
    """The flat offsets, in the zero-padded (H + 2p, W + 2p) plane, of every (kernel position,
    block) pair, in im2col's order (kernel rows, kernel cols, block rows, block cols)."""
    (h, w), (kh, kw), (dh, dw), (ph, pw), (sh, sw) = size, kernel, dilation, padding, stride
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    rows = (np.arange(kh)[:, None] * dh + np.arange(max(out_h, 0))[None, :] * sh)
    cols = (np.arange(kw)[:, None] * dw + np.arange(max(out_w, 0))[None, :] * sw)
    flat = rows[:, None, :, None] * (w + 2 * pw) + cols[None, :, None, :]
    return flat.reshape(-1).astype(np.int64), out_h, out_w


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: (N, C, H, W) -> (N, C·kh·kw, L), the sliding blocks as columns."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"Input Error: Only 3D or 4D input Tensors are supported "
                           f"(got {input.ndim}D)")
    k, d = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
    p, s = _pair(padding, "padding"), _pair(stride, "stride")
    batched = input.ndim == 4
    x = input if batched else input.unsqueeze(0)
    n, c, h, w = x.shape
    flat, out_h, out_w = _blocks((h, w), k, d, p, s)
    if out_h < 1 or out_w < 1:
        raise RuntimeError(f"Given input with spatial size ({h}, {w}), kernel_size={k}, "
                           f"dilation={d}, padding={p}, calculated shape of the array of "
                           f"sliding blocks as ({out_h}, {out_w}), but its components must be "
                           "at least one.")
    with composite("Im2ColBackward0", (input,)) as comp:
        padded = pad(x, (p[1], p[1], p[0], p[0])) if p != (0, 0) else x
        cols = padded.reshape(n, c, -1).index_select(2, tensor(flat))
        out = cols.reshape(n, c * k[0] * k[1], out_h * out_w)
        return comp.output(out if batched else out.squeeze(0))


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, unfold's adjoint: (N, C·kh·kw, L) -> (N, C, H, W), overlapping blocks summed."""
    if input.ndim not in (2, 3):
        raise RuntimeError(f"Expected 2D or 3D (batch mode) tensor for input with possibly 0 "
                           f"batch size and non-zero dimensions for input, but got: "
                           f"{list(input.shape)}")
    size, k = _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size")
    d, p, s = _pair(dilation, "dilation"), _pair(padding, "padding"), _pair(stride, "stride")
    batched = input.ndim == 3
    x = input if batched else input.unsqueeze(0)
    n, ck, length = x.shape
    kk = k[0] * k[1]
    if ck % kk:
        raise RuntimeError(f"Expected size of input's dimension 1 to be divisible by the product "
                           f"of kernel_size, but got input.size(1)={ck} and kernel_size={k}.")
    flat, out_h, out_w = _blocks(size, k, d, p, s)
    if out_h * out_w != length:
        raise RuntimeError(f"Given output_size={size}, kernel_size={k}, dilation={d}, "
                           f"padding={p}, stride={s}, expected size of input's dimension 2 to "
                           f"match the calculated number of sliding blocks {out_h} * {out_w} = "
                           f"{out_h * out_w}, but got input.size(2)={length}.")
    c = ck // kk
    wp = size[1] + 2 * p[1]
    row, col = flat // wp - p[0], flat % wp - p[1]
    inside = (row >= 0) & (row < size[0]) & (col >= 0) & (col < size[1])
    with composite("Col2ImBackward0", (input,)) as comp:
        src = x.reshape(n, c, kk * length)
        if not inside.all():
            src = src.index_select(2, tensor(np.flatnonzero(inside)))
        target = tensor(row[inside] * size[1] + col[inside])
        canvas = zeros(n, c, size[0] * size[1], dtype=input.dtype).index_add(2, target, src)
        out = canvas.reshape(n, c, size[0], size[1])
        return comp.output(out if batched else out.squeeze(0))


# ---------------------------------------------------------------- distances and bilinear

def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``sum(x1/|x1| * x2/|x2|)`` along dim; the norms are clamped to eps as values only (the
    gradient goes through the unclamped norm, as ATen's in-place no-grad clamp)."""
    a, b = (x1, x2) if tuple(x1.shape) == tuple(x2.shape) else _broadcast(x1, x2)

    def unit(x: Tensor) -> Tensor:
        norm = x.norm(2, dim, keepdim=True)
        clamped = norm + (norm.detach().clamp_min(eps) - norm.detach())
        return x / clamped
    return (unit(a) * unit(b)).sum(dim)


def _broadcast(x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
    shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    return x1.expand(*shape), x2.expand(*shape)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``norm(x1 - x2 + eps, p)`` over the last dim."""
    last = max(x1.ndim, x2.ndim) - 1
    diff = x1 - x2 + eps
    with composite("NormBackward1", (diff,)) as c:
        return c.output(diff.norm(p, last, keepdim=keepdim))


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """``y_o = x1ᵀ W_o x2 + b_o`` over the last dims of x1 and x2."""
    if input1.ndim != input2.ndim:
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.ndim} and "
                           f"{input2.ndim}")
    for d in range(input1.ndim - 1):
        if input1.shape[d] != input2.shape[d]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {d}: "
                               f"got {input1.shape[d]} and {input2.shape[d]}")
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-dimensional, but got {weight.ndim}")
    for which, x, d in (("input1", input1, 1), ("input2", input2, 2)):
        if x.shape[-1] != weight.shape[d]:
            raise RuntimeError(f"bilinear(): {which} size does not match weight size: got "
                               f"{x.shape[-1]} but expected {weight.shape[d]}")
    lead = tuple(input1.shape[:-1])
    a = input1.reshape(-1, input1.shape[-1])
    b = input2.reshape(-1, input2.shape[-1])
    # (B, i) @ (i, o*j) -> (B, o, j), then contract j with x2
    left = a.matmul(weight.permute(1, 0, 2).reshape(weight.shape[1], -1))
    out = (left.reshape(a.shape[0], weight.shape[0], weight.shape[2]) * b.unsqueeze(1)).sum(-1)
    out = out.view(*lead, weight.shape[0])
    return out if bias is None else out + bias
