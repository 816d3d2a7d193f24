"""Convolution, pooling and padding as gathers plus ordinary ops.

* ``conv1d``/``conv2d``: an im2col gather of the (zero-padded) input into
  ``(N*L, C*K)`` columns, then one matmul with the weight (grouped convolutions:
  one batched matmul over the groups), then the bias.
* ``max_pool2d``: the argmax of each window is found in NumPy; the output is a
  gather of the input at those positions, so its gradient goes to the first
  maximum of each window exactly as PyTorch's ``max_pool2d_with_indices``.
* ``avg_pool2d``: window gather, sum, division by PyTorch's divisors.
* ``pad``: a gather whose out-of-range positions read the fill value.

Each runs inside a ``composite`` named like PyTorch's node.
"""
from __future__ import annotations

import math

import numpy as np

from .._library import composite
from .._tensor import Tensor, cat, full, tensor
from ._windows import im2col_index, ntuple, out_size, pad_sources, window_offsets


def _rows_with_fill(x2d: Tensor, index: np.ndarray, fill: float) -> Tensor:
    """``x2d[:, index]`` where an index equal to ``x2d.shape[1]`` reads ``fill``."""
    if index.size and index.max() >= x2d.shape[1]:
        x2d = cat([x2d, full((x2d.shape[0], 1), fill, dtype=x2d.dtype)], 1)
    return x2d[:, index]


# ---------------------------------------------------------------- convolution

def check_conv_shapes(input: Tensor, weight: Tensor, nd: int, name: str) -> None:
    """PyTorch's errors for a convolution's input (batched or not) and weight dimensions."""
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
                           f"{name}, but got input of size: {list(input.shape)}")
    if weight.ndim != nd + 2:
        raise RuntimeError(f"weight should have at least three dimensions, got {weight.ndim}"
                           if weight.ndim < 3 else
                           f"Expected {nd + 2}-dimensional weight for {nd + 2}-dimensional "
                           f"input, but got weight of size {list(weight.shape)}")


def _conv(input: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation,
          groups: int, nd: int) -> Tensor:
    name = f"conv{nd}d"
    check_conv_shapes(input, weight, nd, name)
    unbatched = input.ndim == nd + 1
    x = input.unsqueeze(0) if unbatched else input
    stride = ntuple(stride, nd, "stride")
    dilation = ntuple(dilation, nd, "dilation")
    kernel = tuple(weight.shape[2:])
    if isinstance(padding, str):
        x, padding = _string_padding(x, padding, stride, dilation, kernel)
    else:
        padding = ntuple(padding, nd, "padding")
    n, c = x.shape[:2]
    spatial = tuple(x.shape[2:])
    o, cg = weight.shape[:2]
    if groups < 1 or cg * groups != c or o % groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(weight.shape)}, expected "
                           f"input{list(x.shape)} to have {cg * groups} channels, but got {c} "
                           "channels instead")
    out = tuple(out_size(s, k, st, p, d) for s, k, st, p, d in
                zip(spatial, kernel, stride, padding, dilation))
    if min(out) <= 0:
        padded = " x ".join(str(s + 2 * p) for s, p in zip(spatial, padding))
        raise RuntimeError(f"Calculated padded input size per channel: ({padded}). Kernel size: "
                           f"({' x '.join(str((k - 1) * d + 1) for k, d in zip(kernel, dilation))}"
                           "). Kernel size can't be greater "
                           "than actual input size")
    index = im2col_index(n, c, groups, spatial, kernel, stride, padding, dilation, out)
    og = o // groups
    ck = cg * math.prod(kernel)
    length = math.prod(out)
    with composite("ConvolutionBackward0", (x, weight, bias)) as comp:
        flat = x.reshape(-1)
        if any(padding):  # windows reach into the padding: it reads this appended zero
            flat = cat([flat, full((1,), 0.0, dtype=x.dtype)])
        if groups == 1:  # one (N*L, C*K) @ (C*K, O) product
            y = flat[index[0]] @ weight.reshape(o, ck).t()
            y = y.view(n, length, o).permute(0, 2, 1)
        else:  # one product per group, batched
            y = flat[index] @ weight.reshape(groups, og, ck).transpose(1, 2)
            y = y.view(groups, n, length, og).permute(1, 0, 3, 2)
        y = y.reshape(n, o, *out)
        if bias is not None:
            y = y + bias.reshape(o, *([1] * nd))
        y = comp.output(y)
    return y.squeeze(0) if unbatched else y


def _string_padding(x, padding: str, stride, dilation, kernel):
    """'valid' is no padding; 'same' pads (d*(k-1))//2 each side and, when that total is odd,
    one more on the right through an explicit pad, as ATen does."""
    nd = len(kernel)
    if padding == "valid":
        return x, (0,) * nd
    if padding != "same":
        raise ValueError(f"Invalid padding string '{padding}', should be one of "
                         "{'valid', 'same'}")
    if any(s != 1 for s in stride):
        raise RuntimeError("padding='same' is not supported for strided convolutions")
    total = [d * (k - 1) for d, k in zip(dilation, kernel)]
    left = tuple(t // 2 for t in total)
    extra = [t - 2 * lt for t, lt in zip(total, left)]
    if any(extra):
        widths = []
        for e in reversed(extra):
            widths += [0, e]
        x = pad(x, widths)
    return x, left


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


# ---------------------------------------------------------------- pooling

def _pool_args(input, kernel_size, stride, padding, dilation, ceil_mode, is_max):
    if input.ndim not in (3, 4) or input.numel() == 0:
        raise RuntimeError("non-empty 3D or 4D (batch mode) tensor expected for input")
    kernel = ntuple(kernel_size, 2, "kernel_size")
    stride = kernel if stride is None or stride == [] or stride == () else ntuple(stride, 2)
    padding = ntuple(padding, 2, "padding")
    dilation = ntuple(dilation, 2, "dilation")
    for k, p, d in zip(kernel, padding, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(f"pad should be at most half of effective kernel size, but got "
                               f"pad={p}, kernel_size={k} and dilation={d}")
    if is_max and any(p > k // 2 for k, p in zip(kernel, padding)):
        raise RuntimeError(f"pad should be smaller than or equal to half of kernel size, but got "
                           f"padW = {padding[1]}, padH = {padding[0]}, kW = {kernel[1]}, "
                           f"kH = {kernel[0]}")
    spatial = tuple(input.shape[-2:])
    out = tuple(out_size(s, k, st, p, d, ceil_mode) for s, k, st, p, d in
                zip(spatial, kernel, stride, padding, dilation))
    if min(out) <= 0:
        raise RuntimeError(f"Given input size: ({'x'.join(str(s) for s in input.shape[-3:])}). "
                           f"Calculated output size: ({input.shape[-3]}x{out[0]}x{out[1]}). "
                           "Output size is too small")
    return kernel, stride, padding, dilation, spatial, out


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over each window; ``return_indices`` gives each maximum's flat position within its
    input plane, as PyTorch."""
    kernel, stride, padding, dilation, spatial, out = _pool_args(
        input, kernel_size, stride, padding, dilation, ceil_mode, True)
    lead = tuple(input.shape[:-2])
    plane = math.prod(spatial)
    rows = math.prod(lead)
    win = window_offsets(spatial, kernel, stride, padding, dilation, out)  # (L, K)
    a = np.asarray(input).reshape(rows, plane)
    if (win < 0).any():
        a = np.concatenate([a, np.full((rows, 1), -np.inf, dtype=a.dtype)], 1)
    values = a[:, np.where(win < 0, plane, win)]  # (rows, L, K)
    pick = values.argmax(-1)  # the first max (nan wins)
    if values.dtype.kind == "f":
        nans = np.isnan(values)
        if nans.any():  # the last nan, as ATen's scan (val > max || isnan(val)) keeps
            last = values.shape[-1] - 1 - nans[..., ::-1].argmax(-1)
            pick = np.where(nans.any(-1), last, pick)
    best = win[np.arange(win.shape[0]), pick]
    flat = (np.arange(rows)[:, None] * plane + best).reshape(*lead, *out)
    with composite("MaxPool2DWithIndicesBackward0", (input,)) as comp:
        result = comp.output(input.reshape(-1)[flat])
    if return_indices:
        return result, tensor(best.reshape(*lead, *out))
    return result


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    kernel, stride, padding, _, spatial, out = _pool_args(
        input, kernel_size, stride, padding, 1, ceil_mode, False)
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    lead = tuple(input.shape[:-2])
    plane = math.prod(spatial)
    win = window_offsets(spatial, kernel, stride, padding, (1, 1), out)
    divisor = _avg_divisors(spatial, kernel, stride, padding, out, count_include_pad,
                            divisor_override)
    with composite("AvgPool2DBackward0", (input,)) as comp:
        cols = _rows_with_fill(input.reshape(math.prod(lead), plane),
                               np.where(win < 0, plane, win), 0.0)
        y = cols.sum(-1) / tensor(divisor, dtype=input.dtype)
        return comp.output(y.reshape(*lead, *out))


def _avg_divisors(spatial, kernel, stride, padding, out, count_include_pad, divisor_override):
    """Per output position, what PyTorch divides the window sum by: the window clipped to the
    padded input (count_include_pad) or to the input, or the override."""
    if divisor_override is not None:
        return np.full(math.prod(out), float(divisor_override))
    sizes = []
    for s, k, st, p, o in zip(spatial, kernel, stride, padding, out):
        start = np.arange(o) * st - p
        end = np.minimum(start + k, s + p)
        padded = end - start
        inside = np.minimum(end, s) - np.maximum(start, 0)
        sizes.append(padded if count_include_pad else inside)
    return np.multiply.outer(sizes[0], sizes[1]).reshape(-1).astype(np.float64)


# ---------------------------------------------------------------- padding

_NON_CONSTANT = {"reflect": "ReflectionPad{}DBackward0", "replicate": "ReplicationPad{}DBackward0",
                 "circular": "CopySlices"}


def pad(input: Tensor, pad: list[int] | tuple[int, ...], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) widths from the last dim backwards;
    negative widths crop.  Every mode is one gather of the input."""
    widths = [int(p) for p in pad]
    if len(widths) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    k = len(widths) // 2
    if k > input.ndim:
        raise RuntimeError("Padding length should be less than or equal to two times the input "
                           f"dimension but got padding length {len(widths)} and input of "
                           f"dimension {input.ndim}")
    shape = tuple(input.shape)
    if mode == "constant":
        return _constant_pad(input, widths, 0.0 if value is None else float(value))
    if mode not in _NON_CONSTANT:
        raise NotImplementedError(f"Unrecognised padding mode {mode}")
    if value is not None and value != 0:
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
    if not 1 <= k <= 3 or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"Padding size {len(widths)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    sources = []
    for j in range(k):
        d = input.ndim - k + j
        before, after = widths[2 * (k - 1 - j)], widths[2 * (k - 1 - j) + 1]
        size = shape[d]
        if mode == "reflect" and (before >= size or after >= size):
            raise RuntimeError(f"Argument #{2 + 2 * k}: Padding size should be less than the "
                               f"corresponding input dimension, but got: padding ({before}, "
                               f"{after}) at dimension {d} of input {list(shape)}")
        if mode == "circular" and (before > size or after > size):
            raise RuntimeError("Padding value causes wrapping around more than once.")
        sources.append(pad_sources(size, before, after, mode))
    index = (Ellipsis, *np.ix_(*sources))
    name = _NON_CONSTANT[mode].format(k)
    with composite(name, (input,)) as comp:
        return comp.output(input[index])


def _constant_pad(input: Tensor, widths: list[int], value: float) -> Tensor:
    shape = tuple(input.shape)
    nd = len(shape)
    k = len(widths) // 2
    out_shape = list(shape)
    per_dim = []
    for d in range(nd):
        j = nd - 1 - d
        if j < k:
            before, after = widths[2 * j], widths[2 * j + 1]
            out_shape[d] = shape[d] + before + after
            if out_shape[d] < 0:
                raise RuntimeError(f"The input size {shape[d]}, plus negative padding {before} "
                                   f"and {after} resulted in a negative output size, which is "
                                   f"invalid. Check dimension {d} of your input.")
            per_dim.append(pad_sources(shape[d], before, after, "constant"))
        else:
            per_dim.append(np.arange(shape[d]))
    flat = np.zeros(out_shape, dtype=np.int64)
    inside = np.ones(out_shape, dtype=bool)
    stride = 1
    for d in range(nd - 1, -1, -1):
        src = per_dim[d].reshape([-1 if e == d else 1 for e in range(nd)])
        flat = flat + src * stride
        inside = inside & (src >= 0)
        stride *= shape[d]
    index = np.where(inside, flat, input.numel())
    with composite("ConstantPadNdBackward0", (input,)) as comp:
        return comp.output(_rows_with_fill(input.reshape(1, -1), index, value)[0])
