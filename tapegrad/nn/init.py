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
from .._tensor import Generator, Tensor, _rng, rand, randn, tensor
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


def trunc_normal_(tensor_: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator: Generator | None = None) -> Tensor:
    """Normal(mean, std) values conditioned on [a, b] (bounds rounded to the tensor's dtype),
    by PyTorch's two samplers: redrawing normals when [a, b] holds more than 30% of the mass,
    otherwise rejection sampling of uniforms on [a, b]."""
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    dtype = tensor_.dtype.np

    def norm_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    rng = _rng(generator)
    shape = tuple(tensor_.shape)
    if norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std) > 0.3:
        lo, hi = dtype.type(a), dtype.type(b)
        values = (mean + std * rng.standard_normal(shape)).astype(dtype)
        while True:
            redraw = (values < lo) | (values > hi)
            if not redraw.any():
                break
            values[redraw] = (mean + std * rng.standard_normal(int(redraw.sum()))).astype(dtype)
    else:
        log_peak = -0.5 * ((max(a, min(mean, b)) - mean) / std) ** 2
        values = np.empty(shape)
        pending = np.ones(shape, dtype=bool)
        while pending.any():
            n = int(pending.sum())
            candidates = a + (b - a) * rng.random(n)
            accept = np.log(rng.random(n)) <= -0.5 * ((candidates - mean) / std) ** 2 - log_peak
            where = np.flatnonzero(pending)[accept]
            values.reshape(-1)[where] = candidates[accept]
            pending.reshape(-1)[where] = False
    return _write(tensor_, values)


def eye_(tensor_: Tensor) -> Tensor:
    """The (rectangular) identity matrix, in place."""
    if tensor_.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _write(tensor_, np.eye(*tensor_.shape))


def dirac_(tensor_: Tensor, groups: int = 1) -> Tensor:
    """The identity convolution kernel (a 1 at the centre of kernel [d, d] in each group),
    in place."""
    dimensions = tensor_.ndim
    if dimensions not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tuple(tensor_.shape)
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_chans_per_grp = sizes[0] // groups
    min_dim = min(out_chans_per_grp, sizes[1])
    values = np.zeros(sizes)
    centre = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for d in range(min_dim):
            values[(g * out_chans_per_grp + d, d) + centre] = 1
    return _write(tensor_, values)


def orthogonal_(tensor_: Tensor, gain: float = 1, generator: Generator | None = None) -> Tensor:
    """A (semi-)orthogonal matrix (trailing dimensions flattened) times gain: the Q of the QR
    decomposition of a normal matrix, with columns signed by diag(R) so that it is uniform."""
    if tensor_.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor_.numel() == 0:
        return tensor_
    rows = tensor_.shape[0]
    cols = tensor_.numel() // rows
    flattened = _rng(generator).standard_normal((rows, cols)).astype(tensor_.dtype.np)
    if rows < cols:
        flattened = flattened.T
    q, r = np.linalg.qr(flattened)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _write(tensor_, q * gain)


def sparse_(tensor_: Tensor, sparsity: float, std: float = 0.01,
            generator: Generator | None = None) -> Tensor:
    """Normal(0, std) values with ``ceil(sparsity * rows)`` zeros in each column, in place.
    As PyTorch's, the rows to zero come from the default generator."""
    if tensor_.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor_.shape
    num_zeros = math.ceil(sparsity * rows)
    values = std * _rng(generator).standard_normal((rows, cols))
    permute = _rng(None).permutation
    for col_idx in range(cols):
        values[permute(rows)[:num_zeros], col_idx] = 0
    return _write(tensor_, values)


def _make_deprecate(meth):
    new_name = meth.__name__
    old_name = new_name[:-1]

    def deprecated_init(*args, **kwargs):
        warnings.warn(f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
                      FutureWarning, stacklevel=2)
        return meth(*args, **kwargs)

    deprecated_init.__doc__ = f"Deprecated: use ``nn.init.{new_name}``."
    deprecated_init.__name__ = old_name
    return deprecated_init


uniform = _make_deprecate(uniform_)
normal = _make_deprecate(normal_)
constant = _make_deprecate(constant_)
eye = _make_deprecate(eye_)
dirac = _make_deprecate(dirac_)
xavier_uniform = _make_deprecate(xavier_uniform_)
xavier_normal = _make_deprecate(xavier_normal_)
kaiming_uniform = _make_deprecate(kaiming_uniform_)
kaiming_normal = _make_deprecate(kaiming_normal_)
orthogonal = _make_deprecate(orthogonal_)
sparse = _make_deprecate(sparse_)

__all__ += ["dirac_", "eye_", "orthogonal_", "sparse_", "trunc_normal_", "constant", "dirac",
            "eye", "kaiming_normal", "kaiming_uniform", "normal", "orthogonal", "sparse",
            "uniform", "xavier_normal", "xavier_uniform"]
