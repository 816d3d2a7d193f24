"""``tapegrad.nn.functional``: PyTorch's functional API over the tape's primitives.

Activations are one tape record each.  Ops PyTorch implements as one autograd
node but that are clearest as a composition of primitives (losses, layer norm,
convolution, pooling...) run inside ``_library.composite`` so that their output
carries PyTorch's grad_fn name; their gradients come from the primitives, so
they are exact by construction.  Losses live in ``_loss``, convolution, pooling
and padding in ``_conv``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _dtype as D
from .. import _tape as T
from .._library import addmm, composite, where
from .._library import log_softmax as _log_softmax
from .._library import softmax as _softmax
from .._tensor import Tensor, _unary, _write_result, matmul, rand, tensor
from ..autograd import no_grad
from ..autograd.function import Function
from . import _conv
from ._conv import avg_pool2d, conv1d, conv2d, max_pool2d
from ._loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)

__all__ = [
    "avg_pool2d", "batch_norm", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "conv1d", "conv2d", "cross_entropy", "dropout", "elu", "embedding", "gelu", "hardtanh",
    "huber_loss", "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "logsigmoid",
    "max_pool2d", "mse_loss",
    "nll_loss", "normalize", "one_hot", "pad", "relu", "relu6", "sigmoid", "silu",
    "smooth_l1_loss", "softmax", "softplus", "tanh",
]


# ---------------------------------------------------------------- padding

def pad(input: Tensor, pad: Sequence[int], mode: str = "constant",
        value: float | None = None) -> Tensor:
    """PyTorch's ``F.pad`` (``_conv.pad``).  Circular padding with negative widths crops those
    sides first and wraps the cropped tensor, as ATen's ``_pad_circular``."""
    widths = [int(p) for p in pad]
    if mode != "circular" or min(widths, default=0) >= 0 or len(widths) % 2 \
            or len(widths) // 2 > input.ndim:
        return _conv.pad(input, widths, mode, value)
    cropped = input
    for j in range(len(widths) // 2):
        d = input.ndim - 1 - j
        before, after = widths[2 * j], widths[2 * j + 1]
        if input.shape[d] + before + after < 0:
            raise RuntimeError("Negative padding value is resulting in an empty dimension")
        start = min(max(-before, 0), input.shape[d])
        length = max(input.shape[d] - max(-before, 0) - max(-after, 0), 0)
        cropped = cropped.narrow(d, start, length)
    return _conv.pad(cropped, [max(w, 0) for w in widths], mode, value)


# ---------------------------------------------------------------- activations

def _activation(input: Tensor, op: int, inplace: bool, c: float = 0.0, d: float = 0.0) -> Tensor:
    """One elementwise record; ``inplace`` writes it back into ``input`` (PyTorch's ``relu_``:
    the result's record becomes input's history and its version is bumped)."""
    if inplace:
        return _write_result(input, lambda: _unary(input, op, c, d))
    return _unary(input, op, c, d)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _activation(input, T.RELU, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _activation(input, T.LEAKY_RELU, inplace, float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _activation(input, T.ELU, inplace, float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate}")
    return _unary(input, T.GELU, 0.0 if approximate == "none" else 1.0)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _activation(input, T.SILU, inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _unary(input, T.SOFTPLUS, float(beta), float(threshold))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    return _activation(input, T.HARDTANH, inplace, float(min_val), float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def logsigmoid(input: Tensor) -> Tensor:
    return _unary(input, T.LOGSIGMOID)


def sigmoid(input: Tensor) -> Tensor:
    return _unary(input, T.SIGMOID)


def tanh(input: Tensor) -> Tensor:
    return _unary(input, T.TANH)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return _softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    return _log_softmax(input, dim, dtype)


# ---------------------------------------------------------------- linear and friends

def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` with PyTorch's graph: ``AddmmBackward0`` for 2-d input with
    bias, ``MmBackward0`` without; other ranks fold the leading dims into one addmm and view
    the result back (``ViewBackward0``), as ATen's ``linear`` does."""
    if input.ndim == 0:
        raise RuntimeError("both arguments to linear need to be at least 1D, but they are 0D "
                           f"and {weight.ndim}D")
    if bias is None:
        return matmul(input, weight.t())
    if input.ndim == 2:
        return addmm(bias, input, weight.t())
    out = addmm(bias, input.reshape(-1, input.shape[-1]), weight.t())
    return out.view(*input.shape[:-1], weight.shape[0])


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (``MulBackward0``,
    as PyTorch's CPU dropout); the identity when not training or p == 0."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0 or input.numel() == 0:
        return input
    if p == 1.0:
        noise = tensor(0.0, dtype=input.dtype)
    else:
        keep = np.asarray(rand(*input.shape, dtype=D.float64)) >= p
        noise = tensor(keep.astype(input.dtype.np) / np.asarray(1.0 - p, input.dtype.np),
                       dtype=input.dtype)
    return input.mul_(noise) if inplace else input * noise


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Tensor | None = None) -> Tensor:
    denom = input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)
    result = input / denom
    if out is not None:
        return out.copy_(result)
    return result


def one_hot(tensor_: Tensor, num_classes: int = -1) -> Tensor:
    if tensor_.dtype is not D.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    a = np.asarray(tensor_)
    if num_classes == -1:
        if a.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(a.max()) + 1
    if a.size and a.min() < 0:
        raise RuntimeError("Class values must be non-negative.")
    if a.size and a.max() >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    return tensor((a[..., None] == np.arange(num_classes)).astype(np.int64))


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int],
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the trailing dims
    (``NativeLayerNormBackward0``; the variance is the biased one, as PyTorch's)."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, int) \
        else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                           f"[*, {', '.join(str(s) for s in shape)}], but got input of size"
                           f"{list(input.shape)}")
    dims = tuple(range(input.ndim - k, input.ndim))
    with composite("NativeLayerNormBackward0", (input, weight, bias)) as c:
        _, centred, var = _moments(input, dims)
        return c.output(_normalized(centred, var, eps, weight, bias))


def _moments(input: Tensor, dims: tuple[int, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """The mean over dims (kept), the input centred on it, and the biased variance."""
    mean = input.mean(dims, keepdim=True)
    centred = input - mean
    return mean, centred, (centred * centred).mean(dims, keepdim=True)


def _normalized(centred: Tensor, var: Tensor, eps: float, weight: Tensor | None,
                bias: Tensor | None) -> Tensor:
    """``centred / sqrt(var + eps) * weight + bias`` (layer and batch norm)."""
    out = centred * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float | None = 0.1,
               eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` per channel (dim 1), over every other
    dim (``NativeBatchNormBackward0``).  Training: the batch's mean and biased variance, and
    the running statistics (when given) move by ``momentum`` towards the batch's mean and
    unbiased variance, in place and without history, as PyTorch's; evaluation: the running
    statistics."""
    if input.ndim < 2:
        raise ValueError(f"Expected 2D or more input (got {input.ndim}D input)")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != c:
            raise RuntimeError(f"{name} should contain {c} elements not {t.numel()}")
    dims = (0, *range(2, input.ndim))
    shape = (1, c) + (1,) * (input.ndim - 2)
    if training:
        n = input.numel() // c if c else 0
        if n <= 1:
            raise ValueError("Expected more than 1 value per channel when training, got input "
                             f"size {input.shape}")
    elif running_mean is None or running_var is None:
        raise RuntimeError(f"{'running_mean' if running_mean is None else 'running_var'} must "
                           "be defined in evaluation mode")
    with composite("NativeBatchNormBackward0", (input, weight, bias)) as comp:
        if training:
            mean, centred, var = _moments(input, dims)
            if running_mean is not None or running_var is not None:
                with no_grad():
                    m = momentum
                    if running_mean is not None:
                        running_mean.mul_(1 - m).add_(mean.detach().reshape(c) * m)
                    if running_var is not None:
                        unbiased = var.detach().reshape(c) * (n / (n - 1))
                        running_var.mul_(1 - m).add_(unbiased * m)
        else:
            centred = input - running_mean.reshape(shape)
            var = running_var.reshape(shape)
        return comp.output(_normalized(centred, var, eps,
                                       None if weight is None else weight.reshape(shape),
                                       None if bias is None else bias.reshape(shape)))


def _index_array(input: Tensor, what: str) -> np.ndarray:
    if input.dtype not in (D.int64, D.int32):
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the "
                           f"following scalar types: Long, Int; but got "
                           f"{input.type()} instead (while checking arguments for {what})")
    return np.asarray(input).astype(np.int64, copy=False)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (``EmbeddingBackward0``); the row at ``padding_idx`` gets no gradient;
    ``scale_grad_by_freq``: each row's gradient divided by how often the batch looks it up."""
    if sparse:
        raise NotImplementedError("tapegrad: embedding(sparse=True) (sparse gradients) is not "
                                  "supported")
    idx = _index_array(input, "embedding")
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx %= n
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError("index out of range in self")
    if max_norm is not None:
        _renorm(weight, idx, max_norm, norm_type)
    with composite("EmbeddingBackward0", (weight,)) as c:
        out = weight[idx]
        if scale_grad_by_freq and out.requires_grad:
            counts = np.bincount(idx.reshape(-1) % n, minlength=n)[idx % n]
            out = _ScaledGradient.apply(out, tensor((1.0 / counts)[..., None], dtype=out.dtype))
        if padding_idx is not None:
            pad = idx == padding_idx
            if pad.any():
                out = where(tensor(pad[..., None]), out.detach(), out)
        return c.output(out)


class _ScaledGradient(Function):
    """x itself forward; the gradient times ``scale`` backward (a constant, broadcast)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def _renorm(weight: Tensor, idx: np.ndarray, max_norm: float, norm_type: float) -> None:
    """PyTorch's ``embedding_renorm_``: rescale, in place, the looked-up rows whose norm
    exceeds max_norm."""
    rows = np.unique(idx % weight.shape[0])
    values = np.asarray(weight)[rows].astype(np.float64)
    norms = np.linalg.norm(values, ord=norm_type, axis=1)
    big = norms > max_norm
    if big.any():
        scaled = values[big] * (max_norm / (norms[big] + 1e-7))[:, None]
        with no_grad():
            weight[tensor(rows[big])] = tensor(scaled, dtype=weight.dtype)


# the functional forms of the layer families, each in its own module (names in their __all__)
from . import _f_layers, _f_losspool, _f_seq  # noqa: E402
from ._f_layers import *  # noqa: E402,F401,F403
from ._f_losspool import *  # noqa: E402,F401,F403
from ._f_seq import *  # noqa: E402,F401,F403

__all__ += _f_layers.__all__ + _f_losspool.__all__ + _f_seq.__all__
