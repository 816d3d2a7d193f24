"""dtypes and PyTorch's type promotion."""
from __future__ import annotations

import builtins

import numpy as np


class dtype:
    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "_category")

    def __init__(self, name: str, np_dtype, category: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = category == 2
        self.is_signed = name != "bool" and name != "uint8"
        self.itemsize = self.np.itemsize
        self._category = category  # bool < integer < floating

    def __repr__(self) -> str:
        return f"tapegrad.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))

    @property
    def is_complex(self) -> bool:
        return False

    def to_real(self):
        return self


bool_ = dtype("bool", np.bool_, 0)
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
_BY_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}

_default_float = [float32]


def _by_name(name: str) -> dtype:
    return _BY_NAME[name]


def get_default_dtype() -> dtype:
    return _default_float[0]


def set_default_dtype(d: dtype) -> None:
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    _default_float[0] = d


def from_numpy_dtype(np_dtype) -> dtype:
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(np_dtype)}. The only supported types are: "
            "float64, float32, float16, int64, int32, int16, int8, uint8, and bool.") from None


def as_dtype(d) -> dtype:
    """Accept tapegrad dtypes, NumPy dtypes and Python types as ``dtype=`` arguments."""
    if isinstance(d, dtype):
        return d
    if d is builtins.float:
        return float64
    if d is builtins.int:
        return int64
    if d is builtins.bool:
        return bool_
    return from_numpy_dtype(d)


def promote(a: dtype, b: dtype) -> dtype:
    """Two dtypes of tensors: the higher category wins, then the wider type."""
    if a is b:
        return a
    if a._category != b._category:
        return a if a._category > b._category else b
    if a is uint8 or b is uint8:  # uint8 with a signed int needs the next signed width
        other = b if a is uint8 else a
        return int16 if other is int8 else other
    return a if a.itemsize >= b.itemsize else b


def scalar_dtype(x) -> dtype:
    if isinstance(x, builtins.bool):
        return bool_
    if isinstance(x, builtins.int):
        return int64
    return get_default_dtype()


def result_type(operands) -> dtype:
    """PyTorch's promotion: dimensioned tensors, then 0-d tensors, then Python numbers,
    each later group counting only when it is of a higher category."""
    dim = zero = wrapped = None
    for x in operands:
        if isinstance(x, (builtins.bool, builtins.int, builtins.float)):
            d = scalar_dtype(x)
            wrapped = d if wrapped is None else _wrapped_promote(wrapped, d)
        elif x.ndim == 0:
            zero = x.dtype if zero is None else promote(zero, x.dtype)
        else:
            dim = x.dtype if dim is None else promote(dim, x.dtype)
    out = dim
    for group in (zero, wrapped):
        if group is not None and (out is None or group._category > out._category):
            out = group
    return out


def _wrapped_promote(a: dtype, b: dtype) -> dtype:
    return a if a._category >= b._category else b
