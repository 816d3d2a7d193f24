"""Adamax, NAdam, RAdam, Adadelta, ASGD and Rprop with PyTorch's single-tensor update formulas
(the ones PyTorch runs on CPU), in the same order of operations; LBFGS is in ``_lbfgs``."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._tensor import Tensor, full_like, tensor, zeros_like
from ._lbfgs import LBFGS
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

__all__ = ["ASGD", "LBFGS", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop"]


def _scalar(x: Any) -> float:
    """A hyper-parameter as a Python number (PyTorch accepts a 1-element tensor ``lr``)."""
    return x.item() if isinstance(x, Tensor) else x


def _counter(value: float = 0.0) -> Tensor:
    """A 0-d state scalar in PyTorch's ``_get_scalar_dtype``."""
    return tensor(value, dtype=scalar_dtype())


def _moments(state: dict[str, Any], grad: np.ndarray, beta1: float,
             beta2: float) -> tuple[np.ndarray, np.ndarray]:
    """``exp_avg.lerp_(g, 1 - beta1)``, ``exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)``."""
    exp_avg = lerp(read(state["exp_avg"]), grad, 1 - beta1)
    exp_avg_sq = read(state["exp_avg_sq"]) * beta2 + (1 - beta2) * grad * grad
    write(state["exp_avg"], exp_avg)
    write(state["exp_avg_sq"], exp_avg_sq)
    return exp_avg, exp_avg_sq


class Adamax(Optimizer):
    """PyTorch's Adamax (Adam with the infinity norm)::

        m = lerp(m, g, 1 - beta1);  u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1^t) * m / u
    """

    def __init__(self, params: ParamsT, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        check_lr(lr)
        check_adam_like(eps, betas, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = _counter()
            state["exp_avg"] = zeros_like(p)
            state["exp_inf"] = zeros_like(p)
        lr, (beta1, beta2) = _scalar(group["lr"]), group["betas"]
        step = increment(state["step"])
        value = read(p)
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * value
        exp_avg = lerp(read(state["exp_avg"]), grad, 1 - beta1)
        exp_inf = np.maximum(read(state["exp_inf"]) * beta2, np.abs(grad) + group["eps"])
        write(state["exp_avg"], exp_avg)
        write(state["exp_inf"], exp_inf)
        clr = lr / (1 - beta1**step)
        write(p, value + (-clr) * exp_avg / exp_inf)


class NAdam(Optimizer):
    """PyTorch's NAdam (Adam with Nesterov momentum and the momentum-decay schedule
    ``mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))``)."""

    def __init__(self, params: ParamsT, lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_lr(lr)
        check_adam_like(eps, betas, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = _counter()
            state["mu_product"] = _counter(1.0)
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        lr, (beta1, beta2), wd = _scalar(group["lr"]), group["betas"], group["weight_decay"]
        decay = group["momentum_decay"]
        step = increment(state["step"])
        bias_correction2 = 1 - beta2**step
        value = read(p)
        if wd != 0:
            if group["decoupled_weight_decay"]:
                value = value * (1 - lr * wd)
            else:
                grad = grad + wd * value
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * decay)))
        mu_product_t = state["mu_product"]
        # mu_product *= mu: rounded to the counter's dtype (float32 by default), as PyTorch's
        mu_product = float(read(mu_product_t) * mu_product_t.dtype.np.type(mu))
        mu_product_t.fill_(mu_product)
        mu_product = mu_product_t.item()
        exp_avg, exp_avg_sq = _moments(state, grad, beta1, beta2)
        denom = np.sqrt(exp_avg_sq / bias_correction2) + group["eps"]
        mu_product_next = mu_product * mu_next
        value = value + (-lr * (1.0 - mu) / (1.0 - mu_product)) * grad / denom
        write(p, value + ((-lr * mu_next) / (1.0 - mu_product_next)) * exp_avg / denom)


class RAdam(Optimizer):
    """PyTorch's RAdam: Adam whose adaptive term is switched on, with the variance
    rectification ``r_t``, once the approximated SMA length ``rho_t`` exceeds 5."""

    def __init__(self, params: ParamsT, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        check_lr(lr)
        check_adam_like(eps, betas, weight_decay)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = _counter()
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        lr, (beta1, beta2), wd = _scalar(group["lr"]), group["betas"], group["weight_decay"]
        step = increment(state["step"])
        value = read(p)
        if wd != 0:
            if group["decoupled_weight_decay"]:
                value = value * (1 - lr * wd)
            else:
                grad = grad + wd * value
        exp_avg, exp_avg_sq = _moments(state, grad, beta1, beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        corrected = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            # PyTorch's scalar / tensor is tensor.reciprocal() * scalar
            adaptive = (1 / (np.sqrt(exp_avg_sq) + group["eps"])) * bias_correction2**0.5
            write(p, value - corrected * lr * adaptive * rect)
        else:
            write(p, value - corrected * lr)


class Adadelta(Optimizer):
    """PyTorch's Adadelta::

        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g;  u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = _counter()
            state["square_avg"] = zeros_like(p)
            state["acc_delta"] = zeros_like(p)
        rho, eps = group["rho"], group["eps"]
        increment(state["step"])
        value = read(p)
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * value
        square_avg = read(state["square_avg"]) * rho + (1 - rho) * grad * grad
        write(state["square_avg"], square_avg)
        std = np.sqrt(square_avg + eps)
        delta = np.sqrt(read(state["acc_delta"]) + eps) / std * grad
        write(state["acc_delta"], read(state["acc_delta"]) * rho + (1 - rho) * delta * delta)
        write(p, value + (-_scalar(group["lr"])) * delta)


class ASGD(Optimizer):
    """PyTorch's averaged SGD: ``p = p * (1 - lambd * eta) - eta * g``; the average ``ax``
    follows p from step ``t0`` on; ``eta = lr / (1 + lambd * lr * t)^alpha``."""

    def __init__(self, params: ParamsT, lr: float = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        check_lr(lr)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        lr, lambd = _scalar(group["lr"]), group["lambd"]
        if not state:
            state["step"] = _counter()
            state["eta"] = _counter(lr)
            state["mu"] = _counter(1.0)
            state["ax"] = zeros_like(p)
        step = increment(state["step"])
        value = read(p)
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * value
        eta = state["eta"].item()
        value = value * (1 - lambd * eta)
        value = value + (-eta) * grad
        write(p, value)
        mu = state["mu"].item()
        ax = read(state["ax"])
        write(state["ax"], ax + (value - ax) * mu if mu != 1 else value)
        # PyTorch copies in 0-d tensors of the default dtype: rounded to it even when loading a
        # state dict has made eta and mu float64
        rounded = scalar_dtype().np.type
        state["eta"].fill_(float(rounded(lr / ((1 + lambd * lr * step) ** group["alpha"]))))
        state["mu"].fill_(float(rounded(1 / max(1, step - group["t0"]))))


class Rprop(Optimizer):
    """PyTorch's resilient backpropagation: per-element step sizes grow by ``etas[1]`` while
    the gradient keeps its sign and shrink by ``etas[0]`` when it flips (that step is then
    skipped), within ``step_sizes``; ``p = p - sign(g) * step_size``."""

    def __init__(self, params: ParamsT, lr: float = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        state = self.state[p]
        if not state:
            state["step"] = _counter()
            state["prev"] = zeros_like(p)
            state["step_size"] = full_like(p, _scalar(group["lr"]))
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        increment(state["step"])
        sign = np.sign(grad * read(state["prev"]))
        flipped = sign < 0
        sign[sign > 0] = etaplus
        sign[flipped] = etaminus
        sign[sign == 0] = 1
        step_size = np.clip(read(state["step_size"]) * sign, step_size_min, step_size_max)
        write(state["step_size"], step_size)
        grad = np.where(flipped, grad.dtype.type(0), grad)
        write(p, read(p) + (-1 * np.sign(grad)) * step_size)
        write(state["prev"], grad)
