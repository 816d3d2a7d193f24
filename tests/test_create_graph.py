"""``create_graph=True``: differentiable gradients, double backward, higher orders.

* every row of ``tests/op_specs.py`` and of ``tests/nn_cases.py``: ``g = grad(f(x), x, v,
  create_graph=True)``, then ``grad(sum(g * w), x)``, against PyTorch (when installed) and
  against central differences of the (ordinary) first-order gradient along a random direction;
* third order, gradient penalties, Hessian-vector products, ``backward(create_graph=True)``,
  ``grad_outputs`` that require grad, hooks, retain_grad, custom Functions, links between
  segments, and the freed-graph and modified-in-place errors.

No expected number is written down: everything is compared with PyTorch or with differences.
"""
from __future__ import annotations

import math
import warnings

import nn_cases
import numpy as np
import pytest
from op_specs import case_id, cases, inputs_for, seed_of

import tapegrad
from tapegrad import _engine

pytestmark = [
    pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning"),
    pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning"),
]

OP_CASES = [pytest.param(spec, case, id=case_id(spec, case)) for spec, case in cases()
            if spec.differentiable]
# at the origin the gradient of a norm is not differentiable (PyTorch's convention gives 0):
# central differences have nothing to check there
FD_CASES = [p for p in OP_CASES if p.values[0].gradcheck and p.values[0].domain != "zero"]
# Where PyTorch's second derivative is nan because its formula's own derivative meets 0 * inf
# (0/0 masked to 0 at a zero norm, std or base), tapegrad's sweep skips the identically-zero
# adjoint (docs/design.md, "The sweep") and gives 0; every other element must agree.
TORCH_NAN_WHERE_ZERO = frozenset((
    "pow.rop.zero_base", "norm.at_zero", "norm.at_zero.dim", "var.single.dim", "std.single",
    "std.single.dim", "norm.p1_5.int", "norm.p1_5.int.dim", "norm.p0_5.int",
    "norm.p0_5.int.dim"))
NN_CASES = [pytest.param(c, id=c.name) for c in nn_cases.CASES]
NN_FD_CASES = [p for p in NN_CASES if p.values[0].gradcheck]


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy(force=True), dtype=np.float64)  # PyTorch's ZeroTensor


def _vectors(seed_text, out_shape, in_shapes):
    """The random v (grad_outputs), w (weights of the first-order gradient) and u (direction)."""
    rng = np.random.default_rng(seed_of(seed_text + "/vwu"))
    v = rng.standard_normal(tuple(out_shape))
    w = [rng.standard_normal(tuple(s)) for s in in_shapes]
    u = [rng.standard_normal(tuple(s)) for s in in_shapes]
    return v, w, u


def double_backward(lib, fn, arrays, dtype, seed_text):
    """First-order gradients g (with create_graph) and the gradient of sum(g * w)."""
    xs = [lib.tensor(a, dtype=getattr(lib, dtype), requires_grad=True) for a in arrays]
    out = fn(lib, *xs)
    v, w, _ = _vectors(seed_text, out.shape, [a.shape for a in arrays])
    gs = lib.autograd.grad(out, xs, lib.tensor(v, dtype=out.dtype), create_graph=True,
                           allow_unused=True)
    first = [np.zeros(a.shape) if g is None else _np(g) for g, a in zip(gs, arrays)]
    terms = [(g * lib.tensor(wi, dtype=g.dtype)).sum() for g, wi in zip(gs, w)
             if g is not None and g.requires_grad]
    for g in gs:  # a gradient with history is a non-leaf tensor with a grad_fn
        if g is not None and g.requires_grad:
            assert g.grad_fn is not None and not g.is_leaf
    second = [np.zeros(a.shape) for a in arrays]
    if terms:
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        g2 = lib.autograd.grad(total, xs, allow_unused=True)
        second = [np.zeros(a.shape) if g is None else _np(g) for g, a in zip(g2, arrays)]
    return first, second


def _first_order_dot(fn, arrays, v, w):
    """h(x) = sum_i <grad_i f(x)^T v, w_i>, through the ordinary (compiled) backward."""
    xs = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True) for a in arrays]
    out = fn(tapegrad, *xs)
    gs = tapegrad.autograd.grad(out, xs, tapegrad.tensor(v, dtype=out.dtype),
                                allow_unused=True)
    return sum(float((_np(g) * wi).sum()) for g, wi in zip(gs, w) if g is not None)


def check_against_differences(fn, arrays, seed_text, eps=1e-6):
    """<grad(sum(g * w)), u> against central differences of h along u."""
    _, second = double_backward(tapegrad, fn, arrays, "float64", seed_text)
    out_shape = fn(tapegrad, *[tapegrad.tensor(a, dtype=tapegrad.float64)
                               for a in arrays]).shape
    v, w, u = _vectors(seed_text, out_shape, [a.shape for a in arrays])
    plus = [a + eps * ui for a, ui in zip(arrays, u)]
    minus = [a - eps * ui for a, ui in zip(arrays, u)]
    numeric = (_first_order_dot(fn, plus, v, w) - _first_order_dot(fn, minus, v, w)) / (2 * eps)
    analytic = sum(float((s * ui).sum()) for s, ui in zip(second, u))
    scale = 1.0 + sum(float(np.abs(s).sum() * np.abs(ui).max(initial=0.0))
                      for s, ui in zip(second, u))
    assert abs(numeric - analytic) <= 1e-6 * scale, (
        f"directional second derivative {analytic} != central differences {numeric}")


def compare(ours, theirs, rtol, atol, what, zero_for_nan=False):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if zero_for_nan:
            nan = np.isnan(b) & ~np.isnan(a)
            np.testing.assert_array_equal(a[nan], 0.0, err_msg=f"{what} of input {i}")
            a, b = np.where(nan, 0.0, a), np.where(nan, 0.0, b)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"{what} of input {i}")


# ---------------------------------------------------------------- every op of the table

@pytest.mark.parametrize(("spec", "case"), OP_CASES)
def test_op_double_backward_against_torch(spec, case):
    torch = pytest.importorskip("torch")
    arrays = inputs_for(spec, case)
    text = case_id(spec, case)
    first_o, second_o = double_backward(tapegrad, spec.fn, arrays, "float64", text)
    first_t, second_t = double_backward(torch, spec.fn, arrays, "float64", text)
    compare(first_o, first_t, 1e-9, 1e-11, "first-order gradient")
    compare(second_o, second_t, 1e-8, 1e-10, "second-order gradient",
            spec.name in TORCH_NAN_WHERE_ZERO)


@pytest.mark.parametrize(("spec", "case"), FD_CASES)
def test_op_double_backward_against_differences(spec, case):
    check_against_differences(spec.fn, inputs_for(spec, case), case_id(spec, case))


FLOAT32_CASES = [p for p in OP_CASES if p.values[1] == p.values[0].shapes[0]]


@pytest.mark.parametrize(("spec", "case"), FLOAT32_CASES)
def test_op_double_backward_float32(spec, case):
    """float32 graphs: the gradients are float32 tensors with history, PyTorch's values."""
    torch = pytest.importorskip("torch")
    arrays = inputs_for(spec, case)
    text = case_id(spec, case)
    first_o, second_o = double_backward(tapegrad, spec.fn, arrays, "float32", text)
    first_t, second_t = double_backward(torch, spec.fn, arrays, "float32", text)
    rtol, atol = max(spec.rtol32, 1e-4), max(spec.atol32, 1e-4)
    compare(first_o, first_t, rtol, atol, "first-order gradient")
    compare(second_o, second_t, rtol, atol, "second-order gradient",
            spec.name in TORCH_NAN_WHERE_ZERO)


# ---------------------------------------------------------------- nn.functional

def _nn_fn(case):
    return lambda lib, *xs: case.fn(lib, lib.nn.functional, *xs)


@pytest.mark.parametrize("case", NN_CASES)
def test_functional_double_backward_against_torch(case):
    torch = pytest.importorskip("torch")
    arrays = nn_cases.inputs_for(case)
    first_o, second_o = double_backward(tapegrad, _nn_fn(case), arrays, "float64", case.name)
    first_t, second_t = double_backward(torch, _nn_fn(case), arrays, "float64", case.name)
    compare(first_o, first_t, 1e-9, 1e-11, "first-order gradient")
    compare(second_o, second_t, 1e-8, 1e-10, "second-order gradient")


@pytest.mark.parametrize("case", NN_FD_CASES)
def test_functional_double_backward_against_differences(case):
    check_against_differences(_nn_fn(case), nn_cases.inputs_for(case), case.name)


# ---------------------------------------------------------------- in-place writes and views

def _setitem(lib, x):
    y = x * 2.0
    y[1:3] = x[1:3].sin() * x[0]
    return y * y


def _fill(lib, x):
    y = x * 3.0
    y.fill_(2.0)
    return y * x + x.sin()


def _fill_view(lib, x):
    y = x + 1.0
    y[1:3].fill_(0.5)
    return y * x


def _zero(lib, x):
    y = x * x
    y[0].zero_()
    return y * x


def _zero_all(lib, x):
    y = x - 1.0
    y.zero_()
    return y + x * x


def _copy(lib, x):
    y = x * 1.0
    y.copy_(x.sin() * x)
    return y.exp()


def _copy_broadcast(lib, x):
    y = x * x
    y[1:].copy_(x[0].cos())
    return y * x


def _fill_tensor(lib, x):
    y = x * 1.0
    y.fill_(x[0] * x[1])
    return y * x


def _index_put(lib, x):
    y = x * 1.0
    y[lib.tensor([0, 2])] = x[1:3].exp()
    return y.sin() * x


def _refresh(lib, x):
    y = x * 2.0
    y.data.add_(1.0)  # a write the graph does not see: y's later uses take the new value
    return y * x


def _as_strided(lib, x):
    y = x * 1.0
    v = y[1:3]
    v.mul_(x[0])
    return y * v.sum()


def _inplace_unary_view(lib, x):
    y = x * 1.0
    y[1:].exp_()
    return y * x


def _masked_fill_(lib, x):
    y = x.cos()
    y.masked_fill_(lib.tensor([True, False, True, False]), 0.25)
    return y * x.exp()


INPLACE = [pytest.param(f, id=f.__name__.strip("_")) for f in (
    _setitem, _fill, _fill_view, _zero, _zero_all, _copy, _copy_broadcast, _fill_tensor,
    _index_put, _refresh, _as_strided, _inplace_unary_view, _masked_fill_)]
X4 = np.array([0.3, -0.7, 1.2, 0.45])


@pytest.mark.parametrize("fn", INPLACE)
def test_inplace_double_backward_against_torch(fn):
    torch = pytest.importorskip("torch")
    name = fn.__name__
    first_o, second_o = double_backward(tapegrad, fn, [X4], "float64", name)
    first_t, second_t = double_backward(torch, fn, [X4], "float64", name)
    compare(first_o, first_t, 1e-9, 1e-11, "first-order gradient")
    compare(second_o, second_t, 1e-8, 1e-10, "second-order gradient")


@pytest.mark.parametrize("fn", INPLACE)
def test_inplace_double_backward_against_differences(fn):
    check_against_differences(fn, [X4], fn.__name__)


# ---------------------------------------------------------------- scenarios against PyTorch

def _libs():
    libs = [tapegrad]
    try:
        import torch
        libs.append(torch)
    except ImportError:
        pass
    return libs


def _same(results):
    """Every library's results (lists of arrays) agree with tapegrad's."""
    ours = results[0]
    for theirs in results[1:]:
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


SCALAR_FUNCTIONS = [
    pytest.param(lambda x: x.sin() * x.exp(), id="sin_exp"),
    pytest.param(lambda x: (x * x + 1.0).log() / (x.cosh()), id="log_cosh"),
    pytest.param(lambda x: x.tanh() ** 3 - x.sigmoid().sqrt(), id="tanh_sigmoid"),
    pytest.param(lambda x: x.atan() * x.erf() + x.reciprocal(), id="atan_erf"),
]


@pytest.mark.parametrize("f", SCALAR_FUNCTIONS)
def test_third_order_scalar(f):
    def derivatives(lib, x0):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        y = f(x)
        d1, = lib.autograd.grad(y, x, create_graph=True)
        d2, = lib.autograd.grad(d1, x, create_graph=True)
        d3, = lib.autograd.grad(d2, x)
        return [d.detach().item() for d in (d1, d2, d3)]

    results = [derivatives(lib, 0.7) for lib in _libs()]
    _same([np.array(r) for r in results])
    # against differences of the second derivative, which the first two orders already matched
    eps = 1e-5
    hi, lo = derivatives(tapegrad, 0.7 + eps), derivatives(tapegrad, 0.7 - eps)
    assert abs((hi[1] - lo[1]) / (2 * eps) - results[0][2]) < 1e-6 * (1 + abs(results[0][2]))
    assert abs((hi[0] - lo[0]) / (2 * eps) - results[0][1]) < 1e-6 * (1 + abs(results[0][1]))


def test_third_order_vector():
    def run(lib):
        x = lib.tensor([0.3, -0.8, 1.1], dtype=lib.float64, requires_grad=True)
        y = (x.softmax(0) * x.exp()).sum() + x.prod() * x.norm()
        g, = lib.autograd.grad(y, x, create_graph=True)
        h, = lib.autograd.grad((g * g).sum(), x, create_graph=True)
        k, = lib.autograd.grad(h.sin().sum(), x)
        return [_np(g), _np(h), _np(k)]

    _same([run(lib) for lib in _libs()])


THIRD_ORDER = [
    pytest.param(lambda lib, x: x.prod(), id="prod"),
    pytest.param(lambda lib, x: x.reshape(2, 3).prod(1), id="prod_dim"),
    pytest.param(lambda lib, x: x.cumprod(0), id="cumprod"),
    pytest.param(lambda lib, x: x.reshape(2, 3).cumsum(1) ** 3, id="cumsum_cube"),
    pytest.param(lambda lib, x: x.reshape(2, 3).softmax(1), id="softmax"),
    pytest.param(lambda lib, x: x.reshape(3, 2).log_softmax(0), id="log_softmax"),
    pytest.param(lambda lib, x: x.reshape(2, 3).norm(dim=1), id="norm_dim"),
    pytest.param(lambda lib, x: x.reshape(2, 3) @ x.reshape(3, 2), id="matmul"),
    pytest.param(lambda lib, x: (x.reshape(1, 2, 3) @ x.reshape(1, 3, 2).exp()).sin(), id="bmm"),
    pytest.param(lambda lib, x: lib.nn.functional.gelu(x) * lib.nn.functional.silu(x),
                 id="gelu_silu"),
    pytest.param(lambda lib, x: (x * x + 0.5).pow(x.cos()), id="pow"),
]
X6 = np.array([0.8, -0.6, 0.0, 1.3, -1.1, 0.4])  # a zero: prod and cumprod stay exact


@pytest.mark.parametrize("f", THIRD_ORDER)
def test_third_order_vector_ops(f):
    """grad(grad(grad)): against PyTorch, and against differences of the second order."""
    rng = np.random.default_rng(7)

    def run(lib, x0):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        y = f(lib, x)
        v = lib.tensor(rng.standard_normal(tuple(y.shape)), dtype=lib.float64)
        g, = lib.autograd.grad(y, x, v, create_graph=True)
        h, = lib.autograd.grad((g * g.sin()).sum(), x, create_graph=True)
        k, = lib.autograd.grad((h * lib.tensor(w, dtype=lib.float64)).sum(), x)
        return [_np(g), _np(h), _np(k)]

    w = np.random.default_rng(8).standard_normal(6)
    results = []
    for lib in _libs():
        rng = np.random.default_rng(7)
        results.append(run(lib, X6))
    _same(results)
    u = np.random.default_rng(9).standard_normal(6)
    eps = 1e-6
    rng = np.random.default_rng(7)
    hi = run(tapegrad, X6 + eps * u)[1]
    rng = np.random.default_rng(7)
    lo = run(tapegrad, X6 - eps * u)[1]
    numeric = float(((hi - lo) / (2 * eps) * w).sum())
    analytic = float((results[0][2] * u).sum())
    assert abs(numeric - analytic) <= 1e-5 * (1 + abs(analytic))


def test_gradient_penalty():
    def run(lib):
        rng = np.random.default_rng(0)
        w1 = lib.tensor(rng.standard_normal((4, 3)), dtype=lib.float64, requires_grad=True)
        w2 = lib.tensor(rng.standard_normal((1, 4)), dtype=lib.float64, requires_grad=True)
        x = lib.tensor(rng.standard_normal((5, 3)), dtype=lib.float64, requires_grad=True)
        F = lib.nn.functional
        out = F.linear(F.softplus(F.linear(x, w1)), w2).sum()
        g, = lib.autograd.grad(out, x, create_graph=True)
        penalty = ((g.norm(dim=1) - 1.0) ** 2).mean()
        loss = out + 10.0 * penalty
        loss.backward()
        return [_np(g), _np(w1.grad), _np(w2.grad), _np(x.grad)]

    _same([run(lib) for lib in _libs()])


def test_gradient_penalty_norm_squared_backward():
    """The brief's pattern: g, = grad(loss, x, create_graph=True); (g.norm()**2).backward()."""
    def run(lib):
        x = lib.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([[1.5, -0.5], [0.3, 0.7]], dtype=lib.float64, requires_grad=True)
        loss = (x @ w).tanh().sum()
        g, = lib.autograd.grad(loss, x, create_graph=True)
        (g.norm() ** 2).backward()
        return [_np(g), _np(x.grad), _np(w.grad)]

    _same([run(lib) for lib in _libs()])


def test_hessian_vector_product():
    rng = np.random.default_rng(3)
    x0 = rng.standard_normal(4)
    a = rng.standard_normal((4, 4))
    vec = rng.standard_normal(4)

    def f(lib, x):
        A = lib.tensor(a, dtype=lib.float64)
        return (A @ x).tanh().pow(2).sum() + (x * x).sum().sqrt() * x[0]

    def hvp(lib, x0):
        x = lib.tensor(x0, dtype=lib.float64, requires_grad=True)
        g, = lib.autograd.grad(f(lib, x), x, create_graph=True)
        hv, = lib.autograd.grad(g, x, lib.tensor(vec, dtype=lib.float64))
        return _np(hv)

    results = [[hvp(lib, x0)] for lib in _libs()]
    _same(results)

    def grad_at(x0):
        x = tapegrad.tensor(x0, dtype=tapegrad.float64, requires_grad=True)
        g, = tapegrad.autograd.grad(f(tapegrad, x), x)
        return _np(g)

    eps = 1e-6
    numeric = (grad_at(x0 + eps * vec) - grad_at(x0 - eps * vec)) / (2 * eps)
    np.testing.assert_allclose(results[0][0], numeric, rtol=1e-6, atol=1e-7)


def test_full_hessian_matches_torch():
    def run(lib):
        x = lib.tensor([0.4, -0.3, 0.9], dtype=lib.float64, requires_grad=True)
        y = (x.unsqueeze(1) * x.unsqueeze(0)).exp().sum() + x.cumprod(0).sum()
        g, = lib.autograd.grad(y, x, create_graph=True)
        rows = [_np(lib.autograd.grad(g[i], x, retain_graph=True)[0]) for i in range(3)]
        return rows

    results = [run(lib) for lib in _libs()]
    _same(results)
    H = np.array(results[0])
    np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-12)


def test_backward_create_graph_accumulates_grad_with_history():
    def run(lib):
        x = lib.tensor([0.3, -0.7, 1.2], requires_grad=True)  # float32 leaf
        w = lib.tensor([0.5, 0.1, -0.4], requires_grad=True)
        loss = ((x * w).sin() ** 2).sum()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss.backward(create_graph=True)
        assert x.grad.requires_grad and x.grad.grad_fn is not None
        assert str(x.grad.dtype).endswith("float32")
        first = [_np(x.grad), _np(w.grad)]
        penalty = (x.grad ** 2).sum() + (w.grad ** 2).sum()
        x.grad = None
        w.grad = None
        penalty.backward()
        return caught, first + [_np(x.grad), _np(w.grad)]

    results = [run(lib) for lib in _libs()]
    caught = results[0][0]
    assert any(issubclass(c.category, UserWarning) and "reference cycle" in str(c.message)
               for c in caught)
    for _, r in results[1:]:
        for a, b in zip(results[0][1], r):
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)


def test_backward_create_graph_accumulates_twice():
    """A second backward(create_graph=True) adds to .grad out of place, keeping history."""
    def run(lib):
        x = lib.tensor([0.3, -0.7], dtype=lib.float64, requires_grad=True)
        (x.exp() * x).sum().backward(create_graph=True)
        (x.sin() * x).sum().backward(create_graph=True)
        g = x.grad
        assert g.grad_fn is not None
        h, = lib.autograd.grad(g.sum(), x)
        return [_np(g), _np(h)]

    _same([run(lib) for lib in _libs()])


def test_backward_create_graph_with_inputs():
    def run(lib):
        x = lib.tensor([0.3, -0.7], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([1.5, 0.5], dtype=lib.float64, requires_grad=True)
        (x * w).pow(3).sum().backward(create_graph=True, inputs=[w])
        assert x.grad is None
        h, = lib.autograd.grad(w.grad.sum(), x)
        return [_np(w.grad), _np(h)]

    _same([run(lib) for lib in _libs()])


def test_retain_graph_defaults_to_create_graph():
    for lib in _libs():
        x = lib.tensor([0.5, 1.5], dtype=lib.float64, requires_grad=True)
        y = (x.exp() * x.sin()).sum()
        g1, = lib.autograd.grad(y, x, create_graph=True)
        g2, = lib.autograd.grad(y, x)  # the graph was retained
        np.testing.assert_allclose(_np(g1), _np(g2), rtol=1e-12)
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            lib.autograd.grad(y, x)


def test_grad_outputs_requiring_grad():
    def run(lib):
        x = lib.tensor([0.2, -0.4, 0.9], dtype=lib.float64, requires_grad=True)
        v = lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64, requires_grad=True)
        y = x.tanh() * x
        g, = lib.autograd.grad(y, x, v, create_graph=True)
        gx, gv = lib.autograd.grad((g ** 2).sum(), (x, v))
        return [_np(g), _np(gx), _np(gv)]

    _same([run(lib) for lib in _libs()])


def test_allow_unused_and_materialize_grads():
    for lib in _libs():
        x = lib.tensor([0.2, -0.4], dtype=lib.float64, requires_grad=True)
        z = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = (x * x).sum()
        gx, gz = lib.autograd.grad(y, (x, z), create_graph=True, allow_unused=True)
        assert gz is None and gx.requires_grad
        with pytest.raises(RuntimeError, match="appears to not have been used"):
            lib.autograd.grad(y, (x, z), create_graph=True)
        gx, gz = lib.autograd.grad(y, (x, z), create_graph=True, materialize_grads=True)
        np.testing.assert_array_equal(_np(gz), np.zeros(2))


def test_non_leaf_input():
    def run(lib):
        x = lib.tensor([0.2, -0.4, 0.7], dtype=lib.float64, requires_grad=True)
        h = x.sin()
        y = (h * h * x).sum()
        gh, = lib.autograd.grad(y, h, create_graph=True)
        gx, = lib.autograd.grad(gh.exp().sum(), x)
        return [_np(gh), _np(gx)]

    _same([run(lib) for lib in _libs()])


def test_hooks_see_and_replace_the_differentiable_gradient():
    def run(lib):
        x = lib.tensor([0.3, -0.7, 1.2], dtype=lib.float64, requires_grad=True)
        h = x.exp()
        seen = []

        def hook(g):
            seen.append(g.requires_grad)
            return g * h

        h.register_hook(hook)
        leaf_seen = []
        x.register_hook(lambda g: leaf_seen.append(g.requires_grad))
        g, = lib.autograd.grad((h * x).sum(), x, create_graph=True)
        gg, = lib.autograd.grad(g.sum(), x)
        return [np.array(seen[:1] + leaf_seen[:1], dtype=float), _np(g), _np(gg)]

    _same([run(lib) for lib in _libs()])


def test_retain_grad_with_create_graph():
    def run(lib):
        x = lib.tensor([0.3, -0.7, 1.2], dtype=lib.float64, requires_grad=True)
        h = x.exp()
        h.retain_grad()
        (h * x).sum().backward(create_graph=True)
        assert h.grad.requires_grad and x.grad.requires_grad
        hg, xg = _np(h.grad), _np(x.grad)
        gx, = lib.autograd.grad((h.grad * x.grad).sum(), x)
        return [hg, xg, _np(gx)]

    _same([run(lib) for lib in _libs()])


def test_custom_function_backward_runs_in_grad_mode():
    def run(lib):
        modes = []

        class Cube(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, go):
                x, = ctx.saved_tensors
                modes.append(lib.is_grad_enabled())
                return go * 3 * x ** 2

        x = lib.tensor([0.3, -0.7, 1.2], dtype=lib.float64, requires_grad=True)
        y = (Cube.apply(x.sin()) * x).sum()
        g, = lib.autograd.grad(y, x, create_graph=True)
        gg, = lib.autograd.grad(g.sum(), x)
        assert modes[0] and not modes[-1]  # grad mode follows create_graph
        return [_np(g), _np(gg), np.array(modes, dtype=float)]

    _same([run(lib) for lib in _libs()])


def test_once_differentiable_is_not_differentiated_twice():
    """PyTorch: a @once_differentiable backward's gradients carry no usable history; trying
    to differentiate through them raises rather than dropping the term."""
    for lib in _libs():
        class Square(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @lib.autograd.function.once_differentiable
            def backward(ctx, g):
                x, = ctx.saved_tensors
                return 2 * x * g

        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        g, = lib.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
        assert not g.requires_grad  # constant grad_outputs: no history at all
        v = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        g, = lib.autograd.grad(Square.apply(x), x, v, create_graph=True)
        assert g.requires_grad
        with pytest.raises(RuntimeError):
            lib.autograd.grad(g.sum(), v)


def test_links_between_segments():
    """A graph spread over two segments (an IMPORT link) differentiates twice."""
    x = tapegrad.tensor([0.3, -0.7, 1.2], dtype=tapegrad.float64, requires_grad=True)
    h = (x.sin() * x).exp()
    old = _engine.state.seg
    _engine.state.seg = _engine.Segment()  # as when a full segment rotates
    assert h._seg is old
    y = (h * x.cos()).sum()
    assert y._seg is not old
    g, = tapegrad.autograd.grad(y, x, create_graph=True)
    gg, = tapegrad.autograd.grad((g * g).sum(), x)

    def same_in_one_segment(lib):
        x = lib.tensor([0.3, -0.7, 1.2], dtype=lib.float64, requires_grad=True)
        y = ((x.sin() * x).exp() * x.cos()).sum()
        g, = lib.autograd.grad(y, x, create_graph=True)
        gg, = lib.autograd.grad((g * g).sum(), x)
        return [_np(g), _np(gg)]

    _same([[_np(g), _np(gg)]] + [same_in_one_segment(lib) for lib in _libs()])


def test_float32_gradients_have_the_input_dtype():
    for lib in _libs():
        x = lib.tensor([0.3, -0.7], requires_grad=True)
        g, = lib.autograd.grad((x.exp() * x).sum(), x, create_graph=True)
        assert str(g.dtype).endswith("float32") and g.requires_grad
        gg, = lib.autograd.grad(g.sum(), x)
        assert str(gg.dtype).endswith("float32")


# ---------------------------------------------------------------- errors

def test_freed_graph_raises():
    for lib in _libs():
        x = lib.tensor([0.3, -0.7], dtype=lib.float64, requires_grad=True)
        y = (x.exp() * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            lib.autograd.grad(y, x, create_graph=True)


def test_create_graph_without_retain_frees_the_graph():
    for lib in _libs():
        x = lib.tensor([0.3, -0.7], dtype=lib.float64, requires_grad=True)
        y = (x.exp() * x).sum()
        lib.autograd.grad(y, x, create_graph=True, retain_graph=False)
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            lib.autograd.grad(y, x)


def test_double_backward_through_freed_saved_values_raises():
    """The gradient's history goes back through the forward graph, freed by the first grad."""
    for lib in _libs():
        x = lib.tensor([0.3, -0.7], dtype=lib.float64, requires_grad=True)
        h = x.exp()
        y = (h * h).sum()
        g, = lib.autograd.grad(y, x, create_graph=True, retain_graph=False)
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            lib.autograd.grad(g.sum(), x)


def test_modified_in_place_raises():
    for lib in _libs():
        x = lib.tensor([0.3, -0.7, 0.2], dtype=lib.float64, requires_grad=True)
        y = x.exp()
        z = (y * y).sum()
        y.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            lib.autograd.grad(z, x, create_graph=True)


def test_modified_saved_output_raises():
    for lib in _libs():
        x = lib.tensor([0.3, -0.7, 0.2], dtype=lib.float64, requires_grad=True)
        y = x * 1.0
        z = y.tanh()
        z.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            lib.autograd.grad(z.sum(), x, create_graph=True)


def test_in_place_writes_differentiate_twice():
    def run(lib):
        x = lib.tensor([0.3, -0.7, 1.2, 0.4], dtype=lib.float64, requires_grad=True)
        y = x * 2.0
        y[1:3] = x[1:3].sin() * x[0]
        y.mul_(x)
        z = y.clone()
        z[0] = 0.0
        g, = lib.autograd.grad((z ** 2).sum(), x, create_graph=True)
        gg, = lib.autograd.grad(g.exp().sum(), x)
        return [_np(g), _np(gg)]

    _same([run(lib) for lib in _libs()])


def test_default_path_unchanged_without_create_graph():
    x = tapegrad.tensor([0.3, -0.7], dtype=tapegrad.float64, requires_grad=True)
    g, = tapegrad.autograd.grad((x.exp() * x).sum(), x)
    assert g.grad_fn is None and not g.requires_grad
    np.testing.assert_allclose(_np(g), np.exp([0.3, -0.7]) * (1 + np.array([0.3, -0.7])))
    assert math.isfinite(float(g.sum()))
