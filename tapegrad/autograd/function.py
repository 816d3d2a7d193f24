"""Custom differentiable operations: ``tapegrad.autograd.Function``.

``apply`` runs ``forward`` under no_grad and records one PYFUNC record (its
input records in the aux table) and one PYFUNC_OUT record per output.  When
the compiled sweep reaches the PYFUNC record it stops and returns to Python;
the run function registered here calls ``backward`` with the outputs'
gradients and gives the sweep the inputs' gradients; the sweep resumes.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import _engine as E
from .. import _tape as T
from .._tensor import Tensor, _leaf, _out, _ref, _val, _val64, zeros
from .grad_mode import is_grad_enabled, no_grad


class FunctionCtx:
    """The ``ctx`` a Function's forward and backward share."""

    def __init__(self):
        self._saved: tuple = ()
        self._versions: tuple = ()
        self._nodes: tuple = ()  # each saved tensor's grad_fn name when saved (version errors)
        self.needs_input_grad: tuple = ()
        self.materialize_grads = True
        self._non_differentiable: set = set()

    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors
        self._versions = tuple(t._version if isinstance(t, Tensor) else None for t in tensors)
        self._nodes = tuple(t.grad_fn.name() if isinstance(t, Tensor) and t.grad_fn is not None
                            else None for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        """The saved tensors, as PyTorch unpacks them: a tensor written in place since it was
        saved raises PyTorch's version error (its values are no longer the forward's)."""
        for t, version, node in zip(self._saved, self._versions, self._nodes):
            if version is not None and t._version != version:
                x = t._x
                if x is not None and x.base is not None:
                    node = "AsStridedBackward0"  # (PyTorch regenerates a written view)
                raise RuntimeError(E.modified_message(t.dtype, t.shape, node, t._version,
                                                      version))
        return self._saved

    def mark_non_differentiable(self, *args) -> None:
        self._non_differentiable.update(id(a) for a in args)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)

    def mark_dirty(self, *args) -> None:
        pass


class Function:
    """Subclass with ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` staticmethods;
    call ``YourFunction.apply(*args)``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your "
                                  "custom autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        name = getattr(cls, "_node_name", None) or cls.__name__ + "Backward"
        if E.state.tracing is not None:
            E.state.tracing.refuse(f"{name} (a node whose backward is Python: a custom "
                                   "autograd.Function, or tapegrad's nansum, nan_to_num or "
                                   "division with rounding)")
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        if not (is_grad_enabled() and any(ctx.needs_input_grad)):
            return outputs
        single = not isinstance(outputs, tuple)
        outs = list((outputs,) if single else outputs)
        seg = E.current()
        in_recs = [_ref(seg, a) if need else -1 for a, need in zip(args, ctx.needs_input_grad)]
        node = seg.record(T.PYFUNC, -1, -1, 0.0, 0.0, seg.add_aux([len(args), *in_recs]))
        seg.names[node] = name  # (anomaly mode names the Function's node: _engine._NanCheck)
        meta = []
        for j, o in enumerate(outs):
            if not (isinstance(o, Tensor) and o.dtype.is_floating_point) or \
                    id(o) in ctx._non_differentiable:
                meta.append(None)
                continue
            if any(o is a for a in args) or o._seg is not None:
                o = outs[j] = o.detach()  # a returned input: a new tensor on the same storage
            r = seg.record(T.PYFUNC_OUT, node, -1, float(j), _val64(o))
            o._seg, o._rec, o._rg = seg, r, True
            seg.names[r] = name
            seg.edges[r] = tuple(rec for rec, a in zip(in_recs, args) if isinstance(a, Tensor))
            meta.append((o.shape, o.dtype))
        if ctx._saved:  # a saved output is this node's output 0 to PyTorch's version error
            ctx._nodes = tuple(name if any(t is o for o in outs) else n
                               for t, n in zip(ctx._saved, ctx._nodes))
        seg.callbacks[node] = functools.partial(_run_backward, cls, ctx, args, in_recs, meta, name)
        return outs[0] if single else tuple(outs)


def _run_backward(cls, ctx, args, in_recs, meta, name, grads):
    """Call cls.backward with the outputs' gradients; yield (input record, flat gradient)."""
    grad_outputs = []
    for j, m in enumerate(meta):
        if m is None:
            grad_outputs.append(None)
        elif j in grads:
            grad_outputs.append(_leaf(_out(grads[j].reshape(m[0]), m[1]), m[1]))
        else:
            grad_outputs.append(zeros(m[0], dtype=m[1]) if ctx.materialize_grads else None)
    with no_grad():
        result = cls.backward(ctx, *grad_outputs)
    if not isinstance(result, tuple):
        result = (result,)
    out = []
    for i, rec, g, a in checked_gradients(name, result, args, in_recs):
        gv = np.asarray(_val(g), dtype=np.float64)
        if gv.shape != tuple(a.shape):
            lead, axes = sum_axes(gv.shape, tuple(a.shape), name, i)
            gv = gv.sum(axis=lead) if lead else gv
            gv = gv.sum(axis=axes, keepdims=True) if axes else gv
        out.append((rec, gv.reshape(-1)))
    return out


def checked_gradients(name, result, args, in_recs):
    """The gradients a Function's backward returned, checked as PyTorch checks them:
    (position, input record, gradient, input) for each one that reaches a recorded input.
    Shared by the compiled sweep's callback and the create_graph pass (_higher)."""
    if len(result) != len(args):
        raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                           f"(expected {len(args)}, got {len(result)})")
    for i, (rec, g, a) in enumerate(zip(in_recs, result, args)):
        if rec < 0 or g is None:
            continue
        if not isinstance(g, Tensor):
            raise TypeError(f"function {name} returned a gradient different than None at "
                            f"position {i + 1}, but the corresponding forward input was not a "
                            "Variable")
        yield i, rec, g, a


def sum_axes(gshape, shape, name, i):
    """PyTorch accepts a gradient that broadcasts to the input's shape and sums it back:
    the leading dims and the size-1 dims (kept) to sum over, or PyTorch's error."""
    gshape = tuple(gshape)
    try:
        if np.broadcast_shapes(shape, gshape) != gshape:
            raise ValueError
    except ValueError:
        raise RuntimeError(f"Function {name} returned an invalid gradient at index {i} - got "
                           f"{list(gshape)} but expected shape compatible with "
                           f"{list(shape)}") from None
    lead = len(gshape) - len(shape)
    axes = tuple(d for d, s in enumerate(shape) if s == 1 and gshape[lead + d] != 1)
    return tuple(range(lead)), axes


def once_differentiable(fn):
    """tapegrad's backward functions never build graphs; this only keeps PyTorch code running."""
    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            return fn(ctx, *args)
    return wrapper
