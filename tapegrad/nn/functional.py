"""``tapegrad.nn.functional``: activations and softmax, each one tape record (or one composite)."""
from __future__ import annotations

from .. import _tape as T
from .._library import log_softmax as _log_softmax
from .._library import softmax as _softmax
from .._tensor import Tensor, _unary


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return _unary(input, T.RELU)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _unary(input, T.LEAKY_RELU, float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _unary(input, T.ELU, float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate}")
    return _unary(input, T.GELU, 0.0 if approximate == "none" else 1.0)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _unary(input, T.SILU)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _unary(input, T.SOFTPLUS, float(beta), float(threshold))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    return _unary(input, T.HARDTANH, float(min_val), float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0)


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
