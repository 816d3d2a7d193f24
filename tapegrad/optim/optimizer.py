"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``, state dicts.

Updates are computed in NumPy on the parameters' values, in their dtype, and
written back in place with ``copy_`` under ``no_grad``: the Parameter objects
stay the same (``id(param)`` is stable), the writes are not recorded, and each
write bumps the version counter so that a graph still holding the old value
raises PyTorch's error instead of silently using the new one.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import _dtype as D
from .._tensor import Tensor, from_numpy, tensor
from ..autograd import enable_grad, no_grad
from ..nn.modules.module import _zero_grad

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _typename(value: Any) -> str:
    if isinstance(value, Tensor):
        return "torch." + {"float32": "FloatTensor", "float64": "DoubleTensor"}.get(
            value.dtype.name, "Tensor")
    return type(value).__name__


def check_lr(lr: Any) -> None:
    """PyTorch's checks of a learning rate (a number, or a 1-element tensor)."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def check_adam_like(eps: float, betas: tuple[float, float], weight_decay: float) -> None:
    """PyTorch's checks of an Adam-family optimizer's eps, betas and weight_decay, in order."""
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def read(t: Tensor) -> np.ndarray:
    """The values of t (no copy; callers must not write into it)."""
    return np.asarray(t)


def write(t: Tensor, values: np.ndarray) -> None:
    """t <- values, in place (called under ``step``'s no_grad: unrecorded)."""
    t.copy_(from_numpy(np.ascontiguousarray(values, dtype=t.dtype.np)))


def scalar_dtype():
    """PyTorch's ``_get_scalar_dtype``: the dtype of the ``step`` counters."""
    return D.float64 if D.get_default_dtype() is D.float64 else D.float32


def increment(step_t: Tensor) -> float:
    """``step_t += 1`` in step_t's dtype; the new count as a Python float."""
    step_t.fill_(step_t.item() + 1)
    return step_t.item()


def lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """ATen's lerp: the formula it picks depends on which side of 0.5 the weight is."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


class Optimizer:
    """Base class: holds ``param_groups`` (dicts of hyper-parameters with a ``params`` list)
    and ``state`` (a dict per parameter, keyed by the parameter)."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {_typename(params)}")
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            param_group["params"] = list(params)
        for p in param_group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + _typename(p))
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in param_group["params"]]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken.intersection(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                _zero_grad(p, set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run ``closure`` (with grad enabled) if given, then update every group."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    g = read(grad)
                    if group.get("maximize", False):
                        g = -g
                    self._update(p, g, group)
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any]) -> None:
        """One parameter's update; ``self.state[p]`` is only touched by optimizers that keep
        state for it (PyTorch's plain SGD leaves ``state`` empty)."""
        raise NotImplementedError

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: state}, 'param_groups': [...]}`` with parameters replaced by
        their position across groups, as PyTorch's."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: s for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = self.param_groups
        saved = state_dict["param_groups"]
        if len(groups) != len(saved):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = {}
        for g, s in zip(groups, saved):
            for old, p in zip(s["params"], g["params"]):
                id_map[old] = p
        self.state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if key in id_map:
                p = id_map[key]
                self.state[p] = {k: _cast(p, k, v) for k, v in value.items()}
            else:
                self.state[key] = value
        self.param_groups = [{**s, "params": g["params"]} for g, s in zip(groups, saved)]

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        s = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"


def _cast(p: Tensor, key: str, value: Any) -> Any:
    """State values loaded from a state dict: copies, in the parameter's dtype except for the
    step counters (PyTorch casts the same way)."""
    if not isinstance(value, Tensor):
        return value
    if key == "step" or not p.is_floating_point():
        return value.clone()
    return tensor(np.array(read(value), dtype=p.dtype.np), dtype=p.dtype)
