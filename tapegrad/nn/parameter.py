"""``nn.Parameter``: a leaf tensor that a ``Module`` registers when assigned as an attribute."""
from __future__ import annotations

from .._tensor import Tensor, empty

_SLOTS = ("_v", "_a", "_dt", "_rg", "_seg", "_rec", "_x")


class Parameter(Tensor):
    """A Tensor subclass marking module state to optimise.

    Like PyTorch's, it shares storage with ``data`` (it is ``data.detach()``
    re-typed) and requires grad by default; every op on it returns a plain
    Tensor.
    """

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter(): argument 'data' must be Tensor, not "
                            f"{type(data).__name__}")
        src = data.detach()
        param = object.__new__(cls)
        for slot in _SLOTS:
            object.__setattr__(param, slot, getattr(src, slot))
        if requires_grad:
            param.requires_grad_(True)
        return param

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.data.clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        return (type(self), (self.detach().clone(), self.requires_grad))
