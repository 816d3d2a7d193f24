"""Adagrad, with PyTorch's update formula and learning-rate decay."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor, full_like, tensor
from .optimizer import Optimizer, ParamsT, increment, read, scalar_dtype, write


class Adagrad(Optimizer):
    """PyTorch's single-tensor Adagrad::

        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g;  p = p - clr * g / (sqrt(s) + eps)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:  # PyTorch creates Adagrad's state up front
            for p in group["params"]:
                state = self.state[p]
                state["step"] = tensor(0.0, dtype=scalar_dtype())
                state["sum"] = full_like(p, initial_accumulator_value)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        step = increment(state["step"])
        value = read(p)
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * value
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        total = read(state["sum"]) + 1 * grad * grad
        write(state["sum"], total)
        std = np.sqrt(total) + group["eps"]
        write(p, value + (-clr) * grad / std)
