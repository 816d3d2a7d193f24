"""Adam and AdamW (decoupled weight decay), with PyTorch's update formulas."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor, tensor, zeros_like
from .optimizer import (
    Optimizer,
    ParamsT,
    check_adam_like,
    check_lr,
    increment,
    lerp,
    read,
    scalar_dtype,
    write,
)


class Adam(Optimizer):
    """PyTorch's single-tensor Adam::

        g = grad + weight_decay * p            (AdamW instead: p = p * (1 - lr * weight_decay))
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v (or its running max, amsgrad)) / sqrt(1 - beta2^t) + eps
        p = p - lr / (1 - beta1^t) * m / denom
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        check_lr(lr)
        check_adam_like(eps, betas, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = tensor(0.0, dtype=scalar_dtype())
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros_like(p)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd = group["weight_decay"]
        step = increment(state["step"])
        value = read(p)
        if wd != 0:
            if group["decoupled_weight_decay"]:
                value = value * (1 - lr * wd)
            else:
                grad = grad + wd * value
        exp_avg = lerp(read(state["exp_avg"]), grad, 1 - beta1)
        exp_avg_sq = read(state["exp_avg_sq"]) * beta2 + (1 - beta2) * grad * grad
        write(state["exp_avg"], exp_avg)
        write(state["exp_avg_sq"], exp_avg_sq)
        step_size = lr / (1 - beta1**step)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        if group["amsgrad"]:
            running = np.maximum(read(state["max_exp_avg_sq"]), exp_avg_sq)
            write(state["max_exp_avg_sq"], running)
            denom = np.sqrt(running) / bias_correction2_sqrt + eps
        else:
            denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
        write(p, value + (-step_size) * exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as ``torch.optim.AdamW``."""

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
