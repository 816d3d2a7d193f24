"""``tapegrad.autograd``: backward, grad and the grad-mode switches."""
from __future__ import annotations

import numpy as np

from .. import _dtype as D
from .. import _engine as E
from .._tensor import Tensor, _val
from .function import Function, FunctionCtx, once_differentiable
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "Function", "FunctionCtx", "once_differentiable", "functional", "gradcheck",
           "gradgradcheck"]


_F64 = D.float64
_ONE = np.ones(1)


def _as_tuple(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _seeds(outputs, grad_outputs, what="grad"):
    seeds = []
    for i, out in enumerate(outputs):
        g = None if grad_outputs is None else grad_outputs[i]
        if g is None:
            if out._v is not None and out._dt is _F64:  # a fast-path scalar, as usual
                seeds.append(_ONE.copy())  # fresh: a leaf's .grad may take it (np.ones: ~0.8 us)
                continue
            if out.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if not out.dtype.is_floating_point:
                raise RuntimeError("grad can be implicitly created only for real scalar outputs "
                                   f"but got {out.dtype}")
            seeds.append(_ONE.copy())
            continue
        if not isinstance(g, Tensor):
            g = Tensor.__new__(Tensor, g) if not isinstance(g, (int, float)) else None
            if g is None:
                raise TypeError("gradient must be a Tensor")
        if g.shape != out.shape:
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                               f"output[{i}] has a shape of {out.shape}.")
        seeds.append(np.array(_val(g), dtype=np.float64).reshape(-1))  # a copy: .grad may keep it
    return seeds


def _check_outputs(outputs):
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a "
                               "grad_fn")


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             grad_variables=None, inputs=None) -> None:
    """Accumulate into ``.grad`` of the leaves the gradient of ``tensors``."""
    tensors = _as_tuple(tensors)
    grad_tensors = _as_tuple(grad_tensors if grad_tensors is not None else grad_variables)
    if grad_tensors is not None and len(grad_tensors) != len(tensors):
        raise RuntimeError("grad can be implicitly created only for scalar outputs"
                           if not grad_tensors else
                           f"got {len(grad_tensors)} tensors and {len(tensors)} gradients")
    _check_outputs(tensors)
    seeds = _seeds(tensors, grad_tensors)
    inputs = _as_tuple(inputs)
    if create_graph:
        _backward_graph(tensors, grad_tensors, seeds, retain_graph, inputs)
        return
    if inputs is None:
        E.run_backward(tensors, seeds, retain_graph, on_leaf=_accumulate)
        return
    capture = {id(t): [t, None] for t in inputs}
    E.run_backward(tensors, seeds, retain_graph, capture=capture)
    for t, g in capture.values():
        if g is not None:
            t._accumulate_grad(g)


def _accumulate(t, g):
    t._accumulate_grad(g)


def _backward_graph(tensors, grad_tensors, seeds, retain_graph, inputs):
    """backward(create_graph=True): .grad becomes a tensor with history (see ``_higher``)."""
    from .. import _higher as H
    H.warn_cycle()
    retain = True if retain_graph is None else retain_graph
    seeds = H.seeds(tensors, grad_tensors, seeds)
    if inputs is None:
        H.run_backward(tensors, seeds, retain, on_leaf=H.accumulate)
        return
    capture = {id(t): [t, None] for t in inputs}
    H.run_backward(tensors, seeds, retain, capture=capture)
    for t, g in capture.values():
        if g is not None:
            H.accumulate(t, g)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``."""
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grad_outputs = _as_tuple(grad_outputs)
    if grad_outputs is not None and len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one gradient per output: got {len(grad_outputs)} "
                           f"gradients and {len(outputs)} outputs")
    _check_outputs(outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    allow_unused = materialize_grads if allow_unused is None else allow_unused
    capture = {id(t): [t, None] for t in inputs}
    seeds = _seeds(outputs, grad_outputs)
    if create_graph:
        from .. import _higher as H
        H.run_backward(outputs, H.seeds(outputs, grad_outputs, seeds),
                       True if retain_graph is None else retain_graph, capture=capture)
    else:
        E.run_backward(outputs, seeds, retain_graph, capture=capture)
    result = []
    for i, t in enumerate(inputs):
        g = capture[id(t)][1]
        if g is None:
            if materialize_grads:
                from .._tensor import zeros_like
                result.append(zeros_like(t))
                continue
            if not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have "
                                   "been used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
            result.append(None)
            continue
        if create_graph:
            from .._higher import shaped
            result.append(shaped(g, t))
            continue
        from .._tensor import _leaf, _out
        result.append(_leaf(_out(g.reshape(t.shape), t.dtype), t.dtype))
    return tuple(result)


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **unused) -> bool:
    """``torch.autograd.gradcheck``: func's vector-Jacobian products against central
    differences (``tapegrad.testing.gradcheck``); True, or GradcheckError (a RuntimeError, as
    PyTorch's) unless ``raise_exception=False``.  PyTorch's other options (fast mode, sparse,
    batched, forward AD checks) are accepted and ignored."""
    from ..testing import gradcheck as check
    return check(func, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, **unused) -> bool:
    """``torch.autograd.gradgradcheck``: the gradient of func's vector-Jacobian product (made
    with ``create_graph=True``) against central differences, with respect to the inputs and
    to ``grad_outputs`` (random normal ones, fixed seed, when not given)."""
    from ..testing import gradcheck as check
    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        from .._tensor import tensor
        rng = np.random.default_rng(0)
        grad_outputs = tuple(
            tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype, requires_grad=True)
            for o in _as_tuple(func(*inputs)) if o.requires_grad)
    grad_outputs = _as_tuple(grad_outputs)
    n = len(inputs)

    def vjp(*args):
        ins = args[:n]
        outs = tuple(o for o in _as_tuple(func(*ins)) if o.requires_grad)
        wrt = tuple(t for t in ins if isinstance(t, Tensor) and t.requires_grad)
        gs = grad(outs, wrt, args[n:], create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return check(vjp, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                 raise_exception=raise_exception)


from . import functional  # noqa: E402  (uses grad, defined above)
from .anomaly_mode import (  # noqa: E402
    Variable,
    detect_anomaly,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    set_anomaly_enabled,
    set_detect_anomaly,
)

__all__ += ["Variable", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
            "is_anomaly_check_nan_enabled", "set_anomaly_enabled"]
