"""Gradient clipping, in place on ``.grad`` and unrecorded, with PyTorch's formulas."""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..._tensor import Tensor, tensor
from ...autograd import no_grad


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(a: np.ndarray, norm_type: float) -> np.ndarray:
    a = np.abs(a.reshape(-1))
    if norm_type == math.inf:
        return a.max() if a.size else np.zeros((), a.dtype)
    if norm_type == 0:
        return np.asarray(np.count_nonzero(a), dtype=a.dtype)
    return np.asarray(np.sum(a**norm_type) ** (1.0 / norm_type), dtype=a.dtype)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients by ``min(1, max_norm / (total_norm + 1e-6))``; returns the total norm
    (the norm of the per-parameter norms)."""
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    norm_type = float(norm_type)
    norms = np.stack([_norm(np.asarray(g), norm_type) for g in grads])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` "
                           "is non-finite, so it cannot be clipped. To disable this error and "
                           "scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    # computed in the gradients' dtype, as PyTorch's 0-d tensors are; nan propagates
    coef = np.minimum(max_norm / (total + total.dtype.type(1e-6)), total.dtype.type(1.0))
    scale = tensor(coef, dtype=grads[0].dtype)
    with no_grad():
        for g in grads:
            g.mul_(scale)
    return tensor(total, dtype=grads[0].dtype)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.copy_(g.clamp(-clip_value, clip_value))
