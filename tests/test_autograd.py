"""Autograd semantics and errors: tapegrad against PyTorch, and against hand-derived values.

Most tests are written once as a *program* ``prog(t)`` taking the library module (``tapegrad``
or ``torch``) and returning a structure of tensors and plain values.  The ``oracle`` fixture
runs each such test twice:

* ``hand``: tapegrad's result against values derived by hand (always runs);
* ``torch``: tapegrad's result against the same program run on PyTorch (skipped when PyTorch
  is not installed).

Tests that compare error messages or warnings with PyTorch's text, ``repr`` and ``grad_fn``
names, likewise keep a hand-written expectation where one is known, and add the comparison with
PyTorch where it is installed.
"""

from __future__ import annotations

import gc
import math
import re
import threading
import time
import tracemalloc
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

import tapegrad

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the hand-derived checks still run
    real_torch = None

requires_torch = pytest.mark.skipif(real_torch is None, reason="PyTorch is not installed")

FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)
VERSION_MSG_START = (
    "one of the variables needed for gradient computation has been modified by an inplace "
    "operation"
)
NONLEAF_GRAD_WARNING = (
    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its .grad "
    "attribute won't be populated during autograd.backward(). If you indeed want the .grad "
    "field to be populated for a non-leaf Tensor, use .retain_grad() on the non-leaf Tensor. "
    "If you access the non-leaf Tensor by mistake, make sure you access the leaf Tensor "
    "instead. See github.com/pytorch/pytorch/pull/30531 for more information."
)

# ------------------------------------------------------------------------------------ helpers


@dataclass
class TV:
    """A tensor reduced to plain data, comparable across libraries."""

    dtype: str
    shape: tuple
    values: np.ndarray


@dataclass
class Raised:
    kind: str
    message: str


def is_tensor(x) -> bool:
    if isinstance(x, tapegrad.Tensor):
        return True
    return real_torch is not None and isinstance(x, real_torch.Tensor)


def plain(x):
    """Tensors -> TV (values via tolist(), which neither library records); containers mapped."""
    if is_tensor(x):
        return TV(str(x.dtype).rsplit(".", 1)[-1], tuple(x.shape), np.array(x.tolist()))
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, Raised):
        return x
    return x


def assert_same(got, want, path="result"):
    """got (tapegrad, plain) against want (plain torch result, or hand-written values)."""
    if isinstance(got, TV):
        if isinstance(want, TV):
            assert got.dtype == want.dtype, f"{path}: dtype {got.dtype} != {want.dtype}"
            assert got.shape == want.shape, f"{path}: shape {got.shape} != {want.shape}"
            want = want.values
        want = np.asarray(want)
        assert got.shape == want.shape, f"{path}: shape {got.shape} != {want.shape}"
        if got.values.dtype == bool or want.dtype == bool:
            assert np.array_equal(got.values, want), f"{path}: {got.values} != {want}"
        else:
            assert np.allclose(got.values, want, rtol=1e-5, atol=1e-6, equal_nan=True), (
                f"{path}: {got.values.tolist()} != {want.tolist()}"
            )
        return
    if isinstance(want, TV):
        raise AssertionError(f"{path}: got {got!r}, expected a tensor {want.values.tolist()}")
    if isinstance(got, list) and isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}: {got} {want}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{path}[{i}]")
        return
    if isinstance(got, dict) and isinstance(want, dict):
        assert got.keys() == want.keys(), f"{path}: keys {got.keys()} != {want.keys()}"
        for k in got:
            assert_same(got[k], want[k], f"{path}[{k!r}]")
        return
    if isinstance(got, float) and isinstance(want, (int, float)) and not isinstance(want, bool):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9), f"{path}: {got} != {want}"
        return
    assert type(got) is type(want) and got == want, f"{path}: {got!r} != {want!r}"


def outcome(prog, lib):
    """prog(lib), or the exception it raised (type name and message)."""
    try:
        return plain(prog(lib))
    except Exception as e:  # noqa: BLE001 - the exception is the result under test
        return Raised(type(e).__name__, str(e))


@pytest.fixture(params=["hand", "torch"])
def oracle(request):
    if request.param == "torch":
        pytest.importorskip("torch")
    return request.param


def check(oracle, prog, expected):
    """Run prog on tapegrad; compare with ``expected`` (hand) or with prog run on PyTorch."""
    got = outcome(prog, tapegrad)
    if oracle == "hand":
        if isinstance(got, Raised):
            raise AssertionError(f"tapegrad raised {got.kind}: {got.message}")
        assert_same(got, expected)
    else:
        want = outcome(prog, real_torch)
        if (isinstance(want, Raised) and isinstance(got, Raised)
                and want.message.startswith(VERSION_MSG_START)):
            # version-counter errors: only the start of the message is compared
            assert got.kind == want.kind and got.message.startswith(VERSION_MSG_START), (
                f"tapegrad: {got}\ntorch:    {want}")
        elif isinstance(want, Raised) or isinstance(got, Raised):
            assert got == want, f"tapegrad: {got}\ntorch:    {want}"
        else:
            assert_same(got, want)
    return got


def error_of(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, str(e)
    return None


def check_error(oracle, prog, kind, message=None, *, start=None):
    """prog(t) must raise; hand: the given type and exact message (or message start);
    torch: the same type and message as PyTorch's (or the same start)."""
    got = error_of(prog, tapegrad)
    assert got is not None, "tapegrad raised nothing"
    if oracle == "hand":
        assert got[0] == kind, f"{got[0]}: {got[1]}"
        if message is not None:
            assert got[1] == message
        if start is not None:
            assert got[1].startswith(start), got[1]
    else:
        want = error_of(prog, real_torch)
        assert want is not None, "torch raised nothing"
        assert got[0] == want[0], f"tapegrad {got}\ntorch {want}"
        if start is None:
            assert got[1] == want[1]
        else:
            assert want[1].startswith(start), want[1]
            assert got[1].startswith(start), got[1]


def torch_text(s: str) -> str:
    """PyTorch's message with build-specific trailers removed."""
    return re.sub(r" \(Triggered internally at [^)]*\)", "", s)


def tree(fn):
    """grad_fn graph as nested (name, [(child, index), ...]); None for no node."""
    if fn is None:
        return None
    return [fn.name(), [[tree(child), index] for child, index in fn.next_functions]]


ACC = ["torch::autograd::AccumulateGrad", []]

# --------------------------------------------------------------------- fan-out, diamonds, leaves


def test_fan_out_vector(oracle):
    xs = [0.5, -1.0, 2.0]

    def prog(t):
        x = t.tensor(xs, requires_grad=True)
        y = x * x + x * 3.0 + x.exp() * x - x / 2.0 + x.sin()
        y.sum().backward()
        return x.grad

    expected = [2 * v + 3 + math.exp(v) * (1 + v) - 0.5 + math.cos(v) for v in xs]
    check(oracle, prog, expected)


def test_fan_out_same_tensor_on_both_sides(oracle):
    def prog(t):
        x = t.tensor([1.5, -2.0, 4.0], requires_grad=True)
        y = x * x + (x + x) + (x - x) + x / x
        y.sum().backward()
        return x.grad, y

    # d/dx: 2x + 2 + 0 + 0 (x - x and x / x reach x with zero gradient: a tensor, not None)
    check(oracle, prog, ([5.0, -2.0, 10.0], [6.25, 1.0, 25.0]))


def test_matmul_adjoints_written_or_added(oracle):
    """A matmul's operand reached there first gets the product written into its adjoint;
    one reached before (a later use), or the same tensor on both sides, gets it added."""
    a0 = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    b0 = [[1.0, 2.0], [-0.5, 0.3], [0.7, -1.2]]
    s0 = [[0.2, -0.4, 1.1], [0.9, 0.6, -0.3], [-1.4, 0.8, 0.5]]

    def prog(t):
        a = t.tensor(a0, requires_grad=True)
        b = t.tensor(b0, requires_grad=True)
        s = t.tensor(s0, requires_grad=True)
        y = (a @ b).sum() + (a * a).sum()  # a reached first by the later product
        z = ((s @ s) * (s @ s)).sum()  # s on both sides, twice
        (y + z).backward()
        return a.grad, b.grad, s.grad

    A, B, S = np.array(a0), np.array(b0), np.array(s0)
    ss = S @ S
    g = 2 * ss  # d z / d (s @ s)
    expected = (np.ones((2, 2)) @ B.T + 2 * A, A.T @ np.ones((2, 2)), g @ S.T + S.T @ g)
    check(oracle, prog, tuple(e.tolist() for e in expected))


def test_fan_out_scalar_fast_path(oracle):
    def prog(t):
        x = t.tensor(1.5, dtype=t.float64, requires_grad=True)
        total = x * 0
        for k in range(1, 51):
            total = total + x * k
        p = x
        for _ in range(10):
            p = p * x
        (total + p).backward()
        return x.grad

    check(oracle, prog, 1275 + 11 * 1.5**10)


def test_diamond(oracle):
    xs = [0.1, 0.7, -1.3]

    def prog(t):
        x = t.tensor(xs, requires_grad=True)
        a = x * 2
        b = a.sin()
        c = a.cos()
        (b * c).sum().backward()
        return x.grad

    # sin(2x) cos(2x) = sin(4x) / 2
    check(oracle, prog, [2 * math.cos(4 * v) for v in xs])


def test_nested_diamonds(oracle):
    def prog(t):
        x = t.tensor([1.0, -0.5, 2.0], dtype=t.float64, requires_grad=True)
        a = x + 1
        b = a * a
        c = a * 3
        d = b + c
        e = d * a  # a**3 + 3 a**2
        e.sum().backward()
        return x.grad

    check(oracle, prog, [3 * a * a + 6 * a for a in (2.0, 0.5, 3.0)])


def test_outer_product_broadcast_diamond(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0, 4.0], requires_grad=True)
        y = x.unsqueeze(0) * x.unsqueeze(1)
        y.sum().backward()
        return x.grad

    check(oracle, prog, [14.0, 14.0, 14.0])


def test_leaf_in_two_graphs(oracle):
    def prog(t):
        w = t.tensor([1.0, -2.0], requires_grad=True)
        a = t.tensor([3.0, 5.0])
        l1 = (w * a).sum()
        l2 = (w**2).sum()
        l2.backward()  # the newer graph first: it must not free the older one
        after_l2 = w.grad.tolist()
        l1.backward()
        after_both = w.grad.tolist()
        l3 = (w * w * w).sum()  # a third graph built after the first backwards
        l3.backward()
        return after_l2, after_both, w.grad

    check(oracle, prog, ([2.0, -4.0], [5.0, 1.0], [8.0, 13.0]))


def test_leaf_in_two_graphs_autograd_grad(oracle):
    def prog(t):
        w = t.tensor([1.0, -2.0], requires_grad=True)
        l1 = (w.exp()).sum()
        l2 = (w * 4).sum()
        (g2,) = t.autograd.grad(l2, w)
        (g1,) = t.autograd.grad(l1, w)
        return g1, g2, w.grad

    check(oracle, prog, ([math.e, math.exp(-2)], [4.0, 4.0], None))


# ----------------------------------------------------------------------------- .grad lifecycle


def test_grad_none_then_accumulates(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        before = x.grad
        (x * x).sum().backward()
        first = x.grad.tolist()
        (x * x).sum().backward()
        return before, first, x.grad

    check(oracle, prog, (None, [2.0, 4.0, 6.0], [4.0, 8.0, 12.0]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(3,), ()])
def test_zero_grad_then_backward_updates_the_same_tensor(oracle, dtype, shape):
    def prog(t):
        x = t.full(shape, 2.0, dtype=getattr(t, dtype), requires_grad=True)
        (x * x).sum().backward()
        g = x.grad
        first = g.tolist()
        g.zero_()
        zeroed = x.grad.tolist()
        (x * 3).sum().backward()
        same = x.grad is g
        x.grad = None
        (x * 5).sum().backward()
        return first, zeroed, same, g, x.grad

    def full(v):
        return v if shape == () else [v] * 3

    check(oracle, prog, (full(4.0), full(0.0), True, full(3.0), full(5.0)))


# ------------------------------------------------------------------------------------- detach


def test_detach_blocks_gradient(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * x
        u = y.detach()
        z = u * x
        z.sum().backward()
        return x.grad, u, u.requires_grad, u.is_leaf, u.grad_fn

    check(oracle, prog, ([1.0, 4.0, 9.0], [1.0, 4.0, 9.0], False, True, None))


def test_detach_shares_memory(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        u = x.detach()
        u[0] = 10.0
        u.add_(1)
        y = x * 2
        d = y.detach()
        d.zero_()
        return x, u, y, d, x._version, u._version, y._version, d._version

    check(oracle, prog, ([11.0, 3.0, 4.0], [11.0, 3.0, 4.0], [0.0] * 3, [0.0] * 3, 2, 2, 1, 1))


def test_detached_inplace_write_is_seen_by_the_version_counter(oracle):
    """detach() shares the version counter: a write through it invalidates saved values."""

    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        z = y * y  # saves y
        y.detach().add_(1)
        z.sum().backward()

    check_error(oracle, prog, "RuntimeError", start=VERSION_MSG_START)


def test_data_does_not_share_the_version_counter(oracle):
    """PyTorch's ``.data`` shares storage but not the version counter (unlike detach()):
    writes through it are invisible to autograd, and backward uses the current values."""

    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        z = y * y
        d = y.data
        d.add_(1)
        versions = [y._version, d._version]
        z.sum().backward()
        w = t.tensor([1.0, 2.0], requires_grad=True)
        loss = (w * w).sum()
        w.data.mul_(2)
        loss.backward()
        return versions, y, x.grad, w, w._version, w.grad

    # y = [3, 5, 7] after the write; dz/dx = 2 * y * 2 with the current y
    check(oracle, prog, ([0, 1], [3, 5, 7], [12, 20, 28], [2, 4], 0, [4, 8]))


def test_data_assigned_before_backward(oracle):
    """``t.data = value`` between forward and backward: PyTorch's backward sees the new value
    where t was saved as an input (the saved variable is t) but not where t is an op's saved
    output (saved apart from t)."""

    def prog(t):
        x = t.tensor([0.5, 1.0, 2.0], requires_grad=True)
        w = t.tensor([1.0, -2.0, 3.0], requires_grad=True)
        h = x * 2.0
        s = (t.sin(x) + h * w).sum()  # sin saves x, mul saves h and w
        x.data = t.tensor([1.0, 2.0, 3.0])
        h.data = t.tensor([4.0, 5.0, 6.0])
        s.backward()
        u = t.tensor([0.5, 1.0, 2.0], requires_grad=True)
        y = t.tanh(u)  # tanh saves its output
        y.data = t.tensor([0.0, 0.0, 0.0])
        y.sum().backward()
        return x.grad, w.grad, u.grad

    xs = [1.0, 2.0, 3.0]
    want_x = [math.cos(v) + 2.0 * wv for v, wv in zip(xs, [1.0, -2.0, 3.0])]
    want_u = [1.0 - math.tanh(v) ** 2 for v in (0.5, 1.0, 2.0)]
    check(oracle, prog, (want_x, [4.0, 5.0, 6.0], want_u))


# ---------------------------------------------------------------------------------- grad mode


def test_no_grad_context_manager(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        with t.no_grad():
            y = x * 2
            inside = t.is_grad_enabled()
        z = x * 2
        return y.requires_grad, y.grad_fn, y.is_leaf, inside, t.is_grad_enabled(), z.requires_grad

    check(oracle, prog, (False, None, True, False, True, True))


def test_no_grad_decorator(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)

        @t.no_grad()
        def f(a):
            return a * 2, t.is_grad_enabled()

        y, enabled = f(x)
        return y.requires_grad, enabled, t.is_grad_enabled(), f.__name__

    check(oracle, prog, (False, False, True, "f"))


def test_no_grad_decorator_without_parentheses(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)

        @t.no_grad
        def f(a):
            return a * 2

        return f(x).requires_grad, t.is_grad_enabled()

    check(oracle, prog, (False, True))


def test_enable_grad_inside_no_grad(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        out = []
        with t.no_grad():
            out.append((x * 2).requires_grad)
            with t.enable_grad():
                out.append(t.is_grad_enabled())
                y = x * 3
                out.append(y.requires_grad)
            out.append((x * 2).requires_grad)

            @t.enable_grad()
            def g(a):
                return a * 4

            out.append(g(x).requires_grad)
            out.append(t.is_grad_enabled())
        y.sum().backward()
        out.append(x.grad)
        return out

    check(oracle, prog, [False, True, True, False, True, False, [3.0, 3.0]])


def test_set_grad_enabled_function_and_context_manager(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        out = [t.is_grad_enabled()]
        t.set_grad_enabled(False)
        out += [t.is_grad_enabled(), (x * 2).requires_grad]
        t.set_grad_enabled(True)
        out += [t.is_grad_enabled(), (x * 2).requires_grad]
        with t.set_grad_enabled(False):
            out += [t.is_grad_enabled(), (x * 2).requires_grad]
            with t.set_grad_enabled(True):
                out += [(x * 2).requires_grad]
            out += [t.is_grad_enabled()]
        out += [t.is_grad_enabled()]
        with t.no_grad():
            with t.set_grad_enabled(True):
                out += [(x * 2).requires_grad]
            out += [t.is_grad_enabled()]
        out += [t.is_grad_enabled()]
        return out

    check(oracle, prog, [True, False, False, True, True, False, False, True, False, True,
                         True, False, True])


def test_grad_mode_restored_after_exception(oracle):
    def prog(t):
        try:
            with t.no_grad():
                raise KeyError("boom")
        except KeyError:
            pass
        return t.is_grad_enabled()

    check(oracle, prog, True)


def test_grad_mode_is_thread_local(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        entered = threading.Event()
        checked = threading.Event()
        seen = {}

        def in_no_grad():
            with t.no_grad():
                entered.set()
                checked.wait(10)
                seen["a_enabled"] = t.is_grad_enabled()
                seen["a_rg"] = (x * 2).requires_grad

        def other():
            entered.wait(10)
            seen["b_enabled"] = t.is_grad_enabled()
            seen["b_rg"] = (x * 2).requires_grad
            checked.set()

        threads = [threading.Thread(target=in_no_grad), threading.Thread(target=other)]
        for th in threads:
            th.start()
        entered.wait(10)
        seen["main_enabled"] = t.is_grad_enabled()
        for th in threads:
            th.join(10)
        # a new thread starts with grad mode on whatever the creating thread's mode is
        with t.no_grad():
            th = threading.Thread(target=lambda: seen.setdefault("new", t.is_grad_enabled()))
            th.start()
            th.join(10)
        return seen

    check(oracle, prog, {"a_enabled": False, "a_rg": False, "b_enabled": True, "b_rg": True,
                         "main_enabled": True, "new": True})


# ------------------------------------------------------------------------------- retain_graph


def test_retain_graph_allows_second_backward(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x * x).sum()
        y.backward(retain_graph=True)
        a = x.grad.tolist()
        y.backward(retain_graph=True)
        b = x.grad.tolist()
        y.backward()
        return a, b, x.grad

    check(oracle, prog, ([3.0, 12.0], [6.0, 24.0], [9.0, 36.0]))


def test_backward_twice_without_retain_graph(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        y.backward()
        y.backward()

    check_error(oracle, prog, "RuntimeError", FREED_MSG)


def test_autograd_grad_twice_without_retain_graph(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = (x.exp() * x).sum()
        t.autograd.grad(y, x)
        t.autograd.grad(y, x)

    check_error(oracle, prog, "RuntimeError", FREED_MSG)


def test_backward_through_a_freed_shared_subgraph(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = x * x  # saves x: freed by the first backward
        (y * 2).sum().backward()
        (y * 3).sum().backward()

    check_error(oracle, prog, "RuntimeError", FREED_MSG)


def test_shared_subgraph_that_saves_nothing_can_be_reused(oracle):
    """PyTorch only errors when a freed node needs saved values; y = x + 1 saves none."""

    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = x + 1
        (y * 2).sum().backward()
        (y * 3).sum().backward()
        return x.grad

    check(oracle, prog, [5.0, 5.0])


def test_shared_subgraph_with_retain_graph(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        (y * 2).sum().backward(retain_graph=True)
        (y * 3).sum().backward()
        return x.grad

    check(oracle, prog, [10.0, 20.0])


# ------------------------------------------------------------------------------ autograd.grad


def test_autograd_grad_leaf_and_non_leaf_inputs(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        h = x * x
        out = (h * 3).sum() + x.sum()
        gx, gh = t.autograd.grad(out, [x, h])
        return gx, gh, x.grad, gx.requires_grad, gx.is_leaf

    check(oracle, prog, ([7.0, 13.0], [3.0, 3.0], None, False, True))


def test_autograd_grad_only_non_leaf_inputs(oracle):
    def prog(t):
        x = t.tensor([0.5, 1.0], requires_grad=True)
        h = x * x
        k = h.exp()
        out = (k * 3).sum()
        return t.autograd.grad(out, [k, h]), x.grad

    check(oracle, prog, (([3.0, 3.0], [3 * math.exp(0.25), 3 * math.e]), None))


def test_autograd_grad_does_not_touch_existing_grad(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        g0 = x.grad
        (r,) = t.autograd.grad((x * 3).sum(), x)
        return r, x.grad, x.grad is g0

    check(oracle, prog, ([3.0, 3.0], [2.0, 4.0], True))


def test_autograd_grad_with_grad_outputs_and_several_outputs(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        (a,) = t.autograd.grad(y, x, grad_outputs=t.tensor([1.0, 10.0]), retain_graph=True)
        (b,) = t.autograd.grad([y.sum(), x.exp().sum()], [x])
        return a, b

    check(oracle, prog, ([2.0, 40.0], [2 + math.e, 4 + math.exp(2)]))


def test_autograd_grad_retain_graph(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x * x).sum()
        a = t.autograd.grad(y, x, retain_graph=True)
        b = t.autograd.grad(y, x)
        return a, b

    check(oracle, prog, ([[3.0, 12.0]], [[3.0, 12.0]]))


def test_autograd_grad_unused_input_error(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        w = t.tensor([1.0, 2.0], requires_grad=True)
        t.autograd.grad((x * x).sum(), [x, w])

    check_error(oracle, prog, "RuntimeError",
                "The differentiated Tensor at index 1 appears to not have been used in the graph. "
                "Set allow_unused=True if this is the desired behavior.")


def test_autograd_grad_allow_unused(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        w = t.tensor([1.0, 2.0], requires_grad=True)
        return t.autograd.grad((x * x).sum(), [x, w], allow_unused=True), x.grad, w.grad

    check(oracle, prog, (([2.0, 4.0], None), None, None))


def test_autograd_grad_input_without_requires_grad(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        t.autograd.grad((x * x).sum(), [x, t.tensor([1.0])])

    check_error(oracle, prog, "RuntimeError",
                "One of the differentiated Tensors does not require grad")


# ------------------------------------------------------------------- backward(gradient), errors


def test_backward_with_gradient_is_a_vector_jacobian_product(oracle):
    def prog(t):
        x = t.tensor([1.0, -2.0, 3.0], requires_grad=True)
        w = t.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        y = x * 2
        y.backward(t.tensor([0.1, 1.0, 0.0001]))
        gx = x.grad.tolist()
        x.grad = None
        z = w @ x  # (2,)
        z.backward(t.tensor([1.0, -1.0]))
        m = (w * w).t()  # (3, 2), non-scalar matrix output
        m.backward(t.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]))
        return gx, x.grad, w.grad

    # x.grad = w^T v; w.grad = v x^T + 2 w * g^T
    check(oracle, prog, (
        [0.2, 2.0, 0.0002],
        [-3.0, -3.0, -3.0],
        [[1 + 2, -2 + 0, 3 + 12], [-1 + 0, 2 + 10, -3 + 24]],
    ))


def test_backward_on_leaf_and_autograd_backward(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        x.backward(t.tensor([3.0, 4.0]))
        a = x.grad.tolist()
        t.autograd.backward([(x * x).sum(), (x * 3).sum()])
        b = x.grad.tolist()
        t.autograd.backward([x * x], [t.tensor([1.0, 10.0])])
        return a, b, x.grad

    check(oracle, prog, ([3.0, 4.0], [8.0, 11.0], [10.0, 51.0]))


def test_implicit_gradient_needs_a_scalar(oracle):
    check_error(oracle, lambda t: (t.ones(2, requires_grad=True) * 2).backward(),
                "RuntimeError", "grad can be implicitly created only for scalar outputs")


def test_backward_of_tensor_without_grad(oracle):
    check_error(oracle, lambda t: t.ones(2).sum().backward(), "RuntimeError",
                "element 0 of tensors does not require grad and does not have a grad_fn")
    check_error(oracle, lambda t: (t.ones(2, requires_grad=True) > 0).sum().backward(),
                "RuntimeError",
                "element 0 of tensors does not require grad and does not have a grad_fn")


@pytest.mark.parametrize("how", ["requires_grad_", "setter"])
def test_requires_grad_of_non_leaf_cannot_change(oracle, how):
    def prog(t):
        y = t.ones(2, requires_grad=True) * 2
        if how == "setter":
            y.requires_grad = False
        else:
            y.requires_grad_(False)

    check_error(oracle, prog, "RuntimeError",
                start="you can only change requires_grad flags of leaf variables.")


INPLACE_ON_LEAF = {
    "add_": lambda x, t: x.add_(1),
    "sub_": lambda x, t: x.sub_(1),
    "mul_": lambda x, t: x.mul_(2),
    "div_": lambda x, t: x.div_(2),
    "zero_": lambda x, t: x.zero_(),
    "fill_": lambda x, t: x.fill_(1.0),
    "copy_": lambda x, t: x.copy_(t.zeros(3)),
    "iadd": lambda x, t: x.__iadd__(1),
    "imul": lambda x, t: x.__imul__(x),
}


@pytest.mark.parametrize("op", list(INPLACE_ON_LEAF))
def test_inplace_on_leaf_that_requires_grad(oracle, op):
    def prog(t):
        INPLACE_ON_LEAF[op](t.ones(3, requires_grad=True), t)

    check_error(oracle, prog, "RuntimeError",
                "a leaf Variable that requires grad is being used in an in-place operation.")


@pytest.mark.parametrize(
    ("index", "view"),
    # PyTorch writes basic indices through a view of the leaf, and says so; a mask is an
    # index_put_ on the leaf itself
    [(0, True), (slice(0, 2), True), ("mask", False)],
    ids=["int", "slice", "mask"],
)
def test_setitem_on_leaf_that_requires_grad(oracle, index, view):
    def prog(t):
        x = t.ones(3, requires_grad=True)
        x[x > 0 if index == "mask" else index] = 2.0

    check_error(oracle, prog, "RuntimeError",
                ("a view of " if view else "")
                + "a leaf Variable that requires grad is being used in an in-place operation.")


def test_inplace_on_leaf_is_allowed_under_no_grad(oracle):
    def prog(t):
        w = t.tensor([1.0, 2.0], requires_grad=True)
        (w * w).sum().backward()
        with t.no_grad():
            w -= 0.25 * w.grad
            w[0] = w[0] * 2
        return w, w.is_leaf, w.requires_grad, w.grad_fn, w._version

    check(oracle, prog, ([1.0, 1.0], True, True, None, 2))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("tensor int", "Only Tensors of floating point and complex dtype can require gradients"),
        ("zeros long", "Only Tensors of floating point and complex dtype can require gradients"),
        ("ones bool", "Only Tensors of floating point and complex dtype can require gradients"),
        ("arange", "Only Tensors of floating point and complex dtype can require gradients"),
        ("requires_grad_", "only Tensors of floating point dtype can require gradients"),
        ("setter", "only Tensors of floating point and complex dtype can require gradients"),
    ],
    ids=["tensor int", "zeros long", "ones bool", "arange", "requires_grad_", "setter"],
)
def test_only_floating_tensors_require_grad(oracle, case, message):
    def prog(t):
        if case == "tensor int":
            t.tensor([1, 2], requires_grad=True)
        elif case == "zeros long":
            t.zeros(2, dtype=t.int64, requires_grad=True)
        elif case == "ones bool":
            t.ones(2, dtype=t.bool, requires_grad=True)
        elif case == "arange":
            t.arange(3, requires_grad=True)
        elif case == "requires_grad_":
            t.arange(3).requires_grad_()
        else:
            t.tensor([1, 2]).requires_grad = True

    check_error(oracle, prog, "RuntimeError", message)


VERSION_CASES = {
    # output saved by exp, modified in place
    "exp output": lambda t, x: (lambda y: (lambda z: (y.add_(1), z.backward()))(y.sum()))(x.exp()),
    # input saved by mul, modified in place
    "mul input": lambda t, x: (lambda a: (lambda b: (a.mul_(3), b.sum().backward()))(a * a))(x * 2),
    # output saved by sigmoid, zeroed
    "sigmoid output": lambda t, x: (lambda y: (lambda z: (y.zero_(), z.backward()))(y.sum()))(
        x.sigmoid()),
    # output saved by tanh, written through setitem
    "tanh output setitem": lambda t, x: (lambda y: (lambda z: (y.__setitem__(0, 2.0),
                                                               z.backward()))(y.sum()))(x.tanh()),
    # a leaf modified under no_grad after being saved
    "leaf under no_grad": lambda t, x: (lambda z: (_no_grad_add(t, x), z.backward()))(
        (x * x).sum()),
    # a saved output modified through a view of it
    "exp output via view": lambda t, x: (lambda y: (lambda z: (y[0].mul_(2), z.backward()))(
        y.sum()))(x.exp()),
}


def _no_grad_add(t, x):
    with t.no_grad():
        x.add_(1)


@pytest.mark.parametrize("case", list(VERSION_CASES))
def test_modified_saved_tensor_raises_version_error(oracle, case):
    def prog(t):
        VERSION_CASES[case](t, t.tensor([1.0, 2.0, 3.0], requires_grad=True))

    check_error(oracle, prog, "RuntimeError", start=VERSION_MSG_START)


def test_modifying_an_unsaved_tensor_is_fine(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        z = (y + 1).sum()  # add saves nothing
        y.add_(1)
        z.backward()
        return x.grad, y

    check(oracle, prog, ([2.0, 2.0, 2.0], [3.0, 5.0, 7.0]))


BROADCAST_ERRORS = [
    ((2, 3), (4,), "The size of tensor a (3) must match the size of tensor b (4) at "
                   "non-singleton dimension 1"),
    ((3,), (4,), "The size of tensor a (3) must match the size of tensor b (4) at "
                 "non-singleton dimension 0"),
    ((2, 3, 4), (5, 4), "The size of tensor a (3) must match the size of tensor b (5) at "
                        "non-singleton dimension 1"),
    ((5, 4), (2, 3, 4), "The size of tensor a (5) must match the size of tensor b (3) at "
                        "non-singleton dimension 1"),
]


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize(("sa", "sb", "message"), BROADCAST_ERRORS,
                         ids=[f"{sa}-{sb}" for sa, sb, _ in BROADCAST_ERRORS])
def test_broadcast_shape_mismatch(oracle, sa, sb, message, requires_grad):
    def prog(t):
        return t.ones(*sa, requires_grad=requires_grad) * t.ones(*sb)

    check_error(oracle, prog, "RuntimeError", message)


def test_inplace_broadcast_into_smaller_output(oracle):
    check_error(oracle, lambda t: (t.ones(3, requires_grad=True) * 1).add_(t.ones(2, 3)),
                "RuntimeError", "output with shape [3] doesn't match the broadcast shape [2, 3]")


MATMUL_ERRORS = [
    ((2, 3), (4, 5), "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
    ((2, 3), (4,), "size mismatch, got input (2), mat (2x3), vec (4)"),
    ((3,), (4,), "inconsistent tensor size, expected tensor [3] and src [4] to have the same "
                 "number of elements, but got 3 and 4 elements respectively"),
    ((3,), (4, 5), "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x5)"),
]


@pytest.mark.parametrize(("sa", "sb", "message"), MATMUL_ERRORS,
                         ids=[f"{sa}-{sb}" for sa, sb, _ in MATMUL_ERRORS])
def test_matmul_shape_mismatch(oracle, sa, sb, message):
    check_error(oracle, lambda t: t.ones(*sa, requires_grad=True) @ t.ones(*sb),
                "RuntimeError", message)


def test_backward_gradient_shape_mismatch(oracle):
    # PyTorch prints torch.Size here; tapegrad's Size prints the same way
    check_error(oracle, lambda t: (t.ones(2, requires_grad=True) * 2).backward(t.ones(3)),
                "RuntimeError",
                "Mismatch in shape: grad_output[0] has a shape of torch.Size([3]) and "
                "output[0] has a shape of torch.Size([2]).")


# ----------------------------------------------------------------------------------- grad_fn


def test_grad_fn_repr_and_name(oracle):
    def prog(t):
        x = t.ones(2, requires_grad=True)
        y = x + 2
        node = y.grad_fn
        r = re.sub(r"0x[0-9a-fA-F]+", "0x?", repr(node))
        acc = node.next_functions[0][0]
        acc_r = re.sub(r"0x[0-9a-fA-F]+", "0x?", repr(acc))
        return r, node.name(), y.grad_fn is node, acc_r, acc.name(), acc.variable is x, x.grad_fn

    check(oracle, prog, ("<AddBackward0 object at 0x?>", "AddBackward0", True,
                         "<AccumulateGrad object at 0x?>", "torch::autograd::AccumulateGrad",
                         True, None))


def test_accumulate_grad_node_is_shared_between_graphs(oracle):
    def prog(t):
        x = t.ones(2, requires_grad=True)
        a = x * 2
        b = x.exp()
        return a.grad_fn.next_functions[0][0] is b.grad_fn.next_functions[0][0]

    check(oracle, prog, True)


GRAPHS = {
    "tutorial": (
        lambda t: (lambda x: ((x + 2) * (x + 2) * 3).mean())(t.ones(2, 2, requires_grad=True)),
        ["MeanBackward0", [[["MulBackward0", [
            [["MulBackward0", [[["AddBackward0", [[ACC, 0], [None, 0]]], 0],
                              [["AddBackward0", [[ACC, 0], [None, 0]]], 0]]], 0],
            [None, 0]]], 0]]],
    ),
    "two leaves": (
        lambda t: (lambda a, b: (a * b + a.exp()).sum())(t.ones(3, requires_grad=True),
                                                         t.ones(3, requires_grad=True)),
        ["SumBackward0", [[["AddBackward0", [[["MulBackward0", [[ACC, 0], [ACC, 0]]], 0],
                                             [["ExpBackward0", [[ACC, 0]]], 0]]], 0]]],
    ),
    "constant tensor": (
        lambda t: (t.ones(3, requires_grad=True) * t.ones(3)).sum(),
        ["SumBackward0", [[["MulBackward0", [[ACC, 0], [None, 0]]], 0]]],
    ),
    "constant first": (
        lambda t: t.ones(2, 3) @ t.ones(3, 2, requires_grad=True),
        ["MmBackward0", [[None, 0], [ACC, 0]]],
    ),
    "python scalars": (
        lambda t: (t.ones(2, requires_grad=True) - 1) * 3,
        ["MulBackward0", [[["SubBackward0", [[ACC, 0], [None, 0]]], 0], [None, 0]]],
    ),
    "rdiv": (
        lambda t: 2 / t.ones(2, requires_grad=True),
        ["MulBackward0", [[["ReciprocalBackward0", [[ACC, 0]]], 0], [None, 0]]],
    ),
    "views": (
        lambda t: t.ones(2, 3, requires_grad=True).view(6)[1:4].sum(),
        ["SumBackward0", [[["SliceBackward0", [[["ViewBackward0", [[ACC, 0]]], 0]]], 0]]],
    ),
    "detached operand": (
        lambda t: (lambda x: x * x.detach())(t.ones(2, requires_grad=True)),
        ["MulBackward0", [[ACC, 0], [None, 0]]],
    ),
    "scalar fast path": (
        lambda t: (lambda x: x * x + x * 3)(t.tensor(1.0, dtype=t.float64, requires_grad=True)),
        ["AddBackward0", [[["MulBackward0", [[ACC, 0], [ACC, 0]]], 0],
                          [["MulBackward0", [[ACC, 0], [None, 0]]], 0]]],
    ),
    "in-place add": (
        lambda t: (lambda y: y.add_(t.ones(2, requires_grad=True)))(
            t.ones(2, requires_grad=True) * 2),
        ["AddBackward0", [[["MulBackward0", [[ACC, 0], [None, 0]]], 0], [ACC, 0]]],
    ),
    "setitem": (
        lambda t: (lambda y: (y.__setitem__(0, 5.0), y)[1])(t.ones(2, requires_grad=True) * 2),
        ["torch::autograd::CopySlices", [[["MulBackward0", [[ACC, 0], [None, 0]]], 0],
                                         [None, 0]]],
    ),
}


@pytest.mark.parametrize("graph", list(GRAPHS))
def test_next_functions_structure(oracle, graph):
    build, expected = GRAPHS[graph]
    check(oracle, lambda t: tree(build(t).grad_fn), expected)


def test_is_leaf_and_requires_grad_propagation(oracle):
    def prog(t):
        x = t.ones(2, requires_grad=True)
        c = t.ones(2)
        i = t.arange(2)
        cases = [x, c, x + c, c + c, c * 2, x.sum(), x > 0, x.detach(), x[0], c[0],
                 x.view(2, 1), i + 1, x * i, (x + 0).detach(), x.clone(), c.clone(), x.double()]
        out = [(y.requires_grad, y.is_leaf, y.grad_fn is None) for y in cases]
        with t.no_grad():
            y = x * 2
        out.append((y.requires_grad, y.is_leaf, y.grad_fn is None))
        return out

    leaf_rg, const, result = (True, True, True), (False, True, True), (True, False, False)
    check(oracle, prog, [leaf_rg, const, result, const, const, result, const, const, result,
                         const, result, const, result, const, result, const, result, const])


def test_retain_grad(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        z = (y * y).sum()
        z.backward(retain_graph=True)
        first = y.grad.tolist()
        z.backward()
        x.retain_grad()  # a no-op on leaves
        return first, y.grad, y.retains_grad, x.retains_grad, y.is_leaf, x.grad

    check(oracle, prog, ([4.0, 8.0], [8.0, 16.0], True, False, False, [16.0, 32.0]))


def test_non_leaf_grad_warns(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        (y * y).sum().backward()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            g = y.grad
        return g, [(w.category.__name__, torch_text(str(w.message))) for w in caught]

    check(oracle, prog, (None, [("UserWarning", NONLEAF_GRAD_WARNING)]))


def test_non_leaf_grad_warning_is_a_user_warning():
    x = tapegrad.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.warns(UserWarning, match="is not a leaf Tensor is being accessed"):
        assert y.grad is None
    y.retain_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert y.grad is None  # retained: no warning
        assert x.grad is None


# ------------------------------------------------------------------- in-place on non-leaves

C = [1.0, 10.0, 100.0]


def _inplace_program(op):
    """x, s leaves; y = 2x; op(y); loss = sum(y * C) (so dL/dy = C)."""

    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], requires_grad=True)
        s = t.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 2
        op(t, y, s, x)
        (y * t.tensor(C)).sum().backward()
        return y, x.grad, s.grad, y._version, y.is_leaf, y.requires_grad

    return prog


# name: (op, y after, x.grad, s.grad) -- derived by hand with y = 2x = [2, 4, 6]
INPLACE_NON_LEAF = {
    "zero_": (lambda t, y, s, x: y.zero_(), [0, 0, 0], [0, 0, 0], None),
    "add_": (lambda t, y, s, x: y.add_(s), [2.5, 3, 8], [2, 20, 200], C),
    "add_ alpha": (lambda t, y, s, x: y.add_(s, alpha=3), [3.5, 1, 12], [2, 20, 200],
                   [3, 30, 300]),
    "add_ number": (lambda t, y, s, x: y.add_(1.5), [3.5, 5.5, 7.5], [2, 20, 200], None),
    "iadd": (lambda t, y, s, x: y.__iadd__(s), [2.5, 3, 8], [2, 20, 200], C),
    "sub_": (lambda t, y, s, x: y.sub_(s), [1.5, 5, 4], [2, 20, 200], [-1, -10, -100]),
    "sub_ alpha": (lambda t, y, s, x: y.sub_(s, alpha=2), [1, 6, 2], [2, 20, 200],
                   [-2, -20, -200]),
    "mul_": (lambda t, y, s, x: y.mul_(s), [1, -4, 12], [1, -20, 400], [2, 40, 600]),
    "mul_ number": (lambda t, y, s, x: y.mul_(3), [6, 12, 18], [6, 60, 600], None),
    "div_": (lambda t, y, s, x: y.div_(s), [4, -4, 3], [4, -20, 100], [-8, -40, -150]),
    "div_ number": (lambda t, y, s, x: y.div_(4), [0.5, 1, 1.5], [0.5, 5, 50], None),
    "fill_": (lambda t, y, s, x: y.fill_(3.0), [3, 3, 3], [0, 0, 0], None),
    "fill_ tensor": (lambda t, y, s, x: y.fill_(s[2]), [2, 2, 2], [0, 0, 0], [0, 0, 111]),
    "copy_": (lambda t, y, s, x: y.copy_(s), [0.5, -1, 2], [0, 0, 0], C),
    "copy_ broadcast": (lambda t, y, s, x: y.copy_(s[1]), [-1, -1, -1], [0, 0, 0], [0, 111, 0]),
    "copy_ of own function": (lambda t, y, s, x: y.copy_(x * x), [1, 4, 9], [2, 40, 600], None),
    "setitem int number": (lambda t, y, s, x: y.__setitem__(0, 7.0), [7, 4, 6], [0, 20, 200],
                           None),
    "setitem 0-d index": (lambda t, y, s, x: y.__setitem__(t.tensor(1), 5.0), [2, 5, 6],
                          [2, 0, 200], None),
    "setitem int tensor": (lambda t, y, s, x: y.__setitem__(1, s[2]), [2, 2, 6], [2, 0, 200],
                           [0, 0, 10]),
    "setitem slice": (lambda t, y, s, x: y.__setitem__(slice(1, None), s[:2]), [2, 0.5, -1],
                      [2, 0, 0], [10, 100, 0]),
    "setitem slice broadcast": (lambda t, y, s, x: y.__setitem__(slice(None, 2), s[1]),
                                [-1, -1, 6], [0, 0, 200], [0, 11, 0]),
    "setitem ellipsis": (lambda t, y, s, x: y.__setitem__(Ellipsis, s), [0.5, -1, 2], [0, 0, 0],
                         C),
    "setitem list": (lambda t, y, s, x: y.__setitem__([2, 0], s[:2]), [-1, 4, 0.5], [0, 20, 0],
                     [100, 1, 0]),
    "setitem mask number": (lambda t, y, s, x: y.__setitem__(x > 1.5, 0.0), [2, 0, 0],
                            [2, 0, 0], None),
    "setitem mask tensor": (lambda t, y, s, x: y.__setitem__(x > 1.5, s[0]), [2, 0.5, 0.5],
                            [2, 0, 0], [110, 0, 0]),
    "setitem mask values": (lambda t, y, s, x: y.__setitem__(x > 1.5, s[1:]), [2, -1, 2],
                            [2, 0, 0], [0, 10, 100]),
    "view mul_": (lambda t, y, s, x: y[1:].mul_(s[1:]), [2, -4, 12], [2, -20, 400],
                  [0, 40, 600]),
    "view add_": (lambda t, y, s, x: y[1:].add_(s[1:]), [2, 3, 8], [2, 20, 200], [0, 10, 100]),
    "element add_": (lambda t, y, s, x: y[1].add_(5.0), [2, 9, 6], [2, 20, 200], None),
    "element mul_": (lambda t, y, s, x: y[2].mul_(s[0]), [2, 4, 3], [2, 20, 100], [600, 0, 0]),
    "view of view": (lambda t, y, s, x: y.view(3, 1)[2].mul_(10), [2, 4, 60], [2, 20, 2000],
                     None),
    "element of view": (lambda t, y, s, x: y.view(3, 1)[2, 0].mul_(10), [2, 4, 60],
                        [2, 20, 2000], None),
    "view zero_": (lambda t, y, s, x: y[:2].zero_(), [0, 0, 6], [0, 0, 200], None),
    "view copy_": (lambda t, y, s, x: y[:2].copy_(s[1:]), [-1, 2, 6], [0, 0, 200], [0, 1, 10]),
}


@pytest.mark.parametrize("name", list(INPLACE_NON_LEAF))
def test_inplace_on_non_leaf(oracle, name):
    op, y_after, x_grad, s_grad = INPLACE_NON_LEAF[name]
    check(oracle, _inplace_program(op), (y_after, x_grad, s_grad, 1, False, True))


def _inplace_program_2d(op):
    """A 2-d variant with a non-linear loss (the in-place result is saved by y * y)."""

    def prog(t):
        x = t.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        s = t.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 2
        op(t, y, s, x)
        loss = (y * t.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]) + y * y).sum()
        loss.backward()
        return y, x.grad, s.grad, y._version, repr(y.grad_fn).split(" ")[0]

    return prog


INPLACE_2D = {
    "zero_": lambda t, y, s, x: y.zero_(),
    "add_ broadcast": lambda t, y, s, x: y.add_(s),
    "mul_ broadcast": lambda t, y, s, x: y.mul_(s),
    "div_ broadcast": lambda t, y, s, x: y.div_(s),
    "mul_ self": lambda t, y, s, x: y.mul_(y),
    "fill_": lambda t, y, s, x: y.fill_(3.0),
    "copy_ broadcast": lambda t, y, s, x: y.copy_(s),
    "setitem row": lambda t, y, s, x: y.__setitem__(0, s),
    "setitem element": lambda t, y, s, x: y.__setitem__((1, 2), s[1]),
    "setitem column": lambda t, y, s, x: y.__setitem__((slice(None), 1), s[:2]),
    "setitem block": lambda t, y, s, x: y.__setitem__((slice(None), slice(0, 2)), s[1]),
    "setitem mask": lambda t, y, s, x: y.__setitem__(x > 3, s[0]),
    "setitem row mask": lambda t, y, s, x: y.__setitem__(t.tensor([True, False]), s),
    "row mul_": lambda t, y, s, x: y[0].mul_(s),
    "columns add_": lambda t, y, s, x: y[:, 1:].add_(s[1:]),
    "transposed row mul_": lambda t, y, s, x: y.t()[1].mul_(s[:2]),
    "two views": lambda t, y, s, x: (y[0].mul_(s), y[:, 0].add_(s[:2])),
    "unsqueezed element": lambda t, y, s, x: y.unsqueeze(0)[0, 1].mul_(s),
}


@requires_torch
@pytest.mark.parametrize("name", list(INPLACE_2D))
def test_inplace_on_non_leaf_2d_against_torch(name):
    check("torch", _inplace_program_2d(INPLACE_2D[name]), None)


def test_inplace_on_view_changes_base(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = x * 1
        v = y[1:3]
        v.mul_(10)
        names = [repr(y.grad_fn).split(" ")[0], repr(v.grad_fn).split(" ")[0]]
        z = (y * y).sum()
        z.backward()
        return y, v, x.grad, y._version, v._version, names

    check(oracle, prog, ([1, 20, 30, 4], [20, 30], [2, 400, 600, 8], 1, 1,
                         ["<CopySlices", "<AsStridedBackward0"]))


def test_inplace_on_base_changes_view(oracle):
    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = x * 1
        v = y[1:3]
        y.add_(x)
        (v * v).sum().backward()
        return y, v, x.grad

    check(oracle, prog, ([2, 4, 6, 8], [4, 6], [0, 16, 24, 0]))


def test_inplace_on_detached_view_changes_base(oracle):
    def prog(t):
        a = t.zeros(2, 3)
        a[1].fill_(2.0)
        a[:, 0].add_(1)
        a.view(6)[5] = 7.0
        a.t()[1, 0] = -1.0
        return a

    check(oracle, prog, [[1, -1, 0], [3, 2, 7]])


def test_version_counter(oracle):
    def prog(t):
        a = t.zeros(4)
        vs = [a._version]
        a.add_(1)
        vs.append(a._version)
        a.sub_(1)
        vs.append(a._version)
        a.mul_(2)
        vs.append(a._version)
        a.div_(2)
        vs.append(a._version)
        a.zero_()
        vs.append(a._version)
        a.fill_(3)
        vs.append(a._version)
        a.copy_(t.ones(4))
        vs.append(a._version)
        a[0] = 5
        vs.append(a._version)
        a[a > 2] = 0.0
        vs.append(a._version)
        a[[0, 1]] = 2.0
        vs.append(a._version)
        v = a[1:]
        v.add_(1)
        vs.append([a._version, v._version])
        a += 1
        vs.append(a._version)
        d = a.detach()
        d.add_(1)
        vs.append([a._version, d._version])
        b = a.view(2, 2)
        b[0, 0] = 1
        vs.append([a._version, b._version])
        x = t.ones(4, requires_grad=True)
        y = x * 2
        ys = [y._version]
        y.add_(1)
        ys.append(y._version)
        y[0] = 5
        ys.append(y._version)
        y[y > 2] = 0.0
        ys.append(y._version)
        return vs, ys, x._version

    check(oracle, prog, ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, [11, 11], 12, [13, 13], [14, 14]],
                         [0, 1, 2, 3], 0))


def test_element_of_1d_tensor_is_a_view(oracle):
    def prog(t):
        out = []
        for dtype in (t.float32, t.float64, t.int64):
            a = t.zeros(3, dtype=dtype)
            a[1].add_(5)
            b = t.zeros(2, 2, dtype=dtype)
            b[1, 0].add_(3)
            out += [a, b]
        return out

    check(oracle, prog, [[0, 5, 0], [[0, 0], [3, 0]]] * 3)


# --------------------------------------------------------------- control flow and conversions


def _d2l_f(t, a):
    b = a * 2
    while b.norm() < 1000:
        b = b * 2
    if b.sum() > 0:
        c = b
    else:
        c = 100 * b
    return c


@pytest.mark.parametrize("a0", [0.3, -0.7, 1234.5])
def test_python_control_flow(oracle, a0):
    def prog(t):
        a = t.tensor(a0, requires_grad=True)
        d = _d2l_f(t, a)
        d.backward()
        return a.grad, (a.grad == d / a)

    k = 2.0
    while abs(a0 * k) < 1000:
        k *= 2
    check(oracle, prog, (k if a0 > 0 else 100 * k, True))


def test_python_control_flow_vector(oracle):
    def prog(t):
        x = t.tensor([0.1, -0.2, 0.3], requires_grad=True)
        y = x * 2
        n = 1
        while y.norm() < 1000:
            y = y * 2
            n += 1
        y.backward(t.tensor([0.1, 1.0, 0.0001]))
        return n, x.grad

    # |x| = 0.374...; 0.374 * 2**12 = 1532 > 1000 > 0.374 * 2**11
    check(oracle, prog, (12, [409.6, 4096.0, 0.4096]))


def test_conversions(oracle):
    def prog(t):
        a = t.tensor([[1.5, 2.0], [3.0, 4.0]])
        s = t.tensor(2.5)
        i = t.tensor(3)
        f64 = t.tensor(2.5, dtype=t.float64)
        x = t.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        return [
            bool(t.tensor([0.0])), bool(t.tensor(0.5)), bool(t.tensor(True)), bool(y[0] > 2),
            float(s), int(t.tensor(2.7)), int(t.tensor(-2.7)), float(t.tensor([3.5])),
            int(t.tensor([[4]])),
            s.item(), type(s.item()).__name__, i.item(), type(i.item()).__name__,
            t.tensor(True).item(), f64.item(), y.sum().item(), y[1].item(),
            a.tolist(), s.tolist(), i.tolist(), (a > 2).tolist(), y.tolist(),
            len(a), len(a[0]), len(y),
            a.size(), a.size(0), a.size(-1), a.dim(), s.dim(), a.numel(), s.numel(),
            a.ndim, tuple(a.shape), tuple(s.shape), a.shape == (2, 2), repr(a.shape),
            repr(s.shape), str(a.dtype).rsplit(".")[-1], str(i.dtype).rsplit(".")[-1],
            str((a > 0).dtype).rsplit(".")[-1], str(f64.dtype).rsplit(".")[-1],
            y.dtype == t.float32, a.dtype is t.float32, (a > 0).dtype is t.bool,
            [1, 2, 3, 4][t.tensor(2)],
        ]

    check(oracle, prog, [
        False, True, True, True,
        2.5, 2, -2, 3.5, 4,
        2.5, "float", 3, "int", True, 2.5, 9.0, 6.0,
        [[1.5, 2.0], [3.0, 4.0]], 2.5, 3, [[False, False], [True, True]], [3.0, 6.0],
        2, 2, 2,
        (2, 2), 2, 2, 2, 0, 4, 1,
        2, (2, 2), (), True, "torch.Size([2, 2])", "torch.Size([])",
        "float32", "int64", "bool", "float64",
        True, True, True, 3,
    ])


def test_numpy(oracle):
    def prog(t):
        a = t.zeros(3)
        n = a.numpy()
        n[0] = 5.0  # shares memory
        x = t.tensor([1.0, 2.0], requires_grad=True)
        d = (x * 2).detach().numpy()
        return (a, type(n).__name__, str(n.dtype), str(t.arange(2).numpy().dtype), d.tolist(),
                x.detach().numpy().tolist())

    check(oracle, prog, ([5.0, 0.0, 0.0], "ndarray", "float32", "int64", [2.0, 4.0],
                         [1.0, 2.0]))


def test_numpy_of_tensor_requiring_grad(oracle):
    msg = ("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
           "instead.")
    check_error(oracle, lambda t: t.ones(2, requires_grad=True).numpy(), "RuntimeError", msg)
    check_error(oracle, lambda t: (t.ones(2, requires_grad=True) * 2).numpy(), "RuntimeError",
                msg)


CONVERSION_ERRORS = {
    "bool": (lambda t: bool(t.ones(2)), "RuntimeError",
             "Boolean value of Tensor with more than one value is ambiguous"),
    "float": (lambda t: float(t.ones(2)), "ValueError",
              "only one element tensors can be converted to Python scalars"),
    "int": (lambda t: int(t.ones(2)), "ValueError",
            "only one element tensors can be converted to Python scalars"),
    "item": (lambda t: t.ones(2).item(), "RuntimeError",
             "a Tensor with 2 elements cannot be converted to Scalar"),
    "len": (lambda t: len(t.tensor(1.0)), "TypeError", "len() of a 0-d tensor"),
    "size": (lambda t: t.ones(4, 2).size(-3), "IndexError",
             "Dimension out of range (expected to be in range of [-2, 1], but got -3)"),
}


@pytest.mark.parametrize("case", list(CONVERSION_ERRORS))
def test_conversion_errors(oracle, case):
    prog, kind, message = CONVERSION_ERRORS[case]
    check_error(oracle, prog, kind, message)


# ------------------------------------------------------------------------------------- repr


def _x(t, **kw):
    return t.tensor([[1.5, -2.0], [3.0, 0.25]], requires_grad=True, **kw)


REPRS = {
    "leaf requires_grad": (lambda t: _x(t),
                           "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  0.2500]], "
                           "requires_grad=True)"),
    "0-d leaf": (lambda t: t.tensor(2.5, requires_grad=True), "tensor(2.5000, requires_grad=True)"),
    "float64 leaf": (lambda t: t.tensor([1.0, 2.0], dtype=t.float64, requires_grad=True),
                     "tensor([1., 2.], dtype=tapegrad.float64, requires_grad=True)"),
    "float64 0-d leaf": (lambda t: t.tensor(2.5, dtype=t.float64, requires_grad=True),
                         "tensor(2.5000, dtype=tapegrad.float64, requires_grad=True)"),
    "add": (lambda t: t.tensor([1.0, 2.0], requires_grad=True) + 1,
            "tensor([2., 3.], grad_fn=<AddBackward0>)"),
    "sub": (lambda t: _x(t) - _x(t), None),
    "rsub": (lambda t: 1 - t.tensor([1.0, 2.0], requires_grad=True),
             "tensor([ 0., -1.], grad_fn=<RsubBackward1>)"),
    "mul": (lambda t: _x(t) * _x(t), None),
    "div": (lambda t: _x(t) / 3, None),
    "rdiv": (lambda t: 3 / _x(t), None),
    "pow": (lambda t: t.tensor([1.0, 2.0], requires_grad=True) ** 2,
            "tensor([1., 4.], grad_fn=<PowBackward0>)"),
    "pow tensor": (lambda t: _x(t).abs() ** _x(t), None),
    "rpow": (lambda t: 2 ** _x(t), None),
    "neg": (lambda t: -_x(t), None),
    "exp": (lambda t: _x(t).exp(), None),
    "log": (lambda t: _x(t).abs().log(), None),
    "sin": (lambda t: _x(t).sin(), None),
    "tanh": (lambda t: _x(t).tanh(), None),
    "sigmoid": (lambda t: _x(t).sigmoid(), None),
    "relu": (lambda t: _x(t).relu(), None),
    "sqrt": (lambda t: _x(t).abs().sqrt(), None),
    "sum": (lambda t: _x(t).sum(), "tensor(2.7500, grad_fn=<SumBackward0>)"),
    "sum dim": (lambda t: _x(t).sum(0), "tensor([ 4.5000, -1.7500], grad_fn=<SumBackward1>)"),
    "mean": (lambda t: _x(t).mean(), "tensor(0.6875, grad_fn=<MeanBackward0>)"),
    "mean dim keepdim": (lambda t: _x(t).mean(1, keepdim=True), None),
    "norm": (lambda t: _x(t).norm(), None),
    "mm": (lambda t: _x(t) @ _x(t), None),
    "mv": (lambda t: _x(t) @ t.ones(2), None),
    "dot": (lambda t: t.ones(2, requires_grad=True) @ t.ones(2),
            "tensor(2., grad_fn=<DotBackward0>)"),
    "view": (lambda t: _x(t).view(4), None),
    "reshape": (lambda t: _x(t).reshape(-1), None),
    "select": (lambda t: _x(t)[0], None),
    "select element": (lambda t: _x(t)[0, 1], "tensor(-2., grad_fn=<SelectBackward0>)"),
    "slice": (lambda t: _x(t)[:, :1], None),
    "index list": (lambda t: _x(t)[[1, 0]], None),
    "index mask": (lambda t: _x(t)[_x(t) > 0], None),
    "t": (lambda t: _x(t).t(), "tensor([[ 1.5000,  3.0000],\n        [-2.0000,  0.2500]], "
                               "grad_fn=<TBackward0>)"),
    "T": (lambda t: _x(t).T, None),
    "permute": (lambda t: _x(t).permute(1, 0), None),
    "transpose": (lambda t: _x(t).transpose(0, 1), None),
    "unsqueeze": (lambda t: _x(t).unsqueeze(0), None),
    "squeeze": (lambda t: _x(t).unsqueeze(0).squeeze(),
                "tensor([[ 1.5000, -2.0000],\n        [ 3.0000,  0.2500]], "
                "grad_fn=<SqueezeBackward0>)"),
    "squeeze dim": (lambda t: _x(t).unsqueeze(0).squeeze(0), None),
    "expand": (lambda t: t.ones(2, 1, requires_grad=True).expand(2, 3), None),
    "clone": (lambda t: _x(t).clone(), None),
    "double": (lambda t: t.tensor([1.0, 2.0], requires_grad=True).double(),
               "tensor([1., 2.], dtype=tapegrad.float64, grad_fn=<ToCopyBackward0>)"),
    "float64 mul": (lambda t: t.tensor([1.0, 2.0], dtype=t.float64, requires_grad=True) * 2,
                    "tensor([2., 4.], dtype=tapegrad.float64, grad_fn=<MulBackward0>)"),
    "float64 sum": (lambda t: _x(t, dtype=t.float64).sum(),
                    "tensor(2.7500, dtype=tapegrad.float64, grad_fn=<SumBackward0>)"),
    "float64 0-d chain": (lambda t: t.tensor(2.0, dtype=t.float64, requires_grad=True) * 3 + 1,
                          "tensor(7., dtype=tapegrad.float64, grad_fn=<AddBackward0>)"),
    "iterate": (lambda t: list(t.tensor([1.0, 2.0], requires_grad=True) * 2), None),
    "bool comparison": (lambda t: _x(t) > 0, "tensor([[ True, False],\n        [ True,  True]])"),
    "bool eq": (lambda t: _x(t) == _x(t), None),
    "bool 0-d": (lambda t: _x(t).sum() > 0, "tensor(True)"),
    "int arange": (lambda t: t.arange(5), "tensor([0, 1, 2, 3, 4])"),
    "int sum": (lambda t: t.arange(5).sum(), "tensor(10)"),
    "int mul": (lambda t: t.arange(6).view(2, 3) * 3,
                "tensor([[ 0,  3,  6],\n        [ 9, 12, 15]])"),
    "int 0-d": (lambda t: t.tensor(7), "tensor(7)"),
    "int negative": (lambda t: -t.tensor([3, -1000000]), "tensor([     -3, 1000000])"),
    "int32": (lambda t: t.tensor([1, 2], dtype=t.int32), "tensor([1, 2], dtype=tapegrad.int32)"),
    "float 0-d": (lambda t: t.tensor(3.0), "tensor(3.)"),
    "float64 0-d": (lambda t: t.tensor(3.0, dtype=t.float64), "tensor(3., dtype=tapegrad.float64)"),
    "grad": (lambda t: (lambda x: ((x * x).sum().backward(), x.grad)[1])(_x(t)), None),
    "float64 grad": (lambda t: (lambda x: ((x * x).sum().backward(), x.grad)[1])(
        t.tensor([1.0, 2.0], dtype=t.float64, requires_grad=True)),
        "tensor([2., 4.], dtype=tapegrad.float64)"),
    "no_grad result": (lambda t: _no_grad_double(t, _x(t)), None),
    "detach": (lambda t: _x(t).detach(), None),
    "large values": (lambda t: t.arange(12.0).view(3, 4).requires_grad_() * 1e5, None),
    "mixed magnitudes": (lambda t: t.tensor([1e-5, 1.0], requires_grad=True) * 1,
                         "tensor([1.0000e-05, 1.0000e+00], grad_fn=<MulBackward0>)"),
    "int true division": (lambda t: t.arange(4) / 2, "tensor([0.0000, 0.5000, 1.0000, 1.5000])"),
    "float times int": (lambda t: _x(t) * t.tensor([[1, 2], [3, 4]]), None),
    "setitem": (lambda t: (lambda y: (y.__setitem__(0, 5.0), y)[1])(
        t.tensor([1.0, 2.0], requires_grad=True) * 2),
        "tensor([5., 4.], grad_fn=<CopySlices>)"),
    "in-place add": (lambda t: (t.tensor([1.0, 2.0], requires_grad=True) * 2).add_(1),
                     "tensor([3., 5.], grad_fn=<AddBackward0>)"),
}


def _no_grad_double(t, x):
    with t.no_grad():
        return x * 2


def _tapegrad_repr(t_repr: str) -> str:
    return t_repr.replace("torch.", "tapegrad.")


@pytest.mark.parametrize("case", [name for name, (_, text) in REPRS.items() if text])
def test_repr_hand(case):
    build, expected = REPRS[case]
    assert repr(build(tapegrad)) == expected


@requires_torch
@pytest.mark.parametrize("case", list(REPRS))
def test_repr_against_torch(case):
    build, _ = REPRS[case]
    assert repr(build(tapegrad)) == _tapegrad_repr(repr(build(real_torch)))


# ------------------------------------------------------------------------ scale and robustness


def test_million_op_scalar_chain():
    """1 000 000 scalar ops backpropagate without recursion (d/dx of y <- a*y + 0.5 = a**n)."""
    n = 500_000
    a = 1.000001
    start = time.perf_counter()
    x = tapegrad.tensor(1.0, dtype=tapegrad.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * a
        y = y + 0.5
    y.backward()
    elapsed = time.perf_counter() - start
    assert math.isclose(x.grad.item(), a**n, rel_tol=1e-9)
    assert elapsed < 60, f"{elapsed:.1f} s"  # ~1.5 s measured; a loose guard against hangs


def test_million_op_float32_chain():
    """The same depth on the array path (0-d float32 tensors are not the fast path)."""
    n = 500_000
    x = tapegrad.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0
        y = y + 0.0
    y.backward()
    assert x.grad.item() == 1.0
    assert y.grad_fn.name() == "AddBackward0"


def test_two_threads_build_and_backpropagate_concurrently():
    iterations = 200
    barrier = threading.Barrier(2)
    errors: list[str] = []
    rng = np.random.default_rng(7)
    inputs = rng.standard_normal((2, iterations, 5))

    def worker_vector(values):
        barrier.wait(10)
        for k, v in enumerate(values):
            x = tapegrad.tensor(v, requires_grad=True)
            y = (x.sin() * x).sum() + (x * x).mean()
            y.backward()
            want = np.cos(v) * v + np.sin(v) + 2 * v / v.size
            got = np.array(x.grad.tolist())
            if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                errors.append(f"vector iteration {k}: {got} != {want}")
            if not y.requires_grad:
                errors.append(f"vector iteration {k}: grad mode leaked from the other thread")

    def worker_scalar(values):
        barrier.wait(10)
        for k, v in enumerate(values):
            w = tapegrad.tensor(float(v[0]), dtype=tapegrad.float64, requires_grad=True)
            u = tapegrad.tensor(v[1:3].tolist(), requires_grad=True)
            z = w * w * w + 2 * w
            for _ in range(20):
                z = z * 1.0 + w * 0.0
            with tapegrad.no_grad():
                frozen = u * 2  # grad mode off in this thread only
            loss = z + (u * u).sum() + frozen.sum()
            gw, gu = tapegrad.autograd.grad(loss, [w, u])
            if not math.isclose(gw.item(), 3 * v[0] ** 2 + 2, rel_tol=1e-9, abs_tol=1e-12):
                errors.append(f"scalar iteration {k}: {gw.item()} != {3 * v[0] ** 2 + 2}")
            if not np.allclose(gu.tolist(), 2 * v[1:3], rtol=1e-5, atol=1e-6):
                errors.append(f"scalar iteration {k}: {gu.tolist()} != {2 * v[1:3]}")
            if frozen.requires_grad:
                errors.append(f"scalar iteration {k}: no_grad did not apply")

    threads = [threading.Thread(target=worker_vector, args=(inputs[0],)),
               threading.Thread(target=worker_scalar, args=(inputs[1],))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "a worker hung"
    assert not errors, "\n".join(errors[:10])


def test_training_loop_runs_in_flat_memory():
    xs = tapegrad.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    ts = tapegrad.tensor([1.0, -2.0])
    w = tapegrad.tensor([0.1, 0.2, 0.3], requires_grad=True)
    b = tapegrad.tensor(0.0, dtype=tapegrad.float64, requires_grad=True)

    def f(w, b):
        pred = xs @ w + b.float()
        return ((pred - ts) ** 2).mean() + 0.01 * (w * w).sum() + b * b

    gc.collect()
    tracemalloc.start()
    try:
        memory = {}
        for i in range(1, 20_001):
            loss = f(w, b)
            loss.backward()
            with tapegrad.no_grad():
                w -= 0.05 * w.grad
                b -= 0.05 * b.grad
            w.grad.zero_()
            b.grad.zero_()
            if i in (2_000, 20_000):
                gc.collect()
                memory[i] = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    growth = memory[20_000] - memory[2_000]
    assert growth < 2 * 2**20, f"memory grew by {growth / 2**20:.2f} MiB"
    assert w.grad.tolist() == [0.0, 0.0, 0.0]
    assert loss.item() < 0.1  # the loop really trained


def test_retain_grad_accumulates_into_a_new_tensor(oracle):
    """PyTorch's retain_grad hook sets .grad = .grad + g, a new tensor, where a leaf's
    AccumulateGrad adds in place: a retained .grad held from before keeps its values."""
    def prog(t):
        x = t.tensor([1.0, 2.0], requires_grad=True)
        m = x * 3
        m.retain_grad()
        y = (m * m).sum()
        y.backward(retain_graph=True)
        held, held_x = m.grad, x.grad
        y.backward(retain_graph=True)
        return held, m.grad, held_x, x.grad, m.grad is held, x.grad is held_x

    check(oracle, prog, ([6.0, 12.0], [12.0, 24.0], [36.0, 72.0], [36.0, 72.0], False, True))


# ------------------------------------------------------------------- unary ops in place

UNARY_INPLACE = ["sqrt", "rsqrt", "abs", "log", "log1p", "log2", "log10", "expm1", "exp2",
                 "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "sigmoid", "tanh",
                 "relu", "sign", "square", "reciprocal", "erf", "floor", "ceil", "round",
                 "trunc"]


def _inplace_prog(name):
    def prog(t):
        x = t.tensor([0.3, -0.7, 0.45], dtype=t.float64, requires_grad=True)
        y = x * 1.0 if name not in ("sqrt", "rsqrt", "log", "log2", "log10") else x.abs() + 0.1
        same = getattr(y, name + "_")() is y
        (y * y).sum().backward()
        return y, x.grad, same, y.grad_fn.name().split("::")[-1], y._version
    return prog


@pytest.mark.parametrize("name", UNARY_INPLACE)
def test_unary_inplace_matches_torch_and_finite_differences(oracle, name):
    """x.op_() writes op(x) into x and takes op's node as x's history, as PyTorch does (the
    values, the gradient, the node's name, the version counter)."""
    if oracle == "hand":
        from tapegrad.testing import gradcheck

        def f(a):
            y = a * 1.0 if name not in ("sqrt", "rsqrt", "log", "log2", "log10") else \
                a.abs() + 0.1
            getattr(y, name + "_")()
            return (y * y).sum()
        x = tapegrad.tensor([0.3, -0.7, 0.45], dtype=tapegrad.float64, requires_grad=True)
        assert gradcheck(f, (x,))
        return
    check(oracle, _inplace_prog(name), None)


def _inplace_errors_and_views(t):
    out = []
    leaf = t.tensor([0.5, 0.25], requires_grad=True)
    try:
        leaf.sin_()
    except RuntimeError as e:
        out.append(str(e))
    try:
        t.tensor([1, 4]).sqrt_()
    except RuntimeError as e:
        out.append(str(e))
    x = t.tensor([0.5, 0.25, 0.75], dtype=t.float64, requires_grad=True)
    y = x * 2.0
    z = y.sin()  # saves y
    y.cos_()
    try:
        z.sum().backward()
    except RuntimeError as e:  # its start: PyTorch names the in-place node "Cos" after it
        out.append(str(e).split(":")[0])
    base = x * 1.0
    base[1:].tanh_()  # through a view: the base's history is CopySlices
    base.sum().backward()
    w = t.tensor([-2.0, 0.5, 3.0], dtype=t.float64, requires_grad=True)
    v = w * 1.0
    v.clamp_(-1.0, 1.0).clamp_min_(-0.5).clamp_max_(0.75).clip_(max=0.7)
    v.lerp_(w * 3.0, 0.25)
    v.sum().backward()
    return out, base.grad_fn.name(), x.grad, v, w.grad


@requires_torch
def test_unary_inplace_errors_and_views_match_torch():
    """A leaf, an integer tensor, a saved value overwritten, a write through a view, clamp_
    and lerp_ chained: PyTorch's messages, node names, gradients and values."""
    check("torch", _inplace_errors_and_views, None)


def test_unary_inplace_errors_and_views_hand():
    out, node, xg, v, wg = _inplace_errors_and_views(tapegrad)
    assert out[0] == ("a leaf Variable that requires grad is being used in an in-place "
                      "operation.")
    assert out[1] == "result type Float can't be cast to the desired output type Long"
    assert out[2].startswith("one of the variables needed for gradient computation has been "
                             "modified by an inplace operation")
    assert node == "torch::autograd::CopySlices"
    xs = np.array([0.5, 0.25, 0.75])
    np.testing.assert_allclose(xg.numpy(), [1.0, *(1.0 - np.tanh(xs[1:]) ** 2)], rtol=1e-14)
    w = np.array([-2.0, 0.5, 3.0])
    c = np.minimum(np.clip(np.clip(w, -1.0, 1.0), -0.5, 0.75), 0.7)
    np.testing.assert_allclose(v.detach().numpy(), c + 0.25 * (3.0 * w - c), rtol=1e-15)
    # d/dw: 0.75 * dc/dw + 0.75; c passes w only where it was not clamped (w = 0.5)
    np.testing.assert_allclose(wg.numpy(), [0.75, 1.5, 0.75], rtol=1e-15)


def test_hooks_run_without_grad_mode_unless_create_graph(oracle):
    """PyTorch's backward runs tensor hooks (of non-leaves and leaves), retain_grad and
    autograd.grad's hooks with grad mode off, and on with create_graph=True; a hook's own
    ops on tensors that require grad are then not recorded."""
    def prog(t):
        seen = []
        w = t.tensor([0.5, -1.5], requires_grad=True)

        def hook(g):
            r = g * w  # w requires grad: recorded only if grad mode is on
            seen.append((t.is_grad_enabled(), r.requires_grad))
            return g * 2.0

        x = t.tensor([1.0, 2.0], requires_grad=True)
        h = x * x
        h.register_hook(hook)
        x.register_hook(lambda g: seen.append(("leaf", t.is_grad_enabled())))
        h.retain_grad()
        (h * w).sum().backward()
        h2 = x * x
        h2.register_hook(hook)
        gx, = t.autograd.grad((h2 * w).sum(), x)
        h3 = x * x
        h3.register_hook(hook)
        gx3, = t.autograd.grad((h3 * w).sum(), x, create_graph=True)
        return seen, x.grad, h.grad, gx, gx3.detach(), t.is_grad_enabled()

    hand_grad = [2.0 * 0.5 * 2.0 * 1.0, 2.0 * -1.5 * 2.0 * 2.0]  # the hook doubles w; h.grad
    # (retain_grad) sees the hooked gradient, 2w
    check(oracle, prog, ([(False, False), ("leaf", False), (False, False), ("leaf", False),
                          (True, True), ("leaf", True)],
                         hand_grad, [1.0, -3.0], hand_grad, hand_grad, True))
