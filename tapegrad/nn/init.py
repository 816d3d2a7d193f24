"""``nn.init``: PyTorch's parameter initialisers, writing in place without recording.

The random numbers come from tapegrad's generator (``tapegrad.manual_seed``), so
initial weights are reproducible but are not PyTorch's numbers; the
distributions and bounds are PyTorch's.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _dtype as D
from .._tensor import Generator, Tensor, rand, randn, tensor
from ..autograd import no_grad

__all__ = ["calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_",
           "ones_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_"]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d")


def _write(t: Tensor, values: np.ndarray) -> Tensor:
    with no_grad():
        t.copy_(tensor(np.asarray(values, dtype=t.dtype.np).reshape(t.shape), dtype=t.dtype))
    return t


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def uniform_(tensor_: Tensor, a: float = 0.0, b: float = 1.0,
             generator: Generator | None = None) -> Tensor:
    u = np.asarray(rand(*tensor_.shape, generator=generator, dtype=D.float64))
    return _write(tensor_, a + (b - a) * u)


def normal_(tensor_: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: Generator | None = None) -> Tensor:
    z = np.asarray(randn(*tensor_.shape, generator=generator, dtype=D.float64))
    return _write(tensor_, mean + std * z)


def constant_(tensor_: Tensor, val: float) -> Tensor:
    with no_grad():
        tensor_.fill_(val)
    return tensor_


def zeros_(tensor_: Tensor) -> Tensor:
    with no_grad():
        tensor_.zero_()
    return tensor_


def ones_(tensor_: Tensor) -> Tensor:
    return constant_(tensor_, 1.0)


def _calculate_fan_in_and_fan_out(tensor_: Tensor) -> tuple[int, int]:
    if tensor_.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         "dimensions")
    receptive = math.prod(tensor_.shape[2:])
    return tensor_.shape[1] * receptive, tensor_.shape[0] * receptive


def _fan(tensor_: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor_)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor_: Tensor, gain: float = 1.0,
                    generator: Generator | None = None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor_)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return uniform_(tensor_, -bound, bound, generator)


def xavier_normal_(tensor_: Tensor, gain: float = 1.0,
                   generator: Generator | None = None) -> Tensor:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor_)
    return normal_(tensor_, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def kaiming_uniform_(tensor_: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu",
                     generator: Generator | None = None) -> Tensor:
    if 0 in tensor_.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor_
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor_, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor_, -bound, bound, generator)


def kaiming_normal_(tensor_: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: Generator | None = None) -> Tensor:
    if 0 in tensor_.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor_
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor_, mode))
    return normal_(tensor_, 0.0, std, generator)


def _reset_weight_and_bias(weight, bias) -> None:
    """PyTorch's default initialisation of Linear and Conv layers."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)
