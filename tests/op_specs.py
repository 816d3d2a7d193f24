"""The op table: one ``OpSpec`` row per op form, shared by the op, benchmark and trace tests.

Each row names an op form (``"exp.method"``, ``"add.op"``...), a function ``fn(lib, *tensors)``
that runs it with ``lib`` being ``tapegrad`` or ``torch``, the number of tensor arguments,
the shape cases to run it on (one tuple of shapes per case) and the domain each argument is
drawn from.  Adding an op means adding rows here; ``tests/test_ops.py`` parametrizes over
``cases()``.

Domains (see ``sample``):

``real``   signed values with ``0.25 <= |x| <= 2``: away from the kinks of abs/relu and from
           the pole of division, so finite differences and PyTorch agree.
``pos``    ``0.5 <= x <= 2``: for log, sqrt, reciprocal and the base of a tensor exponent.
``int``    small integers ``-2..2`` stored as floats: comparisons see ties, and the kinks
           of abs/relu and zero bases of pow are hit (rows with ``gradcheck=False``).
``natural`` integers ``0..2`` stored as floats: zero bases and exponents for pow.
``zero``   all zeros: norm at the origin.
``unit``   ``-0.9 <= x <= 0.9``: inside the domains of asin/acos, away from the poles of tan.
``half``   integers ``-3..2`` plus one half: the ties of round, the steps of floor/ceil/trunc
           (rows with ``gradcheck=False``).
``zeros_in`` ``real`` with every third element (flat, from the second) set to zero: prod and
           cumprod through zeros.
"""
from __future__ import annotations

import operator
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

Shape = tuple[int, ...]
Case = tuple[Shape, ...]


@dataclass(frozen=True)
class OpSpec:
    name: str
    fn: Callable[..., Any]  # fn(lib, *tensors) -> tensor, lib is tapegrad or torch
    nargs: int
    shapes: tuple[Case, ...]
    domain: str | tuple[str, ...] = "real"
    differentiable: bool = True  # False: a bool result, no grad_fn, requires_grad False
    gradcheck: bool = True  # False: rows at a kink, checked against PyTorch's convention only
    rtol32: float = 1e-5
    atol32: float = 1e-5

    def domains(self) -> tuple[str, ...]:
        if isinstance(self.domain, str):
            return (self.domain,) * self.nargs
        return self.domain


# ---------------------------------------------------------------- helpers

def sample(domain: str, shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """A float64 array of ``shape`` drawn from ``domain`` (see the module docstring)."""
    if domain == "real":
        mag = rng.uniform(0.25, 2.0, size=shape)
        sign = np.where(rng.random(size=shape) < 0.5, -1.0, 1.0)
        return np.asarray(mag * sign, dtype=np.float64)
    if domain == "pos":
        return np.asarray(rng.uniform(0.5, 2.0, size=shape), dtype=np.float64)
    if domain == "int":
        return np.asarray(rng.integers(-2, 3, size=shape), dtype=np.float64)
    if domain == "natural":
        return np.asarray(rng.integers(0, 3, size=shape), dtype=np.float64)
    if domain == "zero":
        return np.zeros(shape)
    if domain == "unit":
        return np.asarray(rng.uniform(-0.9, 0.9, size=shape), dtype=np.float64)
    if domain == "half":
        return np.asarray(rng.integers(-3, 3, size=shape) + 0.5, dtype=np.float64)
    if domain == "zeros_in":
        x = sample("real", shape, rng)
        x.reshape(-1)[1::3] = 0.0
        return x
    raise ValueError(f"unknown domain {domain!r}")


def seed_of(text: str) -> int:
    """A stable seed for a case id (``hash()`` is salted per process)."""
    return zlib.crc32(text.encode())


def shape_id(case: Case) -> str:
    return "x".join("(" + ",".join(map(str, s)) + ")" for s in case)


def case_id(spec: OpSpec, case: Case) -> str:
    return f"{spec.name}-{shape_id(case)}"


def inputs_for(spec: OpSpec, case: Case, seed_text: str | None = None) -> list[np.ndarray]:
    """The float64 input arrays of one case, deterministic per case id."""
    rng = np.random.default_rng(seed_of(seed_text or case_id(spec, case)))
    return [sample(d, s, rng) for d, s in zip(spec.domains(), case)]


def cases(specs=None) -> Iterator[tuple[OpSpec, Case]]:
    for spec in SPECS if specs is None else specs:
        for case in spec.shapes:
            yield spec, case


def dtype_name(dt) -> str:
    """``tapegrad.float32`` / ``torch.float32`` -> ``float32``."""
    return str(dt).rsplit(".", 1)[-1]


def grad_fn_name(t) -> str | None:
    """tapegrad's grad_fn name (``node.name()``), or None."""
    return None if t.grad_fn is None else t.grad_fn.name()


def torch_grad_fn_name(t) -> str | None:
    """PyTorch's grad_fn class name, or None."""
    return None if t.grad_fn is None else type(t.grad_fn).__name__


def unbroadcast(g: np.ndarray, shape: Shape) -> np.ndarray:
    """Sum a gradient of a broadcast result back down to an operand's ``shape``."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(d for d, s in enumerate(shape) if s == 1 and g.shape[d] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


# ---------------------------------------------------------------- shape sets

UNARY: tuple[Case, ...] = (((),), ((4,),), ((2, 3),), ((2, 1, 3),), ((0, 3),))
UNARY_SHAPES: tuple[Shape, ...] = tuple(c[0] for c in UNARY)
BINARY: tuple[Case, ...] = (
    ((3,), (3,)),
    ((), ()),
    ((2, 3), (2, 3)),
    ((1,), (1,)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (4,)),
    ((), (3,)),
    ((3,), ()),
    ((2, 1, 3), (4, 1)),
    ((0, 3), (3,)),
    ((2, 0), (1, 0)),
)
BINARY_SHORT: tuple[Case, ...] = (((3,), (3,)), ((), ()), ((3, 1), (1, 4)), ((), (3,)))
COMPARE: tuple[Case, ...] = (
    ((5,), (5,)),
    ((), ()),
    ((2, 3), (3,)),
    ((3, 1), (1, 4)),
    ((), (3,)),
    ((0, 3), (3,)),
)


def _c(*shapes: Shape) -> tuple[Case, ...]:
    """Single-argument cases from shapes."""
    return tuple((s,) for s in shapes)


# ---------------------------------------------------------------- rows

def _method(meth: str, *args, **kw):
    return lambda lib, x, *ys: getattr(x, meth)(*ys, *args, **kw)


def _func(fname: str, *args, **kw):
    return lambda lib, *xs: getattr(lib, fname)(*xs, *args, **kw)


def _binary_rows() -> list[OpSpec]:
    ops = {
        # name: (operator, methods, functions, domain of (a, b))
        "add": (operator.add, ("add",), ("add",), ("real", "real")),
        "sub": (operator.sub, ("sub",), ("sub", "subtract"), ("real", "real")),
        "mul": (operator.mul, ("mul",), ("mul", "multiply"), ("real", "real")),
        "div": (operator.truediv, ("div",), ("div", "divide", "true_divide"), ("real", "real")),
        "pow": (operator.pow, ("pow",), ("pow",), ("pos", "real")),
    }
    rows = []
    for name, (op, meths, funcs, dom) in ops.items():
        rows.append(OpSpec(f"{name}.op", lambda lib, a, b, op=op: op(a, b), 2, BINARY, dom))
        for meth in meths:
            rows.append(OpSpec(f"{name}.method", _method(meth), 2, BINARY, dom))
        for fname in funcs:
            rows.append(OpSpec(f"{name}.fn.{fname}", _func(fname), 2, BINARY_SHORT, dom))
    rows += [
        OpSpec("add.method.alpha", _method("add", alpha=2), 2, BINARY_SHORT),
        OpSpec("add.fn.alpha", _func("add", alpha=-0.5), 2, BINARY_SHORT),
        OpSpec("sub.method.alpha", _method("sub", alpha=2), 2, BINARY_SHORT),
        OpSpec("sub.fn.alpha", _func("sub", alpha=0.5), 2, BINARY_SHORT),
        # the same tensor on both sides: two adjoint contributions to one leaf
        OpSpec("mul.op.self", lambda lib, a: a * a, 1, UNARY),
        OpSpec("div.op.self", lambda lib, a: a / a, 1, UNARY),
        OpSpec("pow.op.self", lambda lib, a: a**a, 1, UNARY, "pos"),
        # zero bases and exponents: PyTorch masks the 0 * log(0) terms to 0
        OpSpec("pow.op.natural", lambda lib, a, b: a**b, 2, (((6,), (6,)), ((), ())), "natural",
               gradcheck=False),
    ]
    return rows


def _scalar_rows() -> list[OpSpec]:
    """tensor op Python number, and the reflected number op tensor."""
    sh = UNARY
    rows = [
        OpSpec("add.op.scalar", lambda lib, x: x + 2.5, 1, sh),
        OpSpec("add.op.int", lambda lib, x: x + 3, 1, sh),
        OpSpec("add.method.scalar", lambda lib, x: x.add(2.5), 1, sh),
        OpSpec("add.fn.scalar", lambda lib, x: lib.add(x, 2.5), 1, sh),
        OpSpec("add.method.scalar.alpha", lambda lib, x: x.add(2.5, alpha=2), 1, sh),
        OpSpec("sub.op.scalar", lambda lib, x: x - 2.5, 1, sh),
        OpSpec("sub.method.scalar", lambda lib, x: x.sub(2.5), 1, sh),
        OpSpec("sub.fn.scalar", lambda lib, x: lib.sub(x, 2.5), 1, sh),
        OpSpec("mul.op.scalar", lambda lib, x: x * 2.5, 1, sh),
        OpSpec("mul.op.int", lambda lib, x: x * 3, 1, sh),
        OpSpec("mul.method.scalar", lambda lib, x: x.mul(2.5), 1, sh),
        OpSpec("mul.fn.scalar", lambda lib, x: lib.mul(x, 2.5), 1, sh),
        OpSpec("div.op.scalar", lambda lib, x: x / 2.5, 1, sh),
        OpSpec("div.op.int", lambda lib, x: x / 3, 1, sh),
        OpSpec("div.method.scalar", lambda lib, x: x.div(2.5), 1, sh),
        OpSpec("div.fn.scalar", lambda lib, x: lib.div(x, 2.5), 1, sh),
        OpSpec("pow.op.int2", lambda lib, x: x**2, 1, sh),
        OpSpec("pow.op.int3", lambda lib, x: x**3, 1, sh),
        OpSpec("pow.op.float2", lambda lib, x: x**2.0, 1, sh),
        OpSpec("pow.op.neg_int", lambda lib, x: x**-2, 1, sh),
        OpSpec("pow.op.half", lambda lib, x: x**0.5, 1, sh, "pos"),
        OpSpec("pow.op.neg_frac", lambda lib, x: x**-1.5, 1, sh, "pos"),
        OpSpec("pow.op.zero", lambda lib, x: x**0, 1, sh),
        OpSpec("pow.op.one", lambda lib, x: x**1, 1, sh),
        OpSpec("pow.method.scalar", lambda lib, x: x.pow(3), 1, sh),
        OpSpec("pow.fn.scalar", lambda lib, x: lib.pow(x, 2.5), 1, sh, "pos"),
        # reflected: number op tensor
        OpSpec("add.rop", lambda lib, x: 2.5 + x, 1, sh),
        OpSpec("sub.rop", lambda lib, x: 2.5 - x, 1, sh),
        OpSpec("sub.rop.int", lambda lib, x: 3 - x, 1, sh),
        OpSpec("mul.rop", lambda lib, x: 2.5 * x, 1, sh),
        OpSpec("div.rop", lambda lib, x: 2.5 / x, 1, sh),
        OpSpec("div.rop.int", lambda lib, x: 1 / x, 1, sh),
        OpSpec("pow.rop", lambda lib, x: 2.5**x, 1, sh),
        OpSpec("pow.rop.int", lambda lib, x: 2**x, 1, sh),
        OpSpec("pow.rop.frac_base", lambda lib, x: 0.5**x, 1, sh),
        OpSpec("pow.fn.scalar_base", lambda lib, x: lib.pow(2.0, x), 1, sh),
        OpSpec("pow.op.scalar.zero_base", lambda lib, x: x**2, 1, _c((5,), ()), "int",
               gradcheck=False),
        OpSpec("pow.op.zero.zero_base", lambda lib, x: x**0, 1, _c((5,), ()), "int",
               gradcheck=False),
        OpSpec("pow.rop.zero_base", lambda lib, x: 0.0**x, 1, _c((5,), ()), "natural",
               gradcheck=False),
    ]
    return rows


def _unary_rows() -> list[OpSpec]:
    ops = {
        "neg": "real", "exp": "real", "log": "pos", "sin": "real", "cos": "real",
        "tanh": "real", "sigmoid": "real", "relu": "real", "sqrt": "pos", "abs": "real",
        "reciprocal": "pos",
    }
    rows = []
    for name, dom in ops.items():
        rows.append(OpSpec(f"{name}.method", _method(name), 1, UNARY, dom))
        rows.append(OpSpec(f"{name}.fn", _func(name), 1, UNARY, dom))
    rows += [
        OpSpec("neg.op", lambda lib, x: -x, 1, UNARY),
        OpSpec("neg.fn.negative", _func("negative"), 1, UNARY),
        OpSpec("abs.builtin", lambda lib, x: abs(x), 1, UNARY),
        # PyTorch's conventions at the kinks: relu'(0) = abs'(0) = 0
        OpSpec("relu.kink", _method("relu"), 1, _c((5,), ()), "int", gradcheck=False),
        OpSpec("abs.kink", _method("abs"), 1, _c((5,), ()), "int", gradcheck=False),
        OpSpec("sqrt.at_zero", _method("sqrt"), 1, _c((3,), ()), "natural", gradcheck=False),
        # a non-leaf used twice
        OpSpec("reuse.nonleaf", lambda lib, x: (lambda y: y * y + y.sum())(x.exp()), 1, UNARY),
        # a chain of elementwise ops on one tape
        OpSpec("chain.unary", lambda lib, x: (x.sin() * x.exp()).tanh() + x.sigmoid(), 1,
               UNARY),
    ]
    return rows


def _linalg_rows() -> list[OpSpec]:
    dot = (((3,), (3,)), ((1,), (1,)), ((0,), (0,)))
    matmul = (
        ((3,), (3,)),
        ((2, 3), (3,)),
        ((3,), (3, 4)),
        ((2, 3), (3, 4)),
        ((1, 1), (1, 1)),
        ((3,), (3, 1)),
        ((2, 0), (0, 3)),
        ((0, 3), (3, 2)),
        ((0,), (0, 2)),
    )
    mm = (((2, 3), (3, 4)), ((1, 3), (3, 1)), ((2, 0), (0, 3)), ((0, 2), (2, 3)))
    mv = (((2, 3), (3,)), ((1, 1), (1,)), ((0, 3), (3,)), ((2, 0), (0,)))
    return [
        OpSpec("dot.method", _method("dot"), 2, dot),
        OpSpec("dot.fn", _func("dot"), 2, dot),
        OpSpec("matmul.op", lambda lib, a, b: a @ b, 2, matmul),
        OpSpec("matmul.method", _method("matmul"), 2, matmul),
        OpSpec("matmul.fn", _func("matmul"), 2, matmul),
        OpSpec("mm.method", _method("mm"), 2, mm),
        OpSpec("mm.fn", _func("mm"), 2, mm),
        OpSpec("mv.method", _method("mv"), 2, mv),
        OpSpec("mv.fn", _func("mv"), 2, mv),
        # a shared operand: x^T x and x x^T
        OpSpec("matmul.gram", lambda lib, x: x.t() @ x, 1, _c((3, 2))),
        OpSpec("matmul.same_vec", lambda lib, x: x @ x, 1, _c((4,))),
    ]


def _reduction_rows() -> list[OpSpec]:
    anyshape = UNARY + _c((2, 3, 2), (0,))
    rows = []
    for name in ("sum", "mean"):
        rows += [
            OpSpec(f"{name}.method.all", _method(name), 1, anyshape),
            OpSpec(f"{name}.fn.all", _func(name), 1, anyshape),
            OpSpec(f"{name}.method.dim0", _method(name, 0), 1,
                   _c((), (4,), (2, 3), (2, 3, 2), (0, 3), (3, 0))),
            OpSpec(f"{name}.method.dim_neg", _method(name, -1), 1,
                   _c((), (4,), (2, 3), (2, 3, 2), (2, 0))),
            OpSpec(f"{name}.method.dim_kw", _method(name, dim=1), 1, _c((2, 3), (2, 3, 2))),
            OpSpec(f"{name}.method.dim_tuple", _method(name, (0, 2)), 1,
                   _c((2, 3, 2), (1, 3, 4))),
            OpSpec(f"{name}.method.dim_tuple_neg", _method(name, (-1, 0)), 1, _c((2, 3, 2))),
            OpSpec(f"{name}.method.dim_all", _method(name, (0, 1)), 1, _c((2, 3))),
            OpSpec(f"{name}.method.dim_list", _method(name, [0, 2]), 1, _c((2, 3, 2))),
            OpSpec(f"{name}.method.keepdim", _method(name, 1, keepdim=True), 1,
                   _c((2, 3), (2, 3, 2), (2, 1))),
            OpSpec(f"{name}.method.keepdim_neg", _method(name, -1, True), 1,
                   _c((), (4,), (2, 3))),
            OpSpec(f"{name}.method.keepdim_tuple", _method(name, (0, 2), keepdim=True), 1,
                   _c((2, 3, 2),)),
            OpSpec(f"{name}.method.keepdim_all", _method(name, (0, 1), keepdim=True), 1,
                   _c((2, 3),)),
            OpSpec(f"{name}.fn.dim", _func(name, 1), 1, _c((2, 3), (2, 3, 2))),
            OpSpec(f"{name}.fn.dim_keepdim", _func(name, dim=-1, keepdim=True), 1,
                   _c((2, 3), (4,))),
        ]
    rows.append(OpSpec("sum.method.dim_empty", _method("sum", ()), 1, _c((2, 3), (4,))))
    norm_shapes = _c((), (4,), (2, 3), (2, 3, 2), (0, 3))
    rows += [
        OpSpec("norm.method.all", _method("norm"), 1, norm_shapes),
        OpSpec("norm.fn.all", _func("norm"), 1, norm_shapes),
        OpSpec("norm.method.p2", _method("norm", 2), 1, _c((4,), (2, 3))),
        OpSpec("norm.method.p_kw", _method("norm", p=2.0), 1, _c((4,), (2, 3))),
        OpSpec("norm.method.dim", _method("norm", dim=1), 1, _c((2, 3), (2, 3, 2), (3, 0))),
        OpSpec("norm.method.dim_neg", _method("norm", dim=-1), 1, _c((), (4,), (2, 3))),
        OpSpec("norm.method.dim0", _method("norm", dim=0), 1, _c((), (2, 3), (0, 3))),
        OpSpec("norm.method.fro_dim", _method("norm", "fro", 1), 1, _c((2, 3),)),
        OpSpec("norm.method.keepdim", _method("norm", dim=-1, keepdim=True), 1,
               _c((2, 3), (2, 3, 2))),
        OpSpec("norm.method.dim_tuple", _method("norm", 2, (0, 2)), 1, _c((2, 3, 2),)),
        OpSpec("norm.method.dim_all", _method("norm", dim=(0, 1)), 1, _c((2, 3),)),
        OpSpec("norm.fn.dim", _func("norm", dim=1), 1, _c((2, 3),)),
        OpSpec("norm.fn.dim_keepdim", _func("norm", 2, 0, True), 1, _c((2, 3),)),
        # at the origin PyTorch's gradient is 0 (central differences agree)
        OpSpec("norm.at_zero", _method("norm"), 1, _c((3,), (2, 3)), "zero"),
        OpSpec("norm.at_zero.dim", _method("norm", dim=1), 1, _c((2, 3),), "zero"),
        # reductions of a broadcast result and of a reduction
        OpSpec("sum.of_broadcast", lambda lib, a, b: (a * b).sum(0), 2, (((3, 1), (1, 4)),)),
        OpSpec("mean.of_sum", lambda lib, x: x.sum(-1).mean(), 1, _c((2, 3, 2),)),
    ]
    return rows


def _index_rows() -> list[OpSpec]:
    def r(name, fn, *shapes):
        return OpSpec(f"index.{name}", fn, 1, _c(*shapes))

    return [
        r("int", lambda lib, x: x[1], (4,), (3, 4), (2, 3, 4)),
        r("int_neg", lambda lib, x: x[-1], (4,), (3, 4), (2, 3, 4)),
        r("int_tuple", lambda lib, x: x[0, 1], (2, 3), (2, 3, 4)),
        r("int_tuple_neg", lambda lib, x: x[-1, -2, 0], (2, 3, 4)),
        r("int_mid", lambda lib, x: x[:, -2], (2, 3), (2, 3, 4)),
        r("slice_from", lambda lib, x: x[1:], (5,), (5, 3)),
        r("slice_step", lambda lib, x: x[::2], (5,), (5, 3)),
        r("slice_start_stop_step", lambda lib, x: x[1:5:2], (6,), (6, 2)),
        r("slice_neg", lambda lib, x: x[-3:-1], (5,), (5, 2)),
        r("slice_inner_step", lambda lib, x: x[:, 1::2], (2, 5), (2, 5, 2)),
        r("slice_full", lambda lib, x: x[:], (4,), (2, 3)),
        r("slice_empty", lambda lib, x: x[2:2], (4,), (4, 2)),
        r("slice_past_end", lambda lib, x: x[1:10], (4,),),
        r("none", lambda lib, x: x[None], (), (3,), (2, 3)),
        r("none_last", lambda lib, x: x[..., None], (3,), (2, 3)),
        r("none_int", lambda lib, x: x[:, None, 1], (2, 3, 4)),
        r("ellipsis", lambda lib, x: x[...], (), (2, 3)),
        r("ellipsis_int", lambda lib, x: x[..., 1], (3, 2), (2, 3, 2)),
        r("ellipsis_mid", lambda lib, x: x[1, ..., 0], (2, 3, 2)),
        r("mixed_basic", lambda lib, x: x[1:, None, ::2, -1], (3, 5, 2)),
        r("nones", lambda lib, x: x[None, ..., None, 0], (2, 3)),
        r("bool_scalar", lambda lib, x: x[True], (3,), ()),
        r("list_repeat", lambda lib, x: x[[0, 2, 0]], (3,), (3, 2)),
        r("list_neg", lambda lib, x: x[[-1, 0, -1]], (3,), (3, 2)),
        r("tensor_repeat", lambda lib, x: x[lib.tensor([0, 2, 0, 2])], (3,), (3, 2)),
        r("tensor_neg", lambda lib, x: x[lib.tensor([-1, 0, -1])], (3,), (3, 2)),
        r("tensor_2d", lambda lib, x: x[lib.tensor([[0, 1], [1, 1]])], (3,), (3, 2)),
        r("tensor_0d", lambda lib, x: x[lib.tensor(1)], (3,), (3, 2)),
        r("tensor_empty", lambda lib, x: x[lib.tensor([], dtype=lib.int64)], (3,), (3, 2)),
        r("two_lists", lambda lib, x: x[[0, 1, 1], [1, 1, 0]], (2, 3)),
        r("int_and_list", lambda lib, x: x[0, [1, 1, 0]], (2, 3)),
        r("slice_and_list", lambda lib, x: x[1:, [0, 0]], (3, 3)),
        r("list_inner", lambda lib, x: x[:, [2, 0, 2]], (2, 3), (2, 3, 2)),
        r("lists_split_by_slice", lambda lib, x: x[[0, 1, 1], :, [1, 0, 1]], (2, 3, 2)),
        r("bool_mask", lambda lib, x: x[lib.tensor([True, False, True])], (3,), (3, 2)),
        r("bool_mask_2d", lambda lib, x: x[lib.tensor([[True, False, True], [False, True, True]])],
          (2, 3)),
        r("bool_mask_none", lambda lib, x: x[lib.tensor([False, False, False])], (3,), (3, 2)),
        r("bool_mask_data", lambda lib, x: x[x > 0], (5,), (2, 3)),
        r("int_on_empty", lambda lib, x: x[0], (2, 0)),
        # indexing through views: the index maps compose
        r("after_t", lambda lib, x: x.t()[1], (2, 3)),
        r("after_transpose_list", lambda lib, x: x.transpose(0, 1)[[0, 0, 2]], (2, 3)),
        r("after_expand", lambda lib, x: x.expand(2, 3)[:, ::2], (3,)),
        r("after_slice", lambda lib, x: x[1:][::2][0], (6, 2)),
        r("twice_same_leaf", lambda lib, x: x[0] * x[-1] + x[1:].sum(), (4,)),
    ]


def _view_rows() -> list[OpSpec]:
    def r(name, fn, *shapes):
        return OpSpec(name, fn, 1, _c(*shapes))

    return [
        r("reshape.method", lambda lib, x: x.reshape(3, 2), (2, 3), (6,)),
        r("reshape.method.tuple", lambda lib, x: x.reshape((6,)), (2, 3), (3, 2)),
        r("reshape.method.infer", lambda lib, x: x.reshape(-1), (2, 3, 2), (), (0, 3)),
        r("reshape.method.infer_mid", lambda lib, x: x.reshape(2, -1, 2), (2, 3, 2)),
        r("reshape.method.to_0d", lambda lib, x: x.reshape(()), (1,), (1, 1)),
        r("reshape.method.from_0d", lambda lib, x: x.reshape(1, 1), ()),
        r("reshape.method.empty", lambda lib, x: x.reshape(3, 0), (0, 3)),
        r("reshape.fn", lambda lib, x: lib.reshape(x, (3, -1)), (2, 3), (6,)),
        r("reshape.noncontiguous", lambda lib, x: x.t().reshape(-1), (2, 3)),
        r("reshape.of_strided_slice", lambda lib, x: x[:, ::2].reshape(-1), (2, 4)),
        r("view.method", lambda lib, x: x.view(3, 2), (2, 3), (6,)),
        r("view.method.tuple", lambda lib, x: x.view((2, 3)), (6,)),
        r("view.method.infer", lambda lib, x: x.view(-1), (2, 3), ()),
        r("view.method.to_0d", lambda lib, x: x.view(()), (1, 1)),
        r("view.method.empty", lambda lib, x: x.view(3, 0), (0, 3)),
        r("flatten.method", lambda lib, x: x.flatten(), (2, 3, 2), (), (4,), (0, 3)),
        r("flatten.method.start", lambda lib, x: x.flatten(1), (2, 3, 2)),
        r("flatten.method.range", lambda lib, x: x.flatten(0, 1), (2, 3, 2)),
        r("flatten.method.neg", lambda lib, x: x.flatten(-2, -1), (2, 3, 2)),
        r("flatten.fn", lambda lib, x: lib.flatten(x, start_dim=1), (2, 3, 2)),
        r("squeeze.method", lambda lib, x: x.squeeze(), (1, 3, 1), (1,), (2, 3)),
        r("squeeze.method.dim", lambda lib, x: x.squeeze(0), (1, 3), (2, 3)),
        r("squeeze.method.dim_neg", lambda lib, x: x.squeeze(-1), (3, 1)),
        r("squeeze.method.dims", lambda lib, x: x.squeeze((0, 2)), (1, 3, 1)),
        r("squeeze.fn", lambda lib, x: lib.squeeze(x), (1, 3, 1)),
        r("squeeze.fn.dim", lambda lib, x: lib.squeeze(x, 1), (3, 1)),
        r("unsqueeze.method", lambda lib, x: x.unsqueeze(0), (), (3,), (2, 3)),
        r("unsqueeze.method.neg", lambda lib, x: x.unsqueeze(-1), (), (3,), (2, 3)),
        r("unsqueeze.method.mid", lambda lib, x: x.unsqueeze(1), (2, 3), (0, 3)),
        r("unsqueeze.fn", lambda lib, x: lib.unsqueeze(x, 2), (2, 3)),
        r("permute.method", lambda lib, x: x.permute(2, 0, 1), (2, 3, 4)),
        r("permute.method.tuple", lambda lib, x: x.permute((1, 0)), (2, 3)),
        r("permute.method.neg", lambda lib, x: x.permute(-1, 0, 1), (2, 3, 4)),
        r("permute.fn", lambda lib, x: lib.permute(x, (0, 2, 1)), (2, 3, 4)),
        r("transpose.method", lambda lib, x: x.transpose(0, 1), (2, 3), (2, 3, 4)),
        r("transpose.method.neg", lambda lib, x: x.transpose(-1, 0), (2, 3, 4)),
        r("transpose.fn", lambda lib, x: lib.transpose(x, 1, 2), (2, 3, 4)),
        r("t.method", lambda lib, x: x.t(), (2, 3), (3,), ()),
        r("t.fn", lambda lib, x: lib.t(x), (2, 3)),
        r("T.property", lambda lib, x: x.T, (2, 3), (2, 3, 4), (3,)),
        r("expand.method", lambda lib, x: x.expand(2, 3), (3,), (1, 3), (2, 1)),
        r("expand.method.tuple", lambda lib, x: x.expand((2, 3)), (3,)),
        r("expand.method.keep", lambda lib, x: x.expand(2, -1, 4), (3, 1)),
        r("expand.method.from_0d", lambda lib, x: x.expand(3, 2), ()),
        r("expand.method.to_empty", lambda lib, x: x.expand(0, 3), (1, 3)),
        r("clone.method", lambda lib, x: x.clone(), *UNARY_SHAPES),
        r("clone.fn", lambda lib, x: lib.clone(x), *UNARY_SHAPES),
        # many operands in one record
        OpSpec("cat.dim0", lambda lib, x, y: lib.cat([x, y * 2.0, x]), 2, (((2, 3), (1, 3)),)),
        OpSpec("cat.dim1", lambda lib, x, y: lib.cat((x, y), dim=1).exp(), 2,
               (((2, 3), (2, 1)), ((2, 0), (2, 2)))),
        OpSpec("cat.neg_dim_1d", lambda lib, x, y: lib.cat([y, x, y], -1), 2,
               (((3,), (2,)), ((0,), (2,)))),
        OpSpec("cat.scalars", lambda lib, x, y: lib.cat([x.reshape(1), (x * y).reshape(1)]), 2,
               (((), ()),)),
        OpSpec("stack.dim0", lambda lib, x, y: lib.stack([x, y, x * y]), 2,
               (((3,), (3,)), ((), ()))),
        OpSpec("stack.dim_last", lambda lib, x, y: lib.stack((x, y), dim=-1).sin(), 2,
               (((2, 3), (2, 3)),)),
        # views of views, then arithmetic on them
        r("views.chain", lambda lib, x: x.permute(1, 0, 2).reshape(3, -1).t().unsqueeze(0),
          (2, 3, 2)),
        r("views.mixed", lambda lib, x: x.t() * x.t().exp() + x.expand(2, 2, 3).sum(0).t(),
          (2, 3)),
    ]


def _compare_rows() -> list[OpSpec]:
    ops = {
        "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
        "le": operator.le, "gt": operator.gt, "ge": operator.ge,
    }
    rows = []
    for name, op in ops.items():
        rows += [
            OpSpec(f"{name}.op", lambda lib, a, b, op=op: op(a, b), 2, COMPARE, "int", False),
            OpSpec(f"{name}.method", _method(name), 2, COMPARE[:3], "int", False),
            OpSpec(f"{name}.fn", _func(name), 2, COMPARE[:3], "int", False),
            OpSpec(f"{name}.op.scalar", lambda lib, a, op=op: op(a, 1.0), 1,
                   _c((5,), (), (2, 3), (0,)), "int", False),
            OpSpec(f"{name}.op.int_scalar", lambda lib, a, op=op: op(a, 1), 1,
                   _c((5,), ()), "int", False),
            # number op tensor: Python runs the reflected method, 1.0 < x is x.__gt__(1.0)
            OpSpec(f"{name}.rop", lambda lib, a, op=op: op(1.0, a), 1,
                   _c((5,), ()), "int", False),
            OpSpec(f"{name}.method.scalar", _method(name, 0.0), 1, _c((5,),), "int", False),
        ]
    rows.append(OpSpec("compare.of_result", lambda lib, a, b: (a * b) >= (a + b), 2,
                       (((3, 1), (1, 4)),), "int", False))
    return rows


# ---------------------------------------------------------------- the op library

def _nnf(lib):
    """``tapegrad.nn.functional`` or ``torch.nn.functional``."""
    return lib.nn.functional


def _F(fname: str, *args, **kw):
    return lambda lib, *xs: getattr(_nnf(lib), fname)(*xs, *args, **kw)


def _elementwise_rows() -> list[OpSpec]:
    ops = {
        "log1p": "pos", "expm1": "real", "log2": "pos", "log10": "pos", "exp2": "real",
        "tan": "unit", "sinh": "real", "cosh": "real", "asin": "unit", "acos": "unit",
        "atan": "real", "erf": "real", "rsqrt": "pos", "square": "real",
        # zero gradient almost everywhere
        "sign": "real", "floor": "real", "ceil": "real", "round": "real", "trunc": "real",
    }
    rows = []
    for name, dom in ops.items():
        rows.append(OpSpec(f"{name}.method", _method(name), 1, UNARY, dom))
        rows.append(OpSpec(f"{name}.fn", _func(name), 1, UNARY, dom))
    for name in ("sign", "floor", "ceil", "round", "trunc"):
        # at integers (sign: at 0) and at halves (round's ties go to even)
        rows.append(OpSpec(f"{name}.at_int", _method(name), 1, _c((5,), ()), "int",
                           gradcheck=False))
        rows.append(OpSpec(f"{name}.at_half", _method(name), 1, _c((6,), ()), "half",
                           gradcheck=False))
    sh = UNARY
    rows += [
        OpSpec("log1p.unit", _method("log1p"), 1, _c((5,), (2, 3)), "unit"),
        OpSpec("rsqrt.at_zero", _method("rsqrt"), 1, _c((3,), ()), "natural", gradcheck=False),
        OpSpec("clamp.method", _method("clamp", -0.5, 0.5), 1, sh),
        OpSpec("clamp.method.min", _method("clamp", min=0.5), 1, sh),
        OpSpec("clamp.method.max", _method("clamp", max=-0.5), 1, sh),
        OpSpec("clamp.method.int_bounds", _method("clamp", -1, 1), 1, sh),
        OpSpec("clamp.method.min_above_max", _method("clamp", 1.0, -1.0), 1, _c((5,), ())),
        OpSpec("clamp.method.tensor_bounds", lambda lib, x, lo, hi: x.clamp(lo - 0.5, hi + 0.5),
               3, (((3, 4), (3, 4), (4,)), ((), (), ()))),
        OpSpec("clamp.fn.tensor_min", lambda lib, x, lo: lib.clamp(x, min=lo), 2,
               (((3, 4), (1, 4)),)),
        OpSpec("clamp.fn", _func("clamp", -1.0, 1.0), 1, sh),
        OpSpec("clamp_min.method", _method("clamp_min", 0.5), 1, sh),
        OpSpec("clamp_max.fn", _func("clamp_max", -0.5), 1, _c((4,), (2, 3))),
        OpSpec("clamp_min.tensor", lambda lib, x, lo: x.clamp_min(lo), 2, (((3,), (3,)),)),
        OpSpec("clamp.fn.min_kw", _func("clamp", min=-0.5), 1, _c((4,), (2, 3))),
        OpSpec("clip.method", _method("clip", -0.5, 0.5), 1, sh),
        OpSpec("clip.fn", _func("clip", max=0.3), 1, _c((4,), (2, 3))),
        # PyTorch passes the gradient at the bounds (min <= x <= max)
        OpSpec("clamp.at_bounds", _method("clamp", -1.0, 1.0), 1, _c((5,), (2, 3)), "int",
               gradcheck=False),
        OpSpec("clamp.min.at_bound", _method("clamp", min=0.0), 1, _c((5,),), "int",
               gradcheck=False),
        OpSpec("fmod.method.scalar", _method("fmod", 1.5), 1, sh),
        OpSpec("fmod.fn.scalar", _func("fmod", -0.75), 1, sh),
        OpSpec("fmod.method.int", _method("fmod", 1), 1, _c((4,), (2, 3))),
        OpSpec("remainder.method.scalar", _method("remainder", 1.5), 1, sh),
        OpSpec("remainder.fn.scalar", _func("remainder", -0.75), 1, sh),
        OpSpec("remainder.method.int", _method("remainder", 1), 1, _c((4,), (2, 3))),
        OpSpec("remainder.op.scalar", lambda lib, x: x % 1.5, 1, sh),
    ]
    return rows


def _binary_more_rows() -> list[OpSpec]:
    rows = []
    for name in ("maximum", "minimum", "fmax", "fmin", "atan2", "fmod", "remainder"):
        rows.append(OpSpec(f"{name}.method", _method(name), 2, BINARY))
        rows.append(OpSpec(f"{name}.fn", _func(name), 2, BINARY_SHORT))
    rows += [
        OpSpec("remainder.op", lambda lib, a, b: a % b, 2, BINARY_SHORT),
        OpSpec("max.method.other", _method("max"), 2, BINARY_SHORT),
        OpSpec("min.fn.other", _func("min"), 2, BINARY_SHORT),
        # ties: PyTorch splits the gradient evenly between equal operands
        OpSpec("maximum.ties", _method("maximum"), 2, COMPARE, "int", gradcheck=False),
        OpSpec("minimum.ties", _method("minimum"), 2, COMPARE, "int", gradcheck=False),
        OpSpec("maximum.self", lambda lib, a: a.maximum(a), 1, _c((4,), ())),
        # ties: fmax and fmin give it all to the first operand
        OpSpec("fmax.ties", _method("fmax"), 2, COMPARE, "int", gradcheck=False),
        OpSpec("fmin.ties", _func("fmin"), 2, COMPARE, "int", gradcheck=False),
        OpSpec("lerp.method", _method("lerp", 0.3), 2, BINARY),
        OpSpec("lerp.fn", _func("lerp", 0.75), 2, BINARY_SHORT),
        OpSpec("lerp.fn.weight_kw", _func("lerp", weight=1.5), 2, BINARY_SHORT),
        OpSpec("lerp.tensor_weight", lambda lib, a, b, w: lib.lerp(a, b, w), 3,
               (((3,), (3,), (3,)), ((2, 3), (3,), (2, 1)), ((), (), ()))),
        OpSpec("lerp_.tensor_weight", lambda lib, a, b, w: (a * 1.0).lerp_(b, w), 3,
               (((3,), (3,), (3,)), ((2, 3), (2, 3), (3,)))),
        OpSpec("where.fn", lambda lib, a, b: lib.where(a > 0, a, b), 2, BINARY),
        OpSpec("where.fn.cond", lambda lib, a, b, c: lib.where(c > 0, a, b), 3,
               (((3,), (3,), (3,)), ((2, 3), (3,), (2, 1)), ((), (3,), ()),
                ((0, 3), (3,), (1,)), ((), (), ()))),
        OpSpec("where.fn.other_number", lambda lib, a: lib.where(a > 0, a, 2.5), 1, UNARY),
        OpSpec("where.fn.input_number", lambda lib, a: lib.where(a > 0, -1.5, a), 1, UNARY),
        OpSpec("where.fn.int_number", lambda lib, a: lib.where(a < 0, a, 0), 1, _c((4,), ())),
        OpSpec("where.fn.two_numbers", lambda lib, a: lib.where(a > 0, 1.0, -0.5) * a, 1,
               _c((4,), (2, 3), ())),
        OpSpec("where.method", lambda lib, a, b: a.where(b > 0, b), 2, BINARY_SHORT),
        OpSpec("where.same", lambda lib, a: lib.where(a > 0, a, a * 2.0), 1, _c((4,), (2, 3))),
    ]
    tri = _c((3, 3), (3, 4), (4, 3), (2, 3, 3), (1, 1), (0, 3), (2, 0))
    for name in ("tril", "triu"):
        rows += [
            OpSpec(f"{name}.method", _method(name), 1, tri),
            OpSpec(f"{name}.method.pos", _method(name, 1), 1, tri),
            OpSpec(f"{name}.method.neg", _method(name, -1), 1, tri),
            OpSpec(f"{name}.method.far", _method(name, diagonal=5), 1, _c((3, 4),)),
            OpSpec(f"{name}.method.far_neg", _method(name, diagonal=-5), 1, _c((3, 4),)),
            OpSpec(f"{name}.fn", _func(name, diagonal=-1), 1, _c((3, 4), (2, 3, 3))),
        ]
    return rows


def _activation_rows() -> list[OpSpec]:
    sh = UNARY
    kink = _c((5,), (2, 3), ())
    return [
        OpSpec("F.relu", _F("relu"), 1, sh),
        OpSpec("F.relu.kink", _F("relu"), 1, kink, "int", gradcheck=False),
        OpSpec("F.leaky_relu", _F("leaky_relu"), 1, sh),
        OpSpec("F.leaky_relu.slope", _F("leaky_relu", 0.2), 1, sh),
        OpSpec("F.leaky_relu.slope_kw", _F("leaky_relu", negative_slope=-0.5), 1, _c((4,),)),
        OpSpec("F.leaky_relu.kink", _F("leaky_relu", 0.2), 1, kink, "int", gradcheck=False),
        OpSpec("F.elu", _F("elu"), 1, sh),
        OpSpec("F.elu.alpha", _F("elu", alpha=0.5), 1, sh),
        OpSpec("F.elu.kink", _F("elu", 0.5), 1, kink, "int", gradcheck=False),
        OpSpec("F.gelu", _F("gelu"), 1, sh),
        OpSpec("F.gelu.tanh", _F("gelu", approximate="tanh"), 1, sh),
        OpSpec("F.gelu.at_int", _F("gelu"), 1, kink, "int"),
        OpSpec("F.silu", _F("silu"), 1, sh),
        OpSpec("F.softplus", _F("softplus"), 1, sh),
        OpSpec("F.softplus.beta", _F("softplus", beta=2.0, threshold=1.0), 1, sh),
        OpSpec("F.softplus.beta_small", _F("softplus", 0.5), 1, _c((4,), (2, 3))),
        # beta * x above the threshold: x itself
        OpSpec("F.softplus.linear", _F("softplus", beta=20), 1, _c((5,), (2, 3))),
        OpSpec("F.hardtanh", _F("hardtanh"), 1, sh),
        OpSpec("F.hardtanh.bounds", _F("hardtanh", -0.5, 1.5), 1, sh),
        OpSpec("F.hardtanh.bounds_kw", _F("hardtanh", min_val=0.0, max_val=0.5), 1,
               _c((4,), (2, 3))),
        # unlike clamp, PyTorch blocks the gradient at the bounds (min < x < max)
        OpSpec("F.hardtanh.at_bounds", _F("hardtanh"), 1, kink, "int", gradcheck=False),
        OpSpec("F.relu6", _F("relu6"), 1, sh),
        OpSpec("F.relu6.kink", _F("relu6"), 1, kink, "int", gradcheck=False),
        OpSpec("F.logsigmoid", _F("logsigmoid"), 1, sh),
        OpSpec("F.sigmoid", _F("sigmoid"), 1, sh),
        OpSpec("F.tanh", _F("tanh"), 1, sh),
        OpSpec("F.softmax", _F("softmax", dim=-1), 1, sh),
        OpSpec("F.softmax.dim0", _F("softmax", 0), 1, _c((4,), (2, 3), (2, 3, 2))),
        OpSpec("F.log_softmax", _F("log_softmax", dim=-1), 1, sh),
        OpSpec("F.log_softmax.dim1", _F("log_softmax", dim=1), 1, _c((2, 3), (2, 3, 2))),
        OpSpec("F.chain", lambda lib, x: _nnf(lib).gelu(_nnf(lib).silu(x) * 2.0).softmax(-1),
               1, _c((2, 3),)),
    ]


def _extreme_rows() -> list[OpSpec]:
    red = _c((), (4,), (2, 3), (2, 3, 2), (1, 3))
    ties = _c((5,), (3, 4), (2, 3, 2))
    nd = dict(differentiable=False)
    rows = []
    for name in ("amax", "amin"):
        rows += [
            OpSpec(f"{name}.method.all", _method(name), 1, red),
            OpSpec(f"{name}.method.dim0", _method(name, 0), 1, red),
            OpSpec(f"{name}.method.dim_neg", _method(name, -1), 1, red + _c((0, 3),)),
            OpSpec(f"{name}.method.keepdim", _method(name, -1, keepdim=True), 1,
                   _c((), (4,), (2, 3), (2, 3, 2))),
            OpSpec(f"{name}.method.dim_tuple", _method(name, (0, 2)), 1, _c((2, 3, 2),)),
            OpSpec(f"{name}.method.dim_tuple_keepdim", _method(name, (-1, 0), True), 1,
                   _c((2, 3, 2),)),
            OpSpec(f"{name}.fn", _func(name, 1), 1, _c((2, 3), (2, 3, 2))),
            OpSpec(f"{name}.fn.dim_kw", _func(name, dim=0, keepdim=True), 1, _c((2, 3),)),
            # ties share the gradient evenly
            OpSpec(f"{name}.ties.all", _method(name), 1, ties, "int", gradcheck=False),
            OpSpec(f"{name}.ties.dim", _method(name, 0), 1, ties, "int", gradcheck=False),
            OpSpec(f"{name}.ties.dim_tuple", _method(name, (0, 1)), 1, _c((3, 4), (2, 3, 2)),
                   "int", gradcheck=False),
        ]
    for name in ("max", "min"):
        rows += [
            OpSpec(f"{name}.method.all", _method(name), 1, _c((), (4,), (2, 3), (2, 1, 3))),
            OpSpec(f"{name}.fn.all", _func(name), 1, _c((), (4,), (2, 3))),
            OpSpec(f"{name}.ties.all", _method(name), 1, ties, "int", gradcheck=False),
            OpSpec(f"{name}.method.dim", lambda lib, x, n=name: getattr(x, n)(1).values, 1,
                   _c((2, 3), (2, 3, 2), (3, 1), (0, 3))),
            OpSpec(f"{name}.method.dim0", lambda lib, x, n=name: getattr(x, n)(0)[0], 1,
                   _c((), (4,), (2, 3))),
            OpSpec(f"{name}.method.dim_kw", lambda lib, x, n=name: getattr(x, n)(dim=-1).values,
                   1, _c((4,), (2, 3))),
            OpSpec(f"{name}.method.keepdim",
                   lambda lib, x, n=name: getattr(x, n)(-1, keepdim=True).values, 1,
                   _c((), (4,), (2, 3), (2, 3, 2))),
            OpSpec(f"{name}.method.unpack",
                   lambda lib, x, n=name: (lambda v, i: v * 2.0)(*getattr(x, n)(0)), 1,
                   _c((2, 3),)),
            OpSpec(f"{name}.fn.dim", lambda lib, x, n=name: getattr(lib, n)(x, 1).values, 1,
                   _c((2, 3), (2, 3, 2))),
            OpSpec(f"{name}.fn.dim_keepdim",
                   lambda lib, x, n=name: getattr(lib, n)(x, dim=0, keepdim=True)[0], 1,
                   _c((2, 3),)),
            OpSpec(f"{name}.method.indices", lambda lib, x, n=name: getattr(x, n)(1).indices, 1,
                   _c((2, 3), (2, 3, 2), (0, 3)), **nd),
            OpSpec(f"{name}.method.indices0", lambda lib, x, n=name: getattr(x, n)(0)[1], 1,
                   _c((), (4,), (2, 3)), **nd),
            # ties along a dim: PyTorch sends the gradient to the one index it returns
            OpSpec(f"{name}.ties.dim", lambda lib, x, n=name: getattr(x, n)(0).values, 1,
                   ties, "int", gradcheck=False),
            OpSpec(f"{name}.ties.indices", lambda lib, x, n=name: getattr(x, n)(-1).indices, 1,
                   ties, "int", **nd),
        ]
    for name in ("argmax", "argmin"):
        rows += [
            OpSpec(f"{name}.method", _method(name), 1, _c((), (5,), (2, 3), (2, 3, 2)), **nd),
            OpSpec(f"{name}.method.dim", _method(name, 1), 1, _c((2, 3), (2, 3, 2)), **nd),
            OpSpec(f"{name}.method.keepdim", _method(name, dim=-1, keepdim=True), 1,
                   _c((), (5,), (2, 3)), **nd),
            OpSpec(f"{name}.fn", _func(name), 1, _c((2, 3),), **nd),
            OpSpec(f"{name}.fn.dim", _func(name, 0), 1, _c((4,), (2, 3)), **nd),
            OpSpec(f"{name}.fn.dim_neg", _func(name, -1), 1, _c((0, 3),), **nd),
            # ties: the first index
            OpSpec(f"{name}.ties", _method(name), 1, ties, "int", **nd),
            OpSpec(f"{name}.ties.dim", _method(name, 0), 1, ties, "int", **nd),
        ]
    for name in ("all", "any"):
        rows += [
            OpSpec(f"{name}.method.dim", _method(name, 1), 1, _c((2, 3), (3, 4), (2, 0)), "int",
                   **nd),
            OpSpec(f"{name}.method.dim_neg", _method(name, -1), 1, _c((), (5,), (2, 3, 2)),
                   "int", **nd),
            OpSpec(f"{name}.method.keepdim", _method(name, 0, keepdim=True), 1,
                   _c((3, 4), (0, 3)), "int", **nd),
            OpSpec(f"{name}.fn.dim", _func(name, dim=0), 1, _c((5,), (3, 4)), "int", **nd),
        ]
    return rows


def _reduction_more_rows() -> list[OpSpec]:
    rows = [
        OpSpec("prod.method.all", _method("prod"), 1, UNARY + _c((0,), (2, 3, 2))),
        OpSpec("prod.fn.all", _func("prod"), 1, _c((4,), (2, 3))),
        OpSpec("prod.method.dim", _method("prod", 1), 1, _c((2, 3), (2, 3, 2), (3, 0), (2, 1))),
        OpSpec("prod.method.dim0", _method("prod", 0), 1, _c((), (4,), (2, 3), (0, 3))),
        OpSpec("prod.method.keepdim", _method("prod", -1, keepdim=True), 1,
               _c((), (4,), (2, 3))),
        OpSpec("prod.fn.dim", _func("prod", dim=0), 1, _c((2, 3),)),
        # zeros: one zero in a slice, two zeros, all zeros
        OpSpec("prod.zeros.all", _method("prod"), 1, _c((3,), (5,), (2, 3)), "zeros_in"),
        OpSpec("prod.zeros.dim", _method("prod", 0), 1, _c((3, 2), (5, 2)), "zeros_in"),
        OpSpec("prod.int.all", _method("prod"), 1, _c((6,), (2, 3)), "int"),
        OpSpec("prod.int.dim", _method("prod", 1), 1, _c((3, 4), (2, 3, 2)), "int"),
        OpSpec("prod.natural.dim", _method("prod", -1), 1, _c((4, 3),), "natural"),
        OpSpec("prod.zero.all", _method("prod"), 1, _c((3,), ()), "zero"),
        OpSpec("cumsum.method", _method("cumsum", 0), 1, UNARY + _c((2, 3, 2),)),
        OpSpec("cumsum.method.neg", _method("cumsum", -1), 1, _c((), (4,), (2, 3), (2, 3, 2))),
        OpSpec("cumsum.method.dim_kw", _method("cumsum", dim=1), 1, _c((2, 3), (2, 0))),
        OpSpec("cumsum.fn", _func("cumsum", 1), 1, _c((2, 3), (2, 3, 2))),
        OpSpec("cumprod.method", _method("cumprod", 0), 1, UNARY + _c((2, 3, 2),)),
        OpSpec("cumprod.method.neg", _method("cumprod", -1), 1, _c((), (4,), (2, 3), (2, 3, 2))),
        OpSpec("cumprod.method.dim_kw", _method("cumprod", dim=1), 1, _c((2, 3), (2, 0))),
        OpSpec("cumprod.fn", _func("cumprod", 1), 1, _c((2, 3), (2, 3, 2))),
        OpSpec("cumprod.zeros", _method("cumprod", 0), 1, _c((3,), (5,), (5, 2)), "zeros_in"),
        OpSpec("cumprod.zeros.neg", _method("cumprod", -1), 1, _c((2, 5), (3, 4)), "zeros_in"),
        OpSpec("cumprod.int", _method("cumprod", -1), 1, _c((6,), (3, 4)), "int"),
        OpSpec("cumprod.zero", _method("cumprod", 0), 1, _c((3,),), "zero"),
        OpSpec("logsumexp.method", _method("logsumexp", 1), 1, _c((2, 3), (2, 3, 2), (2, 0))),
        OpSpec("logsumexp.method.dim0", _method("logsumexp", 0), 1, _c((), (4,), (2, 3))),
        OpSpec("logsumexp.method.keepdim", _method("logsumexp", -1, keepdim=True), 1,
               _c((), (4,), (2, 3))),
        OpSpec("logsumexp.method.dim_tuple", _method("logsumexp", (0, 2)), 1, _c((2, 3, 2),)),
        OpSpec("logsumexp.fn", _func("logsumexp", dim=-1), 1, _c((2, 3), (0, 3))),
        OpSpec("logsumexp.int", _method("logsumexp", 1), 1, _c((3, 4),), "int"),
    ]
    for name in ("softmax", "log_softmax"):
        rows += [
            OpSpec(f"{name}.method", _method(name, -1), 1, UNARY + _c((2, 1), (2, 3, 2))),
            OpSpec(f"{name}.method.dim0", _method(name, 0), 1, _c((), (4,), (2, 3), (0, 3))),
            OpSpec(f"{name}.method.dim_kw", _method(name, dim=1), 1, _c((2, 3), (2, 3, 2))),
            OpSpec(f"{name}.fn", _func(name, 1), 1, _c((2, 3), (2, 3, 2))),
            OpSpec(f"{name}.int", _method(name, -1), 1, _c((3, 4),), "int"),
        ]
    inf = float("inf")
    vshapes = _c((4,), (2, 3), (2, 3, 2))
    for name in ("var", "std"):
        rows += [
            OpSpec(f"{name}.method.all", _method(name), 1, vshapes + _c((2, 1, 3),)),
            OpSpec(f"{name}.method.all_biased", _method(name, unbiased=False), 1,
                   vshapes + _c((1,), ())),
            OpSpec(f"{name}.method.all_keepdim", _method(name, keepdim=True), 1,
                   _c((4,), (2, 3))),
            OpSpec(f"{name}.method.all_correction", _method(name, correction=2), 1, vshapes),
            OpSpec(f"{name}.fn.all", _func(name), 1, _c((4,), (2, 3))),
            OpSpec(f"{name}.method.dim", _method(name, 1), 1, _c((2, 3), (2, 3, 2), (0, 3))),
            OpSpec(f"{name}.method.dim0", _method(name, 0), 1, _c((4,), (2, 3))),
            OpSpec(f"{name}.method.dim_biased", _method(name, 1, unbiased=False), 1,
                   _c((2, 3), (3, 1))),
            OpSpec(f"{name}.method.dim_correction0", _method(name, -1, correction=0), 1,
                   _c((4,), (2, 3))),
            OpSpec(f"{name}.method.dim_correction2", _method(name, dim=-1, correction=2), 1,
                   _c((2, 4),)),
            OpSpec(f"{name}.method.keepdim", _method(name, -1, keepdim=True), 1,
                   _c((4,), (2, 3), (2, 3, 2))),
            OpSpec(f"{name}.method.dim_tuple", _method(name, (0, 2)), 1, _c((2, 3, 2),)),
            OpSpec(f"{name}.fn.dim", _func(name, 0, keepdim=True), 1, _c((3, 2),)),
            # one element and the unbiased estimate: nan
            OpSpec(f"{name}.single", _method(name), 1, _c((1,), ()), gradcheck=False),
            OpSpec(f"{name}.single.dim", _method(name, 1), 1, _c((3, 1),), gradcheck=False),
        ]
    rows.append(OpSpec("var.zero", _method("var", 1), 1, _c((2, 3),), "zero"))
    rows.append(OpSpec("std.zero", _method("std", 1), 1, _c((2, 3),), "zero", gradcheck=False))
    ps = (("p1", 1), ("pinf", inf), ("pneginf", -inf), ("p3", 3), ("p1_5", 1.5), ("p0_5", 0.5))
    for tag, p in ps:
        rows += [
            OpSpec(f"norm.method.{tag}", _method("norm", p), 1, _c((), (4,), (2, 3), (2, 3, 2))),
            OpSpec(f"norm.method.{tag}.dim", _method("norm", p, 1), 1, _c((2, 3), (2, 3, 2))),
            OpSpec(f"norm.method.{tag}.keepdim", _method("norm", p=p, dim=-1, keepdim=True), 1,
                   _c((4,), (2, 3))),
            OpSpec(f"norm.fn.{tag}", _func("norm", p), 1, _c((2, 3),)),
            # zeros and ties: sign(0) = 0, ties of the inf norms share the gradient
            OpSpec(f"norm.{tag}.int", _method("norm", p), 1, _c((6,), (3, 4)), "int",
                   gradcheck=False),
            OpSpec(f"norm.{tag}.int.dim", _method("norm", p, 0), 1, _c((3, 4),), "int",
                   gradcheck=False),
        ]
    rows += [
        OpSpec("norm.p1.empty", _method("norm", 1), 1, _c((0,), (0, 3))),
        OpSpec("norm.p3.empty", _method("norm", 3), 1, _c((0,), (0, 3))),
        OpSpec("norm.p3.at_zero", _method("norm", 3), 1, _c((3,),), "zero"),
    ]
    return rows


def _pieces(parts, cat):
    """Weight each piece differently and join them: every piece's gradient is seen."""
    return cat([p * float(i + 1) for i, p in enumerate(parts)])


def _select_rows() -> list[OpSpec]:
    def idx(lib, data):
        return lib.tensor(data)

    def r(name, fn, *shapes, **kw):
        return OpSpec(name, fn, 1, _c(*shapes), **kw)

    m23 = [[True, False, True], [False, True, True]]
    return [
        r("gather.method", lambda lib, x: x.gather(1, idx(lib, [[0, 2, 2], [1, 0, 1]])), (2, 3)),
        r("gather.method.dim0", lambda lib, x: x.gather(0, idx(lib, [[1, 0, 1], [1, 1, 0]])),
          (2, 3)),
        r("gather.method.smaller", lambda lib, x: x.gather(1, idx(lib, [[3, 0], [1, 1]])),
          (3, 4)),
        r("gather.method.1d", lambda lib, x: x.gather(0, idx(lib, [3, 0, 0, 1, 3])), (4,)),
        r("gather.method.neg_dim",
          lambda lib, x: x.gather(-1, idx(lib, [[[1, 0]], [[0, 0]]])), (2, 3, 2)),
        r("gather.method.0d", lambda lib, x: x.gather(0, idx(lib, 0)), ()),
        r("gather.method.empty",
          lambda lib, x: x.gather(0, lib.tensor([], dtype=lib.int64)), (4,)),
        r("gather.method.empty_input",
          lambda lib, x: x.gather(1, lib.tensor([], dtype=lib.int64).reshape(0, 2)), (0, 3)),
        r("gather.fn", lambda lib, x: lib.gather(x, 1, idx(lib, [[2], [0]])), (2, 3)),
        r("index_select.method", lambda lib, x: x.index_select(0, idx(lib, [2, 0, 2])),
          (3,), (3, 2), (3, 2, 2)),
        r("index_select.method.dim1", lambda lib, x: x.index_select(1, idx(lib, [1, 1, 0, 2])),
          (2, 3), (2, 3, 2), (0, 3)),
        r("index_select.method.neg", lambda lib, x: x.index_select(-1, idx(lib, [0])), (2, 3)),
        r("index_select.method.empty",
          lambda lib, x: x.index_select(0, lib.tensor([], dtype=lib.int64)), (3, 2)),
        r("index_select.method.0d", lambda lib, x: x.index_select(0, idx(lib, [0])), ()),
        r("index_select.fn", lambda lib, x: lib.index_select(x, 1, idx(lib, [2, 0])), (2, 3)),
        r("masked_select.method", lambda lib, x: x.masked_select(x > 0), (5,), (2, 3), (),
          (0, 3)),
        r("masked_select.method.const",
          lambda lib, x: x.masked_select(idx(lib, m23)), (2, 3)),
        r("masked_select.method.bcast_mask",
          lambda lib, x: x.masked_select(idx(lib, [True, False, True])), (2, 3)),
        r("masked_select.method.bcast_input", lambda lib, x: x.masked_select(idx(lib, m23)),
          (3,), (1, 3)),
        r("masked_select.method.none",
          lambda lib, x: x.masked_select(idx(lib, [False, False, False])), (3,), (2, 3)),
        r("masked_select.fn", lambda lib, x: lib.masked_select(x, x < 0), (2, 3)),
        r("masked_fill.method", lambda lib, x: x.masked_fill(x > 0, 0.5), *UNARY_SHAPES),
        r("masked_fill.method.int", lambda lib, x: x.masked_fill(x < 0, 2), (2, 3)),
        r("masked_fill.method.bcast_mask",
          lambda lib, x: x.masked_fill(idx(lib, [True, False, True]), -1.0), (2, 3)),
        r("masked_fill.method.const_tensor",
          lambda lib, x: x.masked_fill(idx(lib, m23), lib.tensor(1.25)), (2, 3)),
        r("masked_fill.fn", lambda lib, x: lib.masked_fill(x, x < 0, -1.0), (2, 3)),
        OpSpec("masked_fill.method.tensor", lambda lib, x, v: x.masked_fill(x > 0, v), 2,
               (((2, 3), ()), ((4,), ()), ((), ()))),
        OpSpec("masked_fill.method.tensor_bcast",
               lambda lib, x, v: x.masked_fill(idx(lib, [False, True, True]), v * 2.0), 2,
               (((2, 3), ()),)),
        # scatter: no duplicate targets (PyTorch leaves their order unspecified).  src has the
        # index's shape: PyTorch's own backward rejects a larger src.
        OpSpec("scatter.method", lambda lib, x, s: x.scatter(
            0, idx(lib, [[2, 0, 1, 2], [0, 1, 2, 1]]), s), 2, (((3, 4), (2, 4)),)),
        OpSpec("scatter.method.dim1", lambda lib, x, s: x.scatter(
            1, idx(lib, [[3, 0], [1, 2]]), s), 2, (((2, 4), (2, 2)), ((3, 4), (2, 2)))),
        OpSpec("scatter.method.1d", lambda lib, x, s: x.scatter(0, idx(lib, [3, 0]), s), 2,
               (((4,), (2,)),)),
        OpSpec("scatter.fn", lambda lib, x, s: lib.scatter(
            x, -1, idx(lib, [[1], [0]]), s), 2, (((2, 3), (2, 1)),)),
        r("scatter.method.value", lambda lib, x: x.scatter(1, idx(lib, [[2, 0], [1, 2]]), 1.5),
          (2, 3), (3, 4)),
        r("scatter.fn.value", lambda lib, x: lib.scatter(x, 0, idx(lib, [[1, 0, 1]]), -2.0),
          (2, 3)),
        OpSpec("scatter_add.method", lambda lib, x, s: x.scatter_add(
            0, idx(lib, [[2, 0, 1, 2], [0, 1, 2, 1]]), s), 2, (((3, 4), (2, 4)),)),
        # scatter_add sums duplicates
        OpSpec("scatter_add.method.dups", lambda lib, x, s: x.scatter_add(
            1, idx(lib, [[0, 0, 2], [1, 1, 1]]), s), 2, (((2, 3), (2, 3)), ((2, 4), (2, 3)))),
        OpSpec("scatter_add.method.1d", lambda lib, x, s: x.scatter_add(
            0, idx(lib, [3, 0, 3, 3]), s), 2, (((4,), (4,)),)),
        OpSpec("scatter_add.fn", lambda lib, x, s: lib.scatter_add(
            x, -1, idx(lib, [[1, 1], [0, 2]]), s), 2, (((2, 3), (2, 2)),)),
    ]


def _shape_rows() -> list[OpSpec]:
    def r(name, fn, *shapes, **kw):
        return OpSpec(name, fn, 1, _c(*shapes), **kw)

    return [
        r("flip.method", lambda lib, x: x.flip(0), (4,), (2, 3), (2, 3, 2), (0, 3), ()),
        r("flip.method.dims", lambda lib, x: x.flip((0, 1)), (2, 3), (2, 3, 2)),
        r("flip.method.neg", lambda lib, x: x.flip(-1), (4,), (2, 3)),
        r("flip.method.varargs", lambda lib, x: x.flip(2, 0), (2, 3, 2)),
        r("flip.method.none", lambda lib, x: x.flip(()), (2, 3)),
        r("flip.fn", lambda lib, x: lib.flip(x, [0, 2]), (2, 3, 2)),
        r("roll.method", lambda lib, x: x.roll(1, 0), (4,), (3, 2), (0, 3)),
        r("roll.method.neg", lambda lib, x: x.roll(-2, -1), (4,), (2, 3)),
        r("roll.method.flat", lambda lib, x: x.roll(2), (2, 3), (4,), ()),
        r("roll.method.big", lambda lib, x: x.roll(7, 1), (2, 3)),
        r("roll.method.multi", lambda lib, x: x.roll((1, -1), (0, 2)), (2, 3, 2)),
        r("roll.method.kw", lambda lib, x: x.roll(shifts=1, dims=1), (2, 3)),
        r("roll.fn", lambda lib, x: lib.roll(x, 5, -1), (2, 3)),
        r("repeat.method", lambda lib, x: x.repeat(2, 3), (2, 3), (3,), (), (1, 2)),
        r("repeat.method.tuple", lambda lib, x: x.repeat((2,)), (3,)),
        r("repeat.method.new_dims", lambda lib, x: x.repeat(2, 1, 2), (2, 3), (3,)),
        r("repeat.method.ones", lambda lib, x: x.repeat(1, 1), (2, 3)),
        r("repeat.method.zero", lambda lib, x: x.repeat(0, 2), (2, 3)),
        r("repeat.method.empty", lambda lib, x: x.repeat(2, 2), (0, 3)),
        r("tile.method", lambda lib, x: x.tile((2,)), (2, 3), (3,), (0, 3)),
        r("tile.method.varargs", lambda lib, x: x.tile(2, 2), (2, 3), ()),
        r("tile.fn", lambda lib, x: lib.tile(x, (2, 1, 2)), (2, 3)),
        r("narrow.method", lambda lib, x: x.narrow(0, 1, 2), (4,), (3, 2)),
        r("narrow.method.neg", lambda lib, x: x.narrow(-1, 0, 2), (2, 3), (2, 3, 2)),
        r("narrow.method.empty", lambda lib, x: x.narrow(1, 2, 0), (2, 3)),
        r("narrow.fn", lambda lib, x: lib.narrow(x, 1, 1, 2), (2, 3), (0, 3)),
        r("split.method", lambda lib, x: x.split(2)[1], (4,), (5, 2)),
        r("split.method.last", lambda lib, x: x.split(2)[-1], (5,), (5, 2)),
        r("split.method.dim", lambda lib, x: x.split(2, dim=1)[0], (2, 3)),
        r("split.method.big", lambda lib, x: x.split(5)[0], (3,), (0, 3)),
        r("split.method.all", lambda lib, x: _pieces(x.split(2), lib.cat), (5,), (5, 2)),
        r("split.method.sizes", lambda lib, x: x.split([1, 2], 1)[1], (2, 3), (2, 3, 2)),
        r("split.method.sizes_all", lambda lib, x: _pieces(x.split([2, 1, 2]), lib.cat),
          (5,), (5, 2)),
        r("split.method.sizes_zero", lambda lib, x: x.split([0, 3])[1], (3,), (3, 2)),
        r("split.fn", lambda lib, x: lib.split(x, 1, 0)[1], (2, 3)),
        r("split.fn.sizes", lambda lib, x: lib.split(x, [2, 1, 1])[1], (4,), (4, 2)),
        r("chunk.method", lambda lib, x: x.chunk(2)[0], (4,), (5, 2)),
        r("chunk.method.all", lambda lib, x: _pieces(x.chunk(3), lib.cat), (5,), (6, 2)),
        r("chunk.method.many", lambda lib, x: _pieces(x.chunk(5), lib.cat), (3,), (2, 2)),
        # PyTorch splits an empty dim into `chunks` empty pieces
        r("chunk.method.empty", lambda lib, x: x.chunk(2)[0], (0, 3)),
        r("chunk.method.empty_last", lambda lib, x: x.chunk(2)[1], (0, 3)),
        r("chunk.method.dim", lambda lib, x: x.chunk(2, dim=-1)[1], (2, 3), (2, 4)),
        r("chunk.fn", lambda lib, x: lib.chunk(x, 3, 1)[2], (2, 3)),
        r("unbind.method", lambda lib, x: x.unbind()[1], (3,), (3, 2), (2, 3, 2)),
        r("unbind.method.dim", lambda lib, x: x.unbind(1)[0], (2, 3), (2, 3, 2), (0, 3)),
        r("unbind.method.all", lambda lib, x: _pieces(x.unbind(-1), lib.stack), (2, 3),
          (3,)),
        r("unbind.fn", lambda lib, x: lib.unbind(x, dim=0)[-1], (2, 3)),
        r("diagonal.method", lambda lib, x: x.diagonal(), (3, 3), (3, 4), (4, 2), (1, 1),
          (0, 3)),
        r("diagonal.method.pos", lambda lib, x: x.diagonal(1), (3, 3), (3, 4), (4, 2)),
        r("diagonal.method.neg", lambda lib, x: x.diagonal(-1), (3, 3), (3, 4), (4, 2)),
        r("diagonal.method.far", lambda lib, x: x.diagonal(5), (3, 4)),
        r("diagonal.method.dims", lambda lib, x: x.diagonal(0, 1, 2), (2, 3, 3), (2, 3, 4)),
        r("diagonal.method.dims_rev", lambda lib, x: x.diagonal(1, 2, 0), (3, 2, 4)),
        r("diagonal.fn", lambda lib, x: lib.diagonal(x, offset=-1, dim1=-1, dim2=0),
          (3, 2, 4)),
        r("diagonal.twice_same_leaf", lambda lib, x: x.diagonal() * x.diagonal(1).sum(),
          (3, 3)),
        r("unflatten.method", lambda lib, x: x.unflatten(1, (2, 2)), (3, 4), (0, 4)),
        r("unflatten.method.infer", lambda lib, x: x.unflatten(0, (2, -1)), (6,), (4, 2)),
        r("unflatten.method.ones", lambda lib, x: x.unflatten(-1, (1, 3, 1)), (2, 3)),
        r("unflatten.fn", lambda lib, x: lib.unflatten(x, -1, (1, 3)), (2, 3), (3,)),
        r("broadcast_to.method", lambda lib, x: x.broadcast_to((2, 3)), (3,), (1, 3), (2, 1),
          ()),
        r("broadcast_to.method.keep", lambda lib, x: x.broadcast_to((2, -1)), (1, 3)),
        r("broadcast_to.fn", lambda lib, x: lib.broadcast_to(x, (2, 2, 3)), (3,), (2, 1, 3)),
        r("broadcast_to.empty", lambda lib, x: x.broadcast_to((0, 3)), (3,)),
    ]


def _batched_linalg_rows() -> list[OpSpec]:
    bmm = (
        ((2, 3, 4), (2, 4, 5)),
        ((1, 1, 1), (1, 1, 1)),
        ((3, 1, 2), (3, 2, 1)),
        ((0, 2, 3), (0, 3, 4)),
        ((2, 0, 3), (2, 3, 4)),
        ((2, 3, 0), (2, 0, 4)),
    )
    matmul_nd = (
        ((2, 3, 4), (2, 4, 5)),  # batched
        ((2, 1, 3, 4), (3, 4, 2)),  # broadcast batch
        ((1, 3, 4), (2, 4, 2)),
        ((2, 3, 4), (4, 5)),  # nd @ 2d
        ((2, 2, 3, 4), (4, 2)),
        ((3, 4), (2, 4, 5)),  # 2d @ nd
        ((3,), (2, 3, 4)),  # 1d @ 3d
        ((2, 3, 4), (4,)),  # 3d @ 1d
        ((2, 0, 3), (2, 3, 4)),
        ((2, 3, 4), (1, 4, 0)),
        ((0, 3, 4), (4, 2)),
    )
    addmm = (
        ((2, 4), (2, 3), (3, 4)),
        ((4,), (2, 3), (3, 4)),
        ((), (2, 3), (3, 4)),
        ((2, 1), (2, 3), (3, 4)),
        ((1, 1), (1, 1), (1, 1)),
        ((2, 4), (2, 0), (0, 4)),
    )
    baddbmm = (
        ((2, 3, 4), (2, 3, 5), (2, 5, 4)),
        ((3, 4), (2, 3, 5), (2, 5, 4)),
        ((), (2, 3, 5), (2, 5, 4)),
        ((2, 1, 4), (2, 3, 5), (2, 5, 4)),
        ((2, 3, 4), (2, 3, 0), (2, 0, 4)),
    )
    outer = (((3,), (4,)), ((1,), (1,)), ((0,), (3,)))
    return [
        OpSpec("bmm.method", _method("bmm"), 2, bmm),
        OpSpec("bmm.fn", _func("bmm"), 2, bmm[:2]),
        OpSpec("matmul.op.nd", lambda lib, a, b: a @ b, 2, matmul_nd),
        OpSpec("matmul.method.nd", _method("matmul"), 2, matmul_nd[:4]),
        OpSpec("matmul.fn.nd", _func("matmul"), 2, matmul_nd[:4]),
        OpSpec("matmul.nd.gram", lambda lib, x: x @ x.transpose(-1, -2), 1, _c((2, 3, 2),)),
        OpSpec("outer.method", _method("outer"), 2, outer),
        OpSpec("outer.fn", _func("outer"), 2, outer),
        OpSpec("addmm.fn", _func("addmm"), 3, addmm),
        OpSpec("addmm.fn.scaled", _func("addmm", beta=0.5, alpha=2.0), 3, addmm[:3]),
        OpSpec("addmm.method", _method("addmm", alpha=-1.5), 3, addmm[:3]),
        OpSpec("addmm.fn.beta0", _func("addmm", beta=0), 3, addmm[:2]),
        OpSpec("baddbmm.fn", _func("baddbmm"), 3, baddbmm),
        OpSpec("baddbmm.fn.scaled", _func("baddbmm", beta=2.0, alpha=0.5), 3, baddbmm[:3]),
        OpSpec("baddbmm.method", _method("baddbmm", beta=-1.0), 3, baddbmm[:2]),
        OpSpec("einsum.bmm", lambda lib, a, b: lib.einsum("bij,bjk->bik", a, b), 2, bmm[:3]),
        OpSpec("einsum.transpose", lambda lib, x: lib.einsum("ij->ji", x), 1,
               _c((2, 3), (1, 1), (0, 3))),
        OpSpec("einsum.outer", lambda lib, a, b: lib.einsum("i,j->ij", a, b), 2, outer),
        OpSpec("einsum.inner_all", lambda lib, a, b: lib.einsum("ij,ij->", a, b), 2,
               (((2, 3), (2, 3)), ((1, 1), (1, 1)), ((0, 3), (0, 3)))),
        OpSpec("einsum.same_operand", lambda lib, x: lib.einsum("ij,ij->", x, x), 1,
               _c((2, 3),)),
        # a repeated index within an operand: its diagonal
        OpSpec("einsum.diagonal", lambda lib, x: lib.einsum("ii->i", x), 1,
               _c((3, 3), (1, 1), (0, 0))),
        OpSpec("einsum.trace", lambda lib, x: lib.einsum("ii", x), 1, _c((3, 3), (1, 1))),
        OpSpec("einsum.batched_diagonal", lambda lib, x: lib.einsum("iij->ji", x), 1,
               _c((3, 3, 2),)),
        OpSpec("einsum.diagonal_times", lambda lib, a, b: lib.einsum("ii,ij->j", a, b), 2,
               (((3, 3), (3, 4)),)),
        OpSpec("einsum.triple", lambda lib, x: lib.einsum("iji->j", x), 1, _c((2, 3, 2),)),
    ]


def _convert_rows() -> list[OpSpec]:
    """dtype conversions: ToCopyBackward0 from another dtype, the tensor itself from its own.

    Casts to float32/float16 are exact against PyTorch but too coarse for central differences.
    """
    sh = UNARY
    return [
        OpSpec("to.float32", lambda lib, x: x.to(lib.float32), 1, sh, gradcheck=False),
        OpSpec("to.float64", lambda lib, x: x.to(lib.float64), 1, sh),
        OpSpec("to.dtype_kw", lambda lib, x: x.to(dtype=lib.float32) * 2.0, 1, _c((4,), (2, 3)),
               gradcheck=False),
        OpSpec("to.float16", lambda lib, x: x.to(lib.float16), 1, _c((4,), ()),
               gradcheck=False),
        OpSpec("to.copy", lambda lib, x: x.to(lib.float64, copy=True), 1, _c((4,), ())),
        OpSpec("double.method", _method("double"), 1, sh),
        OpSpec("float.method", _method("float"), 1, sh, gradcheck=False),
        OpSpec("type.method", lambda lib, x: x.type(lib.float32), 1, _c((4,), (2, 3)),
               gradcheck=False),
        OpSpec("to.round_trip", lambda lib, x: (x.float() * x.double()).exp(), 1, _c((3,),),
               gradcheck=False),
    ]


SPECS: tuple[OpSpec, ...] = tuple(
    _binary_rows() + _scalar_rows() + _unary_rows() + _linalg_rows() + _reduction_rows()
    + _index_rows() + _view_rows() + _compare_rows()
    + _elementwise_rows() + _binary_more_rows() + _activation_rows() + _extreme_rows()
    + _reduction_more_rows() + _select_rows() + _shape_rows() + _batched_linalg_rows()
    + _convert_rows()
)
