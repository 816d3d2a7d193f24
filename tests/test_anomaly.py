"""Anomaly mode: backward checks each node's gradients for nan and raises PyTorch's error at the
first node that makes one; the version error's hint changes as PyTorch's does.  Each case runs
on tapegrad and, when it is installed, on PyTorch, and the two must agree."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tapegrad

try:
    import torch
except ImportError:  # pragma: no cover - PyTorch is the test oracle when present
    torch = None

LIBS = [tapegrad] + ([torch] if torch is not None else [])
NAN, INF = float("nan"), float("inf")


def _tensor(lib, values, grad=True):
    return lib.tensor(values, dtype=lib.float64, requires_grad=grad)


def div_self(lib):
    x = _tensor(lib, [0.0, 1.0])
    return (x / x).sum(), [x]


def broadcast_inf(lib):  # inf - inf when the broadcast gradient is summed: the product's
    w = _tensor(lib, 1.0)
    a = _tensor(lib, [INF, -INF], grad=False)
    return (w * a).sum(), [w]


def log_negative(lib):
    x = _tensor(lib, [-1.0, 2.0])
    return (x.log() * x).sum(), [x]


def matmul_nan(lib):
    x = _tensor(lib, [[1.0, 2.0], [3.0, NAN]])
    w = _tensor(lib, [[1.0, 0.5], [0.0, 1.0]])
    return (x @ w).relu().sum(), [x, w]


def pow_half(lib):
    x = _tensor(lib, [-1.0, 2.0, 3.0])
    y = lib.cat([x[:1], x[1:] * 2]).tanh().sum() + x.pow(0.5).sum()
    return y, [x]


def scalar_div(lib):
    x = _tensor(lib, 0.0)
    y = x * 3.0
    return y / y + x, [x]


def function_nan(lib):
    class Scale(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g, g * NAN

    a = _tensor(lib, [1.0, 2.0])
    b = _tensor(lib, [1.0, 2.0])
    return (Scale.apply(a, b) * 2).sum(), [a, b]


RAISES = [
    (div_self, "DivBackward0", 1),
    (broadcast_inf, "MulBackward0", 0),
    (log_negative, "MulBackward0", 1),
    (matmul_nan, "MmBackward0", 1),
    (pow_half, "PowBackward0", 0),
    (scalar_div, "DivBackward0", 1),
    (function_nan, "ScaleBackward", 1),
]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("case, node, k", RAISES, ids=[c[0].__name__ for c in RAISES])
def test_nan_names_the_node_and_output(lib, case, node, k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with lib.autograd.detect_anomaly():
            y, inputs = case(lib)
            with pytest.warns(UserWarning, match=f"Error detected in {node}"):
                with pytest.raises(RuntimeError) as info:
                    y.backward()
    assert str(info.value) == f"Function '{node}' returned nan values in its {k}th output."


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("case", [c[0] for c in RAISES], ids=[c[0].__name__ for c in RAISES])
def test_autograd_grad_and_set_detect_anomaly_check_too(lib, case):
    y, inputs = case(lib)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with lib.autograd.set_detect_anomaly(True):
            with pytest.raises(RuntimeError, match="returned nan values"):
                lib.autograd.grad(y, inputs, allow_unused=True)
    assert not lib.is_anomaly_enabled()


def _grads(lib, case, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mode(lib):
            y, inputs = case(lib)
            y.backward()
    return [np.asarray(t.grad.detach().numpy()) for t in inputs]


def _off(lib):
    return lib.autograd.set_detect_anomaly(False)


def _no_nan_check(lib):
    return lib.autograd.detect_anomaly(check_nan=False)


@pytest.mark.parametrize("case", [c[0] for c in RAISES], ids=[c[0].__name__ for c in RAISES])
def test_check_nan_false_and_off_give_the_nan_gradients(case):
    for mode in (_off, _no_nan_check):
        got = _grads(tapegrad, case, mode)
        if torch is not None:
            want = _grads(torch, case, mode)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=0, equal_nan=True)
        assert any(np.isnan(g).any() for g in got)


def clean_program(lib):
    x = _tensor(lib, [0.5, 2.0, 3.0])
    s = _tensor(lib, 0.7)
    y = lib.cat([x[:1], x[1:] * s]).tanh().sum() + (x @ x) * s + x.pow(0.5).sum() + s * s
    return y, [x, s]


@pytest.mark.parametrize("mode", [_off, lambda lib: lib.autograd.detect_anomaly()],
                         ids=["off", "on"])
def test_a_clean_backward_is_unchanged(mode):
    got = _grads(tapegrad, clean_program, mode)
    off = _grads(tapegrad, clean_program, _off)
    for g, w in zip(got, off):
        np.testing.assert_array_equal(g, w)
    if torch is not None:
        want = _grads(torch, clean_program, _off)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-13)
    # finite differences
    x0, s0 = np.array([0.5, 2.0, 3.0]), 0.7

    def f(x, s):
        return float(np.tanh(np.concatenate([x[:1], x[1:] * s])).sum() + (x @ x) * s
                     + np.sqrt(x).sum() + s * s)
    h = 1e-6
    fd = [np.array([(f(x0 + h * e, s0) - f(x0 - h * e, s0)) / (2 * h) for e in np.eye(3)]),
          np.array((f(x0, s0 + h) - f(x0, s0 - h)) / (2 * h))]
    for g, w in zip(got, fd):
        np.testing.assert_allclose(g, w, rtol=1e-7)


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_hooks_still_run_and_retain_graph_leaves_no_stops(lib):
    x = _tensor(lib, [1.0, 2.0])
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with lib.autograd.detect_anomaly():
            y = x * 3
            y.register_hook(lambda g: seen.append(g.tolist()) or g * 2)
            z = (y * y).sum()
            z.backward(retain_graph=True)
    z.backward()  # anomaly mode off: the sweep's stops are gone, the hook runs once more
    assert seen == [[6.0, 12.0], [6.0, 12.0]]
    assert x.grad.tolist() == [72.0, 144.0]


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_version_error_names_the_in_place_node_and_anomaly_changes_its_hint(lib):
    def run():
        x = _tensor(lib, [1.0, 2.0])
        y = x * 2
        z = y.sin()  # saves y
        y.add_(1)
        with pytest.raises(RuntimeError) as info:
            z.sum().backward()
        return str(info.value)

    head = ("one of the variables needed for gradient computation has been modified by an "
            "inplace operation: [torch.DoubleTensor [2]], which is output 0 of Add, is at "
            "version 1; expected version 0 instead. Hint: ")
    assert run() == head + (
        "enable anomaly detection to find the operation that failed to compute its gradient, "
        "with torch.autograd.set_detect_anomaly(True, check_nan=False).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with lib.autograd.set_detect_anomaly(True, check_nan=False):
            message = run()
    assert message == head + (
        "the backtrace further above shows the operation that failed to compute its gradient. "
        "The variable in question was changed in there or anywhere later. Good luck!")


def test_zero_adjoints_stay_zero_where_pytorch_makes_nan():
    """tapegrad skips zero incoming adjoints (docs/design.md, "The sweep"): log(x) * 0 at 0 has
    gradient 0 here, nan in PyTorch, so anomaly mode finds no nan to report here."""
    x = _tensor(tapegrad, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tapegrad.autograd.detect_anomaly():
            (x.log() * 0.0).backward()
    assert x.grad.item() == 0.0
    if torch is not None:
        xt = _tensor(torch, 0.0)
        (xt.log() * 0.0).backward()
        assert math.isnan(xt.grad.item())
