"""Elementwise math beyond the core: PyTorch's aliases (``multiply``, ``greater``,
``arcsinh``...), in-place forms, the special functions (``lgamma``, ``digamma``,
``polygamma``, ``erfc``, ``logit``, ``xlogy``, ``sinc``...), bitwise ops, predicates
and metadata (``nbytes``, ``is_signed``...).

Ops that are a composition of recorded ops (``frac``, ``deg2rad``, ``float_power``,
``ldexp``) run inside a ``composite`` that gives the result PyTorch's node name.  The
others compute their value with NumPy and record one node (``_Pointwise``) whose backward
is PyTorch's derivative formula written with tapegrad ops on the saved inputs, so it is
itself differentiable (create_graph reaches the second derivative).
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from . import _dtype as D
from . import _engine as E
from ._library import composite, remainder, where
from ._tensor import (
    _SHORT,
    Tensor,
    _inplace,
    _out,
    _result,
    _untraced,
    _val,
    _wrap_dim,
    tensor,
    zeros_like,
)
from .autograd.function import Function
from .autograd.grad_mode import no_grad

__all__: list[str] = [
    "negative_", "positive", "greater", "greater_equal", "less", "less_equal", "not_equal",
    "absolute", "acosh", "asinh", "atanh", "arccosh", "arcsinh", "arctanh", "acosh_", "asinh_",
    "atanh_", "arccosh_", "arcsinh_", "arctanh_", "arccos_", "arcsin_", "arctan_", "arctan2",
    "nan_to_num_", "fix", "fix_", "trunc_", "abs_", "neg_", "exp2_", "sigmoid_", "square_",
    "rsqrt_", "clip_", "erf_", "swapaxes", "swapdims", "moveaxis", "movedim", "ravel", "sgn",
    "frac", "frac_", "deg2rad", "deg2rad_", "rad2deg", "rad2deg_", "logit", "logit_", "xlogy",
    "xlogy_", "hypot", "logaddexp", "logaddexp2", "sinc", "sinc_", "copysign", "heaviside",
    "float_power", "erfc", "erfc_", "erfinv", "lgamma", "digamma", "polygamma", "ldexp", "ldexp_",
    "frexp", "nextafter", "isposinf", "isneginf", "isreal", "signbit", "bitwise_and", "bitwise_or",
    "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift", "gcd", "gcd_",
    "lcm", "lcm_", "is_signed", "is_complex", "is_conj", "is_neg", "is_nonzero", "is_same_size",
    "conj", "resolve_conj", "resolve_neg", "real",
]


# ---------------------------------------------------------------- the pointwise node

class _Pointwise(Function):
    """A node whose value was computed by NumPy; ``backward(g, *inputs)`` is the derivative
    formula in tapegrad ops (differentiable in turn), one gradient (or None) per input.
    The inputs it reads must not change meanwhile: PyTorch's error if one did."""

    @staticmethod
    def forward(ctx, value, backward, *inputs):
        ctx.formula = backward
        ctx.inputs = inputs
        ctx.versions = [x._version if isinstance(x, Tensor) else None for x in inputs]
        return value

    @staticmethod
    def backward(ctx, g):
        for x, version in zip(ctx.inputs, ctx.versions):
            if version is not None and x._version != version:
                raise _modified_error(x, version)
        return (None, None, *ctx.formula(g, *ctx.inputs))


def _name_of(x):
    if not isinstance(x, Tensor) or x.grad_fn is None:
        return None
    return x.grad_fn.name()


def _modified_error(x, version):
    """PyTorch's error, naming the node that wrote x last."""
    return RuntimeError(E.modified_message(x.dtype, x.shape, _name_of(x), x._version, version))


def _pointwise(name, value, backward, *inputs):
    """value (a Tensor) as the output of a node named ``name`` over ``inputs``."""
    with composite(name, [x for x in inputs if isinstance(x, Tensor)]) as c:
        return c.output(_Pointwise.apply(value, backward, *inputs))


def _on_copy(fn, input, *args, name=None):
    """fn(input, *args) for an in-place form: computed on a copy of input (the node reads
    the values it saved, and the in-place write overwrites input), shown as fn's node (or
    ``name``) over input itself."""
    out = fn(input.clone(), *args)
    if out._seg is None:
        return out
    inputs = [x for x in (input, *args) if isinstance(x, Tensor)]
    # (the record's name, not grad_fn's: a node object, once made, keeps its name)
    with composite(name or out._seg.names[out._rec], inputs) as c:
        return c.output(out)


def _float_dtype(*operands):
    """The result dtype of a floating op: the promoted type, integers to the default."""
    dt = D.result_type(operands)
    return dt if dt.is_floating_point else D.get_default_dtype()


def _array(x, dt):
    """x's value (a tensor or a number) as an array of dtype dt."""
    return np.asarray(_val(x) if isinstance(x, Tensor) else x).astype(dt.np, copy=False)


def _computed(fn, dt, *arrays):
    with np.errstate(all="ignore"):
        return _result(_out(fn(*arrays), dt), dt)


def _per_element(fn):
    """A math-module function over an array (NumPy has no erfc or lgamma)."""
    ufunc = np.frompyfunc(fn, 1, 1)

    def run(a):
        return np.asarray(ufunc(a.astype(np.float64)), dtype=np.float64).reshape(a.shape)
    return run


def _unary_float(name, x, fn, backward):
    dt = _float_dtype(x)
    value = _computed(fn, dt, _array(x, dt))
    return _pointwise(name, value, backward, x)


def _tensor_of(x, like):
    return x if isinstance(x, Tensor) else tensor(x, dtype=like)


# ---------------------------------------------------------------- aliases

def positive(input):
    if input.dtype is D.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


def greater(input, other):
    return input > other


def greater_equal(input, other):
    return input >= other


def less(input, other):
    return input < other


def less_equal(input, other):
    return input <= other


def not_equal(input, other):
    return input != other


def absolute(input):
    return input.abs()


def arctan2(input, other):
    return input.atan2(other)


def fix(input):
    return input.trunc()


def negative_(input):
    return input.neg_()


def abs_(input):
    return input.abs_()


def neg_(input):
    return input.neg_()


def exp2_(input):
    return input.exp2_()


def sigmoid_(input):
    return input.sigmoid_()


def square_(input):
    return input.square_()


def rsqrt_(input):
    return input.rsqrt_()


def clip_(input, min=None, max=None):  # noqa: A002
    return input.clamp_(min, max)


def erf_(input):
    return input.erf_()


def trunc_(input):
    return input.trunc_()


def fix_(input):
    return input.trunc_()


def arccos_(input):
    return input.acos_()


def arcsin_(input):
    return input.asin_()


def arctan_(input):
    return input.atan_()


def atan2_(input, other):
    return _inplace(input, lambda: input.atan2(other), other)


def fmod_(input, other):
    return _inplace(input, lambda: input.fmod(other), other)


def remainder_(input, other):
    return _inplace(input, lambda: remainder(input, other), other)


def cumsum_(input, dim, *, dtype=None):
    return _inplace(input, lambda: input.cumsum(dim, dtype=dtype), None)


def cumprod_(input, dim, *, dtype=None):
    return _inplace(input, lambda: input.cumprod(dim, dtype=dtype), None)


def tril_(input, diagonal=0):
    return _inplace(input, lambda: input.tril(diagonal), None)


def triu_(input, diagonal=0):
    return _inplace(input, lambda: input.triu(diagonal), None)


def nan_to_num_(input, nan=0.0, posinf=None, neginf=None):
    return _inplace(input, lambda: input.nan_to_num(nan, posinf, neginf), None)


def true_divide_(input, other):
    return input.div_(other)


def multiply_(input, other):
    return input.mul_(other)


def subtract_(input, other, *, alpha=1):
    return input.sub_(other, alpha=alpha)


# ---------------------------------------------------------------- in-place comparisons

def _zero_gradients(g, *inputs):
    return tuple(zeros_like(x) if isinstance(x, Tensor) else None for x in inputs)


def _compare_(input, other, compare, node):
    """input <- compare(input, other) as 1 and 0 of input's dtype; PyTorch's node gives
    zero gradients (GtBackward0 with a number, GtBackward1 with a tensor)."""
    def compute():
        value = compare(input, other).to(input.dtype)
        name = node + ("Backward1" if isinstance(other, Tensor) else "Backward0")
        return _on_copy(lambda copy, y: _pointwise(name, value, _zero_gradients, copy, y),
                        input, other)
    return _inplace(input, compute, other)


def eq_(input, other):
    return _compare_(input, other, Tensor.eq, "Eq")


def ne_(input, other):
    return _compare_(input, other, Tensor.ne, "Ne")


def lt_(input, other):
    return _compare_(input, other, Tensor.lt, "Lt")


def le_(input, other):
    return _compare_(input, other, Tensor.le, "Le")


def gt_(input, other):
    return _compare_(input, other, Tensor.gt, "Gt")


def ge_(input, other):
    return _compare_(input, other, Tensor.ge, "Ge")


def _logical_(input, other, logical):
    """input <- a logical op as 1 and 0 of input's dtype.  Not recorded, as in PyTorch: a
    tensor that requires grad keeps its history (and a leaf may be written)."""
    with no_grad():
        return _inplace(input, lambda: logical().to(input.dtype), other)


def logical_and_(input, other):
    return _logical_(input, other, lambda: input.logical_and(other))


def logical_or_(input, other):
    return _logical_(input, other, lambda: input.logical_or(other))


def logical_xor_(input, other):
    return _logical_(input, other, lambda: input.logical_xor(other))


def logical_not_(input):
    return _logical_(input, None, lambda: input.logical_not())


# ---------------------------------------------------------------- dims

def swapaxes(input, axis0, axis1):
    return input.transpose(axis0, axis1)


def swapdims(input, dim0, dim1):
    return input.transpose(dim0, dim1)


def movedim(input, source, destination):
    """source dims moved to destination positions, the others in order (a permute)."""
    src = [source] if isinstance(source, builtins.int) else list(source)
    dst = [destination] if isinstance(destination, builtins.int) else list(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({src} dims) "
                           f"should contain the same number of dims as destination ({dst} dims)")
    nd = input.ndim
    given_src, given_dst = src, dst
    src = [_wrap_dim(d, nd) for d in src]
    dst = [_wrap_dim(d, nd) for d in dst]
    if len(set(src)) != len(src):
        raise RuntimeError(f"movedim: repeated dim in `source` ({given_src})")
    if len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in `destination` ({given_dst})")
    if nd == 0:
        return input[...]  # (AliasBackward0, as PyTorch)
    order = [-1] * nd
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(d for d in range(nd) if d not in src)
    order = [next(rest) if o < 0 else o for o in order]
    return input.permute(order)


moveaxis = movedim


def ravel(input):
    """input flattened: a view if its layout is contiguous, else a view of a copy (as
    PyTorch's contiguous().view(-1): CloneBackward0 then ViewBackward0)."""
    if input._a is not None and not input._a.flags.c_contiguous:
        return input.clone().view(-1)
    return input.view(-1)


# ---------------------------------------------------------------- composed math

def sgn(input):
    """sign for real tensors (SgnBackward0: a zero gradient)."""
    if input.dtype is D.bool_:
        return input.clone()
    if not input.dtype.is_floating_point:
        return _result(_out(np.sign(_val(input)), input.dtype), input.dtype)
    with composite("SgnBackward0", (input,)) as c:
        return c.output(input.sign())


def _float_only(x, name):
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f'"{name}_cpu" not implemented for \'{_SHORT[x.dtype.name]}\'')


def frac(input):
    """input - trunc(input) (FracBackward0: the gradient passes unchanged)."""
    _float_only(input, "frac")
    with composite("FracBackward0", (input,)) as c:
        return c.output(input - input.trunc())


_PI_180 = 0.017453292519943295769236907684886127134428718885417
_180_PI = 57.295779513082320876798154814105170332405472466564


def deg2rad(input):
    x = input if input.dtype.is_floating_point else input.to(D.get_default_dtype())
    with composite("Deg2RadBackward0", (input,)) as c:
        return c.output(x * _PI_180)


def rad2deg(input):
    x = input if input.dtype.is_floating_point else input.to(D.get_default_dtype())
    with composite("Rad2DegBackward0", (input,)) as c:
        return c.output(x * _180_PI)


def float_power(input, exponent):
    """input ** exponent in float64, as PyTorch composes it (a cast, then pow)."""
    base = input.to(D.float64) if isinstance(input, Tensor) else builtins.float(input)
    power = exponent.to(D.float64) if isinstance(exponent, Tensor) else exponent
    if isinstance(power, builtins.int) and not isinstance(power, builtins.bool):
        power = builtins.float(power)
    return base**power


def ldexp(input, other):
    """input * 2 ** other (LdexpBackward0: the gradient of input is grad * 2 ** other)."""
    x = input if input.dtype.is_floating_point else input.to(D.get_default_dtype())
    with composite("LdexpBackward0", (input, other)) as c:
        return c.output(x * 2.0**other.to(x.dtype) if isinstance(other, Tensor) else
                        x * 2.0**other)


# ---------------------------------------------------------------- inverse hyperbolic

def asinh(input):
    return _unary_float("AsinhBackward0", input, np.arcsinh,
                        lambda g, x: (g * (x * x + 1).rsqrt(),))


def acosh(input):
    return _unary_float("AcoshBackward0", input, np.arccosh,
                        lambda g, x: (g * (x * x - 1).rsqrt(),))


def atanh(input):
    return _unary_float("AtanhBackward0", input, np.arctanh,
                        lambda g, x: (g * (1 / (1 - x * x)),))


arcsinh = asinh
arccosh = acosh
arctanh = atanh


def asinh_(input):
    return _inplace(input, lambda: _on_copy(asinh, input), None)


def acosh_(input):
    return _inplace(input, lambda: _on_copy(acosh, input), None)


def atanh_(input):
    return _inplace(input, lambda: _on_copy(atanh, input), None)


arcsinh_ = asinh_
arccosh_ = acosh_
arctanh_ = atanh_


# ---------------------------------------------------------------- special functions

_2_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erfc(input):
    return _unary_float("ErfcBackward0", input, _per_element(math.erfc),
                        lambda g, x: (-_2_SQRT_PI * (-(x * x)).exp() * g,))


def erfc_(input):
    return _inplace(input, lambda: _on_copy(erfc, input), None)


# erfinv's initial rational approximations (PyTorch's calc_erfinv: central, then tail)
_ERFINV_A = (0.886226899, -1.645349621, 0.914624893, -0.140543331)
_ERFINV_B = (-2.118377725, 1.442710462, -0.329097515, 0.012229801)
_ERFINV_C = (-1.970840454, -1.624906493, 3.429567803, 1.641345311)
_ERFINV_D = (3.543889200, 1.637067800)
_erf = _per_element(math.erf)


def _erfinv(y):
    """The inverse of erf on float64 values, as PyTorch's calc_erfinv: a rational
    approximation, then two Newton steps on erf (libm's); +-inf at +-1, nan beyond."""
    y = np.asarray(y, dtype=np.float64)
    a, b, c, d = _ERFINV_A, _ERFINV_B, _ERFINV_C, _ERFINV_D
    with np.errstate(all="ignore"):
        size = np.abs(y)
        z = y * y
        num = ((a[3] * z + a[2]) * z + a[1]) * z + a[0]
        den = (((b[3] * z + b[2]) * z + b[1]) * z + b[0]) * z + 1.0
        central = y * num / den
        z = np.sqrt(-np.log((1.0 - size) / 2.0))
        num = ((c[3] * z + c[2]) * z + c[1]) * z + c[0]
        den = (d[1] * z + d[0]) * z + 1.0
        x = np.where(size <= 0.7, central, np.copysign(num, y) / den)
        for _ in range(2):
            x = x - (_erf(x) - y) / (_2_SQRT_PI * np.exp(-x * x))
        x = np.where(size == 1.0, np.copysign(np.inf, y), x)
        return np.where(size > 1.0, np.nan, x)


def erfinv(input):
    """The inverse of erf (ErfinvBackward0: grad * sqrt(pi) / 2 * exp(erfinv(x)^2))."""
    return _unary_float("ErfinvBackward0", input, _erfinv,
                        lambda g, x: (0.5 * math.sqrt(math.pi) * erfinv(x).pow(2).exp() * g,))


def erfinv_(input):
    return _inplace(input, lambda: _on_copy(erfinv, input), None)


def _lgamma_of(v):
    try:
        return math.lgamma(v)
    except (ValueError, OverflowError):  # the poles (0, the negative integers) and overflow
        return math.inf


_lgamma = _per_element(_lgamma_of)


def lgamma(input):
    """log|gamma(x)| (LgammaBackward0: grad * digamma(x))."""
    return _unary_float("LgammaBackward0", input, _lgamma, lambda g, x: (g * digamma(x),))


# the asymptotic series of digamma (Cephes' A, highest power first), as PyTorch's
_PSI_SERIES = (8.33333333333333333333E-2, -2.10927960927960927961E-2, 7.57575757575757575758E-3,
               -4.16666666666666666667E-3, 3.96825396825396825397E-3,
               -8.33333333333333333333E-3, 8.33333333333333333333E-2)
_PSI_10 = 2.25175258906672110764


def _digamma(a):
    """digamma, PyTorch's algorithm (calc_digamma): reflection below 0,
    the recurrence up to 10, the asymptotic series there; 0 gives copysign(inf, -x), the
    negative integers nan."""
    x = np.array(a)  # (in the input's precision, as PyTorch's float and double versions)
    with np.errstate(all="ignore"):
        zero = x == 0
        neg_int = (x < 0) & (x == np.trunc(x))
        reflect = x < 0
        shift = np.where(reflect, math.pi / np.tan(math.pi * np.fmod(x, 1.0)), 0.0)
        x = np.where(reflect, 1.0 - x, x)
        acc = np.zeros_like(x)
        small = x < 10.0
        while small.any():
            acc = np.where(small, acc - 1.0 / x, acc)
            x = np.where(small, x + 1.0, x)
            small = x < 10.0
        z = 1.0 / (x * x)
        poly = np.zeros_like(x)
        for c in _PSI_SERIES:
            poly = poly * z + c
        y = np.where(x < 1.0e17, z * poly, 0.0)
        value = np.where(x == 10.0, acc + _PSI_10, acc + np.log(x) - 0.5 / x - y)
        out = np.where(reflect, value - shift, value)
        out = np.where(zero, np.copysign(np.inf, -np.asarray(a, dtype=np.float64)), out)
        out = np.where(neg_int, np.nan, out)
    return out


def digamma(input):
    """The logarithmic derivative of gamma (DigammaBackward0: grad * polygamma(1, x))."""
    return _unary_float("DigammaBackward0", input, _digamma,
                        lambda g, x: (g * polygamma(1, x),))


def _trigamma(a):
    """polygamma(1, x), PyTorch's algorithm (calc_trigamma)."""
    x = np.array(a)  # (in the input's precision, as PyTorch's float and double versions)
    with np.errstate(all="ignore"):
        reflect = x < 0.5
        s = np.sin(math.pi * x)
        result = np.where(reflect, -(math.pi * math.pi) / (s * s), 0.0)
        x = np.where(reflect, 1.0 - x, x)
        for _ in range(6):
            result = result + 1.0 / (x * x)
            x = x + 1.0
        ixx = 1.0 / (x * x)
        result = result + (1.0 + 1.0 / (2.0 * x) + ixx * (1.0 / 6 - ixx * (
            1.0 / 30 - ixx * (1.0 / 42)))) / x
        return np.where(reflect, -result, result)


# Cephes' zeta: the Euler-Maclaurin coefficients (2k)! / B_2k
_ZETA_A = (12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9,
           7.47242496e10, -2.950130727918164224e12, 1.1646782814350067249e14,
           -4.5979787224074726105e15, 1.8152105401943546773e17, -7.1661652561756670113e18)
_MACHEP = 1.11022302462515654042e-16


def _zeta(x, q):
    """The Hurwitz zeta function zeta(x, q) for an integer x > 1, PyTorch's algorithm (Cephes'
    Euler-Maclaurin summation), elementwise over the float64 array q."""
    q = np.array(q, dtype=np.float64)
    out = np.full(q.shape, np.nan)
    with np.errstate(all="ignore"):
        pole = (q <= 0) & (q == np.floor(q))
        out[pole] = np.inf
        idx = np.flatnonzero(~pole & ~np.isnan(q))
        qs = q.reshape(-1)[idx]
        s = qs ** -x
        a = qs.copy()
        b = np.zeros_like(qs)
        live = np.ones(qs.shape, dtype=bool)
        flat = out.reshape(-1)
        i = 0
        while True:  # the direct sum, until a > 9 after at least 9 terms (or it converged)
            go = live & ((i < 9) | (a <= 9.0))
            if not go.any():
                break
            i += 1
            a = np.where(go, a + 1.0, a)
            b = np.where(go, a ** -x, b)
            s = np.where(go, s + b, s)
            done = go & (-_MACHEP * s < b) & (b < _MACHEP * s)
            flat[idx[done]] = s[done]
            live &= ~done
        w = a
        s = s + b * w / (x - 1.0)
        s = s - 0.5 * b
        a = np.ones_like(s)
        k = 0.0
        for coeff in _ZETA_A:
            a = a * (x + k)
            b = b / w
            t = a * b / coeff
            s = s + t
            done = live & (np.abs(t / s) < _MACHEP)
            flat[idx[done]] = s[done]
            live &= ~done
            k += 1.0
            a = a * (x + k)
            b = b / w
            k += 1.0
        flat[idx[live]] = s[live]
    return out


def _polygamma(n, a):
    """polygamma(n, x), n >= 1, on float64 values, PyTorch's: trigamma for n = 1, else
    (-1)^(n+1) n! zeta(n + 1, x)."""
    if n == 1:
        return _trigamma(a)
    return (1.0 if n % 2 else -1.0) * math.exp(math.lgamma(n + 1.0)) * _zeta(n + 1.0, a)


def polygamma(n, input):
    """The n-th derivative of digamma (PolygammaBackward0: grad * polygamma(n + 1, x))."""
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    if n == 0:
        return digamma(input)
    return _unary_float("PolygammaBackward0", input, lambda a: _polygamma(n, a),
                        lambda g, x: (g * polygamma(n + 1, x),))


def _polygamma_method(self, n):
    return polygamma(n, self)


def lgamma_(input):
    return _inplace(input, lambda: _on_copy(lgamma, input), None)


def digamma_(input):
    return _inplace(input, lambda: _on_copy(digamma, input), None)


def polygamma_(input, n):
    return _inplace(input, lambda: _on_copy(_polygamma_method, input, n,
                                            name="PolygammaBackward1"), None)


def _logit_value(a, eps):
    if eps is not None:
        a = np.clip(a, eps, 1 - eps)
    return np.log(a / (1 - a))


def logit(input, eps=None):
    """log(x / (1 - x)), x clamped to [eps, 1 - eps] if eps is given (LogitBackward0: the
    gradient is 0 outside [eps, 1 - eps]; without eps, nan outside [0, 1])."""
    lo, hi = (None, None) if eps is None else (builtins.float(eps), 1 - builtins.float(eps))

    def backward(g, x):
        grad = g / (x * (1 - x))
        if lo is None:
            return (where((x < 0) | (x > 1), math.nan, grad),)
        return (where((x < lo) | (x > hi), 0.0, grad),)

    dt = _float_dtype(input)
    value = _computed(lambda a: _logit_value(a, lo), dt, _array(input, dt))
    return _pointwise("LogitBackward0", value, backward, input)


def logit_(input, eps=None):
    return _inplace(input, lambda: _on_copy(logit, input, eps), None)


def sinc(input):
    """sin(pi x) / (pi x), 1 at 0 (SincBackward0: 0 at 0)."""
    def value(a):
        p = a * a.dtype.type(math.pi)
        return np.where(a == 0, a.dtype.type(1), np.sin(p) / p)

    def backward(g, x):  # PyTorch's sinc_backward, in its order
        p = x * math.pi
        sq = x * x * math.pi
        return (where(sq == 0, 0.0, g * (p * p.cos() - p.sin()) / sq),)

    return _unary_float("SincBackward0", input, value, backward)


def sinc_(input):
    return _inplace(input, lambda: _on_copy(sinc, input), None)


# ---------------------------------------------------------------- binary math

def _binary_float(name, input, other, fn, backward, *, ints=True, op=""):
    """An elementwise op of a tensor and a tensor or number, computed in the result dtype
    (integers promote to the default dtype unless ``ints`` is False: PyTorch's error)."""
    dt = D.result_type((input, other))
    if not dt.is_floating_point:
        if not ints:
            raise NotImplementedError(f'"{op}_cpu" not implemented for \'{_SHORT[dt.name]}\'')
        dt = D.get_default_dtype()
    value = _computed(fn, dt, _array(input, dt), _array(other, dt))
    return _pointwise(name, value, backward, input, other)


def _xlogy_value(a, b):
    return np.where(np.isnan(b), np.nan, np.where(a == 0, 0.0, a * np.log(b))).astype(a.dtype)


def xlogy(input, other):
    """x * log(y), 0 where x == 0 unless y is nan (XlogyBackward0; XlogyBackward1 for a
    number x, XlogyBackward2 for a number y).  x's gradient is xlogy(grad, y), 0 where
    x == 0 and y <= 0; y's is grad * x / y."""
    name = ("XlogyBackward1" if not isinstance(input, Tensor) else
            "XlogyBackward2" if not isinstance(other, Tensor) else "XlogyBackward0")

    def backward(g, x, y):
        gx = gy = None
        if isinstance(x, Tensor):  # PyTorch's: 0 where x == 0 and y <= 0
            gx = where((x == 0) & (_tensor_of(y, g.dtype) <= 0), 0.0, xlogy(g, y))
        if isinstance(y, Tensor):
            gy = g * x / y
        return gx, gy

    return _binary_float(name, input, other, _xlogy_value, backward)


def xlogy_(input, other):
    return _inplace(input, lambda: _on_copy(xlogy, input, other), other)


def hypot(input, other):
    """sqrt(x^2 + y^2) without overflow (HypotBackward0: grad * x / result, grad * y /
    result)."""
    def backward(g, x, y):
        r = hypot(x, y)
        return g * x / r, g * y / r

    return _binary_float("HypotBackward0", input, other, np.hypot, backward, ints=False,
                         op="hypot")


def hypot_(input, other):
    return _inplace(input, lambda: _on_copy(hypot, input, other), other)


def logaddexp(input, other):
    """log(exp(x) + exp(y)) (LogaddexpBackward0: grad / (1 + exp(y - x)) and
    grad / (1 + exp(x - y)))."""
    def backward(g, x, y):
        return g / (1 + (y - x).exp()), g / (1 + (x - y).exp())

    return _binary_float("LogaddexpBackward0", input, other, np.logaddexp, backward,
                         ints=False, op="logaddexp")


def logaddexp2(input, other):
    """log2(2^x + 2^y) (Logaddexp2Backward0: grad / (1 + 2^(y - x)) and the same swapped)."""
    def backward(g, x, y):
        return g / (1 + (y - x).exp2()), g / (1 + (x - y).exp2())

    return _binary_float("Logaddexp2Backward0", input, other, np.logaddexp2, backward,
                         ints=False, op="logaddexp2")


def copysign(input, other):
    """|x| with the sign of y (CopysignBackward0, CopysignBackward1 with a number y: the
    gradient of x is grad * result / x, 0 where x == 0; y's is zero)."""
    name = "CopysignBackward0" if isinstance(other, Tensor) else "CopysignBackward1"

    def backward(g, x, y):
        r = copysign(x, y)
        ratio = r / x
        gx = g * where(x == 0, 0.0, ratio)
        return gx, zeros_like(y) if isinstance(y, Tensor) else None

    return _binary_float(name, input, other, np.copysign, backward)


def copysign_(input, other):
    return _inplace(input, lambda: _on_copy(copysign, input, other), other)


def nextafter(input, other):
    """The next float after input towards other (NextafterBackward0, as PyTorch's: the
    gradient passes to input unchanged, other's is zero)."""
    def backward(g, x, y):
        return g, zeros_like(y)

    return _binary_float("NextafterBackward0", input, other, np.nextafter, backward,
                         ints=False, op="nextafter")


def nextafter_(input, other):
    return _inplace(input, lambda: nextafter(input, other), other)


def _not_implemented(name):
    def backward(g, *inputs):
        raise RuntimeError(f"derivative for aten::{name} is not implemented")
    return backward


def heaviside(input, values):
    """0 where x < 0, values where x == 0, 1 where x > 0 (not differentiable: PyTorch's
    backward raises)."""
    if input.dtype is not values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    dt = D.result_type((input, values))

    def value(a, v):
        return np.where(a == 0, v, (a > 0).astype(dt.np))

    out = _computed(value, dt, _array(input, dt), _array(values, dt))
    return _pointwise("NotImplemented", out, _not_implemented("heaviside"), input, values)


def heaviside_(input, values):
    return _inplace(input, lambda: _on_copy(heaviside, input, values), values)


# ---------------------------------------------------------------- no gradient

def frexp(input):
    """(mantissa, exponent): input = mantissa * 2 ** exponent, |mantissa| in [0.5, 1)."""
    if not input.dtype.is_floating_point:
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    _untraced(input, "frexp()")
    m, e = np.frexp(_val(input))
    return _frexp_result(_result(_out(m, input.dtype), input.dtype),
                         _result(_out(e, D.int32), D.int32))


class _frexp_result(tuple):
    """PyTorch's torch.return_types.frexp: a (mantissa, exponent) pair with names."""

    def __new__(cls, mantissa, exponent):
        return tuple.__new__(cls, (mantissa, exponent))

    @property
    def mantissa(self):
        return self[0]

    @property
    def exponent(self):
        return self[1]

    def __repr__(self):
        return (f"torch.return_types.frexp(\nmantissa={self[0]!r},\nexponent={self[1]!r})")


def _predicate(x, fn, what):
    _untraced(x, what)
    return _result(_out(fn(_val(x)), D.bool_), D.bool_)


def isposinf(input):
    return _predicate(input, np.isposinf, "isposinf()")


def isneginf(input):
    return _predicate(input, np.isneginf, "isneginf()")


def isreal(input):
    return _predicate(input, lambda a: np.ones(a.shape, dtype=bool), "isreal()")


def signbit(input):
    return _predicate(input, np.signbit, "signbit()")


def _integral(x, name):
    if x.dtype.is_floating_point:
        raise NotImplementedError(f'"{name}_cpu" not implemented for \'{_SHORT[x.dtype.name]}\'')


def _bitwise(input, other, fn, name, logical):
    x = input if isinstance(input, Tensor) else tensor(input)
    y = other if isinstance(other, Tensor) else other
    _integral(x, name)
    if isinstance(y, Tensor):
        _integral(y, name)
    elif isinstance(y, builtins.float):
        raise NotImplementedError(f'"{name}_cpu" not implemented for \'Float\'')
    dt = D.result_type((x, y))
    if dt is D.bool_ and logical is not None and isinstance(y, Tensor):
        return logical(x, y)  # (the mask ops: recorded while tracing)
    _untraced(x, name)
    if isinstance(y, Tensor):
        _untraced(y, name)
    return _result(_out(fn(_array(x, dt), _array(y, dt)), dt), dt)


def bitwise_and(input, other):
    return _bitwise(input, other, np.bitwise_and, "bitwise_and", Tensor.__and__)


def bitwise_or(input, other):
    return _bitwise(input, other, np.bitwise_or, "bitwise_or", Tensor.__or__)


def bitwise_xor(input, other):
    return _bitwise(input, other, np.bitwise_xor, "bitwise_xor", None)


def bitwise_not(input):
    _integral(input, "bitwise_not")
    return ~input


def _bits(a):
    return a.dtype.itemsize * 8


def _left_shift(a, b):
    bits = _bits(a)
    wide = (b < 0) | (b >= bits)
    return np.where(wide, 0, np.left_shift(a, np.where(wide, 0, b))).astype(a.dtype)


def _right_shift(a, b):
    bits = _bits(a)
    wide = (b < 0) | (b >= bits)
    return np.right_shift(a, np.where(wide, bits - 1, b)).astype(a.dtype)


def bitwise_left_shift(input, other):
    return _bitwise(input, other, _left_shift, "lshift", None)


def bitwise_right_shift(input, other):
    return _bitwise(input, other, _right_shift, "rshift", None)


def _gcd(a, b):
    return np.gcd(a, b)


def _lcm(a, b):
    g = np.gcd(a, b)
    return np.where(g == 0, 0, np.abs(a // np.where(g == 0, 1, g) * b))


def gcd(input, other):
    return _bitwise(input, other, _gcd, "gcd", None)


def lcm(input, other):
    return _bitwise(input, other, _lcm, "lcm", None)


def _integer_inplace(input, other, fn):
    return _inplace(input, lambda: fn(input, other), other)


def bitwise_and_(input, other):
    return _integer_inplace(input, other, bitwise_and)


def bitwise_or_(input, other):
    return _integer_inplace(input, other, bitwise_or)


def bitwise_xor_(input, other):
    return _integer_inplace(input, other, bitwise_xor)


def bitwise_not_(input):
    return _inplace(input, lambda: bitwise_not(input), None)


def bitwise_left_shift_(input, other):
    return _integer_inplace(input, other, bitwise_left_shift)


def bitwise_right_shift_(input, other):
    return _integer_inplace(input, other, bitwise_right_shift)


def gcd_(input, other):
    return _integer_inplace(input, other, gcd)


def lcm_(input, other):
    return _integer_inplace(input, other, lcm)


def float_power_(input, exponent):
    if input.dtype is not D.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype {_SHORT[input.dtype.name]} "
                           "but the operation's result requires dtype Double")
    return _inplace(input, lambda: float_power(input, exponent), exponent)


def ldexp_(input, other):
    return _inplace(input, lambda: ldexp(input, other), other)


def deg2rad_(input):
    return _inplace(input, lambda: deg2rad(input), None)


def rad2deg_(input):
    return _inplace(input, lambda: rad2deg(input), None)


def frac_(input):
    return _inplace(input, lambda: frac(input), None)


def sgn_(input):
    return _inplace(input, lambda: sgn(input), None)


# ---------------------------------------------------------------- metadata

def is_signed(input) -> bool:
    return input.dtype.is_signed


def is_complex(input) -> bool:
    return False  # (tapegrad has no complex dtypes)


def is_conj(input) -> bool:
    return False


def is_neg(input) -> bool:
    return False


def is_nonzero(input) -> bool:
    n = input.numel()
    if n == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    _untraced(input, "is_nonzero()")
    return builtins.bool(_val(input).reshape(()) != 0)


def is_same_size(input, other) -> bool:
    return input.shape == other.shape


def conj(input):
    return input  # (real tensors: the tensor itself, as PyTorch)


def resolve_conj(input):
    return input


def resolve_neg(input):
    return input


def real(input):
    return input


def _nbytes(self) -> int:
    return self.numel() * self.element_size()


def _itemsize(self) -> int:
    return self.element_size()


# ---- Tensor methods: the function forms above, the tensor as ``self``
Tensor.multiply = Tensor.mul
Tensor.multiply_ = multiply_
Tensor.subtract = Tensor.sub
Tensor.subtract_ = subtract_
Tensor.negative = Tensor.neg
Tensor.negative_ = negative_
Tensor.positive = positive
Tensor.true_divide_ = true_divide_
Tensor.greater = greater
Tensor.greater_ = gt_
Tensor.greater_equal = greater_equal
Tensor.greater_equal_ = ge_
Tensor.less = less
Tensor.less_ = lt_
Tensor.less_equal = less_equal
Tensor.less_equal_ = le_
Tensor.not_equal = not_equal
Tensor.not_equal_ = ne_
Tensor.eq_ = eq_
Tensor.ne_ = ne_
Tensor.lt_ = lt_
Tensor.le_ = le_
Tensor.gt_ = gt_
Tensor.ge_ = ge_
Tensor.logical_and_ = logical_and_
Tensor.logical_or_ = logical_or_
Tensor.logical_xor_ = logical_xor_
Tensor.logical_not_ = logical_not_
Tensor.absolute = absolute
Tensor.absolute_ = abs_
Tensor.asinh = asinh
Tensor.acosh = acosh
Tensor.atanh = atanh
Tensor.arcsinh = asinh
Tensor.arccosh = acosh
Tensor.arctanh = atanh
Tensor.asinh_ = asinh_
Tensor.acosh_ = acosh_
Tensor.atanh_ = atanh_
Tensor.arcsinh_ = asinh_
Tensor.arccosh_ = acosh_
Tensor.arctanh_ = atanh_
Tensor.arccos_ = arccos_
Tensor.arcsin_ = arcsin_
Tensor.arctan_ = arctan_
Tensor.arctan2_ = atan2_
Tensor.atan2_ = atan2_
Tensor.fmod_ = fmod_
Tensor.remainder_ = remainder_
Tensor.cumsum_ = cumsum_
Tensor.cumprod_ = cumprod_
Tensor.tril_ = tril_
Tensor.triu_ = triu_
Tensor.nan_to_num_ = nan_to_num_
Tensor.fix = fix
Tensor.fix_ = fix_
Tensor.swapaxes = swapaxes
Tensor.swapdims = swapdims
Tensor.moveaxis = moveaxis
Tensor.movedim = movedim
Tensor.ravel = ravel
Tensor.sgn = sgn
Tensor.sgn_ = sgn_
Tensor.frac = frac
Tensor.frac_ = frac_
Tensor.deg2rad = deg2rad
Tensor.deg2rad_ = deg2rad_
Tensor.rad2deg = rad2deg
Tensor.rad2deg_ = rad2deg_
Tensor.logit = logit
Tensor.logit_ = logit_
Tensor.xlogy = xlogy
Tensor.xlogy_ = xlogy_
Tensor.hypot = hypot
Tensor.hypot_ = hypot_
Tensor.logaddexp = logaddexp
Tensor.logaddexp2 = logaddexp2
Tensor.sinc = sinc
Tensor.sinc_ = sinc_
Tensor.copysign = copysign
Tensor.copysign_ = copysign_
Tensor.heaviside = heaviside
Tensor.heaviside_ = heaviside_
Tensor.float_power = float_power
Tensor.float_power_ = float_power_
Tensor.erfc = erfc
Tensor.erfc_ = erfc_
Tensor.erfinv = erfinv
Tensor.erfinv_ = erfinv_
Tensor.lgamma = lgamma
Tensor.lgamma_ = lgamma_
Tensor.digamma = digamma
Tensor.digamma_ = digamma_
Tensor.polygamma = _polygamma_method
Tensor.polygamma_ = polygamma_
Tensor.ldexp = ldexp
Tensor.ldexp_ = ldexp_
Tensor.frexp = frexp
Tensor.nextafter = nextafter
Tensor.nextafter_ = nextafter_
Tensor.isposinf = isposinf
Tensor.isneginf = isneginf
Tensor.isreal = isreal
Tensor.signbit = signbit
Tensor.bitwise_and = bitwise_and
Tensor.bitwise_or = bitwise_or
Tensor.bitwise_xor = bitwise_xor
Tensor.bitwise_not = bitwise_not
Tensor.bitwise_and_ = bitwise_and_
Tensor.bitwise_or_ = bitwise_or_
Tensor.bitwise_xor_ = bitwise_xor_
Tensor.bitwise_not_ = bitwise_not_
Tensor.bitwise_left_shift = bitwise_left_shift
Tensor.bitwise_right_shift = bitwise_right_shift
Tensor.bitwise_left_shift_ = bitwise_left_shift_
Tensor.bitwise_right_shift_ = bitwise_right_shift_
Tensor.gcd = gcd
Tensor.gcd_ = gcd_
Tensor.lcm = lcm
Tensor.lcm_ = lcm_
Tensor.is_signed = is_signed
Tensor.is_complex = is_complex
Tensor.is_conj = is_conj
Tensor.is_neg = is_neg
Tensor.is_nonzero = is_nonzero
Tensor.is_same_size = is_same_size
Tensor.conj = conj
Tensor.resolve_conj = resolve_conj
Tensor.resolve_neg = resolve_neg
Tensor.real = property(real)
Tensor.nbytes = property(_nbytes)
Tensor.itemsize = property(_itemsize)
Tensor.__xor__ = bitwise_xor
Tensor.__rxor__ = bitwise_xor
Tensor.__rand__ = bitwise_and
Tensor.__lshift__ = bitwise_left_shift
Tensor.__rshift__ = bitwise_right_shift
Tensor.__iand__ = bitwise_and_
Tensor.__ior__ = bitwise_or_
Tensor.__ixor__ = bitwise_xor_
Tensor.__ilshift__ = bitwise_left_shift_
Tensor.__irshift__ = bitwise_right_shift_
