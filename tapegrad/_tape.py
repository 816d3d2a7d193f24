"""The tape: opcodes, their forward/backward rules, and the compiled sweep.

Record layout
-------------
A segment of tape is a structure of arrays with one row per record::

    op    int64    opcode (index into OPS)
    a, b  int64    record indices of the operands (-1: none)
    c     float64  a constant: scalar operand, exponent, scale
    val   float64  the output value when it has exactly one element
    n     int64    number of elements of the output
    off   int64    where the output lives in the bulk arena when n != 1
    aux   int64    start of this record's entry in the int aux table (-1: none)
    flags uint8    REACHED / FREED / MODIFIED / CAPTURE bits

Values of one element sit in ``val`` and their adjoints in ``adj`` (one per
record), so scalar code never touches the bulk arena.  Larger values are
copied, C-ordered and as float64, into ``bulk`` at record time; their adjoints
use the same offsets in ``badj``.  Every record holds what is needed to run
the op again at new input values (operands, constants, index maps), so a tape
is a program: ``sweep`` runs it backwards, a forward replay runs it forwards.

Index maps (aux table)
----------------------
Views, broadcasts, indexing and reductions all relate an output element to an
input element through one integer map, stored in the aux table either as a
strided map ``[ndim, base, shape..., strides...]`` (element i of the C-ordered
index space maps to ``base + sum(i_d * stride_d)``) or as an explicit one
``[-1, count, offsets...]``.  One gather kernel and one scatter-add kernel
serve them all, so undoing a broadcast (a stride of 0) is the same code as the
backward of slicing.

Adjoints
--------
No adjoint arena is ever zeroed as a whole: the first contribution to a record
zero-fills just that record's adjoint and sets REACHED; the sweep counts the
records reached but not yet processed and stops when none are left, so only
records reachable from the outputs are visited.  Identically-zero incoming
adjoints are skipped element by element, so ``0 * inf`` never becomes nan.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from llvmlite import ir as _llvm_ir
from numba import njit, typeof
from numba.core import config as _numba_config
from numba.core import types as _nbtypes
from numba.extending import intrinsic

# Every @njit in tapegrad is in this module and takes these options.  They sit
# here, not in _config, because Numba's cache is keyed on this file's source.
# cache=True: the interpreter takes 10-20 s to compile cold and well under a
# second to load from the on-disk cache.  fastmath stays off: NaN and inf must
# propagate.  nogil lets two threads sweep their own tapes at once.
# error_model="numpy": x / 0 gives inf/nan, as in PyTorch, not ZeroDivisionError.
NJIT = {"cache": os.environ.get("TAPEGRAD_NO_CACHE") != "1", "nogil": True, "fastmath": False,
        "error_model": "numpy"}
# Leaf kernels compile without Numba's reference counting (NRT).  With it, a compiled
# function increments and decrements a counter per array argument and per view it makes
# (atomic operations: ~20 ns per array here, ~200 ns per call of the big kernels), which
# was most of a trace's cost per record.  A leaf never allocates and never hands an array
# back to a caller that keeps it; what it calls inherits its flags.
NJIT_LEAF = {**NJIT, "_nrt": False}
# The sums of many terms (a broadcast's adjoint, sum(), a product's adjoint through a
# broadcast) go through _blocked: sixteen partial sums in a fixed order.  Added one after
# the other, m terms are m dependent additions (~0.9 ns each); as sixteen independent chains
# the CPU overlaps them (~0.14 ns per term at 4 096 terms).  Reassociated by LLVM (fastmath
# 'reassoc', as before) they were ~2x faster still at thousands of terms, but LLVM chose the
# order by the CPU's vector width: two kernels summing the same terms disagreed in the last
# bit on AVX-512 (an axpy record and the records it replaces), though not on AVX2.


def entry(kernel, args):
    """The compiled code of ``kernel`` (an @njit dispatcher) for the types of ``args``,
    compiled or loaded from the cache now if need be.  Calling it skips the dispatcher's
    matching of argument types: ~1 us less per call of a kernel of 13 arrays (the sweep,
    flush).  Its caller must pass arguments of these exact types every time (C-contiguous
    arrays of the same dtypes, ints, bools): it does not check them.  With NUMBA_DISABLE_JIT=1
    the kernel is the Python function itself."""
    if not hasattr(kernel, "compile"):
        return kernel
    return kernel.compile(tuple(typeof(a) for a in args))


# flags
REACHED = 1
FREED = 2
MODIFIED = 4
CAPTURE = 8
HOOK = 16  # a tensor hook runs (in Python) before this record's adjoint propagates

# kinds: how the sweep treats a record
(SOURCE, UNARY, BINARY, GATHER, REDUCE, NORM, MATMUL, SETITEM, FILL, COPY, CONCAT, MASK, EXTREME,
 PRODUCT, SCAN, SCATTERADD, CALLBACK, CBOUT, SOFTMAXES, AXPY) = range(20)

# what an op saves for backward (PyTorch's saved variables), as bits: sweeping
# a freed record that saves anything is an error; a saved input or output
# modified in place since recording is an error.
SAVE_IN, SAVE_OUT, SAVE_CONST = 1, 2, 4
IN, OUT, CON, IO = SAVE_IN, SAVE_OUT, SAVE_CONST, SAVE_IN | SAVE_OUT

# sweep status codes
DONE, ERR_FREED, ERR_MODIFIED, ERR_OPCODE, AT_CALLBACK, AT_HOOK, AT_OTHER = range(7)


class Op(NamedTuple):
    code: int
    name: str
    grad_fn: str  # PyTorch's node name, shown by grad_fn and next_functions
    kind: int
    saves: int  # SAVE_* bits
    np_fn: Callable | None = None  # eager forward on arrays
    py_fn: Callable | None = None  # eager forward on Python floats (0-d fast path)
    nconst: int = 0  # constants the eager forwards take after x: f(x, c, d)


# ---------------------------------------------------------------- opcodes
# Sources
LEAF = 0
CONST = 1
IMPORT = 2
DEAD = 3
# Unary elementwise
NEG = 4
EXP = 5
LOG = 6
SIN = 7
COS = 8
TANH = 9
SIGMOID = 10
RELU = 11
SQRT = 12
ABS = 13
RECIPROCAL = 14
ADDC = 15
SUBC = 16
RSUBC = 17
MULC = 18
DIVC = 19
POWC = 20
RPOWC = 21
CLONE = 22
VIEW = 23
# Binary elementwise (operands of one shape; broadcasting is a GATHER before)
ADD = 24
SUB = 25
MUL = 26
DIV = 27
POW = 28
# Gathers through an index map
SELECT = 29
SLICE = 30
UNSQUEEZE = 31
SQUEEZE = 32
PERMUTE = 33
TRANSPOSE = 34
EXPAND = 35
BROADCAST = 36
INDEX = 37
ASSTRIDED = 38
# Reductions through an index map
SUM = 39
SUMDIM = 40
MEAN = 41
MEANDIM = 42
NORM2 = 43
# Linear algebra
DOT = 44
MV = 45
MM = 46
VM = 47
# In-place writes
COPYSLICES = 48
FILL_ = 49
ZERO_ = 50
COPY_ = 51
REFRESH = 52  # hidden: a tensor's storage was written outside the graph
SQUEEZE0 = 53
SQUEEZE2 = 54
TBACK = 55
ALIAS = 56
UNSAFE_VIEW = 57
RESHAPE_ALIAS = 58
CAT = 59
STACK = 60
# more unary elementwise ops; a second constant d, where needed, is kept as float
# bits in the aux table (hardtanh/clamp bounds, softplus threshold)
LOG1P = 61
EXPM1 = 62
LOG2 = 63
LOG10 = 64
EXP2 = 65
TAN = 66
SINH = 67
COSH = 68
ASIN = 69
ACOS = 70
ATAN = 71
ERF = 72
RSQRT = 73
SIGN = 74
FLOOR = 75
CEIL = 76
ROUND = 77
TRUNC = 78
LEAKY_RELU = 79
ELU = 80
GELU = 81  # c: 0 exact, 1 tanh approximation
SILU = 82
SOFTPLUS = 83  # c: beta, d: threshold
HARDTANH = 84  # c: min, d: max
LOGSIGMOID = 85
CLAMP = 86  # c: min, d: max (+-inf when absent)
FMODC = 87
REMAINDERC = 88
MAXIMUM = 89
MINIMUM = 90
ATAN2 = 91
FMOD = 92
REMAINDER = 93
LERP = 94  # c: the weight
# MASK: c is the record of a 0/1 mask; out = where(mask, a, b) (b = -1: zeros)
WHERE = 95
TRIL = 96
TRIU = 97
# EXTREME: max/min over a map (aux) or everything (aux = -1); ties share the gradient
AMAX = 98
AMIN = 99
MAXALL = 100
MINALL = 101
# more gathers through explicit or strided maps
MAXDIM = 102
MINDIM = 103
GATHERX = 104
INDEX_SELECT = 105
MASKED_SELECT = 106
REPEAT = 107
ROLL = 108
FLIP = 109
SPLIT = 110
SPLIT_SIZES = 111
UNBIND = 112
DIAGONAL = 113
PROD = 114
PRODDIM = 115
CUMSUM = 116  # SCAN: aux = [outer, length, inner]
CUMPROD = 117
SCATTER = 118  # SETITEM kind: the map sends b's elements to positions of a
MASKED_FILL = 119
SCATTER_ADD = 120
SCATTER_VALUE = 127  # scatter with a number: ScatterBackward1
MASKED_FILL_T = 128  # masked_fill with a 0-d tensor: MaskedFillBackward1
# SOFTMAXES: along one dimension, aux = [outer, length, inner] (as SCAN)
SOFTMAX = 129
LOG_SOFTMAX = 130
BMM = 121  # MATMUL kind, aux = [m, k, n, batch]
FILLT = 122  # fill_ with a 0-d tensor: COPY kind, the value is b
INDEX_PUT = 123  # setitem with an advanced index
TOCOPY = 124
# a custom autograd.Function: PYFUNC (kind CALLBACK) holds aux = [k, input records...];
# each output is a PYFUNC_OUT (kind CBOUT) with a = the PYFUNC record, c = output index
PYFUNC = 125
PYFUNC_OUT = 126
# comparisons, recorded only while tracing (so a replay recomputes masks and guards);
# the output is 0.0/1.0 and the derivative zero.  CMPC: x vs the constant c, the comparison
# (CMP_LT...) in d; CMP: a vs b, the comparison in c
CMPC = 131
CMP = 132
CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_EQ, CMP_NE = range(6)
# made only by Trace.optimize from a MULC whose one consumer is an ADDC: y = x * c + d,
# rounded twice as the pair was (no fused multiply-add); the derivative g * c
MULADDC = 133
# made only by Trace.optimize from z + broadcast(s) * v (s one element, the broadcast and
# the product used once): y = z + s * v elementwise, a = z, b = s, c = v's record
AXPYS = 134
# made only by Trace.optimize from z + v * c / d (a product by a number, maybe then divided
# by one, used only there): a = z, b = v, c the multiplier, d (aux) the divisor, 1 for none
AXPYC = 135
# made only by Trace.optimize from a chain of AXPYS records, each the next one's z and used
# only there: y = z + s1 * v1 + ... + sn * vn, left to right; a = z, and the aux entry
# holds n, then s1, v1, ..., sn, vn (records)
AXPYN = 136
# made only by the eager sin and cos of float64 arrays that record (never in a trace): y =
# sin(x) (cos(x)) and its derivative cos(x) (-sin(x)), computed in the same pass (sin_cos_d),
# the derivative kept in the m values before the record's own (at off - m): the adjoint is
# g * d, with no trig in the sweep (for 20 ops on 256x256, sin's adjoint was ~1/5 of the step)
SINC = 137
COSC = 138


def _py_sigmoid(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _np_sigmoid(x):
    return np.reciprocal(1.0 + np.exp(-x))


def _np_relu(x):
    if x.dtype == np.float64 or x.dtype == np.float32:  # ~3x faster than np.where (np.maximum
        out = np.empty(x.shape, x.dtype)  # loses -0.0 on some CPUs)
        flat = out.reshape(-1)
        relu_into(x.ravel(), flat, flat)
        return out
    return np.where(x < 0, x.dtype.type(0), x)  # nan and -0.0 stay, as in PyTorch


def _np_erf(x):
    from scipy.special import erf
    return erf(x)


def _np_rsqrt(x):
    return np.reciprocal(np.sqrt(x))


def _py_sign(x):
    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)  # PyTorch: sign(nan) = 0


def _np_sign(x):
    return np.where(x > 0, 1, np.where(x < 0, -1, 0)).astype(x.dtype)


def _np_leaky_relu(x, c, d):
    return np.where(x > 0, x, x * x.dtype.type(c))


def _py_leaky_relu(x, c, d):
    return x if x > 0.0 else x * c


def _np_elu(x, c, d):
    return np.where(x > 0, x, x.dtype.type(c) * np.expm1(np.minimum(x, 0)))


def _py_elu(x, c, d):
    return x if x > 0.0 else c * math.expm1(x)


def _np_gelu(x, c, d):
    if c == 0.0:
        return 0.5 * x * (1.0 + _np_erf(x / x.dtype.type(math.sqrt(2.0))))
    k = x.dtype.type(math.sqrt(2.0 / math.pi))
    return 0.5 * x * (1.0 + np.tanh(k * (x + x.dtype.type(0.044715) * x * x * x)))


def _py_gelu(x, c, d):
    if c == 0.0:
        return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))
    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _np_silu(x, c=0.0, d=0.0):
    return x * _np_sigmoid(x)


def _py_silu(x, c=0.0, d=0.0):
    return x * _py_sigmoid(x)


def _np_softplus(x, c, d):
    bx = x * x.dtype.type(c)
    return np.where(bx > d, x, np.log1p(np.exp(np.minimum(bx, d))) / x.dtype.type(c))


def _py_softplus(x, c, d):
    return x if x * c > d else math.log1p(math.exp(c * x)) / c


def _np_clamp(x, c, d):
    return np.minimum(np.maximum(x, x.dtype.type(c)), x.dtype.type(d))


def _py_clamp(x, c, d):
    if x != x:
        return x
    return min(max(x, c), d)


def _np_logsigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def _py_logsigmoid(x):
    return min(x, 0.0) - math.log1p(math.exp(-abs(x)))


OPS: tuple[Op, ...] = (
    Op(LEAF, "leaf", "AccumulateGrad", SOURCE, 0),
    Op(CONST, "const", "", SOURCE, 0),
    Op(IMPORT, "import", "", SOURCE, 0),
    Op(DEAD, "dead", "", SOURCE, CON),
    Op(NEG, "neg", "NegBackward0", UNARY, 0, np.negative, float.__neg__),
    Op(EXP, "exp", "ExpBackward0", UNARY, OUT, np.exp, math.exp),
    Op(LOG, "log", "LogBackward0", UNARY, IN, np.log, math.log),
    Op(SIN, "sin", "SinBackward0", UNARY, IN, np.sin, math.sin),
    Op(COS, "cos", "CosBackward0", UNARY, IN, np.cos, math.cos),
    Op(TANH, "tanh", "TanhBackward0", UNARY, OUT, np.tanh, math.tanh),
    Op(SIGMOID, "sigmoid", "SigmoidBackward0", UNARY, OUT, _np_sigmoid, _py_sigmoid),
    Op(RELU, "relu", "ReluBackward0", UNARY, OUT, _np_relu,
       lambda x: 0.0 if x < 0.0 else x),  # nan and -0.0 stay, as in PyTorch
    Op(SQRT, "sqrt", "SqrtBackward0", UNARY, OUT, np.sqrt, math.sqrt),
    Op(ABS, "abs", "AbsBackward0", UNARY, IN, np.abs, abs),
    Op(RECIPROCAL, "reciprocal", "ReciprocalBackward0", UNARY, OUT, np.reciprocal,
       lambda x: 1.0 / x),
    Op(ADDC, "add", "AddBackward0", UNARY, 0),
    Op(SUBC, "sub", "SubBackward0", UNARY, 0),
    Op(RSUBC, "rsub", "RsubBackward1", UNARY, 0),
    Op(MULC, "mul", "MulBackward0", UNARY, CON),
    Op(DIVC, "div", "DivBackward0", UNARY, CON),
    Op(POWC, "pow", "PowBackward0", UNARY, IN),
    Op(RPOWC, "pow", "PowBackward2", UNARY, IO),
    Op(CLONE, "clone", "CloneBackward0", UNARY, 0),
    Op(VIEW, "view", "ViewBackward0", UNARY, 0),
    Op(ADD, "add", "AddBackward0", BINARY, 0),
    Op(SUB, "sub", "SubBackward0", BINARY, 0),
    Op(MUL, "mul", "MulBackward0", BINARY, IN),
    Op(DIV, "div", "DivBackward0", BINARY, IN),
    Op(POW, "pow", "PowBackward1", BINARY, IO),
    Op(SELECT, "select", "SelectBackward0", GATHER, 0),
    Op(SLICE, "slice", "SliceBackward0", GATHER, 0),
    Op(UNSQUEEZE, "unsqueeze", "UnsqueezeBackward0", UNARY, 0),
    Op(SQUEEZE, "squeeze", "SqueezeBackward1", UNARY, 0),
    Op(PERMUTE, "permute", "PermuteBackward0", GATHER, 0),
    Op(TRANSPOSE, "transpose", "TransposeBackward0", GATHER, 0),
    Op(EXPAND, "expand", "ExpandBackward0", GATHER, 0),
    Op(BROADCAST, "broadcast", "", GATHER, 0),  # hidden: operand broadcasting
    Op(INDEX, "index", "IndexBackward0", GATHER, CON),
    Op(ASSTRIDED, "as_strided", "AsStridedBackward0", GATHER, 0),
    Op(SUM, "sum", "SumBackward0", REDUCE, 0),
    Op(SUMDIM, "sum", "SumBackward1", REDUCE, 0),
    Op(MEAN, "mean", "MeanBackward0", REDUCE, 0),
    Op(MEANDIM, "mean", "MeanBackward1", REDUCE, 0),
    Op(NORM2, "norm", "LinalgVectorNormBackward0", NORM, IO),
    Op(DOT, "dot", "DotBackward0", MATMUL, IN),
    Op(MV, "mv", "MvBackward0", MATMUL, IN),
    Op(MM, "mm", "MmBackward0", MATMUL, IN),
    Op(VM, "matmul", "SqueezeBackward4", MATMUL, IN),
    Op(COPYSLICES, "setitem", "CopySlices", SETITEM, 0),
    Op(FILL_, "fill_", "FillBackward2", FILL, 0),
    Op(ZERO_, "zero_", "ZeroBackward0", FILL, 0),
    Op(COPY_, "copy_", "CopyBackwards", COPY, 0),
    Op(REFRESH, "refresh", "", UNARY, 0),
    Op(SQUEEZE0, "squeeze", "SqueezeBackward0", UNARY, 0),
    Op(SQUEEZE2, "squeeze", "SqueezeBackward2", UNARY, 0),
    Op(TBACK, "t", "TBackward0", GATHER, 0),
    Op(ALIAS, "alias", "AliasBackward0", UNARY, 0),
    Op(UNSAFE_VIEW, "reshape", "UnsafeViewBackward0", UNARY, 0),
    Op(RESHAPE_ALIAS, "reshape", "ReshapeAliasBackward0", UNARY, 0),
    # many operands: aux = [k, then per operand: record, its strided map into the output]
    Op(CAT, "cat", "CatBackward0", CONCAT, 0),
    Op(STACK, "stack", "StackBackward0", CONCAT, 0),
    Op(LOG1P, "log1p", "Log1PBackward0", UNARY, IN, np.log1p, math.log1p),
    Op(EXPM1, "expm1", "Expm1Backward0", UNARY, OUT, np.expm1, math.expm1),
    Op(LOG2, "log2", "Log2Backward0", UNARY, IN, np.log2, math.log2),
    Op(LOG10, "log10", "Log10Backward0", UNARY, IN, np.log10, math.log10),
    Op(EXP2, "exp2", "Exp2Backward0", UNARY, OUT, np.exp2, lambda x: 2.0**x),
    Op(TAN, "tan", "TanBackward0", UNARY, OUT, np.tan, math.tan),
    Op(SINH, "sinh", "SinhBackward0", UNARY, IN, np.sinh, math.sinh),
    Op(COSH, "cosh", "CoshBackward0", UNARY, IN, np.cosh, math.cosh),
    Op(ASIN, "asin", "AsinBackward0", UNARY, IN, np.arcsin, math.asin),
    Op(ACOS, "acos", "AcosBackward0", UNARY, IN, np.arccos, math.acos),
    Op(ATAN, "atan", "AtanBackward0", UNARY, IN, np.arctan, math.atan),
    Op(ERF, "erf", "ErfBackward0", UNARY, IN, _np_erf, math.erf),
    Op(RSQRT, "rsqrt", "RsqrtBackward0", UNARY, OUT, _np_rsqrt, lambda x: 1.0 / math.sqrt(x)),
    Op(SIGN, "sign", "SignBackward0", UNARY, 0, _np_sign, _py_sign),
    # NumPy's scalar forms: math's return ints and lose the sign of -0.0
    Op(FLOOR, "floor", "FloorBackward0", UNARY, 0, np.floor, lambda x: float(np.floor(x))),
    Op(CEIL, "ceil", "CeilBackward0", UNARY, 0, np.ceil, lambda x: float(np.ceil(x))),
    Op(ROUND, "round", "RoundBackward0", UNARY, 0, np.round, lambda x: float(np.round(x))),
    Op(TRUNC, "trunc", "TruncBackward0", UNARY, 0, np.trunc, lambda x: float(np.trunc(x))),
    Op(LEAKY_RELU, "leaky_relu", "LeakyReluBackward0", UNARY, IN, _np_leaky_relu,
       _py_leaky_relu, 1),
    Op(ELU, "elu", "EluBackward0", UNARY, IN, _np_elu, _py_elu, 1),
    Op(GELU, "gelu", "GeluBackward0", UNARY, IN, _np_gelu, _py_gelu, 1),
    Op(SILU, "silu", "SiluBackward0", UNARY, IN, _np_silu, _py_silu),
    Op(SOFTPLUS, "softplus", "SoftplusBackward0", UNARY, IN, _np_softplus, _py_softplus, 2),
    Op(HARDTANH, "hardtanh", "HardtanhBackward0", UNARY, IN, _np_clamp, _py_clamp, 2),
    Op(LOGSIGMOID, "logsigmoid", "LogSigmoidBackward0", UNARY, IN, _np_logsigmoid,
       _py_logsigmoid),
    Op(CLAMP, "clamp", "ClampBackward1", UNARY, IN, _np_clamp, _py_clamp, 2),
    Op(FMODC, "fmod", "FmodBackward0", UNARY, 0),
    Op(REMAINDERC, "remainder", "RemainderBackward0", UNARY, 0),
    Op(MAXIMUM, "maximum", "MaximumBackward0", BINARY, IN),
    Op(MINIMUM, "minimum", "MinimumBackward0", BINARY, IN),
    Op(ATAN2, "atan2", "Atan2Backward0", BINARY, IN),
    Op(FMOD, "fmod", "FmodBackward1", BINARY, IN),
    Op(REMAINDER, "remainder", "RemainderBackward1", BINARY, IN),
    Op(LERP, "lerp", "LerpBackward0", BINARY, 0),
    Op(WHERE, "where", "WhereBackward0", MASK, CON),
    Op(TRIL, "tril", "TrilBackward0", MASK, 0),
    Op(TRIU, "triu", "TriuBackward0", MASK, 0),
    Op(AMAX, "amax", "AmaxBackward0", EXTREME, IO),
    Op(AMIN, "amin", "AminBackward0", EXTREME, IO),
    Op(MAXALL, "max", "MaxBackward1", EXTREME, IO),
    Op(MINALL, "min", "MinBackward1", EXTREME, IO),
    Op(MAXDIM, "max", "MaxBackward0", GATHER, CON),
    Op(MINDIM, "min", "MinBackward0", GATHER, CON),
    Op(GATHERX, "gather", "GatherBackward0", GATHER, CON),
    Op(INDEX_SELECT, "index_select", "IndexSelectBackward0", GATHER, CON),
    Op(MASKED_SELECT, "masked_select", "MaskedSelectBackward0", GATHER, CON),
    Op(REPEAT, "repeat", "RepeatBackward0", GATHER, 0),
    Op(ROLL, "roll", "RollBackward0", GATHER, 0),
    Op(FLIP, "flip", "FlipBackward0", GATHER, 0),
    Op(SPLIT, "split", "SplitBackward0", GATHER, 0),
    Op(SPLIT_SIZES, "split", "SplitWithSizesBackward0", GATHER, 0),
    Op(UNBIND, "unbind", "UnbindBackward0", GATHER, 0),
    Op(DIAGONAL, "diagonal", "DiagonalBackward0", GATHER, 0),
    Op(PROD, "prod", "ProdBackward0", PRODUCT, IO),
    Op(PRODDIM, "prod", "ProdBackward1", PRODUCT, IO),
    Op(CUMSUM, "cumsum", "CumsumBackward0", SCAN, 0),
    Op(CUMPROD, "cumprod", "CumprodBackward0", SCAN, IO),
    Op(SCATTER, "scatter", "ScatterBackward0", SETITEM, CON),
    Op(MASKED_FILL, "masked_fill", "MaskedFillBackward0", SETITEM, CON),
    Op(SCATTER_ADD, "scatter_add", "ScatterAddBackward0", SCATTERADD, CON),
    Op(BMM, "bmm", "BmmBackward0", MATMUL, IN),
    Op(FILLT, "fill_", "FillBackward3", COPY, 0),
    Op(INDEX_PUT, "index_put_", "IndexPutBackward0", SETITEM, CON),
    Op(TOCOPY, "to", "ToCopyBackward0", UNARY, 0),
    Op(PYFUNC, "function", "", CALLBACK, CON),
    Op(PYFUNC_OUT, "function", "", CBOUT, 0),
    Op(SCATTER_VALUE, "scatter", "ScatterBackward1", SETITEM, CON),
    Op(MASKED_FILL_T, "masked_fill", "MaskedFillBackward1", SETITEM, CON),
    Op(SOFTMAX, "softmax", "SoftmaxBackward0", SOFTMAXES, OUT),
    Op(LOG_SOFTMAX, "log_softmax", "LogSoftmaxBackward0", SOFTMAXES, OUT),
    Op(CMPC, "compare", "", UNARY, 0),
    Op(CMP, "compare", "", BINARY, 0),
    Op(MULADDC, "muladd", "", UNARY, 0),
    Op(AXPYS, "axpy", "", AXPY, 0),
    Op(AXPYC, "axpy", "", AXPY, 0),
    Op(AXPYN, "axpy", "", AXPY, 0),
    Op(SINC, "sin", "SinBackward0", UNARY, IN, np.sin, math.sin),
    Op(COSC, "cos", "CosBackward0", UNARY, IN, np.cos, math.cos),
)

KIND = np.array([o.kind for o in OPS], dtype=np.int64)
SAVES = np.array([o.saves for o in OPS], dtype=np.int64)
# The ops that read no operand's value, in any sweep (reverse, create_graph, forward mode): a
# deferred value (Segment.defer) stays uncopied while only these consume it.  Every other op
# counts as reading every operand (READS), and one whose operands are not its a and b fields
# (READS_AUX: a concatenation's are in aux) as reading every deferred value of its segment.
_READ_NOTHING = (NEG, ADDC, SUBC, RSUBC, MULC, DIVC, CLONE, VIEW, ADD, SUB, SUM, SUMDIM, MEAN,
                 MEANDIM, EXP, TANH, SIGMOID, RELU, SQRT, RECIPROCAL, EXPM1, EXP2, TAN, SELECT,
                 SLICE, UNSQUEEZE, SQUEEZE, SQUEEZE0, SQUEEZE2, PERMUTE, TRANSPOSE, TBACK, EXPAND,
                 ALIAS, UNSAFE_VIEW, RESHAPE_ALIAS, CAT, STACK)
READS = np.ones(len(OPS), dtype=np.bool_)
READS[list(_READ_NOTHING)] = False
READS[KIND == SOURCE] = False  # (leaves, constants: no operands)
READS_AUX = READS & ~np.isin(KIND, (UNARY, BINARY, MATMUL, GATHER, REDUCE, NORM))
SAVES_OUT = tuple(bool(o.saves & SAVE_OUT) for o in OPS)  # for Python
# The kinds the core sweep leaves to the full one (see _make_sweep): compiling them costs
# most of the sweep's cold compile time, and scalar or elementwise code records none.
OTHER = np.array([k in (NORM, MATMUL, SETITEM, FILL, COPY, MASK, EXTREME, PRODUCT, SCAN,
                        SCATTERADD, SOFTMAXES, AXPY) for k in range(AXPY + 1)])
IS_UNARY = tuple(o.kind == UNARY for o in OPS)  # for Python: no NumPy scalar per record
NAMES = tuple(o.name for o in OPS)
GRAD_FN = tuple(o.grad_fn for o in OPS)


def check_tables() -> None:
    """The opcode constants, the table rows and the derived arrays must agree."""
    for i, o in enumerate(OPS):
        if o.code != i:
            raise AssertionError(f"OPS[{i}] holds opcode {o.code} ({o.name})")
        if o.kind == UNARY and o.code not in _SCALAR_OPERAND_OPS and (
                o.np_fn is None or o.py_fn is None):
            raise AssertionError(f"{o.name} has no eager forward")
    if len(KIND) != len(OPS) or len(SAVES) != len(OPS):
        raise AssertionError("derived tables out of date")


_SCALAR_OPERAND_OPS = frozenset((ADDC, SUBC, RSUBC, MULC, DIVC, POWC, RPOWC, CLONE, VIEW,
                                 ADD, SUB, MUL, DIV, POW, SQUEEZE, UNSQUEEZE, REFRESH,
                                 SQUEEZE0, SQUEEZE2, ALIAS, UNSAFE_VIEW, RESHAPE_ALIAS,
                                 FMODC, REMAINDERC, MAXIMUM, MINIMUM, ATAN2, FMOD, REMAINDER,
                                 LERP, TOCOPY, CMPC, CMP, MULADDC))
check_tables()

# Loops over the arenas index with unsigned offsets: a signed index costs a test for
# negative (wrap-around) indices per element, and keeps LLVM from vectorizing.
_u = np.uint64

# ------------------------------------------------ elementwise rules, per op
# Each op is a pair: forward y = f(x, c) and the adjoint contribution to x.
# g is the incoming adjoint, y the op's own (saved) output.

_j = njit(inline="always", **NJIT)


_SQRT_2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_2_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


@_j
def remainder(x, c):
    """PyTorch's remainder of floats: fmod, then the divisor's sign (x - floor(x / c) * c
    rounds 1.0 % 0.1 to 0.0 where fmod gives 0.09999999999999995); nan where fmod is.  The
    kernels' rules inline it; a 0-d float64 remainder with a number calls it from Python."""
    m = np.fmod(x, c)
    if m != 0.0 and (c < 0.0) != (m < 0.0):
        m += c
    return m


@_j
def _unary_f(op, x, c, d):
    if op == MULADDC:
        return x * c + d
    if op >= LOG1P:
        return _unary_f2(op, x, c, d)
    if op == ADDC:  # the most common first: scalar programs are mostly x * c and x + c
        return x + c
    if op == MULC:
        return x * c
    if op == SUBC:
        return x - c
    if op == RSUBC:
        return c - x
    if op == DIVC:
        return x / c
    if op == NEG:
        return -x
    if op == EXP:
        return math.exp(x)
    if op == LOG:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    if op == SIN:
        return math.sin(x)
    if op == COS:
        return math.cos(x)
    if op == TANH:
        return math.tanh(x)
    if op == SIGMOID:
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0.0 else math.exp(x) / (1.0 + math.exp(x))
    if op == RELU:
        return 0.0 if x < 0.0 else x  # nan and -0.0 stay
    if op == SQRT:
        return math.sqrt(x) if x >= 0.0 else math.nan
    if op == ABS:
        return abs(x)
    if op == RECIPROCAL:
        return 1.0 / x if x != 0.0 else math.copysign(math.inf, x)
    if op == POWC:
        return x**c
    if op == RPOWC:
        return c**x
    return x  # identities: CLONE, VIEW, SQUEEZE*, UNSQUEEZE, REFRESH, ALIAS, UNSAFE_VIEW


@njit(**NJIT)  # not inlined, as _unary_b2
def _unary_f2(op, x, c, d):
    if op == SINC:  # (eager arrays only, as SIN: the rules cover every unary opcode)
        return math.sin(x)
    if op == COSC:
        return math.cos(x)
    if op == LOG1P:
        return math.log1p(x) if x > -1.0 else (-math.inf if x == -1.0 else math.nan)
    if op == EXPM1:
        return math.expm1(x)
    if op == LOG2:
        return math.log2(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    if op == LOG10:
        return math.log10(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    if op == EXP2:
        return 2.0**x
    if op == TAN:
        return math.tan(x)
    if op == SINH:
        return math.sinh(x)
    if op == COSH:
        return math.cosh(x)
    if op == ASIN:
        return math.asin(x) if -1.0 <= x <= 1.0 else math.nan
    if op == ACOS:
        return math.acos(x) if -1.0 <= x <= 1.0 else math.nan
    if op == ATAN:
        return math.atan(x)
    if op == ERF:
        return math.erf(x)
    if op == RSQRT:
        if x == 0.0:
            return math.copysign(math.inf, x)
        return 1.0 / math.sqrt(x) if x > 0.0 else math.nan
    if op == SIGN:
        return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)
    if op == FLOOR:
        return np.floor(x)
    if op == CEIL:
        return np.ceil(x)
    if op == ROUND:
        return np.round(x)  # half to even, as PyTorch
    if op == TRUNC:
        return np.trunc(x)
    if op == LEAKY_RELU:
        return x if x > 0.0 else x * c
    if op == ELU:
        return x if x > 0.0 else c * math.expm1(x)
    if op == GELU:
        if c == 0.0:
            return 0.5 * x * (1.0 + math.erf(x / _SQRT_2))
        return 0.5 * x * (1.0 + math.tanh(_SQRT_2_PI * (x + 0.044715 * x * x * x)))
    if op == SILU:
        return x / (1.0 + math.exp(-x))
    if op == SOFTPLUS:
        return x if x * c > d else math.log1p(math.exp(c * x)) / c
    if op == HARDTANH:
        return c if x < c else (d if x > d else x)
    if op == LOGSIGMOID:
        return min(x, 0.0) - math.log1p(math.exp(-abs(x)))
    if op == FMODC:
        return np.fmod(x, c)  # Numba has no math.fmod
    if op == REMAINDERC:
        return remainder(x, c)
    if op == CLAMP:  # min(max(x, lo), hi), as PyTorch: nan stays nan; lo > hi gives hi
        return x if x != x else min(max(x, c), d)
    if op == CMPC:
        return _compare(x, c, d)
    return x  # identities (TOCOPY...)


@njit(**NJIT)  # not inlined: the less common ops compile once, not at every call site
def _unary_b2(op, g, x, y, c, d):
    if op == SINC:
        return g * math.cos(x)
    if op == COSC:
        return -g * math.sin(x)
    if op == LOG1P:
        return g / (1.0 + x)
    if op == EXPM1:
        return g * (y + 1.0)
    if op == LOG2:
        return g / (x * _LN2)
    if op == LOG10:
        return g / (x * _LN10)
    if op == EXP2:
        return g * y * _LN2
    if op == TAN:
        return g * (1.0 + y * y)
    if op == SINH:
        return g * math.cosh(x)
    if op == COSH:
        return g * math.sinh(x)
    if op == ASIN:
        return g / math.sqrt(1.0 - x * x)
    if op == ACOS:
        return -g / math.sqrt(1.0 - x * x)
    if op == ATAN:
        return g / (1.0 + x * x)
    if op == ERF:
        return g * _2_SQRT_PI * math.exp(-x * x)
    if op == RSQRT:
        return -0.5 * g * y * y * y
    if op <= TRUNC:  # SIGN, FLOOR, CEIL, ROUND, TRUNC: zero almost everywhere
        return 0.0
    if op == LEAKY_RELU:
        return g if x > 0.0 else g * c
    if op == ELU:
        return g if x > 0.0 else g * c * math.exp(x)
    if op == GELU:
        if c == 0.0:
            cdf = 0.5 * (1.0 + math.erf(x / _SQRT_2))
            return g * (cdf + x * _INV_SQRT_2PI * math.exp(-0.5 * x * x))
        inner = _SQRT_2_PI * (x + 0.044715 * x * x * x)
        t = math.tanh(inner)
        return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_PI *
                    (1.0 + 3.0 * 0.044715 * x * x))
    if op == SILU:
        s = 1.0 / (1.0 + math.exp(-x))
        return g * s * (1.0 + x * (1.0 - s))
    if op == SOFTPLUS:
        if x * c > d:
            return g
        z = math.exp(x * c)
        return g * z / (z + 1.0)
    if op == HARDTANH:
        return 0.0 if (x <= c or x >= d) else g
    if op == LOGSIGMOID:
        return g / (1.0 + math.exp(x))  # g * sigmoid(-x); exp overflow gives 0, as it should
    if op == CLAMP:  # the gradient passes where min <= x <= max
        return g if (c <= x <= d) else 0.0
    if op == TOCOPY and c == 1.0:  # a float64 -> float32 cast: PyTorch's gradient is float32
        return float(np.float32(g))
    if op == CMPC:
        return 0.0
    return g  # FMODC, REMAINDERC and the identities


@_j
def _unary_b(op, g, x, y, c, d):
    if op == MULC or op == MULADDC:  # the most common first
        return g * c
    if op == ADDC or op == SUBC:
        return g
    if op >= LOG1P:
        return _unary_b2(op, g, x, y, c, d)
    if op == NEG:
        return -g
    if op == EXP:
        return g * y
    if op == LOG:
        return g / x
    if op == SIN:
        return g * math.cos(x)
    if op == COS:
        return -g * math.sin(x)
    if op == TANH:
        return g * (1.0 - y * y)
    if op == SIGMOID:
        return g * y * (1.0 - y)
    if op == RELU:
        return 0.0 if y <= 0.0 else g  # relu'(0) = 0, and nan passes g on, as PyTorch
    if op == SQRT:
        return g / (2.0 * y)
    if op == ABS:
        return g * (1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0))  # abs'(0) = 0
    if op == RECIPROCAL:
        return -g * y * y
    if op == RSUBC:
        return -g
    if op == MULC:
        return g * c
    if op == DIVC:
        return g / c
    if op == POWC:
        if c == 0.0:
            return 0.0
        return g * c * x ** (c - 1.0)
    if op == RPOWC:
        # PyTorch: grad * result * log(base), and 0 where base == 0 and exponent >= 0
        if c == 0.0 and x >= 0.0:
            return 0.0
        return g * y * math.log(c)
    return g  # ADDC, SUBC and the identities


@_j
def _compare(x, z, how):
    if how == CMP_LT:
        r = x < z
    elif how == CMP_LE:
        r = x <= z
    elif how == CMP_GT:
        r = x > z
    elif how == CMP_GE:
        r = x >= z
    elif how == CMP_EQ:
        r = x == z
    else:
        r = x != z
    return 1.0 if r else 0.0


@_j
def _binary_f(op, x, z, c):
    if op == ADD:  # the arithmetic first
        return x + z
    if op == MUL:
        return x * z
    if op == SUB:
        return x - z
    if op == DIV:
        return x / z
    if op == CMP:
        return _compare(x, z, c)
    if op == MAXIMUM:
        return x if x > z or x != x else z
    if op == MINIMUM:
        return x if x < z or x != x else z
    if op == ATAN2:
        return math.atan2(x, z)
    if op == FMOD:
        return np.fmod(x, z)  # Numba has no math.fmod
    if op == REMAINDER:
        return remainder(x, z)
    if op == LERP:
        return x + c * (z - x)
    return x**z  # POW


@_j
def _binary_ba(op, g, x, z, y, c):
    """Adjoint contribution to the first operand."""
    if op == ADD or op == SUB:  # the arithmetic first
        return g
    if op == MUL:
        return g * z
    if op == MAXIMUM:  # ties share; a nan gives both operands g: PyTorch's masks
        return 0.0 if x < z else (0.5 * g if x == z else g)
    if op == MINIMUM:
        return 0.0 if x > z else (0.5 * g if x == z else g)
    if op == ATAN2:
        return g * z / (x * x + z * z)
    if op == LERP:
        return g * (1.0 - c)
    if op == MUL:
        return g * z
    if op == DIV:
        return g / z
    if op == POW:
        if z == 0.0:
            return 0.0
        return g * z * x ** (z - 1.0)
    if op == CMP:
        return 0.0
    return g  # ADD, SUB


@_j
def _binary_bb(op, g, x, z, y, c):
    """Adjoint contribution to the second operand."""
    if op == ADD:  # the arithmetic first
        return g
    if op == MUL:
        return g * x
    if op == SUB:
        return -g
    if op == MAXIMUM:
        return 0.0 if z < x else (0.5 * g if x == z else g)
    if op == MINIMUM:
        return 0.0 if z > x else (0.5 * g if x == z else g)
    if op == ATAN2:
        return -g * x / (x * x + z * z)
    if op == FMOD:
        return -g * math.trunc(x / z)
    if op == REMAINDER:
        return -g * math.floor(x / z)
    if op == LERP:
        return g * c
    if op == SUB:
        return -g
    if op == MUL:
        return g * x
    if op == DIV:
        return -g * x / (z * z)
    if op == POW:
        # PyTorch masks the base == 0, exponent >= 0 case to 0
        if x == 0.0 and z >= 0.0:
            return 0.0
        return g * y * math.log(x)
    if op == CMP:
        return 0.0
    return g  # ADD


# ------------------------------------------------ elementwise rules over arrays
# The commonest ops get a loop of their own: one opcode test per record rather than per
# element, and a loop body the compiler can vectorize.  Zero incoming adjoints still
# contribute nothing (0 * inf stays out), as in the scalar rules; the rest go through them.


@_j
def _put(badj, k, v, acc):
    """badj[k] += v, or (acc False: badj[k] not yet written) badj[k] = 0.0 + v, which is what
    a zero fill and += would leave: one pass over the adjoint instead of two."""
    if acc:
        badj[k] += v
    else:
        badj[k] = 0.0 + v


@njit(**NJIT_LEAF)
def _unary_rules_add(o, badj, bulk, gu, xu, yu, mu, c, d):
    """The unary ops without a loop of their own, over arrays, through the scalar rules:
    badj[xu + k] += the contribution of badj[gu + k].  Both _adjoint_loops pairs call it (a
    target reached first is zero-filled before), so these rules compile once.  The commonest
    have a loop here, their rule written as _unary_b's; the others call the rules (compiled
    for the sweep): inlined into this loop, they were ~0.9 s of the first backward's cold
    compile."""
    if o == LOG:
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                badj[xu + k] += gk / bulk[xu + k]
    elif o == SQRT:
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                badj[xu + k] += gk / (2.0 * bulk[yu + k])
    elif o == ABS:
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                x = bulk[xu + k]
                badj[xu + k] += gk * (1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0))
    elif o == RECIPROCAL:
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                y = bulk[yu + k]
                badj[xu + k] += -gk * y * y
    else:
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                badj[xu + k] += _unary_b_call(o, gk, bulk[xu + k], bulk[yu + k], c, d)


@njit(**NJIT_LEAF)
def _binary_rules_add(o, second, badj, bulk, gu, xu, zu, yu, tu, mu, c):
    """As _unary_rules_add, for an operand (at tu) of the binary ops without a loop: the
    divisor's, maximum's and minimum's written as _binary_ba's and _binary_bb's."""
    if o == DIV and second:
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                z = bulk[zu + k]
                badj[tu + k] += -gk * bulk[xu + k] / (z * z)
    elif o == MAXIMUM or o == MINIMUM:
        mx = o == MAXIMUM
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                x, z = bulk[xu + k], bulk[zu + k]
                if second:
                    x, z = z, x  # (the rule of the second operand is the first's, swapped)
                lose = x < z if mx else x > z
                badj[tu + k] += 0.0 if lose else (0.5 * gk if x == z else gk)
    else:
        for k in range(mu):
            gk = badj[gu + k]
            if gk != 0.0:
                x, z, y = bulk[xu + k], bulk[zu + k], bulk[yu + k]
                badj[tu + k] += _binary_bb_call(o, gk, x, z, y, c) if second else \
                    _binary_ba_call(o, gk, x, z, y, c)


def _adjoint_loops(acc):
    """The elementwise adjoint loops over arrays, adding to their target (``acc``) or, for a
    target reached there first, writing it (no zero fill before).  ``acc`` is a constant of
    each compiled pair (a closure variable), so neither has a branch in its loops."""
    @njit(**NJIT_LEAF)
    def unary(o, badj, bulk, gi, xi, yi, m, c, d):
        """Adjoints of the operand of a unary record over arrays: badj[xi + k] += the
        contribution of badj[gi + k] (values: operand bulk[xi + k], output bulk[yi + k])."""
        gu, xu, yu, mu = _u(gi), _u(xi), _u(yi), _u(m)
        if o == MULC:
            for k in range(mu):
                gk = badj[gu + k]
                _put(badj, xu + k, gk * c if gk != 0.0 else 0.0, acc)
        elif o == ADDC or o == SUBC or o == CLONE or o == VIEW or o == UNSAFE_VIEW:
            for k in range(mu):
                _put(badj, xu + k, badj[gu + k], acc)
        elif o == NEG or o == RSUBC:
            for k in range(mu):
                _put(badj, xu + k, -badj[gu + k], acc)
        elif o == DIVC:
            for k in range(mu):
                gk = badj[gu + k]
                _put(badj, xu + k, gk / c if gk != 0.0 else 0.0, acc)
        elif o == TANH:
            for k in range(mu):
                gk = badj[gu + k]
                yk = bulk[yu + k]
                _put(badj, xu + k, gk * (1.0 - yk * yk) if gk != 0.0 else 0.0, acc)
        elif o == EXP:
            for k in range(mu):
                gk = badj[gu + k]
                _put(badj, xu + k, gk * bulk[yu + k] if gk != 0.0 else 0.0, acc)
        elif o == SIGMOID:
            for k in range(mu):
                gk = badj[gu + k]
                yk = bulk[yu + k]
                _put(badj, xu + k, gk * yk * (1.0 - yk) if gk != 0.0 else 0.0, acc)
        elif o == RELU:
            for k in range(mu):
                _put(badj, xu + k, 0.0 if bulk[yu + k] <= 0.0 else badj[gu + k], acc)
        elif o == POWC and c == 2.0:  # x ** 2: g * 2 * x ** 1.0, and x ** 1.0 is x
            for k in range(mu):
                gk = badj[gu + k]
                _put(badj, xu + k, gk * c * bulk[xu + k] if gk != 0.0 else 0.0, acc)
        elif o == SINC or o == COSC:  # the derivative, saved before the output
            du = yu - mu
            for k in range(mu):
                gk = badj[gu + k]
                _put(badj, xu + k, gk * bulk[du + k] if gk != 0.0 else 0.0, acc)
        elif (o == SIN or o == COS) and _trig_in_range(bulk, xu, mu):
            if not acc:
                for k in range(mu):
                    badj[xu + k] = 0.0
            _trig_adjoints(o, badj, bulk, gu, xu, mu)
        else:
            if not acc:
                for k in range(mu):
                    badj[xu + k] = 0.0
            _unary_rules_add(o, badj, bulk, gu, xu, yu, mu, c, d)


    @njit(**NJIT_LEAF)
    def binary(o, second, badj, bulk, gi, xi, zi, yi, m, c):
        """Adjoints of the first operand (second False) or the second of a binary record over
        arrays, as _unary_adjoints; the target is at xi or zi."""
        gu, xu, zu, yu, mu = _u(gi), _u(xi), _u(zi), _u(yi), _u(m)
        t = zi if second else xi
        tu = _u(t)
        if o == ADD or (o == SUB and not second):
            for k in range(mu):
                _put(badj, tu + k, badj[gu + k], acc)
        elif o == SUB:
            for k in range(mu):
                _put(badj, tu + k, -badj[gu + k], acc)
        elif o == MUL:
            wu = _u(xi if second else zi)
            for k in range(mu):
                gk = badj[gu + k]
                _put(badj, tu + k, gk * bulk[wu + k] if gk != 0.0 else 0.0, acc)
        elif o == DIV and not second:
            for k in range(mu):
                gk = badj[gu + k]
                _put(badj, tu + k, gk / bulk[zu + k] if gk != 0.0 else 0.0, acc)
        else:
            if not acc:
                for k in range(mu):
                    badj[tu + k] = 0.0
            _binary_rules_add(o, second, badj, bulk, gu, xu, zu, yu, tu, mu, c)

    return unary, binary


_unary_adjoints, _binary_adjoints = _adjoint_loops(True)
_unary_writes, _binary_writes = _adjoint_loops(False)


if _numba_config.DISABLE_JIT:
    def _fma(a, b, c):
        """a * b + c (rounded twice: Python 3.11 has no math.fma; this is the oracle mode)."""
        return a * b + c

    def _pow2(k):
        """2.0 ** k for an integer k in [-1022, 1023]."""
        return math.ldexp(1.0, int(k))

    def _wide_vectors():
        """(A compiler hint: nothing to do without the JIT.)"""
else:
    @intrinsic
    def _wide_vectors(typingctx):
        """Let LLVM vectorize the calling function's loops for 512-bit registers where the CPU
        has them (a function attribute; llvmlite's attribute set knows only the enum ones,
        hence set.add).  LLVM prefers 256 bits on AVX-512 CPUs, whose older models slow their
        clock under 512-bit code; the trig kernels below ran 1.5x faster with it here (3.7 ->
        2.5 ns per element for sin and cos together, the same bits).  Without AVX-512 it
        changes nothing."""
        def codegen(context, builder, signature, args):
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
            return context.get_dummy_value()
        return _nbtypes.none(), codegen

    @intrinsic
    def _fma(typingctx, a, b, c):
        """a * b + c rounded once (LLVM's fma, vectorized to the CPU's FMA instructions).
        LLVM fuses nothing by itself with fastmath off, so the series below say where."""
        sig = _nbtypes.float64(_nbtypes.float64, _nbtypes.float64, _nbtypes.float64)

        def codegen(context, builder, signature, args):
            return builder.fma(*args)
        return sig, codegen

    @intrinsic
    def _pow2(typingctx, k):
        """2.0 ** k for an int64 k in [-1022, 1023]: k + 1023 put in the exponent's bits
        (a shift and a bitcast, which vectorize; NumPy's ldexp is a call per element)."""
        sig = _nbtypes.float64(_nbtypes.int64)

        def codegen(context, builder, signature, args):
            i64 = _llvm_ir.IntType(64)
            bits = builder.shl(builder.add(args[0], _llvm_ir.Constant(i64, 1023)),
                               _llvm_ir.Constant(i64, 52))
            return builder.bitcast(bits, _llvm_ir.DoubleType())
        return sig, codegen


# ------------------------------------------------ sin and cos over float64 arrays
# NumPy's float64 sin and cos call libm per element (~12 ns each here, against ~1.4 ns for
# PyTorch's vectorized ones).  These are written so LLVM vectorizes them: no calls, no
# branches.  x is reduced by the nearest multiple q of pi/2, with pi/2 split into three
# parts (the first two of 33 bits, so q times them is exact for |q| < 2**20): r = x - q*pi/2
# as a sum of two doubles.  sin and cos of r (|r| <= pi/4) are their Taylor series to the
# terms r**17 and r**18 (the next terms are below 1e-19), the rounding of 1 - r*r/2 carried,
# and r's low part added to first order.  The result is within an ulp of the correctly
# rounded one (tests/test_trig.py measures it against libm).  Elements beyond TRIG_LIMIT, inf
# and nan go to libm.


def _split_half_pi():
    from decimal import Decimal
    from fractions import Fraction
    pi = Fraction(Decimal("3.14159265358979323846264338327950288419716939937510582097494459"))
    rest = pi / 2
    parts = []
    for bits in (33, 33, 53):
        m, e = math.frexp(float(rest))
        part = math.ldexp(math.floor(m * 2.0**bits) / 2.0**bits, e)
        parts.append(part)
        rest -= Fraction(part)
    return parts, float(1 / (pi / 2))


(PIO2_1, PIO2_2, PIO2_3), TWO_OVER_PI = _split_half_pi()
TRIG_LIMIT = 1e5
_ROUNDER = 6755399441055744.0  # 1.5 * 2**52: (t + this) - this rounds t to an integer


@_j
def _sin_and_cos(v):
    """(sin(v), cos(v)) for |v| <= TRIG_LIMIT (see above)."""
    q = _fma(v, TWO_OVER_PI, _ROUNDER) - _ROUNDER
    r1 = _fma(-q, PIO2_1, v)  # exact (q * PIO2_1 is)
    b = q * PIO2_2  # exact
    s = r1 - b
    bb = s - r1
    e = (r1 - (s - bb)) - (b + bb)  # s + e = r1 - b exactly
    t = _fma(-q, PIO2_3, e)
    r = s + t
    bb = r - s
    rr = (s - (r - bb)) + (t - bb)  # r + rr = s + t exactly
    # the series in Estrin's form (a Horner chain of 16 dependent steps kept each element
    # waiting on latency, 1.25x slower here), its pairs fused: 1.3x faster than unfused, and
    # as accurate (the same share of results correctly rounded, against mpmath)
    z = r * r
    z2 = z * z
    z4 = z2 * z2
    p = z * _fma(z4, _fma(z2, _fma(1.0 / 355687428096000.0, z, -1.0 / 1307674368000.0),
                          _fma(1.0 / 6227020800.0, z, -1.0 / 39916800.0)),
                 _fma(z2, _fma(1.0 / 362880.0, z, -1.0 / 5040.0), _fma(1.0 / 120.0, z, -1.0 / 6.0)))
    sn = r + _fma(r, p, rr * _fma(-0.5, z, 1.0))
    hz = 0.5 * z
    w = 1.0 - hz
    p = z2 * _fma(z4, _fma(z2, _fma(-1.0 / 6402373705728000.0, z, 1.0 / 20922789888000.0),
                           _fma(-1.0 / 87178291200.0, z, 1.0 / 479001600.0)),
                  _fma(z2, _fma(-1.0 / 3628800.0, z, 1.0 / 40320.0),
                       _fma(-1.0 / 720.0, z, 1.0 / 24.0)))
    cs = w + (((1.0 - w) - hz) + _fma(-r, rr, p))
    n = int(q) & 3  # sin(v) is sn, cs, -sn, -cs by n; cos(v) the next one
    sv = sn if n & 1 == 0 else cs
    sv = -sv if n >= 2 else sv
    n = (n + 1) & 3
    cv = sn if n & 1 == 0 else cs
    cv = -cv if n >= 2 else cv
    if abs(v) < 1e-9:  # sin(v) rounds to v (and keeps -0.0), cos(v) to 1
        sv = v
        cv = 1.0
    return sv, cv


@_j
def _sin_cos(v, cos):
    """sin(v), or cos(v) with ``cos``, for |v| <= TRIG_LIMIT."""
    sv, cv = _sin_and_cos(v)
    return cv if cos else sv


@_j
def _trig_in_range(x, xo, m):
    """Whether every x[xo + k] is within TRIG_LIMIT (nan is not)."""
    bad = 0
    for k in range(m):
        bad += not abs(x[xo + k]) <= TRIG_LIMIT
    return bad == 0


@njit(**NJIT_LEAF)
def _trig_adjoints(o, badj, bulk, gu, xu, mu):
    """sin's adjoint g * cos(x), cos's -g * sin(x), added to badj[xu + k] for elements within
    TRIG_LIMIT, vectorized; one copy of the series (the choice is a run-time flag outside the
    loop).  Compiled apart, once for both _adjoint_loops pairs (the writing one zero-fills
    first, what _put's write leaves): the series inlined into each pair's loop was ~1 s of
    the first backward's cold compile."""
    cos = o == SIN
    for k in range(mu):
        gk = badj[gu + k]
        sg = gk if cos else -gk
        badj[xu + k] += sg * _sin_cos(bulk[xu + k], cos) if gk != 0.0 else 0.0


@njit(**NJIT_LEAF)
def relu_into(x, y, y2):
    """y = relu(x) over 1-d float64 (or float32) arrays: nan and -0.0 stay, as in PyTorch.
    The values are written into y2 as well (the arena's place of a recorded result, which
    RELU saves; y itself when it is not recorded)."""
    for k in range(_u(x.size)):
        v = x[k]
        v = 0.0 if v < 0.0 else v
        y[k] = v
        y2[k] = v


@njit(**NJIT_LEAF)
def tanh_into(x, y):
    """y = tanh(x) over 1-d float64 arrays, libm's (as the scalar path's math.tanh and a
    lazily recorded tanh's, _lazy_trig): NumPy's own tanh differs in the last bit for
    ~40% of values, so small arrays use this one, whether recorded or not."""
    for k in range(_u(x.size)):
        y[k] = math.tanh(x[k])


# tanh over float64 arrays of more than LAZY_TANH elements, written so LLVM vectorizes it: NumPy's
# tanh took 75-88 us for 65 536 elements here and a recorded one then copied its result into
# the arena (~30 us more, into memory not in cache); this loop writes both in 51-54 us.
# tanh(x) = sign(x) * e / (e + 2) with e = expm1(2|x|) below |x| = 0.55, sign(x) * (1 - 2 / (e + 2))
# above (there 2 / (e + 2) < 1/2, and near 1 the result rounds as the exact one: monotone).
# expm1(t): t = k ln 2 + r, |r| <= ln(2) / 2 (Cody and Waite's two-part ln 2, so k ln 2's
# high part is exact), expm1(r) its Taylor series to r**13 (the next term is below 1e-17 of
# it), then 2**k * expm1(r) + (2**k - 1), exact but for one rounding (2**k - 1 is exact for
# k <= 53; k <= 56 here).  Within 2 ulp of the correctly rounded tanh, against NumPy's (and
# SLEEF's) 1 (tests/test_tanh.py measures it against mpmath); |x| > 19.1 gives +-1, as
# tanh(19.1) rounds to 1; nan stays nan, -0.0 stays -0.0.

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # 0x3fe62e42fee00000: its last 11 bits are zero
_LN2_LO = 1.90821492927058770002e-10  # ln 2 - _LN2_HI


@_j
def _tanh1(x):
    ax = abs(x)
    t = 2.0 * ax
    kf = _fma(t, _LOG2E, _ROUNDER) - _ROUNDER
    r = _fma(-kf, _LN2_HI, t)
    r = _fma(-kf, _LN2_LO, r)
    r2 = r * r
    r4 = r2 * r2
    r8 = r4 * r4
    p = _fma(r8, _fma(r2, _fma(1.0 / 6227020800.0, r, 1.0 / 479001600.0),
                      _fma(1.0 / 39916800.0, r, 1.0 / 3628800.0)),
             _fma(r4, _fma(r2, _fma(1.0 / 362880.0, r, 1.0 / 40320.0),
                           _fma(1.0 / 5040.0, r, 1.0 / 720.0)),
                  _fma(r2, _fma(1.0 / 120.0, r, 1.0 / 24.0), _fma(1.0 / 6.0, r, 0.5))))
    big = ax > 19.1  # (inf among them; nan is not)
    s = _pow2(0 if big else np.int64(kf))
    e = _fma(s, _fma(r2, p, r), s - 1.0)
    q = 1.0 / (e + 2.0)
    y = e * q if ax < 0.55 else 1.0 - 2.0 * q  # (past 0.55, 2q < 1/2: no cancellation)
    return math.copysign(1.0 if big else y, x)


@njit(**NJIT_LEAF)
def tanh_big(x, y, y2):
    """y = tanh(x) over 1-d float64 arrays, vectorized (see above), also into y2 (the arena's
    copy of a recorded tanh, in the same pass; y itself when none)."""
    _wide_vectors()
    for k in range(_u(x.size)):
        v = _tanh1(x[k])
        y[k] = v
        y2[k] = v


@njit(**NJIT_LEAF)
def rows_into(op, swap, x, b, y, y2):
    """y = x op b (op ADD, SUB, MUL; b op x with ``swap``) for x the rows of a row-major
    float64 matrix (flat) and b a float64 vector as long as a row, broadcast down the rows (a
    bias added to a batch), also into y2 (the arena's copy of the recorded result, in the
    same pass; y itself when none).  NumPy's broadcast add of a 32x128 batch and a bias took
    4.5-6 us here, its result's copy into the arena 1.4 more; the same IEEE operations."""
    _wide_vectors()
    n = _u(b.size)
    for i in range(_u(x.size) // n):
        at = i * n
        if op == ADD:
            for j in range(n):
                v = x[at + j] + b[j]
                y[at + j] = v
                y2[at + j] = v
        elif op == MUL:
            for j in range(n):
                v = x[at + j] * b[j]
                y[at + j] = v
                y2[at + j] = v
        elif swap:
            for j in range(n):
                v = b[j] - x[at + j]
                y[at + j] = v
                y2[at + j] = v
        else:
            for j in range(n):
                v = x[at + j] - b[j]
                y[at + j] = v
                y2[at + j] = v


@njit(**NJIT_LEAF)
def binary_into(op, x, z, y):
    """y = x + z, x - z or x * z (op ADD, SUB, MUL) over 1-d float64 arrays of one size.
    NumPy's multiply of two arrays took 37 us for 65 536 elements here, this loop 20 (add
    and subtract alike); below a few thousand elements NumPy's call costs less."""
    _wide_vectors()
    m = _u(x.size)
    if op == ADD:
        for k in range(m):
            y[k] = x[k] + z[k]
    elif op == SUB:
        for k in range(m):
            y[k] = x[k] - z[k]
    else:
        for k in range(m):
            y[k] = x[k] * z[k]


@njit(**NJIT_LEAF)
def sin_cos(x, y, cos):
    """y = sin(x) (cos(x) with ``cos``) over 1-d float64 arrays, vectorized (see above)."""
    _wide_vectors()
    m = _u(x.size)
    if _trig_in_range(x, _u(0), m):
        for k in range(m):
            y[k] = _sin_cos(x[k], cos)
        return
    for k in range(m):
        v = x[k]
        if abs(v) <= TRIG_LIMIT:
            y[k] = _sin_cos(v, cos)
        else:
            y[k] = math.cos(v) if cos else math.sin(v)


@njit(**NJIT_LEAF)
def sin_cos_d(x, y, d, y2, cos):
    """As sin_cos, also into y2 (the arena's copy, in the same pass), and d = the
    derivative: cos(x) for sin, -sin(x) for cos (SINC, COSC)."""
    _wide_vectors()
    m = _u(x.size)
    if _trig_in_range(x, _u(0), m):
        for k in range(m):
            sv, cv = _sin_and_cos(x[k])
            yk = cv if cos else sv
            y[k] = yk
            y2[k] = yk
            d[k] = -sv if cos else cv
        return
    for k in range(m):
        v = x[k]
        if abs(v) <= TRIG_LIMIT:
            sv, cv = _sin_and_cos(v)
        else:
            sv, cv = math.sin(v), math.cos(v)
        yk = cv if cos else sv
        y[k] = yk
        y2[k] = yk
        d[k] = -sv if cos else cv


@njit(**NJIT_LEAF)
def _unary_values(o, bulk, yi, xi, m, c, d):
    """bulk[yi + k] = the unary op of bulk[xi + k] (replay)."""
    yu, xu, mu = _u(yi), _u(xi), _u(m)
    if _lazy_arith(o, bulk, yu, xu, _u(0), mu, c):  # + - * / a constant, negation, squares
        return
    if (o == SIN or o == COS) and _trig_in_range(bulk, xu, mu):  # as the eager forward
        for k in range(mu):
            bulk[yu + k] = _sin_cos(bulk[xu + k], o == COS)
    else:
        for k in range(mu):
            bulk[yu + k] = _unary_f(o, bulk[xu + k], c, d)


@njit(**NJIT_LEAF)
def _binary_values(o, bulk, yi, xi, zi, m, c):
    """bulk[yi + k] = bulk[xi + k] op bulk[zi + k] (replay)."""
    yu, xu, zu, mu = _u(yi), _u(xi), _u(zi), _u(m)
    if _lazy_arith(o, bulk, yu, xu, zu, mu, c):  # + - *
        return
    if o == DIV:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] / bulk[zu + k]
    else:
        for k in range(mu):
            bulk[yu + k] = _binary_f(o, bulk[xu + k], bulk[zu + k], c)


# ------------------------------------------------ index maps


@njit(**NJIT)
def index_map(auxi, at):
    """Expand the index map stored at ``auxi[at]`` into one offset per element."""
    ndim = auxi[at]
    if ndim < 0:
        cnt = auxi[at + 1]
        return auxi[at + 2:at + 2 + cnt].copy()
    base = auxi[at + 1]
    shape = auxi[at + 2:at + 2 + ndim]
    strides = auxi[at + 2 + ndim:at + 2 + 2 * ndim]
    total = 1
    for d in range(ndim):
        total *= shape[d]
    out = np.empty(total, dtype=np.int64)
    if total == 0:
        return out
    idx = np.zeros(ndim, dtype=np.int64)
    pos = base
    for i in range(total):
        out[i] = pos
        d = ndim - 1
        while d >= 0:  # odometer step over the C-ordered index space
            idx[d] += 1
            pos += strides[d]
            if idx[d] < shape[d]:
                break
            pos -= strides[d] * shape[d]
            idx[d] = 0
            d -= 1
    return out


@njit(**NJIT)
def group_map(auxi, at, size):
    """For a reduction over ``size`` elements: the output element each one goes into, from
    the index map at ``auxi[at]``, or all zeros when ``at < 0`` (everything into one)."""
    if at < 0:
        return np.zeros(size, dtype=np.int64)
    return index_map(auxi, at)


@njit(**NJIT)
def _group_products(x, m, ngroups):
    """Per group of a product: how many of its elements are zero, and the product of the
    others, from which each element's partial derivative is exact where elements are zero."""
    zeros = np.zeros(ngroups, dtype=np.int64)
    nonzero = np.ones(ngroups)
    for k in range(x.size):
        if x[k] == 0.0:
            zeros[m[k]] += 1
        else:
            nonzero[m[k]] *= x[k]
    return zeros, nonzero


@_j
def _term(x, xo, v, vo, k, dot):
    """Term k of _blocked's sum: x[xo + k], or with ``dot`` the product x[xo + k] * v[vo + k]
    where x's factor is nonzero (a zero adjoint passes nothing on, not 0 * inf)."""
    if dot:
        g = x[xo + k]
        return g * v[vo + k] if g != 0.0 else 0.0
    return x[xo + k]


_U16 = _u(16)


@njit(**NJIT_LEAF)
def _blocked(x, xo, v, vo, m, dot):
    """The sum of m terms (_term) in one fixed order: sixteen partial sums, term k into sum
    k % 16 while sixteen terms remain, combined pairwise, then the rest one by one (no
    fastmath: LLVM keeps the order).  Every CPU and every caller gets the same bits for the
    same terms: a broadcast's adjoint summed from its product's (_total, in _move) equals a
    fused record's (_dot_nz, AXPYS), which an order of LLVM's choosing did not guarantee."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    s8 = s9 = s10 = s11 = s12 = s13 = s14 = s15 = 0.0
    k = _u(0)
    while k + _U16 <= m:
        s0 += _term(x, xo, v, vo, k, dot)
        s1 += _term(x, xo, v, vo, k + _u(1), dot)
        s2 += _term(x, xo, v, vo, k + _u(2), dot)
        s3 += _term(x, xo, v, vo, k + _u(3), dot)
        s4 += _term(x, xo, v, vo, k + _u(4), dot)
        s5 += _term(x, xo, v, vo, k + _u(5), dot)
        s6 += _term(x, xo, v, vo, k + _u(6), dot)
        s7 += _term(x, xo, v, vo, k + _u(7), dot)
        s8 += _term(x, xo, v, vo, k + _u(8), dot)
        s9 += _term(x, xo, v, vo, k + _u(9), dot)
        s10 += _term(x, xo, v, vo, k + _u(10), dot)
        s11 += _term(x, xo, v, vo, k + _u(11), dot)
        s12 += _term(x, xo, v, vo, k + _u(12), dot)
        s13 += _term(x, xo, v, vo, k + _u(13), dot)
        s14 += _term(x, xo, v, vo, k + _u(14), dot)
        s15 += _term(x, xo, v, vo, k + _u(15), dot)
        k += _U16
    s = (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + (
        ((s8 + s9) + (s10 + s11)) + ((s12 + s13) + (s14 + s15)))
    while k < m:
        s += _term(x, xo, v, vo, k, dot)
        k += _u(1)
    return s


@njit(**NJIT_LEAF)
def _total(x, xo, m):
    """x[xo] + ... + x[xo + m - 1], in _blocked's order; the offsets unsigned (np.uint64)."""
    return _blocked(x, _u(xo), x, _u(xo), _u(m), False)


@njit(**NJIT_LEAF)
def _dot_nz(g, go, v, vo, m):
    """The sum of g[go + k] * v[vo + k] over the k where g's term is nonzero, in _blocked's
    order: the bits of _total over the products."""
    return _blocked(g, _u(go), v, _u(vo), _u(m), True)


MOVE_GATHER, MOVE_SCATTER_ADD, MOVE_SCATTER, MOVE_GATHER_ADD = range(4)  # _move's ways


@njit(**NJIT_LEAF)
def _move(dst, do, src, so, auxi, at, how, w):
    """Move elements along the index map at ``auxi[at]`` (element k of the map's index
    space has offset m[k]): MOVE_GATHER dst[do + k] = src[so + m[k]], MOVE_SCATTER_ADD
    dst[do + m[k]] += src[so + k], MOVE_SCATTER dst[do + m[k]] = src[so + k],
    MOVE_GATHER_ADD dst[do + k] += src[so + m[k]] (the adding ways times ``w``; callers
    pass the way through _variable, so that it compiles once).  Walks the map where it is
    stored, building nothing.  Offsets are unsigned: a negative stride wraps around to the
    same index."""
    ndim = auxi[at]
    du, su = _u(do), _u(so)
    if ndim < 0:  # an explicit map
        for k in range(auxi[at + 1]):
            _move1(dst, du, src, su, _u(k), _u(auxi[at + 2 + k]), how, w)
        return
    base = _u(auxi[at + 1])
    if ndim <= 2:  # slices, rows, selects, transposes: two loops, the inner one long
        n0 = _u(auxi[at + 2] if ndim == 2 else 1)
        s0 = _u(auxi[at + 4] if ndim == 2 else 0)
        n1 = _u(auxi[at + 2 + ndim - 1] if ndim >= 1 else 1)
        s1 = _u(auxi[at + 2 + 2 * ndim - 1] if ndim >= 1 else 0)
        gathers = how == MOVE_GATHER or how == MOVE_GATHER_ADD
        for p in range(n0):
            # the strided side (src gathering, dst scattering) at o, the contiguous side at k
            if gathers:
                o, k = su + base + p * s0, du + p * n1
            else:
                o, k = du + base + p * s0, su + p * n1
            if s1 == 1:  # a contiguous line: loops LLVM vectorizes (~2.4x at 99 elements)
                _line(dst, src, o, k, n1, how, w)
            elif how == MOVE_SCATTER_ADD and s1 == 0:  # a broadcast's adjoint: sums
                dst[o] += _total(src, k, n1) * w
            elif how == MOVE_GATHER:
                for q in range(n1):
                    dst[k + q] = src[o + q * s1]
            elif how == MOVE_SCATTER_ADD:
                for q in range(n1):
                    dst[o + q * s1] += src[k + q] * w
            elif how == MOVE_SCATTER:
                for q in range(n1):
                    dst[o + q * s1] = src[k + q]
            else:
                for q in range(n1):
                    dst[k + q] += src[o + q * s1] * w
        return
    total = 1
    for d in range(ndim):
        total *= auxi[at + 2 + d]
    for k in range(total):  # C order: the last dim varies fastest
        rest = k
        j = auxi[at + 1]
        for d in range(ndim - 1, -1, -1):
            size = auxi[at + 2 + d]
            j += (rest % size) * auxi[at + 2 + ndim + d]
            rest //= size
        _move1(dst, du, src, su, _u(k), _u(j), how, w)


@_j
def _variable(k):
    """k as a run-time int64.  Numba compiles a callee once per value of a constant int
    argument (~1 s each, cold); _move's way goes through this, so _move compiles once."""
    return np.int64(k)


@_j
def _one_line(auxi, at):
    """The first offset and the length of a map that is one contiguous line (a slice, a
    part of a concatenation), or length -1."""
    if auxi[at] == 1 and auxi[at + 3] == 1:
        return _u(auxi[at + 1]), auxi[at + 2]
    return _u(0), -1


@_j
def _mv(dst, src, auxi, at, how):
    """_move (offsets 0, weight 1), its commonest map (one contiguous line) inlined where
    called: the call and the general decoding cost ~15 ns of ~30 per 100-element move here.
    Used only at the lean kernels' slices and concatenations, since every inlined loop adds
    to the cold compile."""
    o, m = _one_line(auxi, at)
    if m < 0:
        _move(dst, 0, src, 0, auxi, at, _variable(how), 1.0)
    else:
        _line(dst, src, o, _u(0), _u(m), how, 1.0)


@_j
def _line(dst, src, o, k, m, how, w):
    """_move's contiguous line: m elements from o on the mapped side, k on the other."""
    if how == MOVE_GATHER:
        for q in range(m):
            dst[k + q] = src[o + q]
    elif how == MOVE_SCATTER_ADD:
        for q in range(m):
            dst[o + q] += src[k + q] * w
    elif how == MOVE_SCATTER:
        for q in range(m):
            dst[o + q] = src[k + q]
    else:
        for q in range(m):
            dst[k + q] += src[o + q] * w


@_j
def _move1(dst, do, src, so, k, j, how, w):
    if how == MOVE_GATHER:
        dst[do + k] = src[so + j]
    elif how == MOVE_SCATTER_ADD:
        dst[do + j] += src[so + k] * w
    elif how == MOVE_SCATTER:
        dst[do + j] = src[so + k]
    else:
        dst[do + k] += src[so + j] * w


# ------------------------------------------------ flush and sweep

# Staging.  Python appends records to a list of floats, four per record:
#     op, a, b (or the constant c, for UNARY ops, which have no b), value
# A record that needs more (n != 1, an index map, or a constant beside b) is
# staged with op + SIDE and four more fields in a side list: c, n, off, aux;
# its value field holds the value when n == 1.  A record of n != 1 elements that
# needs no more than the scalar form (no index map; a constant only as a UNARY's
# b) is staged with op + ARR and n in its value field: its values start in the
# bulk arena where the previous record's end (records take the arena in order).
# A record of one element whose only extra is an index map (x[k] of a 1-d tensor:
# a SELECT through a shared map) is staged with op + ELEM and the map's aux
# position in the b field.
# Every staged field costs ~25 ns in the conversion at flush time.
W = 4
SIDE = 1 << 10
ARR = 1 << 11
ELEM = 1 << 12
LAZY = 1 << 13
# the ops a record staged as op + LAZY may have: its values are computed by flush (below)
LAZY_UNARY = (NEG, ADDC, SUBC, RSUBC, MULC, DIVC, POWC, TANH, SIN, COS)  # POWC: x ** 2 only
LAZY_BINARY = (ADD, SUB, MUL)


@_j
def _lazy_arith(o, bulk, yu, xu, zu, mu, c):
    """bulk[yu:yu + mu] = the values of a record staged lazily (op + LAZY), from its
    operands' values at xu (and zu), for + - * /, negation and squares; False for the other
    lazy ops (_lazy_trig).  The same arithmetic as the eager forward (NumPy's IEEE + - * /
    and negation, its power's square x * x, the trig kernels' sin and cos, libm's tanh as
    ``tanh_into``), so a value is the same bits whichever way it was computed."""
    if o == MUL:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] * bulk[zu + k]
    elif o == ADD:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] + bulk[zu + k]
    elif o == SUB:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] - bulk[zu + k]
    elif o == MULC:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] * c
    elif o == ADDC:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] + c
    elif o == SUBC:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] - c
    elif o == RSUBC:
        for k in range(mu):
            bulk[yu + k] = c - bulk[xu + k]
    elif o == DIVC:
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] / c
    elif o == NEG:
        for k in range(mu):
            bulk[yu + k] = -bulk[xu + k]
    elif o == POWC and c == 2.0:  # (the only power staged lazily: _tensor._binary_number)
        for k in range(mu):
            bulk[yu + k] = bulk[xu + k] * bulk[xu + k]
    else:
        return False
    return True


@_j
def _lazy_trig(o, bulk, yu, xu, mu):
    """As _lazy_arith, for tanh, sin and cos."""
    if o == TANH:
        for k in range(mu):
            bulk[yu + k] = math.tanh(bulk[xu + k])
    else:  # SIN, COS: as sin_cos
        cos = o == COS
        for k in range(mu):
            v = bulk[xu + k]
            if abs(v) <= TRIG_LIMIT:
                bulk[yu + k] = _sin_cos(v, cos)
            else:
                bulk[yu + k] = math.cos(v) if cos else math.sin(v)


def _make_flush(trig):
    """The flush kernel; with ``trig``, lazy tanh, sin and cos rows too.  A process that
    never records a lazy one never compiles their code into the flush (~2.5 s cold)."""

    @njit(**{**NJIT_LEAF, "nogil": False})  # (a leaf: no reference counting of its 13 arrays)
    def flush(stage, side, start, bstart, op, a, b, c, val, n, off, aux, flags, bulk, auxi):
        """Copy staged rows into the columns, starting at record ``start``, whose values (if
        it has more than one) start at ``bstart`` in the bulk arena; returns where the values
        of the next row start and how many side fields the rows used, as
        ``ends << 20 | used``.  A row staged as
        op + LAZY (an ARR row whose values were not computed) gets them computed here, from
        its operands' (earlier records, already flushed): a record's values are in the arena
        once it is flushed.  A lazy row with ELEM set (op + LAZY + ELEM: a SLICE of a lazy
        value, a CAT with a lazy part, a BROADCAST of a scalar) holds its index map's aux
        entry where a plain row holds b, and gets its values gathered from its operands'
        (_lazy_gather).  It keeps
        the GIL (Segment.flush: the owner thread must not grow the arena meanwhile)."""
        rows = stage.shape[0] // W
        j = 0
        ob = bstart
        for r in range(rows):
            k = r * W
            i = start + r
            o = int(stage[k])
            a[i] = int(stage[k + 1])
            flags[i] = 0
            lazy = o >= LAZY
            if lazy:
                o -= LAZY - ARR
                if o >= ELEM + ARR:  # a lazy view, concatenation or broadcast: its map in aux
                    o -= ELEM + ARR
                    m = int(stage[k + 3])
                    n[i] = m
                    off[i] = ob
                    ob += m
                    b[i] = -1
                    c[i] = 0.0
                    aux[i] = int(stage[k + 2])
                    _lazy_gather(o, i, a, val, n, off, aux, auxi, bulk)
                    op[i] = o
                    continue
            if o >= ELEM:
                o -= ELEM
                b[i] = -1
                c[i] = 0.0
                n[i] = 1
                off[i] = -1
                aux[i] = int(stage[k + 2])
                val[i] = stage[k + 3]
            elif SIDE <= o < ARR:
                o -= SIDE
                b[i] = int(stage[k + 2])
                c[i] = side[j]
                m = int(side[j + 1])
                n[i] = m
                off[i] = int(side[j + 2])
                aux[i] = int(side[j + 3])
                if m == 1:
                    val[i] = stage[k + 3]
                else:
                    ob = off[i] + m
                j += 4
            else:
                if o >= ARR:
                    o -= ARR
                    m = int(stage[k + 3])
                    n[i] = m
                    off[i] = ob
                    ob += m
                else:
                    n[i] = 1
                    off[i] = -1
                    val[i] = stage[k + 3]
                aux[i] = -1
                if KIND[o] == UNARY:
                    c[i] = stage[k + 2]
                    b[i] = -1
                else:
                    c[i] = 0.0
                    b[i] = int(stage[k + 2])
                if lazy:
                    yu, xu, mu = _u(off[i]), _u(off[a[i]]), _u(n[i])
                    done = _lazy_arith(o, bulk, yu, xu, _u(off[b[i]]) if b[i] >= 0 else _u(0),
                                       mu, c[i])
                    if trig:  # (a constant: the other kernel never compiles tanh, sin, cos)
                        if not done:
                            _lazy_trig(o, bulk, yu, xu, mu)
            op[i] = o
        return ob << 20 | j  # (Segment.flush: side fields per flush < 2**20)

    return flush


@_j
def _lazy_gather(o, i, a, val, n, off, aux, auxi, bulk):
    """The values of lazy record i, a SLICE of a 1-d record (its map [1, start, m, step]), a
    CAT of 1-d records (its map [k, then per part: record, 1, start, m, 1]) or a BROADCAST
    of a one-element record (_tensor._lazy_scalar), from its operands' values, as NumPy's
    slice, concatenate and broadcast give them."""
    at = aux[i]
    yo = off[i]
    if o == BROADCAST:
        v = val[a[i]]
        for t in range(n[i]):
            bulk[yo + t] = v
        return
    if o == SLICE:
        xo = off[a[i]] + auxi[at + 1]
        step = auxi[at + 3]
        for t in range(n[i]):
            bulk[yo + t] = bulk[xo + t * step]
        return
    pos = at + 1
    for _ in range(auxi[at]):
        rj = auxi[pos]
        so = auxi[pos + 2]
        mj = auxi[pos + 3]
        if n[rj] == 1:
            bulk[yo + so] = val[rj]
        else:
            xo = off[rj]
            for t in range(mj):
                bulk[yo + so + t] = bulk[xo + t]
        pos += 5


flush = _make_flush(False)
flush_trig = _make_flush(True)


@_j
def _view(r, n, off, val, bulk):
    m = n[r]
    if m == 1:
        return val[r:r + 1]
    o = off[r]
    return bulk[o:o + m]


@_j
def _reach(r, n, off, adj, badj, flags):
    """Zero-fill record r's adjoint on first reach, without a view; returns 1 if newly
    reached."""
    if not _claim(r, flags):
        return 0
    m = n[r]
    if m == 1:
        adj[r] = 0.0
    else:
        o = _u(off[r])
        for k in range(_u(m)):
            badj[o + k] = 0.0
    return 1


@_j
def _claim(r, flags):
    """Mark record r reached, leaving its adjoint as it is: the caller writes all of it.
    Returns 1 if newly reached (0: the caller must add to it)."""
    if flags[r] & REACHED:
        return 0
    flags[r] |= REACHED
    return 1


@_j
def _target(r, n, off, adj, badj, flags):
    """The adjoint of record r, zero-filled on first reach.  Returns (view, newly reached)."""
    m = n[r]
    if m == 1:
        v = adj[r:r + 1]
    else:
        o = off[r]
        v = badj[o:o + m]
    if not _claim(r, flags):
        return v, 0
    v[:] = 0.0
    return v, 1


@_j
def _stale(flags, r, consumer, mrec, mat):
    """Record r's value was modified in place after ``consumer`` recorded it.  Inlined at
    each of its dozen call sites is only the flag test; the search is one function."""
    return flags[r] & MODIFIED and _modified_after(r, consumer, mrec, mat)


@njit(**NJIT_LEAF)
def _modified_after(r, consumer, mrec, mat):
    """Whether r is among the modified records ``mrec`` (sorted), modified after
    ``consumer`` was recorded; a binary search (np.searchsorted adds ~1 s to the cold
    compile)."""
    lo, hi = 0, mrec.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if mrec[mid] < r:
            lo = mid + 1
        else:
            hi = mid
    return lo < mrec.size and mrec[lo] == r and consumer < mat[lo]


@njit(**NJIT_LEAF)
def _ew_adjoint(i, op, a, b, c, n, off, aux, auxi, adj, badj, bulk, flags):
    """The adjoints of an elementwise record's operands over arrays (every operand in the
    bulk arena; a CONST operand gets none).  Returns how many are newly reached."""
    o = op[i]
    if KIND[o] == UNARY:
        r = a[i]
        if op[r] == CONST:
            return 0
        new = _claim(r, flags)  # first reached here: its adjoint is written, not added to
        dd = auxi.view(np.float64)[aux[i]] if aux[i] >= 0 else 0.0
        if new:
            _unary_writes(o, badj, bulk, off[i], off[r], off[i], n[i], c[i], dd)
        else:
            _unary_adjoints(o, badj, bulk, off[i], off[r], off[i], n[i], c[i], dd)
        return new
    total = 0
    for t in range(2):
        r = b[i] if t else a[i]
        if op[r] == CONST:
            continue
        # a run-time flag: a literal one would compile each binary loop twice more
        second = t == 1
        new = _claim(r, flags)
        if new:
            _binary_writes(o, second, badj, bulk, off[i], off[a[i]], off[b[i]], off[i], n[i],
                           c[i])
        else:
            _binary_adjoints(o, second, badj, bulk, off[i], off[a[i]], off[b[i]], off[i],
                             n[i], c[i])
        total += new
    return total


@njit(**NJIT_LEAF)
def _gather_adjoint(i, op, a, n, off, aux, auxi, adj, badj, flags):
    """A GATHER record's adjoint scattered into its operand's.  Returns 1 if newly
    reached."""
    ra = a[i]
    if op[ra] == CONST:
        return 0
    new = _reach(ra, n, off, adj, badj, flags)
    _mv(_view(ra, n, off, adj, badj), _view(i, n, off, adj, badj), auxi, aux[i],
        MOVE_SCATTER_ADD)
    return new


@njit(**NJIT_LEAF)
def _concat_adjoint(i, op, n, off, aux, auxi, adj, badj, flags):
    """A CONCAT record's adjoint, each part's share to that part.  Returns how many parts
    are newly reached."""
    g = _view(i, n, off, adj, badj)
    new = 0
    at = aux[i]
    pos = at + 1
    for _ in range(auxi[at]):
        rj = auxi[pos]
        ndim = auxi[pos + 1]
        if op[rj] != CONST:
            new += _reach(rj, n, off, adj, badj, flags)
            _mv(_view(rj, n, off, adj, badj), g, auxi, pos + 1, MOVE_GATHER_ADD)
        pos += 3 + 2 * ndim
    return new


@njit(**NJIT_LEAF)
def _reduce_adjoint(i, op, a, c, n, off, aux, auxi, adj, badj, flags):
    """A sum or mean's adjoint (times its scale) to every element of its operand.
    Returns 1 if newly reached."""
    ra = a[i]
    if op[ra] == CONST:
        return 0
    new = _reach(ra, n, off, adj, badj, flags)
    gx = _view(ra, n, off, adj, badj)
    g = _view(i, n, off, adj, badj)
    cc = c[i]
    if aux[i] < 0:  # everything into one element
        gg = g[0] * cc
        if gg != 0.0:
            for k in range(gx.size):
                gx[k] += gg
    else:
        _move(gx, 0, g, 0, auxi, aux[i], _variable(MOVE_GATHER_ADD), cc)
    return new


@njit(**NJIT_LEAF)
def _axpy_adjoint(i, op, a, b, c, val, n, off, aux, auxi, adj, badj, bulk, flags):
    """An AXPY record's adjoints, each as the records it replaces gave them: g to z, and for
    AXPYS (y = z + s * v) sum(g * v) to s and g * s to v, for AXPYC (y = z + v * c / d)
    g / d * c to v; AXPYN's terms as AXPYS's, in the order the chain's records were swept
    (the outer terms first, then z and the first term).  Returns how many operands are
    newly reached."""
    new = 0
    m = n[i]
    gi = _u(off[i])
    rz = a[i]
    if op[i] == AXPYN:
        at = aux[i]
        for t in range(auxi[at] - 1, 0, -1):
            new += _axpy_term(auxi[at + 1 + 2 * t], auxi[at + 2 + 2 * t], gi, m, op, val, n,
                              off, adj, badj, bulk, flags)
    if op[rz] != CONST:
        new += _reach(rz, n, off, adj, badj, flags)
        zu = _u(off[rz])
        for k in range(_u(m)):
            badj[zu + k] += badj[gi + k]
    if op[i] == AXPYC:
        rv = b[i]
        if op[rv] != CONST:
            new += _reach(rv, n, off, adj, badj, flags)
            vu = _u(off[rv])
            cc, d = c[i], auxi.view(np.float64)[aux[i]]
            if d == 1.0:  # no division was recorded (and g / 1 is g)
                for k in range(_u(m)):
                    gk = badj[gi + k]
                    badj[vu + k] += gk * cc if gk != 0.0 else 0.0
            else:
                for k in range(_u(m)):
                    gk = badj[gi + k]
                    t = gk / d if gk != 0.0 else 0.0
                    badj[vu + k] += t * cc if t != 0.0 else 0.0
        return new
    if op[i] == AXPYN:
        return new + _axpy_term(auxi[aux[i] + 1], auxi[aux[i] + 2], gi, m, op, val, n, off,
                                adj, badj, bulk, flags)
    return new + _axpy_term(b[i], int(c[i]), gi, m, op, val, n, off, adj, badj, bulk, flags)


@_j
def _axpy_term(rs, rv, gi, m, op, val, n, off, adj, badj, bulk, flags):
    """The adjoints of a term s * v of an AXPYS or AXPYN record (the record's adjoint at
    ``gi``): sum(g * v) to s, g * s to v.  Returns how many are newly reached."""
    new = 0
    s = val[rs]
    if op[rs] != CONST:
        new += _reach(rs, n, off, adj, badj, flags)
        vu = _u(off[rv])
        adj[rs] += _dot_nz(badj, gi, bulk, vu, _u(m))  # the broadcast's adjoint of g * v
    if op[rv] != CONST:
        new += _reach(rv, n, off, adj, badj, flags)
        vu = _u(off[rv])
        for k in range(_u(m)):
            gk = badj[gi + k]
            badj[vu + k] += gk * s if gk != 0.0 else 0.0
    return new


@_j
def _uniform(g):
    """Whether g has two or more elements, all equal (nan is not equal to itself)."""
    c = g[0]
    for k in range(1, g.size):
        if g[k] != c:
            return False
    return g.size > 1


@_j
def _rank_one(i, ra, rb, c, x, z, mm, kk, nn, nb, n, off, adj, badj, flags, mrec, mat, op,
              new_total):
    """MATMUL's adjoints when every element of its gradient is c, as the gradient of a sum
    (``(a @ b).sum()``) is: g @ b.T has every row equal to the row sums of c * b, and a.T @ g
    every column equal to the column sums of a * c.  Each costs a pass over one operand
    instead of a product (2 of big_matmul's 6 products).  c multiplies each term before the
    sum, as in the product, so that what overflows (or not) is the same."""
    if op[ra] != CONST:
        if _stale(flags, rb, i, mrec, mat):
            return ERR_MODIFIED, rb, new_total
        new = _claim(ra, flags)
        new_total += new
        gx3 = _view(ra, n, off, adj, badj).reshape((nb, mm, kk))
        z3 = z.reshape((nb, kk, nn))
        row = np.empty(kk)
        for q in range(nb):
            for p in range(kk):
                s = 0.0
                for j in range(nn):
                    s += c * z3[q, p, j]
                row[p] = s
            for r in range(mm):
                if new:
                    gx3[q, r, :] = row
                else:
                    gx3[q, r, :] += row
    if op[rb] != CONST:
        if _stale(flags, ra, i, mrec, mat):
            return ERR_MODIFIED, ra, new_total
        new = _claim(rb, flags)
        new_total += new
        gz3 = _view(rb, n, off, adj, badj).reshape((nb, kk, nn))
        x3 = x.reshape((nb, mm, kk))
        col = np.empty(kk)
        for q in range(nb):
            col[:] = 0.0
            for r in range(mm):
                for p in range(kk):
                    col[p] += x3[q, r, p] * c
            for p in range(kk):
                if new:
                    gz3[q, p, :] = col[p]
                else:
                    gz3[q, p, :] += col[p]
    return DONE, i, new_total


@njit(**NJIT)
def _other_adjoint(i, op, a, b, c, val, n, off, aux, flags, adj, bulk, badj, auxi, mrec, mat):
    """The adjoint of record i of one of the OTHER kinds (sweep's second tier).  Returns
    (status, record, operands newly reached): DONE, or the error and the record it names."""
    o = op[i]
    kd = KIND[o]
    ra = a[i]
    rb = b[i]
    cc = c[i]
    new_total = 0
    g = _view(i, n, off, adj, badj)
    y = _view(i, n, off, val, bulk)
    if kd == NORM:
        if op[ra] != CONST:
            if _stale(flags, ra, i, mrec, mat):  # saves its input
                return ERR_MODIFIED, ra, new_total
            x = _view(ra, n, off, val, bulk)
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            # g * (x / y), PyTorch's order (its bits: (g / y) * x differs in the last bit
            # for most inputs); a zero norm passes nothing on, as PyTorch's masked_fill
            if aux[i] < 0:
                if y[0] != 0.0 and g[0] != 0.0:
                    g0 = g[0]
                    y0 = y[0]
                    for k in range(gx.size):
                        gx[k] += g0 * (x[k] / y0)
            else:
                m = index_map(auxi, aux[i])
                for k in range(gx.size):
                    j = m[k]
                    if y[j] != 0.0:
                        gx[k] += g[j] * (x[k] / y[j])
    elif kd == MATMUL:
        at = aux[i]
        mm = auxi[at]
        kk = auxi[at + 1]
        nn = auxi[at + 2]
        nb = auxi[at + 3]
        x = _view(ra, n, off, val, bulk)
        z = _view(rb, n, off, val, bulk)
        if _uniform(g):  # the gradient of a sum: products of rank one (see _rank_one)
            return _rank_one(i, ra, rb, g[0], x, z, mm, kk, nn, nb, n, off, adj, badj, flags,
                             mrec, mat, op, new_total)
        g3 = g.reshape((nb, mm, nn))
        # a target reached here first gets the product written into it (np.dot's out:
        # no zero fill, no temporary, no second pass over it); one reached before gets
        # it through a temporary.  Only the out form of np.dot appears: each form
        # compiles separately (~4 s each, cold)
        if op[ra] != CONST:
            if _stale(flags, rb, i, mrec, mat):
                return ERR_MODIFIED, rb, new_total
            new = _claim(ra, flags)
            new_total += new
            gx3 = _view(ra, n, off, adj, badj).reshape((nb, mm, kk))
            z3 = z.reshape((nb, kk, nn))
            tmp = np.empty((0 if new else mm, kk))
            for q in range(nb):
                t = gx3[q] if new else tmp
                np.dot(g3[q], z3[q].T, t)
                if not new:
                    gx3[q] += t
        if op[rb] != CONST:
            if _stale(flags, ra, i, mrec, mat):
                return ERR_MODIFIED, ra, new_total
            new = _claim(rb, flags)
            new_total += new
            gz3 = _view(rb, n, off, adj, badj).reshape((nb, kk, nn))
            x3 = x.reshape((nb, mm, kk))
            tmp = np.empty((0 if new else kk, nn))
            for q in range(nb):
                t = gz3[q] if new else tmp
                np.dot(x3[q].T, g3[q], t)
                if not new:
                    gz3[q] += t
    elif kd == SETITEM:
        # out = a with the mapped positions replaced by b
        m = index_map(auxi, aux[i])
        if op[ra] != CONST:
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            keep = np.ones(g.size, dtype=np.bool_)
            for k in range(m.size):
                keep[m[k]] = False
            for k in range(g.size):
                if keep[k]:
                    gx[k] += g[k]
        if op[rb] != CONST:
            gz, new = _target(rb, n, off, adj, badj, flags)
            new_total += new
            for k in range(m.size):
                gz[k] += g[m[k]]
    elif kd == FILL:
        if op[ra] != CONST:  # the old value does not reach the output: a zero gradient
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
    elif kd == MASK:
        mask = _view(int(cc), n, off, val, bulk)
        if op[ra] != CONST:
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            for k in range(g.size):
                if mask[k] != 0.0:
                    gx[k] += g[k]
        if rb >= 0 and op[rb] != CONST:
            gz, new = _target(rb, n, off, adj, badj, flags)
            new_total += new
            for k in range(g.size):
                if mask[k] == 0.0:
                    gz[k] += g[k]
    elif kd == EXTREME:
        if op[ra] != CONST:
            if _stale(flags, ra, i, mrec, mat):
                return ERR_MODIFIED, ra, new_total
            x = _view(ra, n, off, val, bulk)
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            m = group_map(auxi, aux[i], x.size)
            # max() and min() of everything: a nan result is shared by the nan elements, as
            # PyTorch's evenly_distribute_backward (amax, amin: by the elements equal to it)
            nans = op[i] == MAXALL or op[i] == MINALL
            ties = np.zeros(g.size)
            for k in range(x.size):
                j = m[k]
                if x[k] == y[j] or (nans and x[k] != x[k] and y[j] != y[j]):
                    ties[j] += 1.0
            for k in range(x.size):
                j = m[k]
                if x[k] == y[j] or (nans and x[k] != x[k] and y[j] != y[j]):
                    gx[k] += g[j] / ties[j]
    elif kd == PRODUCT:
        if op[ra] != CONST:
            if _stale(flags, ra, i, mrec, mat):
                return ERR_MODIFIED, ra, new_total
            x = _view(ra, n, off, val, bulk)
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            m = group_map(auxi, aux[i], x.size)
            zeros, nonzero = _group_products(x, m, g.size)
            for k in range(x.size):
                j = m[k]
                if zeros[j] == 0:
                    gx[k] += g[j] * nonzero[j] / x[k]
                elif zeros[j] == 1 and x[k] == 0.0:
                    gx[k] += g[j] * nonzero[j]
    elif kd == SCAN:
        if op[ra] != CONST:
            at = aux[i]
            outer = auxi[at]
            length = auxi[at + 1]
            inner = auxi[at + 2]
            x = _view(ra, n, off, val, bulk)
            if o == CUMPROD and _stale(flags, ra, i, mrec, mat):
                return ERR_MODIFIED, ra, new_total
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            for p in range(outer):
                for q in range(inner):
                    base = p * length * inner + q
                    if o == CUMSUM:  # reverse cumulative sum of g
                        acc = 0.0
                        for t in range(length - 1, -1, -1):
                            acc += g[base + t * inner]
                            gx[base + t * inner] += acc
                    else:  # CUMPROD: d y_t / d x_s = prod_{r<s} x_r * prod_{s<r<=t} x_r
                        pre = 1.0  # no division: exact when some x are zero
                        for s in range(length):
                            acc = 0.0
                            suf = 1.0
                            for t in range(s, length):
                                if t > s:
                                    suf *= x[base + t * inner]
                                acc += g[base + t * inner] * suf
                            gx[base + s * inner] += acc * pre
                            pre *= x[base + s * inner]
    elif kd == SOFTMAXES:
        # softmax: gx = y * (g - sum(g * y));  log_softmax: gx = g - exp(y) * sum(g)
        if op[ra] != CONST:
            at = aux[i]
            outer = auxi[at]
            length = auxi[at + 1]
            inner = auxi[at + 2]
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            for p in range(outer):
                for q in range(inner):
                    base = p * length * inner + q
                    acc = 0.0
                    for t in range(length):
                        k = base + t * inner
                        acc += g[k] * y[k] if o == SOFTMAX else g[k]
                    for t in range(length):
                        k = base + t * inner
                        if o == SOFTMAX:
                            gx[k] += y[k] * (g[k] - acc)
                        else:
                            gx[k] += g[k] - math.exp(y[k]) * acc
    elif kd == SCATTERADD:
        m = index_map(auxi, aux[i])
        if op[ra] != CONST:
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
            for k in range(g.size):
                gx[k] += g[k]
        if op[rb] != CONST:
            gz, new = _target(rb, n, off, adj, badj, flags)
            new_total += new
            for k in range(m.size):
                gz[k] += g[m[k]]
    elif kd == AXPY:
        new_total += _axpy_adjoint(i, op, a, b, c, val, n, off, aux, auxi, adj, badj, bulk,
                                 flags)
    elif kd == COPY:
        # a: the overwritten value (gets zeros), b: the source (gets g)
        if op[ra] != CONST:
            gx, new = _target(ra, n, off, adj, badj, flags)
            new_total += new
        if op[rb] != CONST:
            gz, new = _target(rb, n, off, adj, badj, flags)
            new_total += new
            for k in range(g.size):
                gz[k] += g[k]
    else:
        return ERR_OPCODE, i, new_total
    return DONE, i, new_total


# The leaf kernels (sweep_core and the trace's leaf sweeps) take the per-record helpers
# inlined: a compiled call passes each array as its seven fields, ~40 ns for a dozen arrays,
# more than a 100-element loop costs.  For sweep_core it is also the cold compile: a helper
# compiled apart is compiled again into every kernel that links it (~10% of the first
# backward's compile, measured with both versions compiling side by side).  The full
# ``sweep`` keeps reference counting (its other kinds allocate) and calls them out of line,
# where their views cost no reference counts.


def _inlined(f):
    """``f`` again, inlined where called (``f`` itself is the plain function with the JIT
    off)."""
    return njit(inline="always", **NJIT_LEAF)(getattr(f, "py_func", f))


_ew_adjoint_i = _inlined(_ew_adjoint)
_gather_adjoint_i = _inlined(_gather_adjoint)
_concat_adjoint_i = _inlined(_concat_adjoint)
_reduce_adjoint_i = _inlined(_reduce_adjoint)


def _called(f):
    """``f`` again, compiled apart and called where used (not inlined)."""
    return njit(**NJIT_LEAF)(getattr(f, "py_func", f))


# The sweep kernels' scalar records call these (with their + - * inline): inlined, each of
# the three rules was copied into both kernels' intermediate code (Numba deep-copies a
# helper's IR at every call site it inlines), ~1 s of the first backward's cold compile
# (with _trig_adjoints: 16.1 against 17.4 s, median of 6 alternating cold starts), where a
# call costs a scalar record nothing measurable (5.2-5.8 against 5.6-6.2 ns per record,
# benchmarks/core.py's bench_sweep).  The elementwise loops keep them inlined: there the
# op's branch is hoisted out of the loop.
_unary_b_call = _called(_unary_b)
_binary_ba_call = _called(_binary_ba)
_binary_bb_call = _called(_binary_bb)


def _make_sweep(full):
    """The reverse sweep.  ``full`` (a constant of each compiled kernel): every kind;
    otherwise the kinds outside OTHER only, stopping with AT_OTHER at any other record, so
    that a tape of those alone never compiles the rest."""
    # The core kernel is a leaf (no reference counting: it never allocates) with the
    # per-record helpers inlined (see _inlined).  Each call site names them as globals under
    # `if full`: a closure holding a dispatcher is never found in Numba's cache again (the
    # dispatcher pickles with a new id in every process).
    @njit(**(NJIT if full else NJIT_LEAF))
    def sweep(op, a, b, c, val, n, off, aux, flags, adj, bulk, badj, auxi,
              start, pending, retain, hits, mrec, mat, skip_hook):
        """Reverse sweep from record ``start`` down, until no reached record is pending.

        Records of kind SOURCE, and records flagged CAPTURE, are written to ``hits``
        for Python to deliver (leaf gradients, cross-segment links, captured
        inputs).  ``mrec``/``mat``: records modified in place (sorted) and the first
        record recorded after each modification; consumers older than that read a
        stale saved value, which is PyTorch's version-counter error.

        Python code runs inside a backward only at two kinds of records: a record
        flagged HOOK (the sweep stops before it, Python rewrites its adjoint and
        resumes at it with ``skip_hook`` set to it) and a custom Function's PYFUNC
        record (the sweep stops after it, Python runs the Function's backward, seeds
        its inputs and resumes below it).  The core kernel (``full`` False) also stops
        at a record of the OTHER kinds, with AT_OTHER, once it has marked it swept (as for
        PYFUNC); Python runs its _other_adjoint and resumes below it with the full kernel.
        The test for AT_OTHER sits where the other kinds branch off, not before the
        bookkeeping: there it cost ~1 ns per scalar record (8.7 against 7.6 ns).
        Returns (status, record, records newly freed, number of hits, pending).
        """
        nh = 0
        nfree = 0
        auxf = auxi.view(np.float64)  # aux entries of float constants are stored as bits
        i = start
        while i >= 0 and pending > 0:
            f = flags[i]
            if not f & REACHED:
                i -= 1
                continue
            if f & HOOK and i != skip_hook:
                return AT_HOOK, i, nfree, nh, pending
            o = op[i]
            kd = KIND[o]
            sv = SAVES[o]
            if f & FREED and sv:
                return ERR_FREED, i, nfree, nh, pending
            if sv & SAVE_OUT and _stale(flags, i, i, mrec, mat):
                return ERR_MODIFIED, i, nfree, nh, pending
            if retain:
                flags[i] = f & (0xFF ^ REACHED)
            else:
                flags[i] = (f & (0xFF ^ REACHED)) | FREED
                nfree += 0 if f & FREED else 1
            pending -= 1
            if kd == CALLBACK:  # run the Function's backward in Python, then resume below
                return AT_CALLBACK, i, nfree, nh, pending
            if kd == CBOUT:  # a Function's output: its adjoint to Python, reach the Function
                hits[nh] = i
                nh += 1
                gx, new = _target(a[i], n, off, adj, badj, flags)
                pending += new
                i -= 1
                continue
            if f & CAPTURE or kd == SOURCE:
                if o == DEAD:
                    return ERR_FREED, i, nfree, nh, pending
                hits[nh] = i
                nh += 1
                if kd == SOURCE:
                    i -= 1
                    continue
            ra = a[i]
            rb = b[i]
            cc = c[i]
            if n[i] == 1 and kd <= GATHER:
                # one element: work on the val/adj columns directly, no array views
                g0 = adj[i]
                if kd == GATHER:  # one element of ra (x[i, j] in scalar code)
                    if op[ra] != CONST:
                        if not flags[ra] & REACHED:
                            gx, new = _target(ra, n, off, adj, badj, flags)
                            pending += new
                        at = aux[i]
                        # element 0 of a map: a strided map's base, an explicit map's first
                        k = auxi[at + 1] if auxi[at] >= 0 else auxi[at + 2]
                        if n[ra] == 1:
                            adj[ra] += g0
                        else:
                            badj[off[ra] + k] += g0
                    i -= 1
                    continue
                if op[ra] != CONST:
                    if sv & SAVE_IN and kd == BINARY and _stale(flags, rb, i, mrec, mat):
                        return ERR_MODIFIED, rb, nfree, nh, pending
                    if sv & SAVE_IN and kd == UNARY and _stale(flags, ra, i, mrec, mat):
                        return ERR_MODIFIED, ra, nfree, nh, pending
                    if not flags[ra] & REACHED:
                        adj[ra] = 0.0
                        flags[ra] |= REACHED
                        pending += 1
                    if g0 != 0.0:  # (+ - * inline, the other rules called: see _unary_b_call)
                        if kd == UNARY:
                            if o == MULC or o == MULADDC:
                                adj[ra] += g0 * cc
                            elif o == ADDC or o == SUBC:
                                adj[ra] += g0
                            else:
                                dd = auxf[aux[i]] if aux[i] >= 0 else 0.0
                                adj[ra] += _unary_b_call(o, g0, val[ra], val[i], cc, dd)
                        elif o == ADD or o == SUB:
                            adj[ra] += g0
                        elif o == MUL:
                            adj[ra] += g0 * val[rb]
                        else:
                            adj[ra] += _binary_ba_call(o, g0, val[ra], val[rb], val[i], cc)
                if kd == BINARY and op[rb] != CONST:
                    if sv & SAVE_IN and _stale(flags, ra, i, mrec, mat):
                        return ERR_MODIFIED, ra, nfree, nh, pending
                    if not flags[rb] & REACHED:
                        adj[rb] = 0.0
                        flags[rb] |= REACHED
                        pending += 1
                    if g0 != 0.0:
                        if o == ADD:
                            adj[rb] += g0
                        elif o == MUL:
                            adj[rb] += g0 * val[ra]
                        elif o == SUB:
                            adj[rb] += -g0
                        else:
                            adj[rb] += _binary_bb_call(o, g0, val[ra], val[rb], val[i], cc)
                i -= 1
                continue
            if kd == UNARY or kd == BINARY:
                # elementwise over arrays: every operand lives in the bulk arena at its offset;
                # the loops index the arenas directly (array views cost reference counting)
                if op[ra] != CONST:  # saved operands modified since: the other one's first
                    if sv & SAVE_IN and _stale(flags, rb if kd == BINARY else ra, i, mrec, mat):
                        return ERR_MODIFIED, rb if kd == BINARY else ra, nfree, nh, pending
                if kd == BINARY and op[rb] != CONST:
                    if sv & SAVE_IN and _stale(flags, ra, i, mrec, mat):
                        return ERR_MODIFIED, ra, nfree, nh, pending
                if full:
                    pending += _ew_adjoint(i, op, a, b, c, n, off, aux, auxi, adj, badj, bulk,
                                           flags)
                else:
                    pending += _ew_adjoint_i(i, op, a, b, c, n, off, aux, auxi, adj, badj, bulk,
                                             flags)
                i -= 1
                continue
            if kd == GATHER or kd == CONCAT or kd == REDUCE:  # views cost reference counts
                if kd == GATHER:
                    if full:
                        pending += _gather_adjoint(i, op, a, n, off, aux, auxi, adj, badj, flags)
                    else:
                        pending += _gather_adjoint_i(i, op, a, n, off, aux, auxi, adj, badj, flags)
                elif kd == CONCAT:
                    if full:
                        pending += _concat_adjoint(i, op, n, off, aux, auxi, adj, badj, flags)
                    else:
                        pending += _concat_adjoint_i(i, op, n, off, aux, auxi, adj, badj, flags)
                else:
                    if full:
                        pending += _reduce_adjoint(i, op, a, c, n, off, aux, auxi, adj, badj, flags)
                    else:
                        pending += _reduce_adjoint_i(i, op, a, c, n, off, aux, auxi, adj, badj,
                                                     flags)
                i -= 1
                continue
            if full:  # a constant: the core kernel never compiles _other_adjoint
                st, r, new = _other_adjoint(i, op, a, b, c, val, n, off, aux, flags, adj,
                                            bulk, badj, auxi, mrec, mat)
                if st != DONE:
                    return st, r, nfree, nh, pending
                pending += new
            else:  # Python runs this record's _other_adjoint, then resumes with the full kernel
                return AT_OTHER if OTHER[kd] else ERR_OPCODE, i, nfree, nh, pending
            i -= 1
        return DONE, i, nfree, nh, pending

    return sweep


# sweep: every kind (traces and, from the first record of an OTHER kind on, backward);
# sweep_core: the kinds scalar and elementwise code records, compiled alone, as a leaf
sweep = _make_sweep(True)
sweep_core = _make_sweep(False)


@njit(**NJIT)
def clear_reached(flags, hi):
    """After an aborted sweep: forget what it had reached."""
    for i in range(hi + 1):
        flags[i] &= 0xFF ^ REACHED


@njit(**NJIT)
def reachable(op, a, b, c, aux, auxi, roots, hi):
    """The records below ``hi`` that records ``roots`` depend on (themselves included), as a
    mask; an empty mask when one of them is a custom Function's, whose inputs only its
    Python closure knows.  Over-approximates: ``a`` and ``b`` count as operands whenever
    they name an earlier record, and an AXPY's ``c`` too (AXPYS keeps a term there).
    Used to let go of IMPORT records no live tensor depends on (_engine._drop_dead_imports)."""
    reach = np.zeros(hi, dtype=np.bool_)
    top = -1
    for r in roots:
        if 0 <= r < hi:
            reach[r] = True
            top = max(top, r)
    for i in range(top, -1, -1):
        if not reach[i]:
            continue
        kd = KIND[op[i]]
        if kd == SOURCE:
            continue
        if kd == CALLBACK:
            return np.zeros(0, dtype=np.bool_)
        if kd == CONCAT:
            at = aux[i]
            pos = at + 1
            for _ in range(auxi[at]):
                if 0 <= auxi[pos] < i:
                    reach[auxi[pos]] = True
                pos += 3 + 2 * auxi[pos + 1]
            continue
        if 0 <= a[i] < i:
            reach[a[i]] = True
        if 0 <= b[i] < i:
            reach[b[i]] = True
        if kd == MASK or kd == AXPY:  # MASK's mask and AXPYS's v are records named in c
            rc = int(c[i])
            if 0 <= rc < i:
                reach[rc] = True
        if op[i] == AXPYN:
            at = aux[i]
            for t in range(2 * auxi[at]):
                r = auxi[at + 1 + t]
                if 0 <= r < i:
                    reach[r] = True
    return reach

# ------------------------------------------------ replay: a recorded tape as a program
# A trace (tapegrad.trace) keeps one segment's columns.  ``replay`` recomputes
# every record from its operands, in recording order, so the same arrays then
# hold the values at new inputs and ``sweep`` runs on them unchanged.
# ``tangent`` pushes forward-mode tangents through the same records.  Records
# whose value a replay cannot recompute (custom Functions, writes outside the
# graph) are refused when the trace is made.


@_j
def _extreme_better(o, v, best):
    if v != v:
        return True  # nan wins, as in PyTorch
    if o == AMAX or o == MAXALL:
        return v > best
    return v < best


@njit(**NJIT)
def _replace_at(kd, y, x, z, auxi, at):
    """y = x with the elements the map at ``auxi[at]`` picks replaced by z (SETITEM) or
    with z added to them (SCATTERADD).  Linear in (x, z): values and tangents alike."""
    m = index_map(auxi, at)
    y[:] = x
    for k in range(m.size):
        if kd == SETITEM:
            y[m[k]] = z[k]
        else:
            y[m[k]] += z[k]


LEAN_KINDS = (SOURCE, UNARY, BINARY, GATHER, REDUCE, CONCAT, AXPY)  # what the leaf sweeps do


@njit(**NJIT_LEAF)
def _replay_lean(op, a, b, c, val, n, off, aux, auxi, bulk, start, stop):
    """Forward sweep over records ``start ..`` while their kinds are LEAN_KINDS; returns
    the first record it did not recompute (``stop`` when done)."""
    auxf = auxi.view(np.float64)
    for i in range(start, stop):
        o = op[i]
        kd = KIND[o]
        if kd == SOURCE:
            continue
        ra = a[i]
        cc = c[i]
        if n[i] == 1 and kd <= GATHER:
            if kd == UNARY:
                dd = auxf[aux[i]] if aux[i] >= 0 else 0.0
                val[i] = _unary_f(o, val[ra], cc, dd)
            elif kd == BINARY:
                val[i] = _binary_f(o, val[ra], val[b[i]], cc)
            else:  # one element of ra: element 0 of the map
                at = aux[i]
                k = auxi[at + 1] if auxi[at] >= 0 else auxi[at + 2]
                val[i] = val[ra] if n[ra] == 1 else bulk[off[ra] + k]
        elif kd == UNARY:  # over arrays: operands in the bulk arena
            dd = auxf[aux[i]] if aux[i] >= 0 else 0.0
            _unary_values(o, bulk, off[i], off[ra], n[i], cc, dd)
        elif kd == BINARY:
            _binary_values(o, bulk, off[i], off[ra], off[b[i]], n[i], cc)
        elif kd == GATHER:
            _mv(_view(i, n, off, val, bulk), _view(ra, n, off, val, bulk), auxi, aux[i],
                MOVE_GATHER)
        elif kd == CONCAT:
            y = _view(i, n, off, val, bulk)
            at = aux[i]
            pos = at + 1
            for _ in range(auxi[at]):
                rj = auxi[pos]
                ndim = auxi[pos + 1]
                _mv(y, _view(rj, n, off, val, bulk), auxi, pos + 1, MOVE_SCATTER)
                pos += 3 + 2 * ndim
        elif kd == REDUCE:  # sum, then scale: the mean of nothing is 0 * inf = nan
            x = _view(ra, n, off, val, bulk)
            y = _view(i, n, off, val, bulk)
            if aux[i] < 0:  # everything into one element
                y[0] = _total(x, _u(0), _u(x.size)) * cc
            else:
                _fill(y, 0.0)
                _move(y, 0, x, 0, auxi, aux[i], _variable(MOVE_SCATTER_ADD), 1.0)
                for k in range(y.size):
                    y[k] *= cc
        elif kd == AXPY and o == AXPYS:  # z + s * v, rounded as the product and the sum were
            s = val[b[i]]
            yu, zu, vu = _u(off[i]), _u(off[ra]), _u(off[int(cc)])
            for k in range(_u(n[i])):
                bulk[yu + k] = bulk[zu + k] + s * bulk[vu + k]
        elif kd == AXPY and o == AXPYN:  # ((z + s1 * v1) + s2 * v2) + ..., as the chain was
            at = aux[i]
            yu, zu, mu = _u(off[i]), _u(off[ra]), _u(n[i])
            s, vu = val[auxi[at + 1]], _u(off[auxi[at + 2]])
            for k in range(mu):
                bulk[yu + k] = bulk[zu + k] + s * bulk[vu + k]
            for t in range(1, auxi[at]):
                s, vu = val[auxi[at + 1 + 2 * t]], _u(off[auxi[at + 2 + 2 * t]])
                for k in range(mu):
                    bulk[yu + k] = bulk[yu + k] + s * bulk[vu + k]
        elif kd == AXPY:  # AXPYC: z + v * c / d, left to right, as the records were
            d = auxf[aux[i]]
            yu, zu, vu = _u(off[i]), _u(off[ra]), _u(off[b[i]])
            if d == 1.0:  # no division was recorded ((v * c) / 1 is v * c)
                for k in range(_u(n[i])):
                    bulk[yu + k] = bulk[zu + k] + bulk[vu + k] * cc
            else:
                for k in range(_u(n[i])):
                    bulk[yu + k] = bulk[zu + k] + bulk[vu + k] * cc / d
        else:
            return i
    return stop


@njit(**NJIT)
def replay(op, a, b, c, val, n, off, aux, auxi, bulk, start, stop):
    """Forward sweep: recompute records ``start .. stop-1`` from their operands (the
    common kinds in a leaf, the others here)."""
    i = start
    while i < stop:
        i = _replay_lean(op, a, b, c, val, n, off, aux, auxi, bulk, i, stop)
        if i < stop:
            _replay_other(op, a, b, c, val, n, off, aux, auxi, bulk, i)
            i += 1


@njit(**NJIT)
def _replay_other(op, a, b, c, val, n, off, aux, auxi, bulk, i):
    """Recompute record i, of a kind the leaf replay leaves (they allocate)."""
    o = op[i]
    kd = KIND[o]
    ra = a[i]
    cc = c[i]
    y = _view(i, n, off, val, bulk)
    if kd == REDUCE or kd == NORM:
        x = _view(ra, n, off, val, bulk)
        y[:] = 0.0
        m = group_map(auxi, aux[i], x.size)
        if kd == REDUCE:  # sum, then scale: the mean of nothing is 0 * inf = nan
            for k in range(x.size):
                y[m[k]] += x[k]
            for k in range(y.size):
                y[k] *= cc
        else:
            for k in range(x.size):
                y[m[k]] += x[k] * x[k]
            for k in range(y.size):
                y[k] = math.sqrt(y[k])
    elif kd == MATMUL:
        at = aux[i]
        mm = auxi[at]
        kk = auxi[at + 1]
        nn = auxi[at + 2]
        nb = auxi[at + 3]
        x3 = _view(ra, n, off, val, bulk).reshape((nb, mm, kk))
        z3 = _view(b[i], n, off, val, bulk).reshape((nb, kk, nn))
        y3 = y.reshape((nb, mm, nn))
        for q in range(nb):
            y3[q] = np.dot(x3[q], z3[q])
    elif kd == SETITEM or kd == SCATTERADD:
        _replace_at(kd, y, _view(ra, n, off, val, bulk), _view(b[i], n, off, val, bulk),
                    auxi, aux[i])
    elif kd == FILL:
        return  # a constant: the recorded value stands
    elif kd == COPY:
        z = _view(b[i], n, off, val, bulk)
        y[:] = z
    elif kd == MASK:
        x = _view(ra, n, off, val, bulk)
        mask = _view(int(cc), n, off, val, bulk)
        rb = b[i]
        if rb >= 0:
            z = _view(rb, n, off, val, bulk)
            for k in range(y.size):
                y[k] = x[k] if mask[k] != 0.0 else z[k]
        else:
            for k in range(y.size):
                y[k] = x[k] if mask[k] != 0.0 else 0.0
    elif kd == EXTREME or kd == PRODUCT:
        x = _view(ra, n, off, val, bulk)
        m = group_map(auxi, aux[i], x.size)
        if kd == PRODUCT:
            y[:] = 1.0
            for k in range(x.size):
                y[m[k]] *= x[k]
        else:
            seen = np.zeros(y.size, dtype=np.bool_)
            for k in range(x.size):
                j = m[k]
                if not seen[j] or (y[j] == y[j] and _extreme_better(o, x[k], y[j])):
                    y[j] = x[k]
                    seen[j] = True
    elif kd == SCAN or kd == SOFTMAXES:
        x = _view(ra, n, off, val, bulk)
        at = aux[i]
        outer = auxi[at]
        length = auxi[at + 1]
        inner = auxi[at + 2]
        for p in range(outer):
            for q in range(inner):
                base = p * length * inner + q
                if o == CUMSUM or o == CUMPROD:
                    acc = 0.0 if o == CUMSUM else 1.0
                    for t in range(length):
                        k = base + t * inner
                        acc = acc + x[k] if o == CUMSUM else acc * x[k]
                        y[k] = acc
                else:
                    top = -math.inf
                    for t in range(length):
                        top = max(top, x[base + t * inner])
                    if not math.isfinite(top):
                        top = 0.0
                    s = 0.0
                    for t in range(length):
                        s += math.exp(x[base + t * inner] - top)
                    for t in range(length):
                        k = base + t * inner
                        if o == SOFTMAX:
                            y[k] = math.exp(x[k] - top) / s
                        else:
                            y[k] = x[k] - top - math.log(s)


@njit(**NJIT_LEAF)
def _tangent_lean(op, a, b, c, val, n, off, aux, auxi, bulk, dval, dbulk, start, stop):
    """Forward-mode sweep over records ``start ..`` while their kinds are LEAN_KINDS;
    returns the first record it did not push forward (``stop`` when done)."""
    auxf = auxi.view(np.float64)
    for i in range(start, stop):
        o = op[i]
        kd = KIND[o]
        if kd == SOURCE:
            continue
        ra = a[i]
        cc = c[i]
        # constants have no tangent; a zero tangent still multiplies (0 * inf is nan, as
        # in PyTorch's forward mode)
        if n[i] == 1 and kd == GATHER:
            at = aux[i]
            k = auxi[at + 1] if auxi[at] >= 0 else auxi[at + 2]
            dval[i] = dval[ra] if n[ra] == 1 else dbulk[off[ra] + k]
            continue
        if n[i] == 1 and kd <= BINARY:
            if kd == UNARY:
                dd = auxf[aux[i]] if aux[i] >= 0 else 0.0
                dval[i] = 0.0 if op[ra] == CONST else _unary_b(o, dval[ra], val[ra], val[i], cc,
                                                               dd)
            else:
                rb = b[i]
                t = 0.0
                if op[ra] != CONST:
                    t += _binary_ba(o, dval[ra], val[ra], val[rb], val[i], cc)
                if op[rb] != CONST:
                    t += _binary_bb(o, dval[rb], val[ra], val[rb], val[i], cc)
                dval[i] = t
            continue
        y = _view(i, n, off, val, bulk)
        ty = _view(i, n, off, dval, dbulk)
        if kd == UNARY:
            x = _view(ra, n, off, val, bulk)
            tx = _view(ra, n, off, dval, dbulk)
            dd = auxf[aux[i]] if aux[i] >= 0 else 0.0
            live = op[ra] != CONST
            for k in range(y.size):
                ty[k] = _unary_b(o, tx[k], x[k], y[k], cc, dd) if live else 0.0
        elif kd == BINARY:
            rb = b[i]
            x = _view(ra, n, off, val, bulk)
            z = _view(rb, n, off, val, bulk)
            tx = _view(ra, n, off, dval, dbulk)
            tz = _view(rb, n, off, dval, dbulk)
            la = op[ra] != CONST
            lb = op[rb] != CONST
            for k in range(y.size):
                t = 0.0
                if la:
                    t += _binary_ba(o, tx[k], x[k], z[k], y[k], cc)
                if lb:
                    t += _binary_bb(o, tz[k], x[k], z[k], y[k], cc)
                ty[k] = t
        elif kd == GATHER:
            _move(ty, 0, _view(ra, n, off, dval, dbulk), 0, auxi, aux[i], _variable(MOVE_GATHER),
                  1.0)
        elif kd == REDUCE:  # the scaled sum of the group's tangents
            _fill(ty, 0.0)
            tx = _view(ra, n, off, dval, dbulk)
            if aux[i] < 0:
                ty[0] = _total(tx, _u(0), _u(tx.size)) * cc
            else:
                _move(ty, 0, tx, 0, auxi, aux[i], _variable(MOVE_SCATTER_ADD), cc)
        elif kd == CONCAT:
            at = aux[i]
            pos = at + 1
            for _ in range(auxi[at]):
                rj = auxi[pos]
                ndim = auxi[pos + 1]
                _move(ty, 0, _view(rj, n, off, dval, dbulk), 0, auxi, pos + 1,
                      _variable(MOVE_SCATTER), 1.0)
                pos += 3 + 2 * ndim
        elif kd == AXPY and o == AXPYC:  # (0 + tz) + tv * c / d
            d = auxf[aux[i]]
            tv = _view(b[i], n, off, dval, dbulk)
            tz = _view(ra, n, off, dval, dbulk)
            lz = op[ra] != CONST
            for k in range(y.size):
                t = 0.0
                if lz:
                    t += tz[k]
                ty[k] = t + tv[k] * cc / d
        elif kd == AXPY:  # the tangents of the sum of the product of the broadcast, each
            # term's (AXPYN's) added as its AXPYS record added it: (0 + t_z) + t_term
            nterms = auxi[aux[i]] if o == AXPYN else 1
            for j in range(nterms):
                if o == AXPYN:
                    rs, rv = auxi[aux[i] + 1 + 2 * j], auxi[aux[i] + 2 + 2 * j]
                else:
                    rs, rv = b[i], int(cc)
                s, ts = val[rs], dval[rs]
                v = _view(rv, n, off, val, bulk)
                tv = _view(rv, n, off, dval, dbulk)
                tz = _view(ra, n, off, dval, dbulk) if j == 0 else ty
                lz = op[ra] != CONST or j > 0
                ls, lv = op[rs] != CONST, op[rv] != CONST
                for k in range(y.size):
                    tp = 0.0
                    if ls:
                        tp += ts * v[k]
                    if lv:
                        tp += s * tv[k]
                    t = 0.0
                    if lz:
                        t += tz[k]
                    ty[k] = t + tp
        else:
            return i
    return stop


@njit(**NJIT)
def tangent(op, a, b, c, val, n, off, aux, auxi, bulk, dval, dbulk, start, stop):
    """Forward-mode sweep: the tangent of every record from its operands' tangents
    (values from a ``replay``; source records' tangents are set by the caller): the
    common kinds in a leaf, the others here."""
    i = start
    while i < stop:
        i = _tangent_lean(op, a, b, c, val, n, off, aux, auxi, bulk, dval, dbulk, i, stop)
        if i < stop:
            _tangent_other(op, a, b, c, val, n, off, aux, auxi, bulk, dval, dbulk, i)
            i += 1


@njit(**NJIT)
def _tangent_other(op, a, b, c, val, n, off, aux, auxi, bulk, dval, dbulk, i):
    """The tangent of record i, of a kind the leaf leaves (they allocate)."""
    o = op[i]
    kd = KIND[o]
    ra = a[i]
    cc = c[i]
    y = _view(i, n, off, val, bulk)
    ty = _view(i, n, off, dval, dbulk)
    if kd == NORM or kd == PRODUCT:
        x = _view(ra, n, off, val, bulk)
        tx = _view(ra, n, off, dval, dbulk)
        ty[:] = 0.0
        m = group_map(auxi, aux[i], x.size)
        if kd == NORM:
            for k in range(x.size):
                j = m[k]
                if y[j] != 0.0:
                    ty[j] += x[k] * tx[k] / y[j]
        else:  # product of the other elements of the group, exact with zeros
            zeros, nonzero = _group_products(x, m, y.size)
            for k in range(x.size):
                j = m[k]
                if zeros[j] == 0:
                    ty[j] += tx[k] * nonzero[j] / x[k]
                elif zeros[j] == 1 and x[k] == 0.0:
                    ty[j] += tx[k] * nonzero[j]
    elif kd == MATMUL:
        at = aux[i]
        mm = auxi[at]
        kk = auxi[at + 1]
        nn = auxi[at + 2]
        nb = auxi[at + 3]
        rb = b[i]
        x3 = _view(ra, n, off, val, bulk).reshape((nb, mm, kk))
        z3 = _view(rb, n, off, val, bulk).reshape((nb, kk, nn))
        tx3 = _view(ra, n, off, dval, dbulk).reshape((nb, mm, kk))
        tz3 = _view(rb, n, off, dval, dbulk).reshape((nb, kk, nn))
        ty3 = ty.reshape((nb, mm, nn))
        for q in range(nb):
            ty3[q] = np.dot(tx3[q], z3[q]) + np.dot(x3[q], tz3[q])
    elif kd == SETITEM or kd == SCATTERADD:  # linear: the tangent is the same op
        _replace_at(kd, ty, _view(ra, n, off, dval, dbulk), _view(b[i], n, off, dval, dbulk),
                    auxi, aux[i])
    elif kd == FILL:
        ty[:] = 0.0
    elif kd == COPY:
        ty[:] = _view(b[i], n, off, dval, dbulk)
    elif kd == MASK:
        tx = _view(ra, n, off, dval, dbulk)
        mask = _view(int(cc), n, off, val, bulk)
        rb = b[i]
        for k in range(y.size):
            if mask[k] != 0.0:
                ty[k] = tx[k]
            elif rb >= 0:
                ty[k] = dbulk[off[rb] + k] if n[rb] != 1 else dval[rb]
            else:
                ty[k] = 0.0
    elif kd == EXTREME:
        x = _view(ra, n, off, val, bulk)
        tx = _view(ra, n, off, dval, dbulk)
        m = group_map(auxi, aux[i], x.size)
        ties = np.zeros(y.size)
        ty[:] = 0.0
        for k in range(x.size):
            if x[k] == y[m[k]]:
                ties[m[k]] += 1.0
                ty[m[k]] += tx[k]
        for j in range(y.size):
            if ties[j] > 0.0:
                ty[j] /= ties[j]
    elif kd == SCAN or kd == SOFTMAXES:
        x = _view(ra, n, off, val, bulk)
        tx = _view(ra, n, off, dval, dbulk)
        at = aux[i]
        outer = auxi[at]
        length = auxi[at + 1]
        inner = auxi[at + 2]
        for p in range(outer):
            for q in range(inner):
                base = p * length * inner + q
                if o == CUMSUM:
                    acc = 0.0
                    for t in range(length):
                        acc += tx[base + t * inner]
                        ty[base + t * inner] = acc
                elif o == CUMPROD:  # d y_t = sum_s prod_{r<=t, r!=s} x_r dx_s, exact at zeros
                    for t in range(length):
                        acc = 0.0
                        for s in range(t + 1):
                            pr = tx[base + s * inner]
                            for r in range(t + 1):
                                if r != s:
                                    pr *= x[base + r * inner]
                            acc += pr
                        ty[base + t * inner] = acc
                else:
                    acc = 0.0
                    for t in range(length):
                        k = base + t * inner
                        acc += tx[k] * (y[k] if o == SOFTMAX else math.exp(y[k]))
                    for t in range(length):
                        k = base + t * inner
                        ty[k] = y[k] * (tx[k] - acc) if o == SOFTMAX else tx[k] - acc


# ---- the driver: one compiled call per trace method.  ``ins``/``outs``: the input and
# output records; values travel flat, the records' elements concatenated in order.

@njit(**NJIT_LEAF)
def _load(flat, recs, n, off, col, arena):
    p = 0
    for j in range(recs.size):
        r = recs[j]
        m = n[r]
        if m == 1:
            col[r] = flat[p]
        else:  # a loop: slice assignment allocates (NumPy's overlap rule)
            o = off[r]
            for k in range(m):
                arena[o + k] = flat[p + k]
        p += m


@njit(**NJIT_LEAF)
def _store(flat, recs, n, off, col, arena):
    p = 0
    for j in range(recs.size):
        r = recs[j]
        m = n[r]
        if m == 1:
            flat[p] = col[r]
        else:
            o = off[r]
            for k in range(m):
                flat[p + k] = arena[o + k]
        p += m


@njit(**NJIT_LEAF)
def _failed_guard(val, guards, expect, truth):
    """Index of the first guard that differs from its recording, or -1: a truth test
    (``bool()``) must give the same truth value, a value read (``item()``) the same value."""
    for j in range(guards.size):
        v = val[guards[j]]
        e = expect[j]
        if truth[j] != 0:
            if (v != 0.0) != (e != 0.0):
                return j
        elif v != e and not (v != v and e != e):
            return j
    return -1


VALUES, PULLBACK, PUSHFORWARD = range(3)


@njit(**NJIT_LEAF)
def _sweep_lean(op, a, b, c, val, n, off, aux, auxi, adj, badj, bulk, flags, i, pending):
    """A trace's reverse sweep from record i down, over records of LEAN_KINDS: ``sweep``
    without its checks (a trace has no hooks, freed or modified records, and its sources
    need no delivery).  Stops at the first reached record of another kind and returns
    (that record, pending) for ``sweep`` to go on from."""
    auxf = auxi.view(np.float64)
    while i >= 0 and pending > 0:
        f = flags[i]
        if not f & REACHED:
            i -= 1
            continue
        o = op[i]
        kd = KIND[o]
        if kd != SOURCE and kd != UNARY and kd != BINARY and kd != GATHER and \
                kd != CONCAT and kd != REDUCE and kd != AXPY:
            return i, pending
        flags[i] = f & (0xFF ^ REACHED)
        pending -= 1
        if kd == SOURCE:
            i -= 1
            continue
        ra = a[i]
        if n[i] != 1 or kd > GATHER:  # arrays
            if kd == UNARY or kd == BINARY:
                pending += _ew_adjoint_i(i, op, a, b, c, n, off, aux, auxi, adj, badj, bulk,
                                         flags)
            elif kd == GATHER:
                pending += _gather_adjoint_i(i, op, a, n, off, aux, auxi, adj, badj, flags)
            elif kd == CONCAT:
                pending += _concat_adjoint_i(i, op, n, off, aux, auxi, adj, badj, flags)
            elif kd == AXPY:
                pending += _axpy_adjoint(i, op, a, b, c, val, n, off, aux, auxi, adj, badj, bulk,
                                     flags)
            else:
                pending += _reduce_adjoint_i(i, op, a, c, n, off, aux, auxi, adj, badj, flags)
            i -= 1
            continue
        g0 = adj[i]
        if op[ra] != CONST:
            if kd == GATHER:
                pending += _reach(ra, n, off, adj, badj, flags)
                at = aux[i]
                k = auxi[at + 1] if auxi[at] >= 0 else auxi[at + 2]
                if n[ra] == 1:
                    adj[ra] += g0
                else:
                    badj[off[ra] + k] += g0
            else:
                if not flags[ra] & REACHED:
                    adj[ra] = 0.0
                    flags[ra] |= REACHED
                    pending += 1
                if g0 != 0.0:
                    if kd == UNARY:
                        dd = auxf[aux[i]] if aux[i] >= 0 else 0.0
                        adj[ra] += _unary_b(o, g0, val[ra], val[i], c[i], dd)
                    else:
                        adj[ra] += _binary_ba(o, g0, val[ra], val[b[i]], val[i], c[i])
        if kd == BINARY:
            rb = b[i]
            if op[rb] != CONST:
                if not flags[rb] & REACHED:
                    adj[rb] = 0.0
                    flags[rb] |= REACHED
                    pending += 1
                if g0 != 0.0:
                    adj[rb] += _binary_bb(o, g0, val[ra], val[rb], val[i], c[i])
        i -= 1
    return i, pending


@njit(**NJIT_LEAF)
def _seed(ins, outs, v, n, off, adj, badj, flags, reach):
    """Start a trace's reverse sweep: inputs reached at zero (an input the sweep never
    reaches keeps a zero gradient), the outputs' adjoints seeded with ``v``.  Returns how
    many records are pending.  Without ``reach`` (the dense sweep, over adjoints zeroed
    beforehand) only seeds, leaving the flags alone."""
    pending = 0
    for q in range(ins.size if reach else 0):
        pending += _reach(ins[q], n, off, adj, badj, flags)
    s = 0
    for q in range(outs.size):
        r = outs[q]
        if reach:
            pending += _reach(r, n, off, adj, badj, flags)
        t = _view(r, n, off, adj, badj)
        for k in range(t.size):
            t[k] += v[s + k]
        s += t.size
    return pending


@njit(**NJIT_LEAF)
def _zero_sources(op, n, off, col, arena):
    """Zero the values of the source records (inputs, constants) in ``col``/``arena``."""
    for i in range(op.size):
        if KIND[op[i]] == SOURCE:
            _fill(_view(i, n, off, col, arena), 0.0)


@njit(**NJIT_LEAF)
def _fill(x, v):
    for k in range(x.size):
        x[k] = v


@_j
def _unpacked(icols, fcols, links, A, B):
    """A trace call's arrays as columns: the int columns op, a, b, n, off, aux; the float
    columns c, val; adjoints and tangents (one-element, bulk); and out of ``links`` (three
    counts, then the records) the inputs, outputs, guards and the guards' truth flags."""
    ni, no, ng = links[0], links[1], links[2]
    g = 3 + ni + no
    return (icols[0], icols[1], icols[2], icols[3], icols[4], icols[5], fcols[0], fcols[1],
            A[0], B[0], A[1], B[1], links[3:3 + ni], links[3 + ni:g], links[g:g + ng],
            links[g + ng:g + 2 * ng])


@njit(**NJIT_LEAF)
def trace_lean(icols, fcols, auxi, bulk, links, expect, mode, X, Y, seeds, G, failed, flags,
               A, B):
    """``trace_run`` for a program whose records are all of LEAN_KINDS: no reference
    counting anywhere.  With the DENSE bit in ``mode`` (a program
    of one-element records), the reverse sweep is ``_sweep_dense``."""
    (op, a, b, n, off, aux, c, val, adj, badj, dval, dbulk, ins, outs, guards,
     truth) = _unpacked(icols, fcols, links, A, B)
    for p in range(X.shape[0]):
        k = _lean_forward(op, a, b, c, val, n, off, aux, auxi, bulk, ins, outs, guards, truth,
                          expect, X[p], Y[p])
        failed[p] = k
        if k >= 0:
            continue
        if mode & 7 == PULLBACK:
            for j in range(seeds.shape[0]):
                _lean_reverse(op, a, b, c, val, n, off, aux, auxi, bulk, ins, outs, mode,
                              seeds[j], G[p, j], flags, adj, badj)
        elif mode & 7 == PUSHFORWARD:
            for j in range(seeds.shape[0]):
                # every other record's tangent is written whole before it is read
                _zero_sources(op, n, off, dval, dbulk)
                _load(seeds[j], ins, n, off, dval, dbulk)
                _tangent_lean(op, a, b, c, val, n, off, aux, auxi, bulk, dval, dbulk, 0,
                              op.size)
                _store(G[p, j], outs, n, off, dval, dbulk)


@_j
def _lean_forward(op, a, b, c, val, n, off, aux, auxi, bulk, ins, outs, guards, truth,
                  expect, x, y):
    """One point of a lean program's forward sweep: inputs from ``x``, outputs into ``y``
    unless a guard fails.  Returns the first failed guard, or -1."""
    _load(x, ins, n, off, val, bulk)
    if _replay_lean(op, a, b, c, val, n, off, aux, auxi, bulk, 0, op.size) < op.size:
        raise RuntimeError("tapegrad: trace_lean met a record it does not replay")
    k = _failed_guard(val, guards, expect, truth)
    if k < 0:
        _store(y, outs, n, off, val, bulk)
    return k


@_j
def _lean_reverse(op, a, b, c, val, n, off, aux, auxi, bulk, ins, outs, mode, seed, g, flags,
                  adj, badj):
    """One reverse sweep of a lean program, its outputs seeded with ``seed``, the inputs'
    adjoints into ``g`` (the dense sweep with the DENSE bit in ``mode``)."""
    if mode & DENSE:
        _fill(adj, 0.0)
        _fill(badj, 0.0)
        _seed(ins, outs, seed, n, off, adj, badj, flags, False)
        _sweep_dense(op, a, b, c, val, n, off, aux, auxi, adj, badj)
    else:
        pending = _seed(ins, outs, seed, n, off, adj, badj, flags, True)
        _sweep_lean(op, a, b, c, val, n, off, aux, auxi, adj, badj, bulk, flags, op.size - 1,
                    pending)
    _store(g, ins, n, off, adj, badj)


DENSE = 8  # a mode bit for trace_lean: every record but the sources has one element


@njit(**NJIT_LEAF)
def _sweep_dense(op, a, b, c, val, n, off, aux, auxi, adj, badj):
    """The reverse sweep of a program of one-element records (sources aside), over
    adjoints zeroed beforehand and seeded: no reached flags, no pending count.  A record
    whose adjoint is zero (unreached, or reached with zero) passes nothing on, as in
    ``sweep``; a constant operand's adjoint slot is written and never read."""
    auxf = auxi.view(np.float64)
    nxt = -1  # the adjoint just updated, kept in a register for the next record (as replay)
    carry = 0.0
    for i in range(op.size - 1, -1, -1):
        g0 = carry if i == nxt else adj[i]
        if g0 == 0.0:
            continue
        o = op[i]
        kd = KIND[o]
        if kd == SOURCE:
            continue
        ra = a[i]
        if kd == UNARY:
            dd = auxf[aux[i]] if aux[i] >= 0 else 0.0
            carry = adj[ra] + _unary_b(o, g0, val[ra], val[i], c[i], dd)
            adj[ra] = carry
            nxt = ra
        elif kd == BINARY:
            rb = b[i]
            x, z, y, cc = val[ra], val[rb], val[i], c[i]
            ta = adj[ra] + _binary_ba(o, g0, x, z, y, cc)
            adj[ra] = ta
            tb = adj[rb] + _binary_bb(o, g0, x, z, y, cc)
            adj[rb] = tb
            if rb == i - 1:
                carry, nxt = tb, rb
            elif ra == i - 1:
                carry, nxt = ta, ra
            else:
                nxt = -1
        else:  # GATHER: element 0 of the map
            at = aux[i]
            k = auxi[at + 1] if auxi[at] >= 0 else auxi[at + 2]
            if n[ra] == 1:
                adj[ra] += g0
            else:
                badj[off[ra] + k] += g0


@njit(**NJIT_LEAF)
def trace_packed(ibuf, fbuf, x, mode):
    """``trace_lean`` at the point ``x`` (flat) for one seed, with every other array packed
    into two buffers (a compiled call from Python costs ~100 ns per argument here; the
    layout is Trace._pack's).  Every array is a 1-d slice: a reshape costs ~13 ns here.
    Returns the first failed guard, or -1."""
    nrec, nauxi, nlinks, nbulk = ibuf[0], ibuf[1], ibuf[2], ibuf[3]
    nexp, nin, nout = ibuf[4], ibuf[5], ibuf[6]
    p = PACK_HEADER
    op, a, b = ibuf[p:p + nrec], ibuf[p + nrec:p + 2 * nrec], ibuf[p + 2 * nrec:p + 3 * nrec]
    p += 3 * nrec
    n, off, aux = ibuf[p:p + nrec], ibuf[p + nrec:p + 2 * nrec], ibuf[p + 2 * nrec:p + 3 * nrec]
    p += 3 * nrec
    auxi = ibuf[p:p + nauxi]
    p += nauxi
    ni, no, ng = ibuf[p], ibuf[p + 1], ibuf[p + 2]
    ins = ibuf[p + 3:p + 3 + ni]
    outs = ibuf[p + 3 + ni:p + 3 + ni + no]
    guards = ibuf[p + 3 + ni + no:p + 3 + ni + no + ng]
    truth = ibuf[p + 3 + ni + no + ng:p + 3 + ni + no + 2 * ng]
    p += nlinks
    failed = ibuf[p:p + 1]
    p += 1
    flags = ibuf[p:p + (nrec + 7) // 8].view(np.uint8)
    c, val = fbuf[:nrec], fbuf[nrec:2 * nrec]
    q = 2 * nrec
    bulk = fbuf[q:q + nbulk]
    q += nbulk
    expect = fbuf[q:q + nexp]
    q += nexp
    q += nin  # the point, when the caller copied it in: x
    y = fbuf[q:q + nout]
    q += nout
    seed = fbuf[q:q + nout]
    q += nout
    g = fbuf[q:q + nin]
    q += nin
    adj = fbuf[q:q + nrec]
    q += 2 * nrec  # the one-element adjoints, then tangents (unused here)
    badj = fbuf[q:q + nbulk]
    k = _lean_forward(op, a, b, c, val, n, off, aux, auxi, bulk, ins, outs, guards, truth,
                      expect, x, y)
    failed[0] = k
    if k < 0 and mode & 7 == PULLBACK:
        _lean_reverse(op, a, b, c, val, n, off, aux, auxi, bulk, ins, outs, mode | ibuf[7],
                      seed, g, flags, adj, badj)
    return k


PACK_HEADER = 8


@njit(**NJIT)
def trace_run(icols, fcols, auxi, bulk, links, expect, mode, X, Y, seeds, G, failed, flags,
              A, B, hits):
    """Replay at each row of ``X`` (points x inputs): outputs into ``Y``; then, with mode
    PULLBACK, one reverse sweep per row of ``seeds`` (cotangents of the outputs) into
    ``G[point, row]`` (input cotangents), or with PUSHFORWARD one tangent sweep per row
    of ``seeds`` (input tangents) into ``G[point, row]`` (output tangents).  A point where
    a guard fails gets its index in ``failed`` (-1: all held) and no derivatives.

    The program travels packed (a call from Python costs ~100 ns per argument): ``icols``
    holds the int columns op, a, b, n, off, aux; ``fcols`` the float columns c, val; ``links`` the
    input, output and guard records and the guards' truth flags, after their three counts;
    ``A``/``B`` the adjoints and tangents of one-element and bulk values."""
    (op, a, b, n, off, aux, c, val, adj, badj, dval, dbulk, ins, outs, guards,
     truth) = _unpacked(icols, fcols, links, A, B)
    none = np.empty(0, dtype=np.int64)
    for p in range(X.shape[0]):
        _load(X[p], ins, n, off, val, bulk)
        replay(op, a, b, c, val, n, off, aux, auxi, bulk, 0, op.size)
        k = _failed_guard(val, guards, expect, truth)
        failed[p] = k
        if k >= 0:
            continue
        _store(Y[p], outs, n, off, val, bulk)
        for j in range(seeds.shape[0]):
            v = seeds[j]
            if mode == PULLBACK:
                pending = _seed(ins, outs, v, n, off, adj, badj, flags, True)
                r, pending = _sweep_lean(op, a, b, c, val, n, off, aux, auxi, adj, badj, bulk,
                                         flags, op.size - 1, pending)
                if pending > 0:
                    sweep(op, a, b, c, val, n, off, aux, flags, adj, bulk, badj, auxi, r,
                          pending, True, hits, none, none, -1)
                _store(G[p, j], ins, n, off, adj, badj)
            elif mode == PUSHFORWARD:  # as trace_lean: only sources need zeroing
                _zero_sources(op, n, off, dval, dbulk)
                _load(v, ins, n, off, dval, dbulk)
                tangent(op, a, b, c, val, n, off, aux, auxi, bulk, dval, dbulk, 0, op.size)
                _store(G[p, j], outs, n, off, dval, dbulk)
