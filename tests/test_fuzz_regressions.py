"""Wrong values and gradients a differential fuzz against PyTorch found (this session), each
pinned: the expected values come from Python's math and NumPy (C's pow and fmod, IEEE
float64), the gradients from the derivative at the value the tensor holds, and PyTorch is
checked too when installed."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tapegrad

try:
    import torch as real_torch
except ImportError:  # pragma: no cover
    real_torch = None

LIBS = [tapegrad] + ([real_torch] if real_torch is not None else [])


# --- x[k] = v writes v at the tensor's dtype ---------------------------------------------------

@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("v", [0.6852388060489285, 16777217.0, 1e300, -1e-310, 0.1])
def test_setitem_of_a_float64_tensor_keeps_float64(L, v):
    x = L.zeros(2, 3, dtype=L.float64)
    x[0, 1] = v          # one element
    x[1] = v             # a row
    x[0, 2:3] = v        # a slice
    got = np.array(x.tolist())
    assert got[0, 1] == v and got[0, 2] == v and (got[1] == v).all()
    y = L.zeros(2, dtype=L.float64)
    y.copy_(L.tensor(v, dtype=L.float64))
    assert y.tolist() == [v, v]


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_setitem_converts_as_the_destination_dtype(L):
    i = L.zeros(3, dtype=L.int64)
    i[0], i[1], i[2] = 3.7, -3.7, True
    assert i.tolist() == [3, -3, 1]
    f = L.zeros(2)
    f[0] = 0.1
    assert f.tolist()[0] == float(np.float32(0.1))
    with pytest.raises(RuntimeError, match="value cannot be converted to type float without "
                                           "overflow"):
        f[1] = 1e300


def test_setitem_into_a_recorded_float64_result():
    x = tapegrad.tensor([1.0, 2.0, 3.0], dtype=tapegrad.float64, requires_grad=True)
    y = x * 2.0
    y[1] = 0.1
    (y * y).sum().backward()
    assert y.detach().numpy()[1] == 0.1
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 0.0, 24.0])


# --- an in-place write under no_grad to a 0-d float64 result -----------------------------------

CONSUMERS = {
    "abs": (lambda v: v.abs(), lambda v: math.copysign(1.0, v)),
    "sin": (lambda v: v.sin(), math.cos),
    "log": (lambda v: v.log(), lambda v: 1.0 / v),
    "v ** 3": (lambda v: v ** 3, lambda v: 3.0 * v * v),
    "2 ** v": (lambda v: 2.0 ** v, lambda v: math.log(2.0) * 2.0 ** v),
    "v / w": (lambda v: v / (v * 0.0 + 4.0), lambda v: 0.25),
    "w / v": (lambda v: 5.0 / v, lambda v: -5.0 / (v * v)),
    "v * v": (lambda v: v * v, lambda v: 2.0 * v),
    "v % 0.7": (lambda v: v % 0.7, lambda v: 1.0),
}


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("write", ["mul_", "add_", "setitem"])
@pytest.mark.parametrize("name", sorted(CONSUMERS))
def test_a_0d_result_written_under_no_grad_is_differentiated_at_its_new_value(L, write, name):
    f, df = CONSUMERS[name]
    x = L.tensor(-3.0, dtype=L.float64, requires_grad=True)
    v = x * 1.0
    with L.no_grad():
        if write == "mul_":
            v.mul_(-0.5)
        elif write == "add_":
            v.add_(4.5)
        else:
            v.copy_(L.tensor(1.5, dtype=L.float64))
    assert v.item() == 1.5
    f(v).backward()
    assert x.grad.item() == pytest.approx(df(1.5), rel=1e-12)  # d v / d x is still 1


# --- .data of a 0-d float64 tensor ---------------------------------------------------------------

@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_data_of_a_0d_float64_tensor(L):
    t = L.tensor(2.0, dtype=L.float64)
    assert (t.data * 2).item() == 4.0
    assert (2 + t.data).item() == 4.0
    t.data.mul_(3)
    assert t.item() == 6.0
    w = L.tensor(2.0, dtype=L.float64, requires_grad=True)
    y = w * w
    w.data.add_(1.0)  # through .data: no version bump, the tape's copy follows
    y.backward()
    assert w.grad.item() == 6.0 and w.item() == 3.0


# --- pow and remainder of a 0-d float64 with a Python number -------------------------------------

POW_CASES = [(-10.0, 401), (-0.0, -1), (-0.0, -3.0), (-2.0, 1025.0), (10.0, 400), (0.0, -1),
             (-0.0, -2), (-1.5, 0.5), (2.0, -1080.0), (-0.0, 3)]


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("a,b", POW_CASES)
def test_pow_of_a_0d_float64_as_c_pow(L, a, b):
    with np.errstate(all="ignore"):
        want = float(np.power(np.float64(a), np.float64(b)))
    x = L.tensor(a, dtype=L.float64)
    got = (x ** b).item()
    assert got == want or (math.isnan(got) and math.isnan(want))
    assert math.copysign(1.0, got) == math.copysign(1.0, want) or math.isnan(want)
    y = L.tensor(float(b), dtype=L.float64)
    got = (a ** y).item()
    assert got == want or (math.isnan(got) and math.isnan(want))
    assert math.copysign(1.0, got) == math.copysign(1.0, want) or math.isnan(want)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_gradient_of_negative_zero_to_a_power(L):
    x = L.tensor(-1.0, dtype=L.float64, requires_grad=True)
    y = (-0.0) ** x  # -inf; d/dx = y * log(|-0.0|) = -inf * -inf
    y.backward()
    assert y.item() == -math.inf and x.grad.item() == math.inf


REMAINDER_VALUES = [0.0, -0.0, 1.0, -1.0, 0.1, -0.1, 2.5, -2.5, 5.0, -5.0, 1e300, -1e300,
                    math.inf, -math.inf, math.nan, 7.3, -7.3, 1e-310, 0.3]


def _c_remainder(x, c):
    """PyTorch's definition: fmod, then the sign of the divisor."""
    if c == 0.0 or math.isinf(x) or math.isnan(x) or math.isnan(c):
        return math.nan
    m = math.fmod(x, c)
    if m != 0.0 and (c < 0.0) != (m < 0.0):
        m += c
    return m


@pytest.mark.parametrize("x", REMAINDER_VALUES)
def test_remainder_and_fmod_of_a_0d_float64(x):
    for c in REMAINDER_VALUES:
        for L in LIBS:
            t = L.tensor(x, dtype=L.float64)
            got = (t % c).item()
            want = _c_remainder(x, c)
            assert (got == want and math.copysign(1, got) == math.copysign(1, want)) or (
                math.isnan(got) and math.isnan(want)), (L.__name__, x, c, got, want)
            got = t.fmod(c).item()
            with np.errstate(all="ignore"):
                want = float(np.fmod(np.float64(x), np.float64(c)))
            assert (got == want and math.copysign(1, got) == math.copysign(1, want)) or (
                math.isnan(got) and math.isnan(want)), (L.__name__, x, c, got, want)


def test_remainder_matches_the_array_path():
    xs = np.array(REMAINDER_VALUES)
    for c in REMAINDER_VALUES:
        arr = (tapegrad.tensor(xs, dtype=tapegrad.float64) % c).numpy()
        for k, x in enumerate(xs):
            got = (tapegrad.tensor(float(x), dtype=tapegrad.float64) % c).item()
            assert (got == arr[k] and math.copysign(1, got) == math.copysign(1, arr[k])) or (
                math.isnan(got) and math.isnan(arr[k])), (x, c, got, arr[k])


def test_remainder_in_a_trace_replays_as_eager():
    def fn(x):
        return (x % 0.1) * x + tapegrad.remainder(x, x * 0.0 - 0.7) * 2.0

    x0 = np.array([1.0, -0.0, 0.0, 2.5, -7.3, 0.3])
    tr = tapegrad.trace(fn, x0)
    for x1 in (x0, np.array([1.0, 3.3, -0.2, 0.7, 7.0, -1.0])):
        x = tapegrad.tensor(x1, dtype=tapegrad.float64, requires_grad=True)
        out = fn(x)
        out.sum().backward()
        got = tr(x1)
        np.testing.assert_array_equal(np.asarray(got), out.detach().numpy())
        want = np.array([_c_remainder(v, 0.1) for v in x1]) * x1 + np.array(
            [_c_remainder(v, -0.7) for v in x1]) * 2.0
        np.testing.assert_array_equal(out.detach().numpy(), want)


# --- the gradient of a 2-norm is g * (x / norm), PyTorch's order ---------------------------------

def _norm_cases():
    rng = np.random.default_rng(7)
    cases = [np.array([3.0, 4.0]), np.array([0.1, 0.2, 0.3]), np.array([1e-300, 3e-300])]
    for _ in range(12):
        size, scale = int(rng.integers(2, 12)), 10.0 ** int(rng.integers(-3, 4))
        cases.append(rng.standard_normal(size) * scale)
    return cases


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("k", range(15))
@pytest.mark.parametrize("g", [1.0, -0.7])
def test_norm_gradient_bits(L, k, g):
    # (g / n) * x, the sweep's order before, differs from g * (x / n) in the last bit for most
    # inputs ([3, 4]: 0.6000000000000001 for 0.6); the bits checked are PyTorch's formula
    # in NumPy, and PyTorch's own output when it runs
    x = _norm_cases()[k]
    t = L.tensor(x, dtype=L.float64, requires_grad=True)
    y = t.norm()
    y.backward(L.tensor(g, dtype=L.float64))
    n = y.item()  # (PyTorch's sum of squares may differ from NumPy's dot in the last bit)
    want = g * (x / n) if n != 0.0 else np.zeros_like(x)  # (1e-300 squared underflows)
    assert np.array_equal(t.grad.numpy(), want)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_norm_over_a_dim_gradient_bits(L):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 7))
    x[2] = 0.0  # a zero norm passes nothing on
    g = rng.standard_normal(5)
    t = L.tensor(x, dtype=L.float64, requires_grad=True)
    y = t.norm(dim=1)
    y.backward(L.tensor(g, dtype=L.float64))
    n = y.detach().numpy()
    want = np.where(n[:, None] != 0.0, g[:, None] * (x / np.where(n != 0.0, n, 1.0)[:, None]), 0.0)
    assert np.array_equal(t.grad.numpy(), want)


def test_norm_gradient_bits_with_create_graph():
    # the Python backward (create_graph=True) uses the same order, and its own graph
    # differentiates to the Hessian-vector product of the norm
    rng = np.random.default_rng(9)
    x = rng.standard_normal(6)
    for dim in (None, 0):
        t = tapegrad.tensor(x, dtype=tapegrad.float64, requires_grad=True)
        y = t.norm() if dim is None else t.norm(dim=dim)
        (gx,) = tapegrad.autograd.grad(y, t, create_graph=True)
        n = np.sqrt(np.dot(x, x))
        assert np.array_equal(gx.detach().numpy(), 1.0 * (x / n))
        v = rng.standard_normal(6)
        (hv,) = tapegrad.autograd.grad((gx * tapegrad.tensor(v)).sum(), t)
        want = v / n - x * np.dot(x, v) / n ** 3  # d/dx (x / |x|) . v
        np.testing.assert_allclose(hv.numpy(), want, rtol=1e-12, atol=1e-14)


# --- binary_cross_entropy at inputs 0 and 1: PyTorch's (x - t) / max(x (1 - x), 1e-12) ---------

_BCE_X = [1.0, 0.0, 0.5, 1e-13, 1 - 1e-13, 0.0, 1.0, 1e-7, 0.3]
_BCE_T = [0.74, 1.0, 0.5, 0.3, 0.9, 0.0, 1.0, 0.2, 0.6]


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("dt", ["float64", "float32"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_binary_cross_entropy_gradient_at_the_edges(L, dt, reduction):
    # the clamped logs' derivatives gave 0 or 1 - t at x = 0 or 1 (a saturated sigmoid with
    # target 1 got -1 where PyTorch's gradient is 0); ATen's EPSILON is a float
    npdt = np.dtype(dt)
    x = np.array(_BCE_X, dtype=npdt)
    t = np.array(_BCE_T, dtype=npdt)
    w = np.linspace(0.5, 2.0, x.size).astype(npdt)
    xt = L.tensor(x, requires_grad=True)
    tt = L.tensor(t, requires_grad=True)
    loss = L.nn.functional.binary_cross_entropy(xt, tt, weight=L.tensor(w), reduction=reduction)
    g = np.ones(x.size, dtype=npdt) if reduction == "none" else None
    loss.backward(None if g is None else L.tensor(g))
    up = w * (npdt.type(1.0 / x.size) if reduction == "mean" else npdt.type(1.0))
    eps = npdt.type(np.float32(1e-12))
    want = up * (x - t) / np.maximum((1 - x) * x, eps)
    np.testing.assert_allclose(xt.grad.numpy(), want, rtol=4 * np.finfo(npdt).eps, atol=0)
    # the target's: -logit(x), PyTorch's, inside; at the edges PyTorch's is +-inf, tapegrad's
    # the clamped logs' difference (+-100 at 0 and 1: design.md, "Losses")
    inside = (1 - x) * x >= eps
    with np.errstate(divide="ignore"):
        logit = np.log(x.astype(np.float64) / (1 - x.astype(np.float64)))
    np.testing.assert_allclose(tt.grad.numpy()[inside], (up * -logit)[inside],
                               rtol=8 * np.finfo(npdt).eps)
    if L is tapegrad:
        clamped = np.clip(-logit, -100, 100)
        np.testing.assert_allclose(tt.grad.numpy()[~inside], (up * clamped)[~inside],
                                   rtol=8 * np.finfo(npdt).eps)


def test_binary_cross_entropy_inside_keeps_its_derivatives():
    # away from the edges the loss is the composition: first and second derivatives against
    # central differences
    x = tapegrad.tensor([0.2, 0.7, 0.45], dtype=tapegrad.float64, requires_grad=True)
    t = tapegrad.tensor([0.1, 0.9, 0.5], dtype=tapegrad.float64)
    assert tapegrad.autograd.gradcheck(
        lambda x: tapegrad.nn.functional.binary_cross_entropy(x, t), (x,))
    assert tapegrad.autograd.gradgradcheck(
        lambda x: tapegrad.nn.functional.binary_cross_entropy(x, t), (x,))


class _CubeWithAFlatBackward(tapegrad.autograd.Function):
    """x ** 3 whose backward is right once and constant beyond (a detached factor)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x.detach() ** 2


def test_autograd_gradcheck_and_gradgradcheck():
    # torch.autograd's checkers: True, or a GradcheckError (a RuntimeError, as PyTorch's)
    x = tapegrad.tensor([0.3, -1.2, 2.0], dtype=tapegrad.float64, requires_grad=True)
    assert tapegrad.autograd.gradcheck(lambda x: (x.sin() * x).sum(), (x,))
    assert tapegrad.autograd.gradgradcheck(lambda x: (x.sin() * x), (x,))
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        tapegrad.autograd.gradcheck(lambda x: x.detach() * 2 + x, (x,))
    assert not tapegrad.autograd.gradcheck(lambda x: x.detach() * 2 + x, (x,),
                                           raise_exception=False)
    assert tapegrad.autograd.gradcheck(_CubeWithAFlatBackward.apply, (x,))
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        tapegrad.autograd.gradgradcheck(_CubeWithAFlatBackward.apply, (x,))


# --- a second fuzz: select, errors PyTorch raises, all targets ignored -------------------------

@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("dim,index", [(0, 1), (1, -1), (-1, 0), (2, 3)])
def test_select(L, dim, index):
    x0 = np.arange(24.0).reshape(2, 3, 4) / 7.0
    x = L.tensor(x0, requires_grad=True)
    y = x.select(dim, index)
    assert y.grad_fn.name() == "SelectBackward0"
    want = np.take(x0, index, axis=dim)
    np.testing.assert_array_equal(y.detach().numpy(), want)
    w = np.cos(np.arange(want.size)).reshape(want.shape)
    (L.select(x, dim, index) * L.tensor(w)).sum().backward()
    g = np.zeros_like(x0)
    np.moveaxis(g, dim, 0)[index] = w  # d/dx of sum(w * x.select(dim, index))
    np.testing.assert_array_equal(x.grad.numpy(), g)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_select_errors(L):
    x = L.zeros(2, 3)
    with pytest.raises(IndexError, match=r"select\(\): index 3 out of range for tensor of size "
                                         r"\[2, 3\] at dimension 1"):
        x.select(1, 3)
    with pytest.raises(IndexError, match="select\\(\\) cannot be applied to a 0-dim tensor."):
        L.tensor(2.0).select(0, 0)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_errors_of_0d_and_empty_inputs(L):
    with pytest.raises(RuntimeError, match="split expects at least a 1-dimensional tensor"):
        L.tensor(1.0).split(1)
    with pytest.raises(RuntimeError, match="chunk expects at least a 1-dimensional tensor"):
        L.tensor(1.0).chunk(2)
    for fn in (L.max, L.min):
        with pytest.raises(RuntimeError, match="Expected reduction dim to be specified"):
            fn(L.zeros(0))
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        L.zeros(0, 2).max(dim=0)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_nll_loss_weight_cannot_require_grad(L):
    x = L.tensor([[0.1, -0.3, 0.2], [0.0, 0.5, -1.0]], requires_grad=True)
    t = L.tensor([0, 2])
    w = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="The function 'nll_loss_forward' is not "
                                           "differentiable with respect to argument 'weight'"):
        L.nn.functional.cross_entropy(x, t, weight=w)
    with L.no_grad():  # (no graph: no error, as PyTorch)
        v = L.nn.functional.nll_loss(x, t, weight=w)
    assert abs(v.item() - (0.1 * 1 + -1.0 * 3) / -4.0) < 1e-6


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("kw", [{}, {"weight": [1.0, 2.0, 0.5]}, {"label_smoothing": 0.1}])
def test_every_target_ignored_mean(L, kw):
    # 0 / 0 forward (nan, both); the gradient is 0, PyTorch's, where it was nan
    x = L.tensor([[0.1, -0.3, 0.2], [0.0, 0.5, -1.0]], dtype=L.float64, requires_grad=True)
    t = L.tensor([-100, -100])
    if "weight" in kw:
        kw = {"weight": L.tensor(kw["weight"], dtype=L.float64)}
    loss = L.nn.functional.cross_entropy(x, t, **kw)
    assert math.isnan(loss.item())
    loss.backward()
    assert np.array_equal(x.grad.numpy(), np.zeros((2, 3)))


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("p", [0.5, 3, 1.5])
def test_p_norm_of_a_nan_is_nan(L, p):
    # |x|^p summed over x != 0 (nan included: it was dropped with the zeros, so the norm of
    # [-0.058, nan, -0.217] was a number); the rows without nan keep their gradients
    x0 = np.array([[-0.5, np.nan, 0.0], [1.0, 0.0, -2.0]])
    x = L.tensor(x0, requires_grad=True)
    y = L.norm(x, p=p, dim=1)
    y.sum().backward()
    got = y.detach().numpy()
    assert math.isnan(got[0])
    row = np.abs(x0[1])
    n = (row ** p).sum() ** (1 / p)
    np.testing.assert_allclose(got[1], n, rtol=1e-15)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(row != 0, np.sign(x0[1]) * row ** (p - 1) * n ** (1 - p), 0.0)
    np.testing.assert_allclose(x.grad.numpy()[1], want, rtol=1e-14)
    assert math.isnan(L.norm(L.tensor(x0[0]), p=p).item())


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("write", ["add_", "mul_", "copy_", "sub_ no_grad"])
def test_arithmetic_in_place_on_an_expanded_view(L, write):
    # PyTorch's internal-overlap error (NumPy's "assignment destination is read-only" leaked)
    y = L.tensor([1.0, 2.0, 3.0], requires_grad=True) * 2
    e = y.unsqueeze(0).expand(2, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor "
                                           "refers to a single memory location"):
        if write == "add_":
            e.add_(1.0)
        elif write == "mul_":
            e.mul_(L.ones(2, 3))
        elif write == "copy_":
            e.copy_(L.ones(2, 3))
        else:
            with L.no_grad():
                L.zeros(3).expand(2, 3).sub_(1.0)


def _expanded_write(L, write):
    a = L.zeros(1, 3, dtype=L.float64)
    b = a.expand(2, 3)
    if write == "fill_":
        b.fill_(2.0)
    elif write == "zero_":
        a.add_(1.0)
        b.zero_()
    elif write == "row":
        b[0] = 5.0
    elif write == "element":
        b[1, 2] = 7.0
    elif write == "slice of a row":
        b[0, 1:] = 1.5
    elif write == "size-1 expand":
        a = L.zeros(1, 1, dtype=L.float64)
        b = a.expand(1, 1)
        b.mul_(2.0)
        b.add_(1.0)
    return a


@pytest.mark.parametrize("write", ["fill_", "zero_", "row", "element", "slice of a row",
                                   "size-1 expand"])
def test_writes_through_an_expanded_view(write):
    # PyTorch writes through an expanded view where it checks no overlap (fill_, zero_) or where
    # the region written does not overlap itself (an indexed row or element; a size-1 dim);
    # NumPy's broadcast arrays are read-only ("assignment destination is read-only" leaked)
    got = _expanded_write(tapegrad, write).numpy().tolist()
    want = {"fill_": [[2.0] * 3], "zero_": [[0.0] * 3], "row": [[5.0] * 3],
            "element": [[0.0, 0.0, 7.0]], "slice of a row": [[0.0, 1.5, 1.5]],
            "size-1 expand": [[1.0]]}[write]
    assert got == want
    if real_torch is not None:
        assert _expanded_write(real_torch, write).numpy().tolist() == want


def _expanded_write_with_grad(L, prog):
    x = L.tensor([[1.0, 2.0, 3.0]], dtype=L.float64, requires_grad=True)
    v = L.tensor(4.0, dtype=L.float64, requires_grad=True)
    a = x * 1.0
    b = a.expand(2, 3)
    if prog == "fill_":
        b.fill_(2.0)
        (a * x).sum().backward()
    elif prog == "zero_":
        b.zero_()
        b.sum().backward()
    elif prog == "fill_ with a tensor":
        b.fill_(v)
        (b * x).sum().backward()
    elif prog == "row":  # not overlapping itself: computed
        b[0] = v
        (a * x).sum().backward()
    elif prog == "element":
        b[1, 2] = v
        (a * x).sum().backward()
    return x.grad.numpy().tolist(), v.grad.item() if v.grad is not None else None


@pytest.mark.parametrize("prog", ["fill_", "zero_", "fill_ with a tensor", "row", "element"])
def test_writes_through_an_expanded_view_with_grad(prog):
    # fill_/zero_ of an expanded view that requires grad: PyTorch raises its overlap error when
    # backward reaches the write (CopySlices), tapegrad when the write is recorded (summing the
    # adjoints of the view's elements that share a location would double them: v's gradient
    # came out 24 where the program's is 12).  Indexed writes that overlap nothing: computed
    overlap = "more than one element of the written-to tensor refers to a single memory location"
    want = {"row": ([[4.0, 4.0, 4.0]], 6.0), "element": ([[2.0, 4.0, 4.0]], 3.0)}.get(prog)
    libs = [tapegrad] + ([real_torch] if real_torch is not None else [])
    for L in libs:
        if want is None:
            with pytest.raises(RuntimeError, match=overlap):
                _expanded_write_with_grad(L, prog)
        else:
            assert _expanded_write_with_grad(L, prog) == want


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("sa,sb,out", [((2, 3, 0), (0,), (2, 3)), ((0,), (2, 0, 3), (2, 3)),
                                       ((2, 3, 0), (0, 4), (2, 3, 4)),
                                       ((3, 0), (2, 0, 4), (2, 3, 4))])
def test_batched_matmul_over_an_empty_inner_dim(L, sa, sb, out):
    # zeros, as PyTorch's (a reshape(-1, 0) raised)
    a = L.ones(*sa, requires_grad=True)
    b = L.ones(*sb, requires_grad=True)
    y = L.matmul(a, b)
    assert tuple(y.shape) == out and not y.detach().numpy().any()
    y.sum().backward()
    assert tuple(a.grad.shape) == sa and tuple(b.grad.shape) == sb


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("name", ["fmax", "fmin"])
def test_fmax_fmin_with_nan(L, name):
    # nan only where both are; the gradient goes to the first operand where it wins, ties
    # included, or where the second is nan
    a0 = np.array([1.0, np.nan, 3.0, np.nan, 2.0, -1.0])
    b0 = np.array([2.0, 1.0, np.nan, np.nan, 2.0, -4.0])
    a = L.tensor(a0, requires_grad=True)
    b = L.tensor(b0, requires_grad=True)
    y = getattr(L, name)(a, b)
    assert y.grad_fn.name() == ("FmaxBackward0" if name == "fmax" else "FminBackward0")
    np.testing.assert_array_equal(y.detach().numpy(), getattr(np, name)(a0, b0))
    y.sum().backward()
    first = ((a0 >= b0) if name == "fmax" else (a0 <= b0)) | np.isnan(b0)
    np.testing.assert_array_equal(a.grad.numpy(), first.astype(float))
    np.testing.assert_array_equal(b.grad.numpy(), (~first).astype(float))


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_error_words_of_amax_unbind_conv(L):
    for d in (-1, (0, -1), 1):
        with pytest.raises(IndexError, match=r"amax\(\): Expected reduction dim "
                                             f"{d if isinstance(d, int) else -1} to have"):
            L.zeros(2, 0).amax(dim=d)
    with pytest.raises(IndexError, match="Dimension specified as 0 but tensor has no dimensions"):
        L.tensor(1.5).unbind(-1)
    x = L.zeros(2, 2, 3, 4, dtype=L.float64)
    w = L.zeros(2, 2, 3, 2, dtype=L.float64)
    with pytest.raises(RuntimeError, match=r"Calculated padded input size per channel: "
                                           r"\(3 x 4\)\. Kernel size: \(5 x 3\)\."):
        L.nn.functional.conv2d(x, w, stride=2, dilation=2)  # (the dilated kernel's size)


# --- nan inputs: the gradient goes where PyTorch's masks send it ---------------------------------

_NAN = float("nan")


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("name,fn,want", [
    ("relu", lambda L, x: x.relu(), [1.0, 1.0, 0.0, 0.0]),  # threshold_backward: y <= 0 -> 0
    ("maximum", lambda L, x: L.maximum(x, L.tensor([0.0, 0.0, 1.0, 0.0], dtype=L.float64)),
     [1.0, 1.0, 0.0, 0.5]),  # nan: neither loses; ties share
    ("minimum", lambda L, x: L.minimum(L.tensor([_NAN, 1.0, 0.0, 0.0], dtype=L.float64), x),
     [1.0, 1.0, 1.0, 0.5]),
    ("max", lambda L, x: x.max(), [1.0, 0.0, 0.0, 0.0]),  # the nan elements share a nan max
    ("min", lambda L, x: x.min(), [1.0, 0.0, 0.0, 0.0]),
    ("clamp_tensor", lambda L, x: x.clamp(min=L.tensor([0.0, 0.0, 0.0, -1.0],
                                                         dtype=L.float64)),
     [0.0, 1.0, 0.0, 1.0]),  # a nan x passes nothing to itself
])
def test_gradient_at_nan_inputs(L, name, fn, want):
    x = L.tensor([_NAN, 0.5, -2.0, 0.0], dtype=L.float64, requires_grad=True)
    fn(L, x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), want)


def test_gradient_at_nan_inputs_with_create_graph():
    # the Python backward (create_graph=True) routes as the sweep
    for fn, want in ((lambda x: x.max(), [1.0, 0.0, 0.0, 0.0]),
                     (lambda x: x.relu(), [1.0, 1.0, 0.0, 0.0]),
                     (lambda x: tapegrad.maximum(x, tapegrad.zeros(4, dtype=tapegrad.float64)),
                      [1.0, 1.0, 0.0, 0.5])):
        x = tapegrad.tensor([_NAN, 0.5, -2.0, 0.0], dtype=tapegrad.float64, requires_grad=True)
        (g,) = tapegrad.autograd.grad(fn(x).sum(), x, create_graph=True)
        np.testing.assert_array_equal(g.detach().numpy(), want)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_einsum_repeated_index_sizes_must_match(L):
    # (values and gradients of 'ii->i', 'ii', 'iij->ji'...: rows of tests/op_specs.py)
    with pytest.raises(RuntimeError, match="einsum\\(\\): subscript i is repeated for operand 0 "
                                           "but the sizes don't match, 3 != 2"):
        L.einsum("ii->i", L.zeros(2, 3))


_INF = float("inf")


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("row,soft,logsoft", [
    ([_INF, -0.73, 0.5], [_NAN] * 3, [_NAN] * 3),  # +inf - +inf: the row is nan, as PyTorch's
    ([_INF, _INF], [_NAN] * 2, [_NAN] * 2),
    ([-_INF, -_INF], [_NAN] * 2, [_NAN] * 2),
    ([_NAN, 1.0], [_NAN] * 2, [_NAN] * 2),
    ([-_INF, 1.0], [0.0, 1.0], [-_INF, 0.0]),
])
def test_softmax_of_rows_with_infinities(L, row, soft, logsoft):
    x = L.tensor(row, dtype=L.float64)
    np.testing.assert_array_equal(L.softmax(x, 0).numpy(), soft)
    np.testing.assert_array_equal(L.log_softmax(x, 0).numpy(), logsoft)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("op", ["norm", "norm dim", "norm p=3", "prod", "prod dim", "cumprod"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_overflow_to_inf_is_silent(L, op, dtype):
    # PyTorch gives inf without a warning; NumPy's dot, square, prod and cumprod warned
    big = 1e200 if dtype == "float64" else 1e30
    x = L.tensor([big, big], dtype=getattr(L, dtype), requires_grad=op != "cumprod")
    f = {"norm": lambda: x.norm(), "norm dim": lambda: x.norm(dim=0),
         "norm p=3": lambda: L.norm(x, p=3), "prod": lambda: x.prod(),
         "prod dim": lambda: x.prod(0), "cumprod": lambda: x.cumprod(0)[-1]}[op]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f().item() == math.inf
        with L.no_grad():
            assert f().item() == math.inf


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("op", ["lerp", "scatter_add"])
def test_inf_arithmetic_inside_ops_is_silent(L, op):
    # inf - inf inside lerp, inf + -inf inside scatter_add: nan, silently, as PyTorch's
    x = L.tensor([math.inf, 1.0], dtype=L.float64)
    y = L.tensor([math.inf, 2.0], dtype=L.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if op == "lerp":
            out = L.lerp(x, y, 0.25)
        else:
            out = L.scatter_add(x, 0, L.tensor([0, 0]), L.tensor([-math.inf, 1.0],
                                                                  dtype=L.float64))
    assert math.isnan(out[0].item())


def _diagonal_writes(L):
    x = L.zeros(3, 3)
    x.diagonal().fill_(1.0)
    y = L.zeros(3, 3)
    y.diagonal(1).copy_(L.ones(2))
    z = L.zeros(3, 3)
    d = z.diagonal()
    d += 1
    w = L.tensor([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]], dtype=L.float64, requires_grad=True)
    v = w * 1.0
    v.diagonal().mul_(3.0)
    (v * v).sum().backward()
    return x.tolist(), y.tolist(), z.tolist(), d._version, w.grad.tolist()


def test_writes_through_a_diagonal():
    # NumPy's diagonal view is read-only ("assignment destination is read-only" leaked);
    # PyTorch's writes through to the base, and a write to a recorded one is a CopySlices
    eye = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    want = (eye, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], eye, 1,
            [[18.0, 4.0, 6.0], [8.0, 90.0, 12.0], [14.0, 16.0, 162.0]])
    assert _diagonal_writes(tapegrad) == want
    if real_torch is not None:
        assert _diagonal_writes(real_torch) == want


def _in_place_with_a_second_operand(L, op):
    f64 = L.float64
    x = L.tensor([0.0, 2.0, 5.0], dtype=f64)
    g = L.tensor([0.5, 1.5, 3.0], dtype=f64, requires_grad=True)
    if op == "lerp_ weight":
        x.lerp_(L.ones(3, dtype=f64), g)
    elif op == "clamp_ max":
        x.clamp_(L.zeros(3, dtype=f64), g)
    else:  # a row of a matrix: the write is a CopySlices of the matrix
        m = L.zeros(2, 3, dtype=f64)
        m[1].lerp_(L.ones(3, dtype=f64), g)
        x = m
    (x * x).sum().backward()
    return x.tolist(), g.grad.tolist()


@pytest.mark.parametrize("op", ["lerp_ weight", "clamp_ max", "lerp_ of a row"])
def test_in_place_op_whose_later_operand_requires_grad(op):
    # only an operand after the first requires grad: the write was left off the graph
    # (no gradient, silently)
    got = _in_place_with_a_second_operand(tapegrad, op)
    want = {"lerp_ weight": ([0.5, 0.5, -7.0], [1.0, -1.0, 56.0]),
            "clamp_ max": ([0.0, 1.5, 3.0], [0.0, 3.0, 6.0]),
            "lerp_ of a row": ([[0.0] * 3, [0.5, 1.5, 3.0]], [1.0, 3.0, 6.0])}[op]
    assert got == want
    if real_torch is not None:
        assert _in_place_with_a_second_operand(real_torch, op) == want


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("sa,sb,which", [((2, 2), (2,), "self, but got 2-D"),
                                         ((2,), (2, 2), "vec2, but got 2-D"),
                                         ((), (2,), "self, but got 0-D")])
def test_outer_of_a_non_vector(L, sa, sb, which):
    # PyTorch's error (the product of a flattened input with vec2 came out)
    with pytest.raises(RuntimeError, match=f"outer: Expected 1-D argument {which}"):
        L.outer(L.ones(sa), L.ones(sb))


def _bitwise_and_masks(L):
    a, b = L.tensor([1, 2, 6]), L.tensor([3, 3, 3])
    m, n = L.tensor([True, False, True]), L.tensor([True, True, False])
    return [(a & b).tolist(), (a | b).tolist(), (m & n).tolist(), (m | n).tolist(),
            (m & True).tolist(), (m | False).tolist(), (a & 5).tolist(), (5 & a).tolist(),
            (m & a).tolist(), str((a | m).dtype).rsplit(".", 1)[-1]]


def test_and_or_are_bitwise_on_integers():
    # & and | were logical on every dtype (1 & 3 gave True); on masks they stay logical
    want = [[1, 2, 2], [3, 3, 7], [True, False, False], [True, True, True], [True, False, True],
            [True, False, True], [1, 0, 4], [1, 0, 4], [1, 0, 0], "int64"]
    assert _bitwise_and_masks(tapegrad) == want
    if real_torch is not None:
        assert _bitwise_and_masks(real_torch) == want


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_sign_keeps_integer_and_bool_dtypes(L):
    s = L.tensor([3, -2, 0]).sign()
    assert (str(s.dtype).rsplit(".", 1)[-1], s.tolist()) == ("int64", [1, -1, 0])
    b = L.tensor([True, False]).sign()
    assert (str(b.dtype).rsplit(".", 1)[-1], b.tolist()) == ("bool", [True, False])


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_contiguous_follows_the_layout(L):
    # is_contiguous() was always True and contiguous() returned self: x.t().contiguous()
    # .view(-1) raised the view error
    x = L.ones(2, 3).t()
    assert not x.is_contiguous() and not L.ones(2, 3)[:, ::2].is_contiguous()
    assert not L.ones(1, 3).expand(2, 3).is_contiguous() and L.ones(2, 1)[:, 0].is_contiguous()
    assert x.contiguous().is_contiguous() and tuple(x.contiguous().view(-1).shape) == (6,)
    w = L.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=L.float64, requires_grad=True)
    y = (w * 2).t().contiguous()
    assert y.grad_fn.name() == "CloneBackward0"
    (y.view(-1) * L.arange(6.0, dtype=L.float64)).sum().backward()
    assert w.grad.tolist() == [[0.0, 4.0, 8.0], [2.0, 6.0, 10.0]]
    z = w * 1.0
    assert z.contiguous() is z


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("call,message", [
    (lambda L: L.tensor([1.0]).atan2(0.5), "atan2(): argument 'other' (position 1)"),
    (lambda L: L.atan2(L.tensor([1.0]), 0.5), "atan2(): argument 'other' (position 2)"),
    (lambda L: L.maximum(L.tensor([1.0]), 0.5), "maximum(): argument 'other' (position 2)"),
    (lambda L: L.minimum(2, L.tensor([1.0])), "minimum(): argument 'input' (position 1)"),
    (lambda L: L.tensor([1.0]).fmax(0.5), "fmax(): argument 'other' (position 1)")])
def test_two_tensor_ops_given_a_number(L, call, message):
    # PyTorch's TypeError (a KeyError leaked, or fmax computed)
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(L)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("row,index", [([math.inf, math.nan, 1.0, math.nan], 3),
                                       ([1.0, math.nan, 3.0, 2.0], 1),
                                       ([math.nan, 5.0, math.nan, 1.0], 2),
                                       ([2.0, 2.0, 1.0, 0.0], 0)])
@pytest.mark.parametrize("dims", [1, 2])
def test_max_pool_index_and_gradient_at_nan(L, row, index, dims):
    # ATen's scan keeps the last nan of a window (the first one was picked: the index and the
    # gradient went to another element); a tie keeps the first maximum
    F = L.nn.functional
    x = L.tensor([[row]] if dims == 1 else [[[row]]], dtype=L.float64, requires_grad=True)
    if dims == 1:
        v, i = F.max_pool1d(x, 4, return_indices=True)
    else:
        v, i = F.max_pool2d(x, (1, 4), return_indices=True)
    v.sum().backward()
    assert i.item() == index
    assert x.grad.reshape(-1).tolist() == [1.0 if k == index else 0.0 for k in range(4)]
    assert math.isnan(v.item()) == any(math.isnan(r) for r in row)


def _embedding_scaled_by_freq(L, padding_idx):
    w = L.tensor(np.arange(12.0).reshape(4, 3), dtype=L.float64, requires_grad=True)
    idx = L.tensor([[0, 2, 0], [3, 0, 1]])
    emb = L.nn.Embedding(4, 3, padding_idx=padding_idx, scale_grad_by_freq=True).double()
    with L.no_grad():
        emb.weight.copy_(w)
    y = emb(idx)
    (y * L.arange(18.0, dtype=L.float64).reshape(2, 3, 3)).sum().backward()
    return y.grad_fn.name(), y.sum().item(), emb.weight.grad.tolist()


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_scale_grad_by_freq(padding_idx):
    # each row's gradient is divided by how often the batch looks it up (it raised "not
    # supported"): row 0 is read three times, its gradient is the mean of its three rows'
    got = _embedding_scaled_by_freq(tapegrad, padding_idx)
    assert got[0] == "EmbeddingBackward0" and got[1] == 72.0
    want = [[6.0, 7.0, 8.0], [15.0, 16.0, 17.0],
            [0.0, 0.0, 0.0] if padding_idx == 2 else [3.0, 4.0, 5.0], [9.0, 10.0, 11.0]]
    np.testing.assert_allclose(got[2], want, rtol=1e-15)
    if real_torch is not None:
        assert _embedding_scaled_by_freq(real_torch, padding_idx) == got
