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


SPECS: tuple[OpSpec, ...] = tuple(
    _binary_rows() + _scalar_rows() + _unary_rows() + _linalg_rows() + _reduction_rows()
    + _index_rows() + _view_rows() + _compare_rows()
)
