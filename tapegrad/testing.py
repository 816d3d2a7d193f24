"""Gradient checkers shipped with tapegrad.

``gradcheck`` compares the tape's vector-Jacobian products with central
differences in float64.  ``compare_with_torch`` runs the same function on
tapegrad and on PyTorch (when installed) and compares values and gradients.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import _tensor
from .autograd import grad as _grad


class GradcheckError(RuntimeError, AssertionError):
    """A Jacobian mismatch: a RuntimeError, as PyTorch's (and an AssertionError, for tests)."""


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def numerical_jacobian(fn: Callable, inputs: Sequence, eps: float = 1e-6):
    """d out_flat / d in_flat by central differences, one matrix per input."""
    inputs = _tuple(inputs)
    base = [np.array(t.detach().numpy(), dtype=np.float64) for t in inputs]

    def run(values):
        ts = [_tensor.tensor(v, dtype=t.dtype, requires_grad=t.requires_grad)
              for v, t in zip(values, inputs)]  # (a function may differentiate inside)
        return np.concatenate([np.asarray(o.detach().numpy(), dtype=np.float64).reshape(-1)
                               for o in _tuple(fn(*ts))])

    out0 = run(base)
    jac = []
    for i, b in enumerate(base):
        J = np.zeros((out0.size, b.size))
        flat = b.reshape(-1)
        for k in range(flat.size):
            plus = [v.copy() for v in base]
            minus = [v.copy() for v in base]
            plus[i].reshape(-1)[k] += eps
            minus[i].reshape(-1)[k] -= eps
            J[:, k] = (run(plus) - run(minus)) / (2 * eps)
        jac.append(J)
    return jac


def analytical_jacobian(fn: Callable, inputs: Sequence):
    """The tape's Jacobian, one reverse sweep per output element."""
    inputs = _tuple(inputs)
    outs = _tuple(fn(*inputs))
    sizes = [o.numel() for o in outs]
    total = sum(sizes)
    jac = [np.zeros((total, t.numel())) for t in inputs]
    row = 0
    for j in range(len(outs)):
        for k in range(sizes[j]):
            seeds = []
            for jj, oo in enumerate(outs):
                s = np.zeros(oo.numel())
                if jj == j:
                    s[k] = 1.0
                seeds.append(_tensor.tensor(s.reshape(oo.shape), dtype=oo.dtype))
            gs = _grad(outs, inputs, seeds, retain_graph=True, allow_unused=True)
            for i, g in enumerate(gs):
                if g is not None:
                    jac[i][row] = np.asarray(g.numpy(), dtype=np.float64).reshape(-1)
            row += 1
    return jac


def gradcheck(fn: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Check fn's gradients against central differences (inputs should be float64)."""
    inputs = _tuple(inputs)
    for t in inputs:
        if t.requires_grad and t.dtype.name != "float64":
            import warnings
            warnings.warn("Input is not a double precision floating point tensor; gradcheck "
                          "may fail", UserWarning, stacklevel=2)
    num = numerical_jacobian(fn, inputs, eps)
    ana = analytical_jacobian(fn, inputs)
    for i, (n, a) in enumerate(zip(num, ana)):
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            if raise_exception:
                raise GradcheckError(
                    f"Jacobian mismatch for output with respect to input {i},\n"
                    f"numerical:{n}\nanalytical:{a}\n")
            return False
    return True


def compare_with_torch(fn: Callable, *arrays: np.ndarray, dtype: str = "float64",
                       grad_seed: int = 0, rtol: float | None = None,
                       atol: float | None = None) -> bool:
    """Run ``fn(torch_module, *tensors)`` on tapegrad and PyTorch and compare.

    Values and the gradients of ``(out * r).sum()`` for a random ``r`` must
    agree.  Returns False (and does nothing) when PyTorch is not installed.
    """
    try:
        import torch
    except ImportError:
        return False
    import tapegrad

    if rtol is None:
        rtol = 1e-9 if dtype == "float64" else 2e-5
    if atol is None:
        atol = 1e-10 if dtype == "float64" else 1e-5
    ours = [tapegrad.tensor(a, dtype=getattr(tapegrad, dtype), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in arrays]
    out_o = fn(tapegrad, *ours)
    out_t = fn(torch, *theirs)
    vo = out_o.detach().numpy()
    vt = out_t.detach().numpy()
    np.testing.assert_allclose(vo, vt, rtol=rtol, atol=atol, err_msg="forward values differ")
    rng = np.random.default_rng(grad_seed)
    r = rng.standard_normal(vt.shape)
    (out_o * tapegrad.tensor(r, dtype=out_o.dtype)).sum().backward()
    (out_t * torch.tensor(r, dtype=out_t.dtype)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        ga = None if a.grad is None else a.grad.numpy()
        gb = None if b.grad is None else b.grad.numpy()
        if ga is None or gb is None:
            assert ga is None and gb is None, f"input {i}: gradient presence differs"
            continue
        np.testing.assert_allclose(ga, gb, rtol=rtol * 10, atol=atol * 10,
                                   err_msg=f"gradient of input {i} differs")
    return True
