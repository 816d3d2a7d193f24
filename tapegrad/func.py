"""``tapegrad.func``: torch.func's composable autodiff transforms on top of ``autograd.grad``.

``grad``, ``grad_and_value`` (and JAX's ``value_and_grad``), ``vjp``, ``jvp``, ``jacrev``,
``jacfwd`` and ``hessian`` with torch.func's signatures, ``argnums``, ``has_aux``, pytrees of
tuples / lists / dicts, and torch.func's error messages.

There are no functorch "levels": each transform runs ``f`` on fresh tensors that require grad
and differentiates with ``autograd.grad``.  When the transform's result must stay
differentiable (it runs inside another transform, or an argument already requires grad), the
fresh tensors are views of the arguments and the gradients are taken with
``create_graph=True``: nesting is higher-order reverse mode on the tape.  Forward mode (``jvp``,
``jacfwd``) is the double-vjp trick: ``u -> J^T u`` is linear in ``u``, so the vjp of that vjp
with cotangent ``v`` is ``J v``; it needs ``create_graph=True``.  The outermost transform
returns tensors that do not require grad (unless an argument did).
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from . import _tensor
from .autograd import grad as _autograd_grad_raw
from .autograd.grad_mode import enable_grad, is_grad_enabled

__all__ = ["grad", "grad_and_value", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd",
           "hessian"]

Tensor = _tensor.Tensor

# --------------------------------------------------------------------------------------------
# Pytrees: tuples (and namedtuples), lists and dicts are nodes; everything else is a leaf.


class TreeSpec:
    """The structure of a pytree (torch.utils._pytree's printing)."""

    __slots__ = ("type", "context", "children")

    def __init__(self, type_, context, children):
        self.type = type_
        self.context = context
        self.children = children

    @property
    def num_leaves(self):
        return sum(c.num_leaves for c in self.children)

    def __eq__(self, other):
        return (isinstance(other, TreeSpec) and self.type is other.type
                and self.context == other.context and self.children == other.children)

    def __hash__(self):  # pragma: no cover - not used as a key
        return id(self)

    def __repr__(self, indent=0):
        text = f"TreeSpec({self.type.__name__}, {self.context}, ["
        if self.children:
            indent += 2
            text += self.children[0].__repr__(indent)
            text += "," if len(self.children) > 1 else ""
            text += ",".join("\n" + " " * indent + c.__repr__(indent)
                             for c in self.children[1:])
        return text + "])"


class LeafSpec(TreeSpec):
    def __init__(self):
        super().__init__(object, None, [])

    @property
    def num_leaves(self):
        return 1

    def __eq__(self, other):
        return isinstance(other, LeafSpec)

    def __hash__(self):  # pragma: no cover
        return 0

    def __repr__(self, indent=0):
        return "*"


_LEAF = LeafSpec()


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def tree_flatten(tree) -> tuple[list, TreeSpec]:
    leaves: list = []

    def go(x):
        if isinstance(x, (tuple, list)):
            ctx = type(x) if _is_namedtuple(x) else None
            return TreeSpec(type(x) if ctx is None else tuple, ctx, [go(c) for c in x])
        if isinstance(x, dict):
            keys = list(x.keys())
            return TreeSpec(dict, keys, [go(x[k]) for k in keys])
        leaves.append(x)
        return _LEAF

    return leaves, go(tree)


def tree_unflatten(leaves, spec: TreeSpec):
    it = iter(leaves)

    def go(s):
        if isinstance(s, LeafSpec):
            return next(it)
        kids = [go(c) for c in s.children]
        if s.type is dict:
            return dict(zip(s.context, kids))
        if s.context is not None:          # namedtuple
            return s.context(*kids)
        return s.type(kids)

    return go(spec)


def tree_map(fn, tree):
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(x) for x in leaves], spec)


class _Asterisk:
    def __repr__(self):
        return "*"


def treespec_pprint(spec: TreeSpec) -> str:
    return repr(tree_unflatten([_Asterisk()] * spec.num_leaves, spec))


# --------------------------------------------------------------------------------------------
# Nesting: a thread-local depth tells a transform that its result must stay differentiable.

_state = threading.local()


def _depth() -> int:
    return getattr(_state, "depth", 0)


class _nested:
    def __enter__(self):
        _state.depth = _depth() + 1
        self._grad = enable_grad()
        self._grad.__enter__()

    def __exit__(self, *exc):
        self._grad.__exit__(*exc)
        _state.depth -= 1
        return False


def _needs_graph(*trees) -> bool:
    """Whether results must stay differentiable: inside another transform, or an argument
    requires grad (ordinary autograd outside the transform)."""
    if not is_grad_enabled():
        return False
    if _depth() > 0:
        return True
    return any(isinstance(x, Tensor) and x.requires_grad
               for tree in trees for x in tree_flatten(tree)[0])


def _fresh(x, keep_graph: bool):
    """A tensor standing for ``x`` that requires grad, connected to ``x`` when ``keep_graph``."""
    if not isinstance(x, Tensor):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    if keep_graph and x.requires_grad:
        return x.view_as(x)
    return x.detach().requires_grad_()


def _unwrap(tree, keep_graph: bool):
    if keep_graph:
        return tree
    return tree_map(lambda x: x.detach() if isinstance(x, Tensor) else x, tree)


def _unwrap_aux(aux, keep_graph: bool):
    """torch.func's aux: a pytree of tensors."""
    def check(x):
        if not isinstance(x, Tensor):
            raise RuntimeError(f"Expected tensors, got unsupported type {type(x)}")
        return x

    return _unwrap(tree_map(check, aux), keep_graph)


def _grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
          materialize=True):
    """autograd.grad over the outputs that require grad; zeros (or None) for unused inputs."""
    if grad_outputs is None:
        pairs = [(o, None) for o in outputs if o.requires_grad]
    else:
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return tuple(_tensor.zeros_like(x) if materialize else None for x in inputs)
    outs = tuple(o for o, _ in pairs)
    gos = None if grad_outputs is None else tuple(g for _, g in pairs)
    res = _autograd_grad_raw(outs, tuple(inputs), gos, retain_graph=retain_graph,
                             create_graph=create_graph, allow_unused=True)
    if not materialize:
        return res
    return tuple(_tensor.zeros_like(x) if g is None else g for g, x in zip(res, inputs))


# --------------------------------------------------------------------------------------------
# argnums


def _validate_and_wrap_argnum(argnum, num_args):
    if not isinstance(argnum, int):
        raise RuntimeError(f"argnum must be int, got: {type(argnum)}")
    if 0 <= argnum < num_args:
        return argnum
    if -num_args <= argnum < 0:
        return argnum + num_args
    raise RuntimeError(f"Got argnum={argnum}, but only {num_args} positional inputs")


def _wrap_argnums(argnums, num_args):
    if not isinstance(argnums, (int, tuple)):
        raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    if isinstance(argnums, int):
        return _validate_and_wrap_argnum(argnums, num_args)
    argnums = tuple(_validate_and_wrap_argnum(a, num_args) for a in argnums)
    if len(argnums) == 0:
        raise RuntimeError("argnums must be non-empty")
    if len(set(argnums)) != len(argnums):
        raise RuntimeError(f"argnums elements must be unique, got {argnums}")
    return argnums


def _slice_argnums(args, argnums, as_tuple=True):
    argnums = _wrap_argnums(argnums, len(args))
    if isinstance(argnums, int):
        return (args[argnums],) if as_tuple else args[argnums]
    return tuple(args[i] for i in argnums)


def _replace_args(args, new, argnums):
    argnums = _wrap_argnums(argnums, len(args))
    if isinstance(argnums, int):
        return tuple(new if i == argnums else a for i, a in enumerate(args))
    return tuple(new[argnums.index(i)] if i in argnums else a for i, a in enumerate(args))


def _differentiable_args(args, argnums, keep_graph):
    """(args with the differentiated ones replaced by fresh tensors, their flat list, spec)."""
    if argnums is None:
        diff = args
    else:
        diff = _slice_argnums(args, argnums, as_tuple=False)
    flat, spec = tree_flatten(diff)
    fresh = [_fresh(x, keep_graph) for x in flat]
    new = tree_unflatten(fresh, spec)
    args = new if argnums is None else _replace_args(args, new, argnums)
    return args, fresh, spec


# --------------------------------------------------------------------------------------------
# grad, grad_and_value, value_and_grad


def _grad_and_value(func, argnums, has_aux, args, kwargs):
    keep = _needs_graph(args, kwargs)
    with _nested():
        args, flat_in, spec = _differentiable_args(args, argnums, keep)
        output = func(*args, **kwargs)
        aux = None
        if has_aux:
            if not (isinstance(output, tuple) and len(output) == 2):
                raise RuntimeError("grad_and_value(f)(*args): output of function f should be a "
                                   "tuple: (output, aux) if has_aux is True")
            output, aux = output
        if not isinstance(output, Tensor):
            raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a Tensor, "
                               f"got {type(output)}")
        if output.dim() != 0:
            raise RuntimeError("grad_and_value(f)(*args): Expected f(*args) to return a scalar "
                               f"Tensor, got tensor with {output.dim()} dims. Maybe you wanted "
                               "to use the vjp or jacrev APIs instead?")
        grads = _grad((output,), flat_in, create_graph=keep)
    grads = tree_unflatten(list(grads), spec)
    aux = _unwrap_aux(aux, keep) if has_aux else None
    return _unwrap(grads, keep), _unwrap(output, keep), aux


def grad_and_value(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``(grad, value)`` of a scalar function (``((grad, (value, aux))`` with ``has_aux``)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value, aux = _grad_and_value(func, argnums, has_aux, args, kwargs)
        return (g, (value, aux)) if has_aux else (g, value)

    return wrapper


def grad(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """The gradient of a scalar function w.r.t. the argument(s) ``argnums``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, _, aux = _grad_and_value(func, argnums, has_aux, args, kwargs)
        return (g, aux) if has_aux else g

    return wrapper


def value_and_grad(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """JAX's order: ``(value, grad)``, or ``((value, aux), grad)`` with ``has_aux``."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value, aux = _grad_and_value(func, argnums, has_aux, args, kwargs)
        return ((value, aux), g) if has_aux else (value, g)

    return wrapper


# --------------------------------------------------------------------------------------------
# vjp


def _assert_non_empty_tensor_output(output, api):
    if (len(output) == 1 and output[0] is None) or len(output) < 1:
        raise RuntimeError(f"{api}: Expected f to be a function that has non-empty output "
                           f"(got output = {output})")
    for o in output:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{api}: expected f(*primals) to return only tensors, got "
                               f"unsupported type {type(o)}")


def _vjp(func, primals, argnums, has_aux):
    keep = _needs_graph(primals)
    with _nested():
        args, flat_in, in_spec = _differentiable_args(primals, argnums, keep)
        out = func(*args)
        aux = None
        if has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise RuntimeError("vjp(f, *primals): output of function f should be a tuple: "
                                   "(output, aux) if has_aux is True")
            out, aux = out
        flat_out, out_spec = tree_flatten(out)
        _assert_non_empty_tensor_output(flat_out, "vjp(f, *primals)")
        for o in flat_out:
            if not o.dtype.is_floating_point:
                raise RuntimeError("vjp(f, ...): All outputs of f must be floating-point or "
                                   f"complex Tensors, got Tensor with dtype {o.dtype}")

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        flat_ct, ct_spec = tree_flatten(cotangents)
        if ct_spec != out_spec:
            raise RuntimeError("Expected pytree structure of cotangents to be the same as pytree "
                               "structure of outputs to the function. cotangents: "
                               f"{treespec_pprint(ct_spec)}, primal output: "
                               f"{treespec_pprint(out_spec)}")
        if create_graph is None:
            create_graph = keep or _needs_graph(cotangents)
        with enable_grad() if create_graph else _Null():
            res = _grad(flat_out, flat_in, flat_ct, retain_graph=retain_graph,
                        create_graph=create_graph)
        return tree_unflatten(list(res), in_spec)

    aux = _unwrap_aux(aux, keep) if has_aux else None
    return _unwrap(out, keep), vjp_fn, aux, (flat_out, out_spec, flat_in, keep)


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def vjp(func: Callable, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)`` (and ``aux``); ``vjp_fn(cotangents)`` returns one vjp per
    primal."""
    out, fn, aux, _ = _vjp(func, primals, None, has_aux)
    return (out, fn, aux) if has_aux else (out, fn)


def _one_hot(ref, k):
    e = _tensor.zeros(ref.numel(), dtype=ref.dtype)
    e[k] = 1.0
    return e.reshape(ref.shape)


def _assemble(rows, out_shape, in_shape, ref, by_column):
    """Stack per-element derivatives into a tensor of shape ``out_shape + in_shape``."""
    shape = tuple(out_shape) + tuple(in_shape)
    if not rows:
        return _tensor.zeros(shape, dtype=ref.dtype)
    if by_column:      # rows[k] has out_shape: derivative w.r.t. input element k
        return _tensor.stack(rows, dim=-1).reshape(shape)
    return _tensor.stack(rows, dim=0).reshape(shape)   # rows[k] has in_shape


def jacrev(func: Callable, argnums=0, *, has_aux: bool = False, chunk_size=None,
           _preallocate_and_copy: bool = False) -> Callable:
    """The Jacobian by reverse mode: one vjp per output element."""
    if not (chunk_size is None or chunk_size > 0):
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")

    @functools.wraps(func)
    def wrapper(*args):
        output, _, aux, (flat_out, out_spec, flat_in, keep) = _vjp(func, args, argnums, has_aux)
        primals = _slice_argnums(args, argnums)
        _, primals_spec = tree_flatten(primals)
        per_out = []
        live = [o for o in flat_out if o.requires_grad]
        last = (live[-1], live[-1].numel() - 1) if live else None
        with enable_grad() if keep else _Null():
            for o in flat_out:
                rows = [[] for _ in flat_in]
                if o.requires_grad:
                    for k in range(o.numel()):
                        g = _grad((o,), flat_in, (_one_hot(o, k),), create_graph=keep,
                                  retain_graph=keep or not (o is last[0] and k == last[1]))
                        for r, gi in zip(rows, g):
                            r.append(gi)
                per_in = []
                for r, x in zip(rows, flat_in):
                    if o.requires_grad:
                        per_in.append(_assemble(r, o.shape, x.shape, x, by_column=False))
                    else:
                        per_in.append(_tensor.zeros(tuple(o.shape) + tuple(x.shape),
                                                    dtype=x.dtype))
                per_out.append(per_in)
        per_out = [_unwrap(tree_unflatten(p, primals_spec), keep) for p in per_out]
        if isinstance(argnums, int):
            per_out = [p[0] for p in per_out]
        jac = tree_unflatten(per_out, out_spec)
        return (jac, aux) if has_aux else jac

    return wrapper


# --------------------------------------------------------------------------------------------
# Forward mode by double vjp


def _assert_non_empty_list_of_tensors(output, api, argname):
    if len(output) == 0:
        raise RuntimeError(f"{api}: Expected {argname} to contain at least one Tensor.")
    for out in output:
        if not isinstance(out, Tensor):
            raise RuntimeError(f"{api}: Expected {argname} to only contain Tensors, got "
                               f"{type(out)}")


_JVP = "jvp(f, primals, tangents)"


class _Linearized:
    """``f`` evaluated once at fresh inputs, with ``g(u) = J^T u`` built differentiably in
    ``u``; ``tangent(v)`` is then ``J v`` (one reverse sweep of ``g``)."""

    def __init__(self, func, primals, argnums, has_aux, keep):
        self.keep = keep
        with _nested():
            args, self.flat_in, self.in_spec = _differentiable_args(primals, argnums, keep)
            out = func(*args)
            self.aux = None
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError(f"{_JVP}: output of function f should be a tuple: "
                                       "(output, aux) if has_aux is True")
                out, self.aux = out
            self.flat_out, self.out_spec = tree_flatten(out)
            _assert_non_empty_tensor_output(self.flat_out, _JVP)
            self.live = [i for i, o in enumerate(self.flat_out) if o.requires_grad]
            self.us = [_tensor.zeros_like(self.flat_out[i], requires_grad=True)
                       for i in self.live]
            if self.live:
                gs = _grad([self.flat_out[i] for i in self.live], self.flat_in, self.us,
                           create_graph=True, materialize=False)
            else:
                gs = [None] * len(self.flat_in)
            # the input positions whose vjp depends on u
            self.gs = [(j, g) for j, g in enumerate(gs) if g is not None and g.requires_grad]
        self.out = out

    def tangents(self, flat_tangents, retain_graph):
        """``J v`` per flat output; None where the output does not depend on the inputs."""
        pairs = [(g, flat_tangents[j]) for j, g in self.gs if flat_tangents[j] is not None]
        result = [None] * len(self.flat_out)
        if not pairs or not self.us:
            return result
        with enable_grad() if self.keep else _Null():
            jv = _grad([g for g, _ in pairs], self.us, [t for _, t in pairs],
                       retain_graph=retain_graph or self.keep, create_graph=self.keep,
                       materialize=False)
        for i, t in zip(self.live, jv):
            result[i] = t
        return result


def _jvp(func, primals, tangents, argnums, strict, has_aux):
    if not isinstance(primals, tuple):
        raise RuntimeError(f"{_JVP}: Expected primals to be a tuple. E.g. it should be valid to "
                           "call f(*primals).")
    diff_args = primals if argnums is None else _slice_argnums(primals, argnums)
    flat_primals, primals_spec = tree_flatten(diff_args)
    flat_tangents, tangents_spec = tree_flatten(tangents)
    if primals_spec != tangents_spec:
        raise RuntimeError(f"{_JVP}: Expected primals and tangents to have the same python "
                           "structure. For example, if primals is a tuple of 3 tensors, "
                           "tangents also must be. Got primals with structure "
                           f"{primals_spec} and tangents with structure {tangents_spec}")
    _assert_non_empty_list_of_tensors(flat_primals, _JVP, "primals")
    _assert_non_empty_list_of_tensors(flat_tangents, _JVP, "tangents")
    keep = _needs_graph(primals, tangents)
    lin = _Linearized(func, primals, argnums, has_aux, keep)
    jv = lin.tangents(flat_tangents, retain_graph=False)
    outs = []
    for o, t in zip(lin.flat_out, jv):
        if t is None:
            if strict and not o.requires_grad:
                raise RuntimeError("jvp(f, primals, tangents, strict=True): The output of f is "
                                   "independent of the inputs. This is not allowed with "
                                   "strict=True.")
            t = _tensor.zeros_like(o)
        outs.append(t)
    primal_out = _unwrap(lin.out, keep)
    tangent_out = _unwrap(tree_unflatten(outs, lin.out_spec), keep)
    return primal_out, tangent_out, (_unwrap_aux(lin.aux, keep) if has_aux else None)


def jvp(func: Callable, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J @ tangents)`` (and ``aux``)."""
    out, t, aux = _jvp(func, primals, tangents, None, strict, has_aux)
    return (out, t, aux) if has_aux else (out, t)


def jacfwd(func: Callable, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian by forward mode: one jvp per input element (double-vjp trick)."""

    @functools.wraps(func)
    def wrapper(*args):
        primals = args if argnums is None else _slice_argnums(args, argnums)
        flat_primals, primals_spec = tree_flatten(primals)
        keep = _needs_graph(args)
        lin = _Linearized(func, args, argnums, has_aux, keep)
        n_in = len(lin.flat_in)
        cols = [[[] for _ in range(n_in)] for _ in lin.flat_out]
        total = sum(x.numel() for x in lin.flat_in)
        done = 0
        for j, x in enumerate(lin.flat_in):
            for k in range(x.numel()):
                done += 1
                tangents = [None] * n_in
                tangents[j] = _one_hot(x, k)
                jv = lin.tangents(tangents, retain_graph=done < total)
                for i, (o, t) in enumerate(zip(lin.flat_out, jv)):
                    cols[i][j].append(_tensor.zeros_like(o) if t is None else t)
        with enable_grad() if keep else _Null():
            per_out = []
            for i, o in enumerate(lin.flat_out):
                per_in = [_assemble(cols[i][j], o.shape, x.shape, x, by_column=True)
                          for j, x in enumerate(lin.flat_in)]
                per_out.append(_unwrap(tree_unflatten(per_in, primals_spec), keep))
        if isinstance(argnums, int):
            per_out = [p[0] for p in per_out]
        jac = tree_unflatten(per_out, lin.out_spec)
        return (jac, _unwrap_aux(lin.aux, keep)) if has_aux else jac

    return wrapper


def hessian(func: Callable, argnums=0) -> Callable:
    """``jacfwd(jacrev(func, argnums), argnums)`` (forward-over-reverse)."""
    return jacfwd(jacrev(func, argnums), argnums)

