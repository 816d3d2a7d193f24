"""The elementwise math of ``tapegrad/_ops_math.py``: one row per op form over shapes.

For each differentiable row: forward values and dtype against PyTorch (float64, float32),
the gradients of ``(out * r).sum()`` against PyTorch's, the grad_fn name, and the gradient
against central differences (float64, no PyTorch needed).  Then edge values (0, inf, nan)
against PyTorch, second derivatives, the in-place forms, the ops without a gradient
(bitwise, predicates), metadata and PyTorch's errors.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from op_specs import OpSpec, case_id, dtype_name, sample, seed_of

import tapegrad
from tapegrad.testing import gradcheck

U = ((), (5,), (2, 3), (2, 1, 3))  # unary shapes: 0-d, 1-d, 2-d, 3-d with a size-1 dim
B = (((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (3,)), ((5,), ()), ((2, 3), (2, 3)))


def _c(*shapes):
    return tuple((s,) for s in shapes)


def _sample(domain, shape, rng):
    """op_specs' domains plus: ``prob`` (0.05..0.95), ``above1`` (1.2..3), ``wide`` (-3..3,
    away from the integers, for lgamma/digamma), ``gamma_pos`` (0.3..4)."""
    if domain == "prob":
        return rng.uniform(0.05, 0.95, size=shape)
    if domain == "above1":
        return rng.uniform(1.2, 3.0, size=shape)
    if domain == "wide":
        return np.asarray(rng.integers(-3, 3, size=shape) + rng.uniform(0.2, 0.8, size=shape),
                          dtype=np.float64)
    if domain == "gamma_pos":
        return rng.uniform(0.3, 4.0, size=shape)
    return sample(domain, shape, rng)


def _inputs(spec, case):
    rng = np.random.default_rng(seed_of(case_id(spec, case)))
    return [np.asarray(_sample(d, s, rng), dtype=np.float64)
            for d, s in zip(spec.domains(), case)]


def _f(name, *args, **kw):
    return lambda lib, *xs: getattr(lib, name)(*xs, *args, **kw)


def _m(name, *args, **kw):
    return lambda lib, x, *ys: getattr(x, name)(*ys, *args, **kw)


SPECS = [
    # aliases
    OpSpec("multiply.method", _m("multiply"), 2, B),
    OpSpec("subtract.alpha", _f("subtract", alpha=2), 2, B),
    OpSpec("subtract.method", _m("subtract", alpha=-0.5), 2, B[:2]),
    OpSpec("negative.method", _m("negative"), 1, _c(*U)),
    OpSpec("positive", _f("positive"), 1, _c(*U[:2])),
    OpSpec("absolute", _f("absolute"), 1, _c(*U)),
    OpSpec("arctan2", _f("arctan2"), 2, B[:3]),
    OpSpec("fix", _f("fix"), 1, _c(*U), domain="half", gradcheck=False),
    OpSpec("swapaxes", _f("swapaxes", 0, -1), 1, _c((2, 3), (2, 1, 3))),
    OpSpec("swapdims.method", _m("swapdims", -2, 1), 1, _c((2, 3), (2, 1, 3))),
    OpSpec("movedim", _f("movedim", (0, -1), (2, 0)), 1, _c((2, 3, 4), (1, 2, 3))),
    OpSpec("moveaxis.method", _m("moveaxis", 0, -1), 1, _c((5,), (2, 3), (2, 1, 3))),
    OpSpec("movedim.0d", _f("movedim", 0, -1), 1, _c(())),
    OpSpec("ravel", _f("ravel"), 1, _c(*U)),
    OpSpec("ravel.transposed", lambda lib, x: lib.ravel(x.transpose(0, 1)), 1,
           _c((2, 3), (2, 1, 3))),
    # math
    OpSpec("asinh", _f("asinh"), 1, _c(*U), domain="real"),
    OpSpec("arcsinh.method", _m("arcsinh"), 1, _c((2, 3))),
    OpSpec("acosh", _f("acosh"), 1, _c(*U), domain="above1"),
    OpSpec("arccosh", _f("arccosh"), 1, _c((5,)), domain="above1"),
    OpSpec("atanh", _f("atanh"), 1, _c(*U), domain="unit"),
    OpSpec("arctanh.method", _m("arctanh"), 1, _c((2, 3)), domain="unit"),
    OpSpec("sgn", _f("sgn"), 1, _c(*U), gradcheck=False),
    OpSpec("frac", _f("frac"), 1, _c(*U), domain="wide"),
    OpSpec("deg2rad", _f("deg2rad"), 1, _c(*U)),
    OpSpec("rad2deg.method", _m("rad2deg"), 1, _c(*U)),
    OpSpec("logit", _f("logit"), 1, _c(*U), domain="prob", rtol32=1e-4),
    OpSpec("logit.eps", _f("logit", 0.2), 1, _c(*U), domain="prob", rtol32=1e-4),
    OpSpec("xlogy", _f("xlogy"), 2, B, domain=("real", "pos")),
    OpSpec("xlogy.number_other", lambda lib, x: lib.xlogy(x, 3.0), 1, _c(*U)),
    OpSpec("xlogy.number_self", lambda lib, y: lib.xlogy(2.0, y), 1, _c(*U), domain="pos"),
    OpSpec("hypot", _f("hypot"), 2, B),
    OpSpec("logaddexp", _f("logaddexp"), 2, B),
    OpSpec("logaddexp2.method", _m("logaddexp2"), 2, B),
    OpSpec("sinc", _f("sinc"), 1, _c(*U)),
    OpSpec("copysign", _f("copysign"), 2, B),
    OpSpec("copysign.number", _f("copysign", -2.0), 1, _c(*U)),
    OpSpec("float_power", _f("float_power"), 2, B, domain=("pos", "real")),
    OpSpec("float_power.number", _f("float_power", 3), 1, _c(*U)),
    OpSpec("float_power.base", lambda lib, y: lib.float_power(2.5, y), 1, _c(*U)),
    OpSpec("erfc", _f("erfc"), 1, _c(*U)),
    OpSpec("erfinv", _f("erfinv"), 1, _c(*U), domain="unit"),
    OpSpec("erfinv.method", _m("erfinv"), 1, _c((2, 3)), domain="unit"),
    OpSpec("lgamma", _f("lgamma"), 1, _c(*U), domain="wide"),
    OpSpec("digamma", _f("digamma"), 1, _c(*U), domain="wide"),
    OpSpec("polygamma.1", lambda lib, x: lib.polygamma(1, x), 1, _c(*U), domain="wide",
           rtol32=1e-4),
    OpSpec("polygamma.3", lambda lib, x: lib.polygamma(3, x), 1, _c(*U), domain="gamma_pos",
           rtol32=1e-4),
    OpSpec("polygamma.method", _m("polygamma", 2), 1, _c((2, 3)), domain="gamma_pos",
           rtol32=1e-4),
    OpSpec("nextafter", _f("nextafter"), 2, B, gradcheck=False),
    OpSpec("nextafter.method", _m("nextafter"), 2, B[:2], gradcheck=False),
    OpSpec("ldexp", lambda lib, x: lib.ldexp(x, lib.tensor([0, 1, 3])), 1, _c((3,), (2, 3))),
]

CASES = [pytest.param(spec, case, id=case_id(spec, case)) for spec in SPECS
         for case in spec.shapes]
GRAD_CASES = [p for p in CASES if p.values[0].gradcheck]


def _tensors(lib, arrays, dtype, requires_grad=True):
    return [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=requires_grad)
            for a in arrays]


def _np(t):
    return np.asarray(t.detach().numpy())


def _name(t):
    return None if t.grad_fn is None else t.grad_fn.name()


def _close(ours, theirs, rtol, atol, what):
    assert tuple(ours.shape) == tuple(theirs.shape), what
    assert dtype_name(ours.dtype) == dtype_name(theirs.dtype), what
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("spec", "case"), CASES)
def test_op_against_torch(spec, case, dtype):
    torch = pytest.importorskip("torch")
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (spec.rtol32, spec.atol32)
    arrays = _inputs(spec, case)
    ours, theirs = _tensors(tapegrad, arrays, dtype), _tensors(torch, arrays, dtype)
    out_o, out_t = spec.fn(tapegrad, *ours), spec.fn(torch, *theirs)
    _close(out_o, out_t, rtol, atol, "forward")
    assert _name(out_o) == (None if out_t.grad_fn is None else out_t.grad_fn.name())
    r = np.random.default_rng(seed_of(case_id(spec, case) + "/r")).standard_normal(out_t.shape)
    (out_o * tapegrad.tensor(r, dtype=out_o.dtype)).sum().backward()
    (out_t * torch.tensor(r, dtype=out_t.dtype)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if b.grad is None:
            assert a.grad is None, f"input {i}"
            continue
        _close(a.grad, b.grad.to_dense() if b.grad.is_sparse else b.grad + 0, rtol * 10,
               atol * 10, f"gradient of input {i}")


@pytest.mark.parametrize(("spec", "case"), GRAD_CASES)
def test_op_gradcheck(spec, case):
    xs = _tensors(tapegrad, _inputs(spec, case), "float64")
    assert gradcheck(lambda *a: spec.fn(tapegrad, *a), xs)


# ---------------------------------------------------------------- edge values

NAN, INF = math.nan, math.inf
EDGES = [
    ("logit", lambda L, x: L.logit(x), [[-0.5, 0.0, 1.0, 1.5, 0.3, NAN]]),
    ("logit.eps", lambda L, x: L.logit(x, 0.3), [[-0.5, 0.0, 1.0, 1.5, 0.3, 0.7, 0.5, NAN]]),
    ("sinc", lambda L, x: L.sinc(x), [[0.0, -0.0, 1.0, -2.0, 0.5, INF, NAN, 1e-300]]),
    ("xlogy", lambda L, x, y: L.xlogy(x, y),
     [[0.0, 0.0, 1.0, 0.0, 2.0, 0.0, -1.0], [0.0, NAN, 0.0, 2.0, INF, -1.0, -1.0]]),
    ("copysign", lambda L, x, y: L.copysign(x, y),
     [[0.0, -0.0, 1.0, 0.0, -3.0, NAN], [-1.0, 1.0, -0.0, NAN, 2.0, -1.0]]),
    ("hypot", lambda L, x, y: L.hypot(x, y), [[0.0, 3.0, INF, 1e300], [0.0, -4.0, 1.0, 1e300]]),
    ("logaddexp", lambda L, x, y: L.logaddexp(x, y),
     [[INF, -INF, 1.0, -INF, 800.0, NAN], [INF, -INF, INF, 1.0, 799.0, 0.0]]),
    ("logaddexp2", lambda L, x, y: L.logaddexp2(x, y),
     [[INF, -INF, 1.0, -INF, 2000.0], [INF, -INF, INF, 1.0, 1999.0]]),
    ("lgamma", lambda L, x: L.lgamma(x), [[0.0, -0.0, -1.0, -0.5, 1.0, 2.0, 1e-300, INF, -INF,
                                           NAN, 171.5, 1e306]]),
    ("digamma", lambda L, x: L.digamma(x), [[0.0, -0.0, -1.0, -0.5, 1.0, 10.0, 1e-300, 1e18,
                                             -1e6 + 0.5, INF, NAN]]),
    ("polygamma.2", lambda L, x: L.polygamma(2, x), [[0.0, -1.0, -2.5, 0.5, 30.0, 1e-3]]),
    ("asinh", lambda L, x: L.asinh(x), [[-1e300, 1e-300, 0.0, -0.0, INF, NAN]]),
    ("acosh", lambda L, x: L.acosh(x), [[1.0, 0.5, 1e300, INF]]),
    ("atanh", lambda L, x: L.atanh(x), [[1.0, -1.0, 0.0, 2.0]]),
    ("erfc", lambda L, x: L.erfc(x), [[-30.0, 30.0, 0.0, INF, -INF, NAN]]),
    ("erfinv", lambda L, x: L.erfinv(x), [[-1.0, 1.0, 0.0, -0.0, 1.5, NAN, 0.7, 0.9999, 1e-300]]),
    ("frac", lambda L, x: L.frac(x), [[-2.5, INF, 0.0, -0.0, NAN, 1e20]]),
    ("sgn", lambda L, x: L.sgn(x), [[-2.5, INF, 0.0, -0.0, NAN]]),
    ("float_power", lambda L, x, y: L.float_power(x, y),
     [[0.0, -2.0, 2.0, 0.0], [0.0, 0.5, -1.0, -1.0]]),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("fn", "arrays"), [pytest.param(f, a, id=n) for n, f, a in EDGES])
def test_edge_values_against_torch(fn, arrays, dtype):
    torch = pytest.importorskip("torch")
    arrays = [np.array(a) for a in arrays]
    ours, theirs = _tensors(tapegrad, arrays, dtype), _tensors(torch, arrays, dtype)
    out_o, out_t = fn(tapegrad, *ours), fn(torch, *theirs)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    _close(out_o, out_t, rtol, 0 if dtype == "float64" else 1e-6, "forward")
    number = ~np.isnan(_np(out_t))  # (the sign of nan is not PyTorch's concern)
    np.testing.assert_array_equal(np.signbit(_np(out_o))[number], np.signbit(_np(out_t))[number])
    g = np.linspace(-1.5, 1.5, out_t.numel()).reshape(out_t.shape)
    out_o.backward(tapegrad.tensor(g, dtype=out_o.dtype))
    out_t.backward(torch.tensor(g, dtype=out_t.dtype))
    for a, b in zip(ours, theirs):
        _close(a.grad, b.grad + 0, rtol, 0 if dtype == "float64" else 1e-6, "gradient")


# ---------------------------------------------------------------- second derivatives

SECOND = [
    ("asinh", lambda L, x: L.asinh(x), [[0.3, -1.2, 2.0]]),
    ("acosh", lambda L, x: L.acosh(x), [[1.3, 2.2, 4.0]]),
    ("atanh", lambda L, x: L.atanh(x), [[0.3, -0.7, 0.1]]),
    ("erfc", lambda L, x: L.erfc(x), [[0.3, -1.2, 2.0]]),
    ("erfinv", lambda L, x: L.erfinv(x), [[0.3, -0.8, 0.95]]),
    ("lgamma", lambda L, x: L.lgamma(x), [[0.3, -1.2, 2.0]]),
    ("digamma", lambda L, x: L.digamma(x), [[0.3, -1.2, 2.0]]),
    ("logit", lambda L, x: L.logit(x), [[0.3, 0.7, 0.1]]),
    ("sinc", lambda L, x: L.sinc(x), [[0.3, -1.2, 2.0]]),
    ("xlogy", lambda L, x, y: L.xlogy(x, y), [[0.3, -1.2, 2.0], [0.5, 1.5, 3.0]]),
    ("hypot", lambda L, x, y: L.hypot(x, y), [[0.3, -1.2, 2.0], [0.5, 1.5, -3.0]]),
    ("logaddexp", lambda L, x, y: L.logaddexp(x, y), [[0.3, -1.2, 2.0], [0.5, 1.5, -3.0]]),
    ("logaddexp2", lambda L, x, y: L.logaddexp2(x, y), [[0.3, -1.2, 2.0], [0.5, 1.5, -3.0]]),
    ("copysign", lambda L, x, y: L.copysign(x, y), [[0.3, -1.2, 2.0], [0.5, 1.5, -3.0]]),
]


@pytest.mark.parametrize(("fn", "arrays"), [pytest.param(f, a, id=n) for n, f, a in SECOND])
def test_second_derivative(fn, arrays):
    """create_graph through the node's backward: the gradient of the gradient, against
    central differences of the first gradient (and PyTorch's when installed)."""
    arrays = [np.array(a) for a in arrays]

    def first(lib, *xs):
        out = fn(lib, *xs)
        return lib.autograd.grad(out.sum(), xs, create_graph=True)

    xs = _tensors(tapegrad, arrays, "float64")
    assert gradcheck(lambda *a: sum(g.sum() for g in first(tapegrad, *a)), xs)
    try:
        import torch
    except ImportError:
        return
    ts = _tensors(torch, arrays, "float64")
    ours = tapegrad.autograd.grad(sum(g.sum() for g in first(tapegrad, *xs)), xs,
                                  allow_unused=True)
    theirs = torch.autograd.grad(sum(g.sum() for g in first(torch, *ts)), ts,
                                 allow_unused=True)
    for a, b in zip(ours, theirs):
        if b is None:
            assert a is None or not _np(a).any()
        else:
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- in-place forms

HALF = np.array(0.5)  # (a tensor argument)
# PyTorch has no derivative for these in-place forms (its backward raises); tapegrad's is the
# out-of-place op's, checked against PyTorch's out-of-place gradient
NO_TORCH_DERIVATIVE = {"asinh_", "arcsinh_", "acosh_", "arccosh_", "atanh_", "arctanh_"}
INPLACE = [  # (method, args, domain of self)
    ("multiply_", (2.0,), "real"), ("subtract_", (1.5,), "real"), ("negative_", (), "real"),
    ("true_divide_", (3.0,), "real"), ("absolute_", (), "real"), ("asinh_", (), "real"),
    ("arcsinh_", (), "real"), ("acosh_", (), "above1"), ("arccosh_", (), "above1"),
    ("atanh_", (), "unit"), ("arctanh_", (), "unit"), ("arccos_", (), "unit"),
    ("arcsin_", (), "unit"), ("arctan_", (), "real"), ("atan2_", (HALF,), "real"),
    ("arctan2_", (HALF,), "real"), ("fmod_", (0.7,), "real"), ("remainder_", (0.7,), "real"),
    ("cumsum_", (1,), "real"), ("cumprod_", (-1,), "real"), ("tril_", (), "real"),
    ("triu_", (1,), "real"), ("nan_to_num_", (), "real"), ("fix_", (), "half"),
    ("sgn_", (), "real"), ("frac_", (), "wide"), ("deg2rad_", (), "real"),
    ("rad2deg_", (), "real"), ("logit_", (0.1,), "prob"), ("xlogy_", (2.0,), "real"),
    ("xlogy_", (HALF,), "real"), ("hypot_", (HALF,), "real"), ("copysign_", (HALF,), "real"),
    ("sinc_", (), "real"), ("copysign_", (-1.0,), "real"), ("erfc_", (), "real"),
    ("erfinv_", (), "unit"), ("lgamma_", (), "wide"), ("digamma_", (), "wide"),
    ("polygamma_", (1,), "wide"),
    ("float_power_", (2,), "real"), ("eq_", (0.5,), "int"), ("ne_", (0.5,), "int"),
    ("lt_", (0.0,), "real"), ("le_", (0.0,), "int"), ("gt_", (0.0,), "real"),
    ("ge_", (0.0,), "int"), ("greater_", (0.0,), "real"), ("greater_equal_", (0.0,), "int"),
    ("less_", (0.0,), "real"), ("less_equal_", (0.0,), "int"), ("not_equal_", (0.0,), "int"),
    ("gt_", (HALF,), "real"), ("eq_", (HALF,), "half"),
]


@pytest.mark.parametrize(("meth", "args", "domain"), INPLACE, ids=[r[0] for r in INPLACE])
def test_inplace_against_torch(meth, args, domain):
    """y = x * 1; y.op_(...) returns y with the op's value; the gradient reaches x through
    it as through PyTorch's; the version counter moves; a leaf that requires grad raises."""
    torch = pytest.importorskip("torch")
    a = _sample(domain, (2, 3), np.random.default_rng(seed_of(meth)))
    results = []
    for lib in (tapegrad, torch):
        x = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        xs = tuple(lib.tensor(v, dtype=lib.float64) if isinstance(v, np.ndarray) else v
                   for v in args)
        y = x * 1
        v = y._version
        if lib is torch and meth in NO_TORCH_DERIVATIVE:
            y = getattr(y, meth[:-1])(*xs)
            name = y.grad_fn.name()
        else:
            out = getattr(y, meth)(*xs)
            assert out is y and y._version > v
            name = _name(y) if lib is tapegrad else y.grad_fn.name()
            nexts = [type(f).__name__ if lib is torch else f.name()
                     for f, _ in y.grad_fn.next_functions if f is not None]
            assert nexts[0] == "MulBackward0", nexts
        (y * lib.tensor(np.arange(6.0).reshape(2, 3) - 2.5, dtype=lib.float64)).sum().backward()
        results.append((_np(y), x.grad.numpy(force=True), name))
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
            getattr(lib.tensor(a, dtype=lib.float64, requires_grad=True), meth)(*xs)
        plain = lib.tensor(a, dtype=lib.float64)
        assert getattr(plain, meth)(*xs) is plain
    (vo, go, no), (vt, gt, nt) = results
    np.testing.assert_allclose(vo, vt, rtol=1e-12, atol=1e-14, equal_nan=True)
    np.testing.assert_allclose(go, gt, rtol=1e-10, atol=1e-12, equal_nan=True)
    assert no == nt


def test_saved_input_modified_in_place():
    """A node that reads its input raises PyTorch's error if the input changed meanwhile."""
    x = tapegrad.tensor([1.5, 2.0], dtype=tapegrad.float64, requires_grad=True)
    y = x * 1
    z = tapegrad.lgamma(y)
    y.add_(3)
    with pytest.raises(RuntimeError) as err:
        z.sum().backward()
    assert str(err.value) == (
        "one of the variables needed for gradient computation has been modified by an inplace "
        "operation: [torch.DoubleTensor [2]], which is output 0 of Add, is at version 1; "
        "expected version 0 instead. Hint: enable anomaly detection to find the operation that "
        "failed to compute its gradient, with torch.autograd.set_detect_anomaly(True, "
        "check_nan=False).")


@pytest.mark.parametrize("meth", ["logical_and_", "logical_or_", "logical_xor_",
                                  "logical_not_"])
def test_logical_inplace(meth):
    torch = pytest.importorskip("torch")
    a, b = np.array([0.0, 1.5, -2.0, 0.0]), np.array([1.0, 0.0, 3.0, 0.0])
    outs = []
    for lib in (tapegrad, torch):
        x = lib.tensor(a)
        args = () if meth == "logical_not_" else (lib.tensor(b),)
        assert getattr(x, meth)(*args) is x
        outs.append(_np(x))
    np.testing.assert_array_equal(*outs)


def test_logical_inplace_is_not_recorded():
    """As PyTorch: the values change, the history (and so the gradient) stays."""
    x = tapegrad.tensor([1.0, 0.0], requires_grad=True)
    y = x * 2
    y.logical_not_()
    assert y.tolist() == [0.0, 1.0] and y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    leaf = tapegrad.tensor([1.0, 0.0], requires_grad=True)
    assert leaf.logical_and_(tapegrad.tensor([0.0, 1.0])) is leaf


def test_inplace_gradcheck():
    """An in-place special function on a non-leaf, against central differences."""
    def fn(x):
        y = x * 1.5
        y.lgamma_()
        return y.hypot_(x)
    assert gradcheck(fn, [tapegrad.tensor([0.7, 1.9, -0.4], dtype=tapegrad.float64,
                                          requires_grad=True)])


# ---------------------------------------------------------------- no gradient

INTS = [np.array([0, -4, 6, 7, -9, 12]), np.array([0, 6, -9, 3, 3, 12])]
NOGRAD = [
    ("greater", lambda L, x, y: L.greater(x, y)),
    ("greater_equal", lambda L, x, y: L.greater_equal(x, y)),
    ("less", lambda L, x, y: x.less(y)),
    ("less_equal", lambda L, x, y: L.less_equal(x, y)),
    ("not_equal", lambda L, x, y: L.not_equal(x, y)),
    ("bitwise_and", lambda L, x, y: L.bitwise_and(x, y)),
    ("bitwise_or", lambda L, x, y: x.bitwise_or(y)),
    ("bitwise_xor", lambda L, x, y: L.bitwise_xor(x, y)),
    ("xor.op", lambda L, x, y: x ^ y),
    ("rand.op", lambda L, x, y: 5 & x),
    ("rxor.op", lambda L, x, y: 5 ^ y),
    ("bitwise_not", lambda L, x, y: L.bitwise_not(x)),
    ("bitwise_and.number", lambda L, x, y: L.bitwise_and(x, 6)),
    ("left_shift", lambda L, x, y: L.bitwise_left_shift(x, L.tensor([0, 1, 2, 63, 64, 70]))),
    ("right_shift", lambda L, x, y: L.bitwise_right_shift(x, L.tensor([0, 1, 2, 63, 64, -1]))),
    ("lshift.op", lambda L, x, y: x << 2),
    ("rshift.op", lambda L, x, y: x >> 1),
    ("gcd", lambda L, x, y: L.gcd(x, y)),
    ("lcm", lambda L, x, y: x.lcm(y)),
    ("bool.and", lambda L, x, y: L.bitwise_and(x > 0, y > 0)),
    ("bool.xor", lambda L, x, y: (x > 0) ^ (y > 0)),
    ("bool.not", lambda L, x, y: L.bitwise_not(x > 0)),
    ("int8.shift", lambda L, x, y: L.bitwise_left_shift(x.to(L.int8), 5)),
    ("sgn.int", lambda L, x, y: L.sgn(x)),
    ("sgn.bool", lambda L, x, y: L.sgn(x > 0)),
    ("deg2rad.int", lambda L, x, y: L.deg2rad(x)),
    ("asinh.int", lambda L, x, y: L.asinh(x)),
    ("lgamma.int", lambda L, x, y: L.lgamma(y)),
    ("xlogy.int", lambda L, x, y: L.xlogy(x, y)),
    ("float_power.int", lambda L, x, y: L.float_power(x, 2)),
    ("ldexp.int", lambda L, x, y: L.ldexp(x, L.tensor([1, 2, 0, 1, 2, 3]))),
    ("copysign.int", lambda L, x, y: L.copysign(x, y)),
    ("signbit", lambda L, x, y: L.signbit(x.double() * 0.0 - y)),
    ("signbit.int", lambda L, x, y: x.signbit()),
    ("isposinf", lambda L, x, y: L.isposinf(x.double() / y)),
    ("isneginf", lambda L, x, y: (x.double() / y).isneginf()),
    ("isreal", lambda L, x, y: L.isreal(x)),
    ("heaviside", lambda L, x, y: L.heaviside(x.double(), y.double())),
    ("ravel.int", lambda L, x, y: x.ravel()),
    ("gt_.int", lambda L, x, y: x.clone().gt_(1)),
    ("le_.int", lambda L, x, y: x.clone().le_(y)),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(("fn"), [pytest.param(f, id=n) for n, f in NOGRAD])
def test_no_gradient_against_torch(fn):
    torch = pytest.importorskip("torch")
    out_o = fn(tapegrad, *(tapegrad.tensor(a) for a in INTS))
    out_t = fn(torch, *(torch.tensor(a) for a in INTS))
    assert dtype_name(out_o.dtype) == dtype_name(out_t.dtype)
    np.testing.assert_allclose(_np(out_o), _np(out_t), rtol=1e-6, equal_nan=True)


def test_frexp():
    a = np.array([0.0, 8.0, -3.5, 1e-310, 0.75])
    m, e = tapegrad.frexp(tapegrad.tensor(a, dtype=tapegrad.float64))
    assert e.dtype is tapegrad.int32 and m.dtype is tapegrad.float64
    np.testing.assert_array_equal(_np(m) * 2.0 ** _np(e), a)
    assert tapegrad.tensor([4.0]).frexp().exponent.tolist() == [3]
    assert tapegrad.tensor([4.0]).frexp().mantissa.tolist() == [0.5]


def test_heaviside_backward_raises():
    x = tapegrad.tensor([1.0, 0.0], requires_grad=True)
    out = tapegrad.heaviside(x, tapegrad.tensor(0.5))
    assert out.grad_fn.name() == "NotImplemented"
    with pytest.raises(RuntimeError, match="derivative for aten::heaviside is not implemented"):
        out.sum().backward()


def test_in_place_comparison_gives_zero_gradient():
    x = tapegrad.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * 2
    y.gt_(0.0)
    assert y.grad_fn.name() == "GtBackward0" and y.requires_grad
    (y * 3).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]
    assert y.tolist() == [1.0, 0.0, 1.0]


def test_in_place_bitwise_operators():
    x = tapegrad.tensor([5, 6, 7])
    x &= tapegrad.tensor([3, 3, 3])
    x |= 8
    x ^= 1
    x <<= 1
    x >>= 2
    assert x.tolist() == [(((5 & 3) | 8) ^ 1) << 1 >> 2, (((6 & 3) | 8) ^ 1) << 1 >> 2,
                          (((7 & 3) | 8) ^ 1) << 1 >> 2]


def test_digamma_polygamma_accuracy():
    torch = pytest.importorskip("torch")
    a = np.concatenate([np.linspace(-20.3, 20.3, 401), [1e-8, -1e-8, 1e6, 1.4616321449683622]])
    for n in range(4):
        ours = _np(tapegrad.polygamma(n, tapegrad.tensor(a, dtype=tapegrad.float64)))
        theirs = torch.polygamma(n, torch.tensor(a)).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-14, err_msg=f"n={n}")


def test_erfinv_accuracy():
    """erf(erfinv(y)) == y to an ulp; PyTorch's values to 1e-14 where erfinv is not
    ill-conditioned (|y| <= 0.9999)."""
    y = np.linspace(-0.9999, 0.9999, 4001)
    x = _np(tapegrad.erfinv(tapegrad.tensor(y, dtype=tapegrad.float64)))
    np.testing.assert_allclose(np.vectorize(math.erf)(x), y, rtol=0, atol=2.3e-16)
    torch = pytest.importorskip("torch")
    np.testing.assert_allclose(x, torch.erfinv(torch.tensor(y)).numpy(), rtol=1e-14, atol=0)


def test_known_values():
    """Values that hold without PyTorch: digamma(1) = -gamma, trigamma(1) = pi^2/6,
    lgamma(0.5) = log(sqrt(pi))."""
    d = tapegrad.digamma(tapegrad.tensor([1.0, 0.5], dtype=tapegrad.float64)).tolist()
    assert abs(d[0] + 0.5772156649015329) < 1e-14
    assert abs(d[1] + 0.5772156649015329 + 2 * math.log(2)) < 1e-14
    t = tapegrad.polygamma(1, tapegrad.tensor([1.0], dtype=tapegrad.float64)).item()
    assert abs(t - math.pi ** 2 / 6) < 1e-9  # (PyTorch's trigamma: a short series)
    g = tapegrad.lgamma(tapegrad.tensor([0.5], dtype=tapegrad.float64)).item()
    assert abs(g - 0.5 * math.log(math.pi)) < 1e-15


# ---------------------------------------------------------------- metadata

def test_metadata():
    x = tapegrad.zeros(2, 3)
    assert x.nbytes == 24 and x.itemsize == 4
    assert tapegrad.zeros(2, dtype=tapegrad.float64).nbytes == 16
    assert x.is_signed() and tapegrad.is_signed(x)
    assert not tapegrad.tensor([True]).is_signed()
    assert not tapegrad.tensor([1], dtype=tapegrad.uint8).is_signed()
    assert not x.is_complex() and not tapegrad.is_complex(x)
    assert not x.is_conj() and not x.is_neg()
    assert x.conj() is x and tapegrad.resolve_conj(x) is x and x.resolve_neg() is x
    assert x.real is x and tapegrad.real(x) is x
    assert tapegrad.positive(x) is x and x.positive() is x
    assert tapegrad.is_same_size(x, tapegrad.ones(2, 3))
    assert not x.is_same_size(tapegrad.ones(3, 2))
    assert tapegrad.tensor([2.0]).is_nonzero() and not tapegrad.tensor(0.0).is_nonzero()
    assert tapegrad.tensor(math.nan).is_nonzero()


# ---------------------------------------------------------------- errors

ERRORS = [
    ("is_nonzero.many", lambda L: L.tensor([1, 2]).is_nonzero(), RuntimeError,
     "Boolean value of Tensor with more than one value is ambiguous"),
    ("is_nonzero.empty", lambda L: L.tensor([]).is_nonzero(), RuntimeError,
     "Boolean value of Tensor with no values is ambiguous"),
    ("positive.bool", lambda L: L.positive(L.tensor([True])), RuntimeError,
     "The `+` operator, on a bool tensor is not supported."),
    ("gcd.float", lambda L: L.gcd(L.tensor([1.0]), L.tensor([2.0])), NotImplementedError,
     "\"gcd_cpu\" not implemented for 'Float'"),
    ("bitwise_and.float", lambda L: L.bitwise_and(L.tensor([1.0]), L.tensor([2.0])),
     NotImplementedError, "\"bitwise_and_cpu\" not implemented for 'Float'"),
    ("bitwise_not.float", lambda L: L.bitwise_not(L.tensor([1.0])), NotImplementedError,
     "\"bitwise_not_cpu\" not implemented for 'Float'"),
    ("lshift.float", lambda L: L.tensor([1, 2]) << 1.5, NotImplementedError,
     "\"lshift_cpu\" not implemented for 'Float'"),
    ("hypot.long", lambda L: L.hypot(L.tensor([1]), L.tensor([2])), NotImplementedError,
     "\"hypot_cpu\" not implemented for 'Long'"),
    ("nextafter.long", lambda L: L.nextafter(L.tensor([1]), L.tensor([2])),
     NotImplementedError, "\"nextafter_cpu\" not implemented for 'Long'"),
    ("logaddexp.long", lambda L: L.logaddexp(L.tensor([1]), L.tensor([2])),
     NotImplementedError, "\"logaddexp_cpu\" not implemented for 'Long'"),
    ("frac.long", lambda L: L.frac(L.tensor([1])), NotImplementedError,
     "\"frac_cpu\" not implemented for 'Long'"),
    ("frexp.long", lambda L: L.frexp(L.tensor([1])), RuntimeError,
     "torch.frexp() only supports floating-point dtypes"),
    ("float_power_.float32", lambda L: L.tensor([1.0]).float_power_(2), RuntimeError,
     "the base given to float_power_ has dtype Float but the operation's result requires "
     "dtype Double"),
    ("heaviside.dtypes", lambda L: L.heaviside(L.tensor([1.0]), L.tensor([1])), RuntimeError,
     "heaviside is not yet implemented for tensors with different dtypes."),
    ("movedim.lengths", lambda L: L.movedim(L.zeros(2, 3), (0, 1), (1,)), RuntimeError,
     "movedim: Invalid source or destination dims: source ([0, 1] dims) should contain the "
     "same number of dims as destination ([1] dims)"),
    ("movedim.repeated_source", lambda L: L.movedim(L.zeros(2, 3), (0, 0), (1, 0)),
     RuntimeError, "movedim: repeated dim in `source` ([0, 0])"),
    ("movedim.repeated_destination", lambda L: L.movedim(L.zeros(2, 3), (0, 1), (1, -1)),
     RuntimeError, "movedim: repeated dim in `destination` ([1, -1])"),
    ("movedim.range", lambda L: L.movedim(L.zeros(2, 3), 2, 0), IndexError,
     "Dimension out of range (expected to be in range of [-2, 1], but got 2)"),
    ("swapaxes.range", lambda L: L.swapaxes(L.zeros(2), 0, 2), IndexError,
     "Dimension out of range (expected to be in range of [-1, 0], but got 2)"),
    ("acosh_.int", lambda L: L.tensor([1, 2]).acosh_(), RuntimeError,
     "result type Float can't be cast to the desired output type Long"),
    ("polygamma.negative", lambda L: L.polygamma(-1, L.tensor([1.0])), RuntimeError,
     "polygamma(n, x) does not support negative n."),
]


@pytest.mark.parametrize(("fn", "exc", "message"),
                         [pytest.param(f, e, m, id=n) for n, f, e, m in ERRORS])
def test_errors(fn, exc, message):
    with pytest.raises(exc) as ours:
        fn(tapegrad)
    assert str(ours.value) == message
    try:
        import torch
    except ImportError:
        return
    with pytest.raises(exc) as theirs:
        fn(torch)
    assert str(theirs.value) == message


# ---------------------------------------------------------------- torch-level forms

TORCH_LEVEL = [  # (name, args, domain): tapegrad.<name>(x, *args)
    ("negative_", (), "real"), ("abs_", (), "real"), ("neg_", (), "real"),
    ("exp2_", (), "real"), ("sigmoid_", (), "real"), ("square_", (), "real"),
    ("rsqrt_", (), "pos"), ("clip_", (-0.5, 0.5), "real"), ("erf_", (), "real"),
    ("trunc_", (), "half"), ("fix_", (), "half"), ("fix", (), "half"),
    ("arccos_", (), "unit"), ("arcsin_", (), "unit"), ("arctan_", (), "real"),
    ("asinh_", (), "real"), ("acosh_", (), "above1"), ("atanh_", (), "unit"),
    ("arcsinh_", (), "real"), ("arccosh_", (), "above1"), ("arctanh_", (), "unit"),
    ("nan_to_num_", (), "real"), ("frac_", (), "wide"), ("deg2rad_", (), "real"),
    ("rad2deg_", (), "real"), ("logit_", (0.25,), "prob"), ("xlogy_", (2.0,), "real"),
    ("sinc_", (), "real"), ("erfc_", (), "real"), ("ldexp_", (), "real"),
    ("greater", (0.0,), "real"), ("less_equal", (0.0,), "int"), ("not_equal", (1.0,), "int"),
    ("absolute", (), "real"), ("arcsinh", (), "real"), ("arccosh", (), "above1"),
    ("arctanh", (), "unit"), ("positive", (), "real"), ("conj", (), "real"),
    ("resolve_conj", (), "real"), ("resolve_neg", (), "real"), ("real", (), "real"),
    ("isreal", (), "real"), ("signbit", (), "real"),
]


@pytest.mark.parametrize(("name", "args", "domain"), TORCH_LEVEL, ids=[r[0] for r in TORCH_LEVEL])
def test_torch_level_against_torch(name, args, domain):
    torch = pytest.importorskip("torch")
    a = _sample(domain, (2, 3), np.random.default_rng(seed_of(name)))
    outs = []
    for lib in (tapegrad, torch):
        x = lib.tensor(a, dtype=lib.float64)
        extra = (lib.tensor([[1, 0, -2]]),) if name == "ldexp_" else args
        out = getattr(lib, name)(x, *extra)
        if name.endswith("_"):
            assert out is x
        outs.append(out)
    assert dtype_name(outs[0].dtype) == dtype_name(outs[1].dtype)
    np.testing.assert_allclose(_np(outs[0]), _np(outs[1]), rtol=1e-12, atol=1e-14)


def test_ldexp_gradient_with_negative_exponents():
    """grad * 2 ** other, also for negative integer exponents (where PyTorch's integer power
    gives 0: a known difference)."""
    x = tapegrad.tensor([0.7, -1.5, 3.0], dtype=tapegrad.float64, requires_grad=True)
    assert gradcheck(lambda t: tapegrad.ldexp(t, tapegrad.tensor([-2, 0, 3])), [x])
