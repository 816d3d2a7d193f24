"""RMSprop (optionally centred, with momentum), with PyTorch's update formulas."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor, tensor, zeros_like
from .optimizer import Optimizer, ParamsT, increment, lerp, read, scalar_dtype, write


class RMSprop(Optimizer):
    """PyTorch's single-tensor RMSprop::

        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - m * m) with m = lerp(m, g, 1 - alpha) (centered) or sqrt(v), plus eps
        buf = momentum * buf + g / avg;  p = p - lr * buf   (or p = p - lr * g / avg)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "capturable": capturable,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = tensor(0.0, dtype=scalar_dtype())
            state["square_avg"] = zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = zeros_like(p)
        increment(state["step"])
        alpha, lr = group["alpha"], group["lr"]
        value = read(p)
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * value
        square_avg = read(state["square_avg"]) * alpha + (1 - alpha) * grad * grad
        write(state["square_avg"], square_avg)
        if group["centered"]:
            grad_avg = lerp(read(state["grad_avg"]), grad, 1 - alpha)
            write(state["grad_avg"], grad_avg)
            avg = np.sqrt(square_avg + -1 * grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg = avg + group["eps"]
        if group["momentum"] > 0:
            buf = read(state["momentum_buffer"]) * group["momentum"] + grad / avg
            write(state["momentum_buffer"], buf)
            write(p, value + (-lr) * buf)
        else:
            write(p, value + (-lr) * grad / avg)
