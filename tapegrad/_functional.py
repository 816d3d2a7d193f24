"""``tapegrad.<op>(input, ...)`` function forms of the Tensor methods."""
from __future__ import annotations

from . import _tape as T
from ._assemble import (  # noqa: F401
    addcdiv,
    addcmul,
    count_nonzero,
    diff,
    hstack,
    meshgrid,
    nan_to_num,
    nanmean,
    nansum,
    nonzero,
    row_stack,
    vstack,
)
from ._library import (  # noqa: F401
    addmm,
    amax,
    amin,
    argmax,
    argmin,
    argsort,
    atan2,
    baddbmm,
    bmm,
    broadcast_tensors,
    broadcast_to,
    chunk,
    clamp_max,
    clamp_min,
    cumprod,
    cumsum,
    diagonal,
    einsum,
    flip,
    fmax,
    fmin,
    fmod,
    gather,
    index_select,
    lerp,
    log_softmax,  # noqa: F401
    logsumexp,
    masked_fill,
    masked_select,
    max,
    maximum,
    min,
    minimum,
    narrow,
    outer,
    prod,
    remainder,
    roll,
    scatter,
    scatter_add,
    select,
    softmax,
    sort,
    split,
    std,
    tile,
    topk,
    tril,
    triu,
    unbind,
    unflatten,
    var,
    where,
)
from ._predicates import (  # noqa: F401
    allclose,
    isclose,
    isfinite,
    isinf,
    isnan,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
)
from ._tensor import Tensor, _binary, _unary, cat, concat, concatenate, stack, tensor

__all__ = ["add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide",
           "floor_divide", "pow", "isnan", "isinf", "isfinite", "isclose", "allclose",
           "logical_and", "logical_or", "logical_xor", "logical_not", "nonzero",
           "count_nonzero", "nan_to_num", "hstack", "vstack", "row_stack", "meshgrid",
           "addcmul", "addcdiv", "diff", "nansum", "nanmean",
           "neg", "negative", "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "abs",
           "reciprocal", "sum", "mean", "norm", "mm", "mv", "reshape", "flatten", "squeeze",
           "unsqueeze", "permute", "transpose", "t", "clone", "detach", "eq", "ne", "lt", "le",
           "gt", "ge", "equal", "all", "any", "numel", "is_floating_point", "cat", "concat",
           "concatenate", "stack", "log1p", "expm1", "log2", "log10", "exp2", "tan", "sinh",
           "cosh", "asin", "acos", "atan", "arcsin", "arccos", "arctan", "erf", "rsqrt", "square",
           "sign", "floor", "ceil", "round", "trunc", "clamp", "clip", "clamp_min", "clamp_max",
           "addmm", "amax", "amin",
           "argmax", "argmin", "argsort", "sort", "topk", "atan2", "baddbmm", "bmm",
           "broadcast_tensors", "broadcast_to",
           "chunk", "cumprod", "cumsum", "diagonal", "einsum", "flip", "fmax", "fmin", "fmod",
           "gather",
           "index_select", "lerp", "logsumexp", "masked_fill", "masked_select", "max", "maximum",
           "min", "minimum", "narrow", "outer", "prod", "remainder", "roll", "scatter",
           "scatter_add", "select", "softmax", "split", "std", "tile", "tril", "triu", "unbind",
           "unflatten", "var", "where", "log_softmax"]


def _t(x):
    return x if isinstance(x, Tensor) else tensor(x)


def add(input, other, *, alpha=1):
    return _t(input).add(other, alpha=alpha)


def sub(input, other, *, alpha=1):
    return _t(input).sub(other, alpha=alpha)


subtract = sub


def mul(input, other):
    return _binary(T.MUL, _t(input), other)


multiply = mul


def div(input, other, *, rounding_mode=None):
    return _t(input).div(other, rounding_mode=rounding_mode)


divide = div


def true_divide(input, other):
    return _t(input) / other


def floor_divide(input, other):
    return _t(input).floor_divide(other)


def pow(input, exponent):
    if not isinstance(input, Tensor):
        return _binary(T.POW, exponent, input, True)
    return input**exponent


def neg(input):
    return _unary(input, T.NEG)


negative = neg


def exp(input):
    return _unary(input, T.EXP)


def log(input):
    return _unary(input, T.LOG)


def sin(input):
    return _unary(input, T.SIN)


def cos(input):
    return _unary(input, T.COS)


def tanh(input):
    return _unary(input, T.TANH)


def sigmoid(input):
    return _unary(input, T.SIGMOID)


def relu(input):
    return _unary(input, T.RELU)


def sqrt(input):
    return _unary(input, T.SQRT)


def abs(input):
    return _unary(input, T.ABS)


def reciprocal(input):
    return _unary(input, T.RECIPROCAL)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    return input.sum(dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    return input.mean(dim, keepdim, dtype=dtype)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    return input.norm(p, dim, keepdim, dtype)


def mm(input, mat2):
    return input.mm(mat2)


def mv(input, vec):
    return input.mv(vec)


def reshape(input, shape):
    return input.reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return input.flatten(start_dim, end_dim)


def squeeze(input, dim=None):
    return input.squeeze(dim)


def unsqueeze(input, dim):
    return input.unsqueeze(dim)


def permute(input, dims):
    return input.permute(dims)


def transpose(input, dim0, dim1):
    return input.transpose(dim0, dim1)


def t(input):
    return input.t()


def clone(input, *, memory_format=None):
    return input.clone()


def detach(input):
    return input.detach()


def eq(input, other):
    return input == other


def ne(input, other):
    return input != other


def lt(input, other):
    return input < other


def le(input, other):
    return input <= other


def gt(input, other):
    return input > other


def ge(input, other):
    return input >= other


def equal(input, other) -> bool:
    return input.equal(other)


def all(input, dim=None, keepdim=False):
    return input.all(dim, keepdim)


def any(input, dim=None, keepdim=False):
    return input.any(dim, keepdim)


def numel(input):
    return input.numel()


def is_floating_point(input) -> bool:
    return input.is_floating_point()



def log1p(input):
    return _unary(input, T.LOG1P)


def expm1(input):
    return _unary(input, T.EXPM1)


def log2(input):
    return _unary(input, T.LOG2)


def log10(input):
    return _unary(input, T.LOG10)


def exp2(input):
    return _unary(input, T.EXP2)


def tan(input):
    return _unary(input, T.TAN)


def sinh(input):
    return _unary(input, T.SINH)


def cosh(input):
    return _unary(input, T.COSH)


def asin(input):
    return _unary(input, T.ASIN)


def acos(input):
    return _unary(input, T.ACOS)


def atan(input):
    return _unary(input, T.ATAN)


arcsin = asin
arccos = acos
arctan = atan


def erf(input):
    return _unary(input, T.ERF)


def rsqrt(input):
    return _unary(input, T.RSQRT)


def square(input):
    return input.square()


def sign(input):
    return input.sign()


def floor(input):
    return input.floor()


def ceil(input):
    return input.ceil()


def round(input, *, decimals=0):
    return input.round(decimals)


def trunc(input):
    return input.trunc()


def clamp(input, min=None, max=None):
    return input.clamp(min, max)


clip = clamp
