"""Every op form in ``tests/op_specs.py``, on every shape case of its row:

* against PyTorch: forward values, result dtype, and the gradients of ``(out * r).sum()``
  through ``.backward()`` and through ``tapegrad.autograd.grad``, in float64 and float32;
* against central differences (``tapegrad.testing.gradcheck``, float64, no PyTorch needed);
* the grad_fn name against PyTorch's.

Then a property test of broadcasting gradients and a table of mixed-dtype promotions.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_specs import (
    SPECS,
    OpSpec,
    case_id,
    cases,
    dtype_name,
    grad_fn_name,
    inputs_for,
    sample,
    seed_of,
    torch_grad_fn_name,
    unbroadcast,
)

import tapegrad
from tapegrad import _tape
from tapegrad.testing import gradcheck

CASES = [pytest.param(spec, case, id=case_id(spec, case)) for spec, case in cases()]
DIFF_CASES = [p for p in CASES if p.values[0].differentiable and p.values[0].gradcheck]

# PyTorch deprecates x.T on tensors that are not 2-d, but still runs it; var/std rows of one
# element per slice (nan, as in PyTorch) make it warn about the degrees of freedom.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning"),
]


def _tolerance(spec: OpSpec, dtype: str) -> tuple[float, float]:
    if dtype == "float64":
        return 1e-10, 1e-12
    return spec.rtol32, spec.atol32


def _tensors(lib, arrays, dtype: str, requires_grad: bool = True):
    return [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=requires_grad)
            for a in arrays]


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _assert_same(ours, theirs, rtol: float, atol: float, what: str) -> None:
    """Same shape, same dtype name, values close (NaN where PyTorch has NaN)."""
    assert tuple(ours.shape) == tuple(theirs.shape), (
        f"{what}: shape {tuple(ours.shape)} != torch {tuple(theirs.shape)}")
    assert dtype_name(ours.dtype) == dtype_name(theirs.dtype), (
        f"{what}: dtype {ours.dtype} != torch {theirs.dtype}")
    a, b = _np(ours), _np(theirs)
    if b.dtype.kind in "biu":
        np.testing.assert_array_equal(a, b, err_msg=what)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


def _assert_grads(ours, theirs, inputs, rtol, atol, how: str) -> None:
    for i, (g, h, x) in enumerate(zip(ours, theirs, inputs)):
        if h is None or g is None:
            assert g is None and h is None, (
                f"{how}: gradient of input {i} is {g!r}, torch's is {h!r}")
            continue
        assert dtype_name(g.dtype) == dtype_name(x.dtype), (
            f"{how}: gradient of input {i} has dtype {g.dtype}, input has {x.dtype}")
        _assert_same(g, h, rtol, atol, f"{how}: gradient of input {i}")


def _seed_grad(lib, out, r: np.ndarray):
    return (out * lib.tensor(r, dtype=out.dtype)).sum()


# ---------------------------------------------------------------- the table itself

def test_table_rows_are_consistent():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names)), "duplicate row names"
    for spec in SPECS:
        assert spec.shapes, spec.name
        assert len(spec.domains()) == spec.nargs, spec.name
        for case in spec.shapes:
            assert len(case) == spec.nargs, f"{spec.name}: case {case} has the wrong arity"


def test_every_differentiable_opcode_has_a_row():
    """Adding an op to tapegrad's OPS table without a row here fails this test."""
    kinds = (_tape.UNARY, _tape.BINARY, _tape.GATHER, _tape.REDUCE, _tape.NORM, _tape.MATMUL)
    internal = {_tape.ASSTRIDED}  # only made by in-place writes through views
    wanted = {o.grad_fn for o in _tape.OPS
              if o.kind in kinds and o.grad_fn and o.code not in internal}
    seen = set()
    for spec, case in cases():
        if not spec.differentiable:
            continue
        xs = _tensors(tapegrad, inputs_for(spec, case), "float64")
        try:
            out = spec.fn(tapegrad, *xs)
        except Exception:  # reported by the per-case tests
            continue
        seen.add(grad_fn_name(out))
    assert wanted <= seen, f"opcodes without a row in op_specs: {sorted(wanted - seen)}"


# ---------------------------------------------------------------- each op against PyTorch

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("spec", "case"), CASES)
def test_op_against_torch(spec: OpSpec, case, dtype: str):
    torch = pytest.importorskip("torch")
    rtol, atol = _tolerance(spec, dtype)
    arrays = inputs_for(spec, case)
    ours = _tensors(tapegrad, arrays, dtype)
    theirs = _tensors(torch, arrays, dtype)
    out_o = spec.fn(tapegrad, *ours)
    out_t = spec.fn(torch, *theirs)
    _assert_same(out_o, out_t, rtol, atol, "forward")
    assert out_o.requires_grad == out_t.requires_grad, "requires_grad of the result"
    if not spec.differentiable:
        assert out_o.grad_fn is None and out_t.grad_fn is None
        return

    r = np.random.default_rng(seed_of(case_id(spec, case) + "/r")).standard_normal(out_t.shape)
    _seed_grad(tapegrad, out_o, r).backward()
    _seed_grad(torch, out_t, r).backward()
    _assert_grads([x.grad for x in ours], [x.grad for x in theirs], ours, rtol * 10, atol * 10,
                  "backward()")

    # autograd.grad on a fresh forward: returns the gradients, leaves .grad alone
    ours2 = _tensors(tapegrad, arrays, dtype)
    theirs2 = _tensors(torch, arrays, dtype)
    g_o = tapegrad.autograd.grad(_seed_grad(tapegrad, spec.fn(tapegrad, *ours2), r), ours2,
                                 allow_unused=True)
    g_t = torch.autograd.grad(_seed_grad(torch, spec.fn(torch, *theirs2), r), theirs2,
                              allow_unused=True)
    assert len(g_o) == len(ours2)
    _assert_grads(g_o, g_t, ours2, rtol * 10, atol * 10, "autograd.grad")
    assert all(x.grad is None for x in ours2), "autograd.grad must not accumulate into .grad"


NONCONTIG_CASES = [p for p in CASES if p.values[0].differentiable
                   and all(len(shape) >= 2 for shape in p.values[1])]


def _transposed(lib, a: np.ndarray):
    """A leaf holding a's values in transposed memory, and the non-contiguous view of it."""
    leaf = lib.tensor(np.ascontiguousarray(np.swapaxes(a, -1, -2)), dtype=lib.float64,
                      requires_grad=True)
    return leaf, leaf.transpose(-1, -2)


@pytest.mark.parametrize(("spec", "case"), NONCONTIG_CASES)
def test_op_on_non_contiguous_inputs(spec: OpSpec, case):
    """The same op on inputs that are transposed views (non-contiguous memory)."""
    torch = pytest.importorskip("torch")
    arrays = inputs_for(spec, case)
    ours = [_transposed(tapegrad, a) for a in arrays]
    theirs = [_transposed(torch, a) for a in arrays]
    try:
        out_t = spec.fn(torch, *(v for _, v in theirs))
    except RuntimeError as e:  # view() of a non-contiguous tensor: the same error from both
        with pytest.raises(RuntimeError, match=re.escape(str(e).split(".")[0])):
            spec.fn(tapegrad, *(v for _, v in ours))
        return
    out_o = spec.fn(tapegrad, *(v for _, v in ours))
    _assert_same(out_o, out_t, 1e-10, 1e-12, "forward")
    r = np.random.default_rng(seed_of(case_id(spec, case) + "/nc")).standard_normal(out_t.shape)
    _seed_grad(tapegrad, out_o, r).backward()
    _seed_grad(torch, out_t, r).backward()
    _assert_grads([leaf.grad for leaf, _ in ours], [leaf.grad for leaf, _ in theirs],
                  [leaf for leaf, _ in ours], 1e-9, 1e-11, "non-contiguous backward()")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("spec", "case"), CASES)
def test_grad_fn_name_matches_torch(spec: OpSpec, case, dtype: str):
    torch = pytest.importorskip("torch")
    arrays = inputs_for(spec, case)
    out_o = spec.fn(tapegrad, *_tensors(tapegrad, arrays, dtype))
    out_t = spec.fn(torch, *_tensors(torch, arrays, dtype))
    assert grad_fn_name(out_o) == torch_grad_fn_name(out_t)


# ---------------------------------------------------------------- finite differences

@pytest.mark.parametrize(("spec", "case"), DIFF_CASES)
def test_op_gradcheck(spec: OpSpec, case):
    xs = _tensors(tapegrad, inputs_for(spec, case), "float64")
    assert gradcheck(lambda *ts: spec.fn(tapegrad, *ts), xs)


# ---------------------------------------------------------------- broadcasting property

@st.composite
def _broadcast_pair(draw):
    """Two shapes that broadcast: trailing parts of one full shape, some sizes set to 1."""
    nd = draw(st.integers(0, 4))
    full = draw(st.lists(st.sampled_from([0, 1, 2, 3]), min_size=nd, max_size=nd))

    def operand():
        k = draw(st.integers(0, nd))
        ones = draw(st.lists(st.booleans(), min_size=k, max_size=k))
        return tuple(1 if one else d for d, one in zip(full[nd - k:], ones))

    return operand(), operand()


_NP_GRADS = {
    "add": lambda a, b, r: (r, r),
    "sub": lambda a, b, r: (r, -r),
    "mul": lambda a, b, r: (r * b, r * a),
    "div": lambda a, b, r: (r / b, -r * a / (b * b)),
}
_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}


@settings(max_examples=150, deadline=None, derandomize=True)
@given(shapes=_broadcast_pair(), op=st.sampled_from(sorted(_OPS)),
       seed=st.integers(0, 2**32 - 1))
def test_broadcast_gradients(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a, b = (sample("real", s, rng) for s in shapes)
    fn = _OPS[op]
    x, y = _tensors(tapegrad, [a, b], "float64")
    out = fn(x, y)
    ab, bb = np.broadcast_arrays(a, b)
    np.testing.assert_allclose(_np(out), fn(ab, bb), rtol=1e-12, atol=0)
    r = rng.standard_normal(out.shape)
    _seed_grad(tapegrad, out, r).backward()

    # NumPy: the elementwise gradient of the broadcast result, summed back to each shape
    ga, gb = (np.broadcast_to(g, r.shape) for g in _NP_GRADS[op](ab, bb, r))
    for t, g, s in ((x, ga, a.shape), (y, gb, b.shape)):
        assert tuple(t.grad.shape) == s
        np.testing.assert_allclose(_np(t.grad), unbroadcast(g, s), rtol=1e-12, atol=1e-14)

    try:
        import torch
    except ImportError:
        return
    xt, yt = _tensors(torch, [a, b], "float64")
    _seed_grad(torch, fn(xt, yt), r).backward()
    for t, u in ((x, xt), (y, yt)):
        np.testing.assert_allclose(_np(t.grad), _np(u.grad), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- mixed dtypes

def _arg(dtype, shape, requires_grad=False):
    return (dtype, shape, requires_grad)


F32, F64 = "float32", "float64"
MIXED = [
    # (id, fn, args: (dtype, shape, requires_grad))
    ("f32+f64", lambda lib, a, b: a + b, [_arg(F32, (3,), True), _arg(F64, (3,), True)]),
    ("f64*f32.bcast", lambda lib, a, b: a * b, [_arg(F64, (2, 3), True), _arg(F32, (3,), True)]),
    ("f32/f64.0d_both", lambda lib, a, b: a / b, [_arg(F32, (), True), _arg(F64, (), True)]),
    ("i64+float", lambda lib, a: a + 2.5, [_arg("int64", (3,))]),
    ("i64+int", lambda lib, a: a + 3, [_arg("int64", (3,))]),
    ("i64*float", lambda lib, a: a * 2.5, [_arg("int64", (3,))]),
    ("float-i64", lambda lib, a: 2.5 - a, [_arg("int64", (3,))]),
    ("i64/int", lambda lib, a: a / 2, [_arg("int64", (3,))]),
    ("i64/i64", lambda lib, a, b: a / b, [_arg("int64", (3,)), _arg("int64", (3,))]),
    ("i64+f32", lambda lib, a, b: a + b, [_arg("int64", (3,)), _arg(F32, (3,), True)]),
    ("f32*i64", lambda lib, a, b: a * b, [_arg(F32, (2, 3), True), _arg("int64", (3,))]),
    ("f64.0d+f32", lambda lib, a, b: a + b, [_arg(F64, (), True), _arg(F32, (3,), True)]),
    ("f32-f64.0d", lambda lib, a, b: a - b, [_arg(F32, (3,), True), _arg(F64, (), True)]),
    ("f32*f64.0d", lambda lib, a, b: a * b, [_arg(F32, (2, 3), True), _arg(F64, (), True)]),
    ("i64.0d+f32", lambda lib, a, b: a + b, [_arg("int64", ()), _arg(F32, (3,), True)]),
    ("i64+f64.0d", lambda lib, a, b: a + b, [_arg("int64", (3,)), _arg(F64, (), True)]),
    ("i64+f32.0d", lambda lib, a, b: a * b, [_arg("int64", (3,)), _arg(F32, (), True)]),
    ("i32+i64.0d", lambda lib, a, b: a + b, [_arg("int32", (3,)), _arg("int64", ())]),
    ("i32+i64", lambda lib, a, b: a + b, [_arg("int32", (3,)), _arg("int64", (3,))]),
    ("u8+i8", lambda lib, a, b: a + b, [_arg("uint8", (3,)), _arg("int8", (3,))]),
    ("bool+bool", lambda lib, a, b: a + b, [_arg("bool", (3,)), _arg("bool", (3,))]),
    ("bool+int", lambda lib, a: a + 1, [_arg("bool", (3,))]),
    ("bool*float", lambda lib, a: a * 2.5, [_arg("bool", (3,))]),
    ("f32+float", lambda lib, a: a + 2.5, [_arg(F32, (3,), True)]),
    ("f32+bool", lambda lib, a: a + True, [_arg(F32, (3,), True)]),
    ("f16+f32", lambda lib, a, b: a + b, [_arg("float16", (3,)), _arg(F32, (3,))]),
    ("i64**int", lambda lib, a: a**2, [_arg("int64", (3,))]),
    ("i64**float", lambda lib, a: a**0.5, [_arg("int64", (3,))]),
    ("float**i64", lambda lib, a: 2.0**a, [_arg("int64", (3,))]),
    ("int**i64", lambda lib, a: 2**a, [_arg("int64", (3,))]),
    ("f32**f64.0d", lambda lib, a, b: a**b, [_arg(F32, (3,), True), _arg(F64, (), True)]),
    ("i64**f32", lambda lib, a, b: a**b, [_arg("int64", (3,)), _arg(F32, (3,), True)]),
    ("exp(i64)", lambda lib, a: a.exp(), [_arg("int64", (3,))]),
    ("sqrt(i64)", lambda lib, a: lib.sqrt(a), [_arg("int64", (3,))]),
    ("sigmoid(bool)", lambda lib, a: a.sigmoid(), [_arg("bool", (3,))]),
    ("neg(i64)", lambda lib, a: -a, [_arg("int64", (3,))]),
    ("abs(i32)", lambda lib, a: a.abs(), [_arg("int32", (3,))]),
    ("relu(i64)", lambda lib, a: a.relu(), [_arg("int64", (3,))]),
    ("sum(i32)", lambda lib, a: a.sum(), [_arg("int32", (2, 3))]),
    ("sum(bool).dim", lambda lib, a: a.sum(0), [_arg("bool", (2, 3))]),
    ("sum(f32,dtype=f64)", lambda lib, a: a.sum(dtype=lib.float64), [_arg(F32, (2, 3), True)]),
    ("mean(f32,dtype=f64)", lambda lib, a: a.mean(1, dtype=lib.float64),
     [_arg(F32, (2, 3), True)]),
    ("f32<f64", lambda lib, a, b: a < b, [_arg(F32, (3,)), _arg(F64, (3,))]),
    ("i64==float", lambda lib, a: a == 2.0, [_arg("int64", (3,))]),
    ("i64>f32", lambda lib, a, b: a > b, [_arg("int64", (2, 3)), _arg(F32, (3,))]),
    ("bool==bool", lambda lib, a, b: a == b, [_arg("bool", (3,)), _arg("bool", (3,))]),
    ("f64.0d>=i64", lambda lib, a, b: a >= b, [_arg(F64, ()), _arg("int64", (3,))]),
    ("ne(f32,f64.0d)", lambda lib, a, b: lib.ne(a, b), [_arg(F32, (3,)), _arg(F64, ())]),
]


def _mixed_array(dtype: str, shape, rng) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith(("int", "uint")):
        return rng.integers(1, 4, size=shape).astype(dtype)
    return np.round(rng.uniform(0.5, 2.0, size=shape), 3).astype(dtype)


@pytest.mark.parametrize(("fn", "args"), [pytest.param(f, a, id=i) for i, f, a in MIXED])
def test_mixed_dtype_promotion(request, fn, args):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed_of(request.node.callspec.id))
    arrays = [_mixed_array(dt, shape, rng) for dt, shape, _ in args]
    ours = [tapegrad.tensor(a, dtype=getattr(tapegrad, dt), requires_grad=rg)
            for a, (dt, _, rg) in zip(arrays, args)]
    theirs = [torch.tensor(a, dtype=getattr(torch, dt), requires_grad=rg)
              for a, (dt, _, rg) in zip(arrays, args)]
    out_o, out_t = fn(tapegrad, *ours), fn(torch, *theirs)
    # the tolerance of the least precise float among the inputs and the result
    floats = {dt for dt, _, _ in args} | {dtype_name(out_t.dtype)}
    if "float16" in floats:
        rtol, atol = 1e-3, 1e-3
    elif "float32" in floats:
        rtol, atol = 1e-5, 1e-6
    else:
        rtol, atol = 1e-10, 1e-12
    _assert_same(out_o, out_t, rtol, atol, "forward")
    assert out_o.requires_grad == out_t.requires_grad
    if not out_t.requires_grad:
        return
    r = np.random.default_rng(0).standard_normal(out_t.shape)
    _seed_grad(tapegrad, out_o, r).backward()
    _seed_grad(torch, out_t, r).backward()
    needs = [i for i, (_, _, rg) in enumerate(args) if rg]
    _assert_grads([ours[i].grad for i in needs], [theirs[i].grad for i in needs],
                  [ours[i] for i in needs], rtol * 10, atol * 10, "backward()")
