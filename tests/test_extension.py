"""Custom autograd.Function, tensor hooks and backward(inputs=), against PyTorch.

Each program runs with ``t`` bound to tapegrad and, when installed, to torch; results must
agree.  Without torch the hand-derived expectations still run.
"""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad

try:
    import torch
except ImportError:  # the hand-derived checks still run
    torch = None

LIBS = [tapegrad] + ([torch] if torch is not None else [])


def _np(x):
    return None if x is None else np.asarray(x.detach().numpy(), dtype=np.float64)


def _both(prog):
    """prog(t) on every library; results (lists of arrays/values) must agree."""
    results = [prog(t) for t in LIBS]
    for other in results[1:]:
        assert len(other) == len(results[0])
        for a, b in zip(results[0], other):
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
            else:
                assert a == b
    return results[0]


def _functions(t):
    class MyExp(t.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            y = x.exp() * k
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y, None

    class Split(t.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    return MyExp, Split


def test_function_single_and_multiple_outputs():
    def prog(t):
        MyExp, Split = _functions(t)
        x = t.tensor([0.5, -1.0, 2.0], dtype=t.float64, requires_grad=True)
        y = MyExp.apply(x * x, 3.0)
        a, b = Split.apply(y.sin())
        (a * b).sum().add(y.sum()).backward()
        nf = [type(n[0]).__name__ for n in y.grad_fn.next_functions]
        return [_np(x.grad), type(y.grad_fn).__name__, nf, type(a.grad_fn).__name__]

    out = _both(prog)
    x = np.array([0.5, -1.0, 2.0])
    y = 3 * np.exp(x * x)
    # d/dx of 6 sin(y)^2 + y, with dy/dx = 2 x y
    expected = (12 * np.sin(y) * np.cos(y) + 1) * 2 * x * y
    np.testing.assert_allclose(out[0], expected, rtol=1e-12)
    assert out[1] == "MyExpBackward" and out[2] == ["MulBackward0"]


def test_function_only_one_output_used_gets_zeros_for_the_other():
    def prog(t):
        _, Split = _functions(t)
        x = t.tensor([1.0, 2.0], dtype=t.float64, requires_grad=True)
        a, _b = Split.apply(x)
        a.sum().backward()
        return [_np(x.grad)]

    np.testing.assert_allclose(_both(prog)[0], [2.0, 2.0])


def test_function_needs_input_grad_and_no_graph_when_no_input_requires_grad():
    seen = {}

    def prog(t):
        class Probe(t.autograd.Function):
            @staticmethod
            def forward(ctx, x, w):
                seen.setdefault(t.__name__, []).append(ctx.needs_input_grad)
                return x * w

            @staticmethod
            def backward(ctx, g):
                return None, g

        x = t.tensor([1.0, 2.0], dtype=t.float64)
        w = t.tensor([3.0, 4.0], dtype=t.float64, requires_grad=True)
        y = Probe.apply(x, w)
        y.sum().backward()
        z = Probe.apply(x, x)
        return [_np(w.grad), z.requires_grad, z.grad_fn is None]

    out = _both(prog)
    assert out[1:] == [False, True]
    assert seen["tapegrad"] == [(False, True), (False, False)]


def test_function_mark_non_differentiable_and_broadcast_gradient():
    def prog(t):
        class ArgAndVal(t.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                idx = (x > 0).to(t.float64)
                ctx.mark_non_differentiable(idx)
                return x * 2, idx

            @staticmethod
            def backward(ctx, g, gidx):
                return g.sum(0, keepdim=True).expand(3, 2) * 2  # same shape: fine

        class Bcast(t.autograd.Function):
            @staticmethod
            def forward(ctx, b):
                return b * 1

            @staticmethod
            def backward(ctx, g):
                return g.expand(4, 2)  # broadcast gradient: summed back to b's shape

        x = t.tensor([[1.0, -2.0], [3.0, 4.0], [-5.0, 6.0]], dtype=t.float64, requires_grad=True)
        v, idx = ArgAndVal.apply(x)
        v.sum().backward()
        b = t.tensor([[1.0, 2.0]], dtype=t.float64, requires_grad=True)
        Bcast.apply(b).sum().backward()
        return [_np(x.grad), idx.requires_grad, _np(b.grad)]

    out = _both(prog)
    np.testing.assert_allclose(out[0], np.full((3, 2), 6.0))
    assert out[1] is False
    np.testing.assert_allclose(out[2], [[4.0, 4.0]])


def test_function_errors():
    for t in LIBS:
        class TooFew(t.autograd.Function):
            @staticmethod
            def forward(ctx, x, y):
                return x * y

            @staticmethod
            def backward(ctx, g):
                return g

        class BadShape(t.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 1

            @staticmethod
            def backward(ctx, g):
                return g[:1]

        x = t.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="returned an incorrect number of gradients "
                                               r"\(expected 2, got 1\)"):
            TooFew.apply(x, x).sum().backward()
        with pytest.raises(RuntimeError, match=r"returned an invalid gradient at index 0 - got "
                                               r"\[1\] but expected shape compatible with \[2\]"):
            BadShape.apply(x).sum().backward()


def test_once_differentiable_runs():
    def prog(t):
        class Sq(t.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @t.autograd.function.once_differentiable
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        x = t.tensor([1.5, -0.5], dtype=t.float64, requires_grad=True)
        Sq.apply(x).sum().backward()
        return [_np(x.grad)]

    np.testing.assert_allclose(_both(prog)[0], [3.0, -1.0])


# ------------------------------------------------------------------ hooks

def test_hooks_replace_gradients_on_non_leaf_and_leaf():
    seen = []

    def prog(t):
        x = t.tensor([1.0, 2.0, 3.0], dtype=t.float64, requires_grad=True)
        y = x * 2
        y.register_hook(lambda g: g * 10)
        x.register_hook(lambda g: seen.append(_np(g)))
        (y * y).sum().backward()
        return [_np(x.grad)]

    out = _both(prog)
    np.testing.assert_allclose(out[0], [80.0, 160.0, 240.0])
    np.testing.assert_allclose(seen[0], [80.0, 160.0, 240.0])


def test_hook_handle_remove_and_retain_grad_sees_hooked_value():
    def prog(t):
        x = t.tensor([1.0, -1.0], dtype=t.float64, requires_grad=True)
        y = x * 3
        y.retain_grad()
        h = y.register_hook(lambda g: g + 1)
        (y * 2).sum().backward(retain_graph=True)
        first = [_np(x.grad), _np(y.grad)]
        h.remove()
        x.grad = None
        y.grad = None
        (y * 2).sum().backward()
        return first + [_np(x.grad), _np(y.grad)]

    out = _both(prog)
    np.testing.assert_allclose(out[0], [9.0, 9.0])
    np.testing.assert_allclose(out[2], [6.0, 6.0])


def test_hooks_run_in_autograd_grad_and_on_scalars():
    def prog(t):
        a = t.tensor(0.5, dtype=t.float64, requires_grad=True)
        b = a * a
        b.register_hook(lambda g: g * 4)
        c = b.sin() + a
        (ga,) = t.autograd.grad(c, a)
        return [_np(ga), a.grad is None]

    out = _both(prog)
    np.testing.assert_allclose(out[0], 4 * np.cos(0.25) * 2 * 0.5 + 1)
    assert out[1] is True


def test_hook_requires_grad():
    for t in LIBS:
        with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't "
                                               "require gradient"):
            t.ones(2).register_hook(lambda g: g)


def test_backward_inputs_accumulates_only_into_inputs():
    def prog(t):
        x = t.tensor([1.0, 2.0], dtype=t.float64, requires_grad=True)
        w = t.tensor([3.0, 4.0], dtype=t.float64, requires_grad=True)
        (x * w).sum().backward(inputs=[w])
        return [x.grad is None, _np(w.grad)]

    out = _both(prog)
    assert out[0] is True
    np.testing.assert_allclose(out[1], [1.0, 2.0])


# ------------------------------------------------------------------ the package surface

def test_tensor_subclass_keeps_its_type_and_records():
    class MyTensor(tapegrad.Tensor):
        pass

    t = MyTensor([1.0, 2.0])
    assert type(t) is MyTensor
    w = tapegrad.tensor([3.0, 4.0], requires_grad=True)
    (t * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])


def test_nn_and_optim_reachable_after_import_as_torch():
    import tapegrad as torch_like

    assert torch_like.optim.SGD is not None
    assert torch_like.nn.functional.relu is not None


def test_scalar_elements_follow_writes_to_their_base():
    """Elements taken from a tensor (the 0-d fast path) are views: after the base is written
    under no_grad they show, and differentiate through, the new values (PyTorch's views)."""

    def prog(t):
        w = t.tensor([1.0, 2.0, 3.0], dtype=t.float64, requires_grad=True)
        a = t.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=t.float64, requires_grad=True)
        e = w[1]
        f = a[1][0]
        with t.no_grad():
            w.add_(10)
            a.mul_(2)
        seen = [float(e.detach()), float(f.detach())]
        y = e * w[0] + f
        y.backward()
        return [np.array(seen), _np(y), _np(w.grad), _np(a.grad)]

    out = _both(prog)
    np.testing.assert_allclose(out[0], [12.0, 6.0])
    np.testing.assert_allclose(out[2], [12.0, 11.0, 0.0])
    np.testing.assert_allclose(out[3], [[0.0, 0.0], [1.0, 0.0]])

    def prog_no_detach(t):  # the element is used before anything makes it array-backed
        w = t.tensor([1.0, 2.0], dtype=t.float64, requires_grad=True)
        e = w[0]
        with t.no_grad():
            w.mul_(3)
        (e * e).backward()
        return [_np(w.grad)]

    np.testing.assert_allclose(_both(prog_no_detach)[0], [6.0, 0.0])


def _saved_then_written(L, case):
    class Mul(L.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * w

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g * w, g * x

    class Exp(L.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    x = L.tensor([1.0, 2.0, 3.0], dtype=L.float64, requires_grad=True)
    w = L.ones(3, dtype=L.float64)
    if case == "input with history":
        y = x * 1.0
        z = Mul.apply(y, w)
        y.mul_(2.0)
    elif case == "constant input":
        z = Mul.apply(x, w)
        w.add_(1.0)
    elif case == "output":
        z = Exp.apply(x)
        z.mul_(2.0)
    elif case == "view of an input":
        y = x * 1.0
        z = Mul.apply(y[1:], w[1:])
        y.mul_(2.0)
    else:  # written after the backward: no error
        z = Mul.apply(x, w)
        z.sum().backward()
        w.add_(1.0)
        return x.grad.tolist()
    with pytest.raises(RuntimeError) as info:
        z.sum().backward()
    return str(info.value)


@pytest.mark.parametrize("case,middle", [
    ("input with history", "[torch.DoubleTensor [3]], which is output 0 of Mul, is at version 1"),
    ("constant input", "[torch.DoubleTensor [3]] is at version 1"),
    ("output", "[torch.DoubleTensor [3]], which is output 0 of Exp, is at version 1"),
    ("view of an input",
     "[torch.DoubleTensor [2]], which is output 0 of AsStrided, is at version 1"),
    ("written after the backward", None)])
def test_function_saved_tensor_written_in_place(case, middle):
    # PyTorch's saved tensors check their version when unpacked: the backward read the new
    # values (a wrong gradient, silently)
    libs = [tapegrad]
    try:
        import torch
        libs.append(torch)
    except ImportError:
        pass
    for L in libs:
        got = _saved_then_written(L, case)
        if middle is None:
            assert got == [1.0, 1.0, 1.0]
        else:
            assert got == ("one of the variables needed for gradient computation has been "
                           f"modified by an inplace operation: {middle}; expected version 0 "
                           "instead. Hint: enable anomaly detection to find the operation that "
                           "failed to compute its gradient, with "
                           "torch.autograd.set_detect_anomaly(True, check_nan=False).")
