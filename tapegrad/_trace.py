"""Record once, replay in Numba: ``tapegrad.trace`` and ``tapegrad.compile``.

A trace runs a function once, on tensors that require grad, into a segment of
its own and keeps that segment's columns.  A tape is a program (see
``_tape``): ``replay`` recomputes every record at new inputs, ``sweep`` runs
backward over the same arrays and ``tangent`` forward, each trace method one
compiled call with no Python per op.

What Python learned from the values while the function ran is kept as
*guards*: ``bool()`` of a traced tensor (``if x > 0:``, ``while y.norm() <
1000:``) must give the same truth value at replay, ``item()``/``float()`` the
same value.  A replay where a guard differs raises ``TraceGuardError`` naming
the guard's source line.  Comparisons are recorded (opcodes CMPC/CMP) so masks
and guards are recomputed.  What a replay cannot reproduce is refused while
tracing, with ``TraceError``: random numbers, indices chosen by values
(argmax, ``max(dim)``, boolean indexing), ``detach``, ``numpy()``, no_grad
blocks, custom ``autograd.Function``s, hooks.  As a last line of defence the
function is recorded a second time at perturbed inputs, and the two
recordings must agree in everything but the values (``check=True``).
"""
from __future__ import annotations

import collections
import io
import json
import linecache
import os
import sys

import numpy as np

from . import _dtype as D
from . import _engine as E
from . import _tape as T
from ._tensor import Tensor, _leaf, _ref, _val

__all__ = ["trace", "Trace", "TraceError", "TraceGuardError", "load_trace", "compile"]

_PKG = os.path.dirname(os.path.abspath(__file__))
# frames in these directories are tapegrad's own; a guard names the first line outside
# (nn, optim and bench code count as the user's: that is where the branch is written)
_CORE = (_PKG, os.path.join(_PKG, "autograd"))
_FORMAT = 1  # version of the saved form


class TraceError(RuntimeError):
    """The function does something a replay could not reproduce."""


class TraceGuardError(RuntimeError):
    """A replay at inputs where Python would have taken another branch."""

    def __init__(self, message, guard=-1, where=""):
        super().__init__(message)
        self.guard = guard
        self.where = where


def _caller() -> str:
    """The first source line outside tapegrad on the stack."""
    f = sys._getframe(1)
    while f is not None and os.path.dirname(f.f_code.co_filename) in _CORE:
        f = f.f_back
    if f is None:
        return "<unknown>"
    name, line = f.f_code.co_filename, f.f_lineno
    src = linecache.getline(name, line).strip()
    return f"{name}:{line}: {src}" if src else f"{name}:{line}"


class _Recording:
    """``E.state.tracing`` while a traced function runs."""

    __slots__ = ("seg", "guards")

    def __init__(self, seg):
        self.seg = seg
        self.guards = []  # (record, expected value, truth test?, source line)

    def guard(self, t, value, truth=False):
        self.guards.append((_ref(self.seg, t), float(value), truth, _caller()))

    def refuse(self, what):
        raise TraceError(f"tapegrad.trace cannot replay {what}; at {_caller()}")


# ---------------------------------------------------------------- recording

_PROGRAM = ("op", "a", "b", "c", "val", "n", "off", "aux")


def _example(x) -> np.ndarray:
    if isinstance(x, Tensor):
        x = _val(x)
    a = np.array(x, dtype=np.float64)
    return a


def _outputs(out):
    if isinstance(out, Tensor):
        return (out,), False
    if isinstance(out, (tuple, list)) and out and all(isinstance(t, Tensor) for t in out):
        return tuple(out), True
    raise TraceError("tapegrad.trace: the function must return a tensor or a tuple of tensors, "
                     f"got {type(out).__name__}")


def _record(fn, arrays):
    """Run fn on leaves made of ``arrays`` into a fresh segment; the raw program."""
    st = E.state
    if st.tracing is not None:
        raise TraceError("tapegrad.trace: traces do not nest (trace a function that itself "
                         "calls trace)")
    seg = E.Segment()
    seg.lazy_off = 1 << 62  # no lazy records (_tensor._lazy): constant folding reads values
    seg.slices = None  # (no slices given back: _tensor._slice_1d)
    seg.maps, seg.naux = {}, E.ELEM_AUX  # (no maps kept from the table's last owner: the
    # check compares two recordings' aux positions)
    rec = _Recording(seg)
    saved = st.seg, st.grad_enabled
    st.seg, st.tracing, st.grad_enabled = seg, rec, True
    E.sync(st)
    try:
        inputs = tuple(_leaf(a.copy(), D.float64, requires_grad=True) for a in arrays)
        ins = [_ref(seg, t) for t in inputs]
        outs, many = _outputs(fn(*inputs))
        out_recs = [_ref(seg, t) for t in outs]
        out_shapes = [tuple(t.shape) for t in outs]
    finally:
        st.seg, st.grad_enabled = saved
        E.sync(st)
        st.tracing = None
    seg.flush()
    k = seg.nrec
    prog = {name: col[:k].copy() for name, col in zip(_PROGRAM, seg.cols)}
    prog["auxi"] = seg.auxi[:seg.naux].copy()
    prog["bulk"] = seg.bulk[:seg.nbulk].copy()
    op = prog["op"]
    kinds = T.KIND[op]
    bad = np.flatnonzero((kinds == T.CALLBACK) | (kinds == T.CBOUT) | (op == T.DEAD) |
                         (op == T.REFRESH))
    if bad.size:
        what = {T.CALLBACK: "a custom autograd.Function", T.CBOUT: "a custom autograd.Function",
                T.SOURCE: "a tensor from a freed graph", T.UNARY: "a tensor written outside "
                "the graph (through .data or numpy())"}[int(kinds[bad[0]])]
        raise TraceError(f"tapegrad.trace cannot replay {what}")
    # leaves other than the inputs (parameters the function closes over) and tensors of
    # older graphs are constants of the trace
    srcs = np.flatnonzero((op == T.LEAF) | (op == T.IMPORT))
    op[np.setdiff1d(srcs, ins)] = T.CONST
    meta = {"ins": ins, "in_shapes": [list(a.shape) for a in arrays], "outs": out_recs,
            "out_shapes": [list(s) for s in out_shapes], "many": many,
            "guards": [list(g) for g in rec.guards]}
    return prog, meta


def _differs(p, q, mp, mq):
    """Where two recordings of one function at different inputs differ other than in the
    values: None when they agree, else a description."""
    gp, gq = mp["guards"], mq["guards"]
    if len(gp) != len(gq) or any(x[0] != y[0] or x[1] != y[1] for x, y in zip(gp, gq)):
        return None  # another branch, or a value read by Python: the guards protect replays
    if p["op"].size != q["op"].size:
        return "the number of records"
    for name in ("op", "a", "b", "n", "aux", "c"):
        x, y = p[name], q[name]
        d = np.flatnonzero((x != y) & ~((x != x) & (y != y)))  # nan == nan here
        if d.size:
            return f"record {d[0]} ({T.NAMES[p['op'][d[0]]]}), field {name}"
    if not np.array_equal(p["auxi"], q["auxi"]):
        at = int(np.flatnonzero(p["auxi"] != q["auxi"])[0]) if p["auxi"].size == \
            q["auxi"].size else 0
        users = np.flatnonzero(p["aux"] <= at)
        r = users[np.argmax(p["aux"][users])] if users.size else 0
        return f"the index map of record {r} ({T.NAMES[p['op'][r]]})"
    for r in np.flatnonzero(p["op"] == T.CONST):
        m = p["n"][r]
        if m == 1:
            same = np.array_equal(p["val"][r], q["val"][r], equal_nan=True)
        else:
            o = p["off"][r]
            same = np.array_equal(p["bulk"][o:o + m], q["bulk"][o:o + m], equal_nan=True)
        if not same:
            users = np.flatnonzero((p["a"] == r) | (p["b"] == r))
            who = f" (an operand of {T.NAMES[p['op'][users[0]]]})" if users.size else ""
            return f"constant record {r}{who}"
    return None


def trace(fn, *example_args, check: bool = True, optimize: bool = True) -> Trace:
    """Run ``fn`` once on ``example_args`` (arrays, tensors or floats, as float64 tensors
    that require grad) and return its tape as a replayable ``Trace``.

    ``check``: record a second time at perturbed inputs and refuse a function whose
    recording depends on its input values in a way no guard catches (fn runs twice).
    ``optimize``: fold constants, merge repeated records and drop dead ones
    (``Trace.optimize``; ``Trace.records_removed`` says how many).

    ``trace(A)`` of one tensor is PyTorch's ``torch.trace``: the sum of A's diagonal
    (``import tapegrad as torch`` code calls it so).
    """
    if isinstance(fn, Tensor) and not example_args:
        from ._ops_linalg import trace as matrix_trace
        return matrix_trace(fn)
    import time
    arrays = [_example(x) for x in example_args]
    t0 = time.perf_counter()
    prog, meta = _record(fn, arrays)
    seconds = time.perf_counter() - t0
    if check:
        rng = np.random.default_rng(12345)
        moved = [a + 1e-3 * (np.abs(a) + 1.0) * rng.standard_normal(a.shape) for a in arrays]
        p2, m2 = _record(fn, moved)
        where = _differs(prog, p2, meta, m2)
        if where is not None:
            raise TraceError("tapegrad.trace: the recording depends on the input values in a "
                             f"way a replay cannot follow ({where} changed with the inputs): "
                             "values reach the tape from outside it")
    tr = Trace(prog, meta, fn)
    if optimize:
        tr.optimize()
    tr.record_seconds = seconds
    return tr


# ---------------------------------------------------------------- the trace

_NO_SEEDS = np.empty((0, 0))
_ONE = np.ones((1, 1))
_F64 = np.dtype(np.float64)
_PULLBACK = T.PULLBACK
_FLAT = (8,)  # the strides of a 1-d float64 array trace_packed can read in place
# gradient()'s hot path calls trace_packed's compiled entry point once it exists: the
# dispatcher's type checks cost ~140 ns of a ~800 ns call, and the arguments' types never
# change (an int64 buffer, a float64 buffer, a 1-d float64 array, an int)
_packed = [T.trace_packed]


def _entry_point():
    over = getattr(T.trace_packed, "overloads", {})  # a plain function with the JIT off
    if len(over) == 1:
        _packed[0] = next(iter(over.values())).entry_point


def _work(k, nbulk):
    """The sweeps' arrays: flags, adjoints and tangents (one-element, bulk), hits."""
    return (_padded(np.zeros(k, dtype=np.uint8)), _padded(np.empty((2, k))),
            _padded(np.empty((2, nbulk))), _padded(np.empty(k, dtype=np.int64)))


def _packed_views(arrays):
    """One buffer holding ``arrays`` (flat, in order), and a view of it for each."""
    buf = np.concatenate(arrays)
    views, p = [], 0
    for x in arrays:
        views.append(buf[p:p + x.size])
        p += x.size
    return buf, views


def _padded(a):
    """A copy of ``a`` with 256 bytes of its own on either side, for one thread of a
    batch to write: small arrays allocated by different threads can share cache lines."""
    pad = 256 // a.itemsize
    buf = np.empty(a.size + 2 * pad, dtype=a.dtype)
    out = buf[pad:pad + a.size].reshape(a.shape)
    out[...] = a
    return out


_INTS = ("op", "a", "b", "n", "off", "aux")


def _threads() -> int:
    import numba
    return numba.get_num_threads()


def _one(a, shape):
    """A result out of a flat (possibly reused) buffer: a float for 0-d, else a copy."""
    return float(a[0]) if shape == () else a.reshape(shape).copy()


class Trace:
    """A recorded tape, replayed at new inputs by compiled sweeps.

    Methods take the function's arguments (arrays, tensors or floats of the recorded
    shapes) and return NumPy arrays (a float for a 0-d value); with one argument, one
    gradient, with several a tuple.  Not thread-safe: one replay at a time per trace
    (``gradient_batch`` spreads many points over threads itself).
    """

    def __init__(self, prog, meta, fn=None):
        self._fn = fn
        self._hess = None
        self.records_removed = 0
        self.record_seconds = float("nan")
        self._set(prog, meta)

    def _set(self, prog, meta):
        self._meta = meta
        self._ins = np.asarray(meta["ins"], dtype=np.int64)
        self._outs = np.asarray(meta["outs"], dtype=np.int64)
        self.in_shapes = [tuple(s) for s in meta["in_shapes"]]
        self.out_shapes = [tuple(s) for s in meta["out_shapes"]]
        self._in_sizes = [int(np.prod(s)) for s in self.in_shapes]
        self._out_sizes = [int(np.prod(s)) for s in self.out_shapes]
        self._nin = sum(self._in_sizes)
        self._nout = sum(self._out_sizes)
        g = meta["guards"]
        self._where = [x[3] for x in g]
        # a program of the common kinds runs in the leaf kernels (no reference counting);
        # one of one-element records (sources aside) sweeps back without reached flags
        kinds = T.KIND[prog["op"]]
        self._lean = bool(np.isin(kinds, T.LEAN_KINDS).all())
        scalar = (kinds == T.SOURCE) | ((prog["n"] == 1) & (kinds <= T.GATHER))
        self._dense = T.DENSE if self._lean and scalar.all() else 0
        self._pack(prog, meta)
        # gradient()'s fastest path, on the instance (see _fast_gradient)
        self.__dict__.pop("gradient", None)
        if self._lean and self._xv is not None:
            self.gradient = self._fast_gradient()
        self._kernel = T.trace_lean if self._lean else T.trace_run
        # gradient()'s whole argument list, built once: a call then only fills _X1
        self._grad_call = (self._icols, self._fcols, self._auxi, self._bulk, self._links,
                           self._expect, T.PULLBACK, self._X1, self._Y1, self._seed1,
                           self._G1, self._failed1, *self._work)

    def _pack(self, prog, meta):
        """Every array of a one-point call as a view into two buffers, one of ints and one
        of floats, so a lean program's call passes two arrays (see _tape.trace_packed)."""
        g = meta["guards"]
        nrec, nbulk = prog["op"].size, prog["bulk"].size
        auxi = np.ascontiguousarray(prog["auxi"], dtype=np.int64)
        links = np.array([len(self._ins), len(self._outs), len(g), *self._ins, *self._outs,
                          *(x[0] for x in g), *(int(x[2]) for x in g)], dtype=np.int64)
        expect = np.asarray([x[1] for x in g], dtype=np.float64)
        head = np.array([nrec, auxi.size, links.size, nbulk, expect.size, self._nin,
                         self._nout, self._dense], dtype=np.int64)
        assert head.size == T.PACK_HEADER
        ints = [head, np.stack([prog[k] for k in _INTS]).astype(np.int64).reshape(-1), auxi,
                links, np.zeros(1, dtype=np.int64), np.zeros((nrec + 7) // 8, dtype=np.int64)]
        floats = [np.stack([prog["c"], prog["val"]]).astype(np.float64).reshape(-1),
                  np.asarray(prog["bulk"], dtype=np.float64), expect,
                  np.zeros(self._nin), np.zeros(self._nout), np.ones(self._nout),
                  np.zeros(self._nin), np.zeros(2 * nrec), np.zeros(2 * nbulk)]
        ibuf, (_, icols, self._auxi, self._links, self._failed1, fl) = _packed_views(ints)
        fbuf, (fcols, self._bulk, self._expect, X1, Y1, seed1, G1, A, B) = _packed_views(
            floats)
        self._icols = icols.reshape(6, nrec)
        self._fcols = fcols.reshape(2, nrec)
        # the buffers of one-point calls, reused
        self._X1, self._Y1 = X1.reshape(1, -1), Y1.reshape(1, -1)
        self._seed1, self._G1 = seed1.reshape(1, -1), G1.reshape(1, 1, -1)
        self._work = (fl.view(np.uint8)[:nrec], A.reshape(2, nrec), B.reshape(2, nbulk),
                      np.empty(nrec, dtype=np.int64))
        self._ibuf, self._fbuf = ibuf, fbuf
        # gradient()'s fastest path: one argument, one output element, a lean program;
        # the argument is copied into _xv and the gradient read from _gv
        one = len(self.in_shapes) == 1 and self._nout == 1
        self._shape1 = self.in_shapes[0] if one else None
        self._xv = X1.reshape(self._shape1) if one else None
        self._gv = G1.reshape(self._shape1) if one else None
        self._nd = one and self._shape1 != ()  # the gradient is an array, not a float

    # ------------------------------------------------------------ facts
    @property
    def num_records(self) -> int:
        return int(self._icols.shape[1])

    def _program(self) -> dict:
        prog = dict(zip(_INTS, self._icols))
        prog["op"] = prog["op"].copy()
        prog["c"], prog["val"] = self._fcols
        prog["auxi"], prog["bulk"] = self._auxi, self._bulk
        return prog

    @property
    def guards(self) -> list[str]:
        """The source line of each guard."""
        return list(self._where)

    def __repr__(self) -> str:
        name = getattr(self._fn, "__qualname__", "a loaded trace")
        ins = ", ".join(str(list(s)) for s in self.in_shapes)
        outs = ", ".join(str(list(s)) for s in self.out_shapes)
        return (f"<tapegrad.Trace of {name}: {self.num_records} records, inputs ({ins}), "
                f"outputs ({outs}), {len(self._where)} guards>")

    # ------------------------------------------------------------ plumbing
    def _x1(self, args) -> np.ndarray:
        """args as the one row of the reused input buffer (the common cases first)."""
        X = self._X1
        if len(args) == 1 and len(self.in_shapes) == 1:
            x = args[0]
            if x.__class__ is float and self._nin == 1 and self.in_shapes[0] == ():
                X[0, 0] = x
                return X
            if x.__class__ is np.ndarray and x.dtype == np.float64 and \
                    x.shape == self.in_shapes[0]:
                X[0] = x.reshape(-1)
                return X
        X[0] = self._x(args)
        return X

    def _x(self, args) -> np.ndarray:
        if len(args) != len(self.in_shapes):
            raise TypeError(f"this trace takes {len(self.in_shapes)} arguments "
                            f"({len(args)} given)")
        parts = []
        for i, (x, shape) in enumerate(zip(args, self.in_shapes)):
            a = np.asarray(_val(x) if isinstance(x, Tensor) else x, dtype=np.float64)
            if a.shape != shape:
                raise ValueError(f"argument {i} has shape {list(a.shape)}, the trace was "
                                 f"recorded with {list(shape)} (tapegrad.compile traces each "
                                 "shape)")
            parts.append(a.reshape(-1))
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)

    def _guard_failed(self, k):
        where = self._where[k]
        raise TraceGuardError(f"tapegrad.trace: guard {k} fails at these inputs (Python took "
                              f"another path when the trace was recorded): {where}", k, where)

    def _split(self, flat, sizes, shapes, many):
        if not many:
            return _one(flat, shapes[0])
        parts, p = [], 0
        for m, shape in zip(sizes, shapes):
            parts.append(_one(flat[p:p + m], shape))
            p += m
        return tuple(parts) if many else parts[0]

    def _outputs(self, y):
        return self._split(y, self._out_sizes, self.out_shapes, self._meta["many"])

    def _per_input(self, g):
        return self._split(g, self._in_sizes, self.in_shapes, len(self.in_shapes) > 1)

    def _flat_out(self, v, what):
        vs = v if self._meta["many"] else (v,)
        if len(vs) != len(self.out_shapes):
            raise ValueError(f"{what}: one array per output ({len(self.out_shapes)}) expected")
        parts = []
        for x, shape in zip(vs, self.out_shapes):
            a = np.asarray(_val(x) if isinstance(x, Tensor) else x, dtype=np.float64)
            if a.shape != shape:
                raise RuntimeError(f"Mismatch in shape: {what} has a shape of {list(a.shape)} "
                                   f"and output has a shape of {list(shape)}.")
            parts.append(a.reshape(-1))
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def _run(self, X, mode=T.VALUES, seeds=None, fcols=None, bulk=None, work=None):
        """One compiled call: replay at each row of X, then sweeps per row of ``seeds``
        (``fcols``, ``bulk``, ``work``: a thread's own copies, for batches)."""
        seeds = _NO_SEEDS if seeds is None else seeds
        npts = X.shape[0]
        Y = np.empty((npts, self._nout))
        width = self._nin if mode == T.PULLBACK else self._nout
        G = np.empty((npts, seeds.shape[0], width))
        failed = np.empty(npts, dtype=np.int64)
        work = self._work if work is None else work
        kernel = self._kernel
        lean = kernel is T.trace_lean
        kernel(self._icols, self._fcols if fcols is None else fcols, self._auxi,
               self._bulk if bulk is None else bulk, self._links, self._expect,
               mode | self._dense if lean else mode, X, Y, seeds, G, failed,
               *(work[:3] if lean else work))
        if not E._blas_pinned:
            E.pin_blas_once()
        return Y, G, failed

    def _one_point(self, args, mode=T.VALUES, seeds=None):
        Y, G, failed = self._run(self._x(args)[None, :], mode, seeds)
        if failed[0] >= 0:
            self._guard_failed(int(failed[0]))
        return Y[0], G[0]

    def _gradient1(self, args):
        """The hot path of gradient(): one point, reused buffers."""
        if self._nout != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        self._x1(args)
        if self._lean:
            T.trace_packed(self._ibuf, self._fbuf, self._X1[0], T.PULLBACK)
        else:
            T.trace_run(*self._grad_call)
        if not E._blas_pinned:
            E.pin_blas_once()
        if self._failed1[0] >= 0:
            self._guard_failed(int(self._failed1[0]))
        return self._G1[0, 0]

    # ------------------------------------------------------------ values and gradients
    def __call__(self, *args):
        """The function's outputs at ``args``."""
        return self._outputs(self._one_point(args)[0])

    def vjp(self, args, v):
        """Vector-Jacobian product: the gradient of ``sum(outputs * v)`` per argument."""
        args = args if isinstance(args, (tuple, list)) else (args,)
        y, g = self._one_point(args, T.PULLBACK, self._flat_out(v, "grad_output")[None, :])
        return self._per_input(g[0])

    def _scalar(self):
        if self._nout != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")

    def gradient(self, *args):
        """The gradient of the (one-element) output with respect to each argument."""
        return self._per_input(self._gradient1(args))

    def _fast_gradient(self):
        """gradient() as a closure over the buffers it uses, set on the instance when a
        one-point call can take the fastest path: one float64 array (or float) of the
        recorded shape, a lean program, every guard held.  Anything else (and a failed
        guard, which raises there) goes to the method.  ~0.6 us of Python around the
        compiled call (a bound method reading attributes spent ~0.25 us more)."""
        shape, xv, gv, nd = self._shape1, self._xv, self._gv, self._nd
        ibuf, fbuf, x1 = self._ibuf, self._fbuf, self._X1[0]
        slow = Trace.gradient

        def gradient(*args):
            if len(args) != 1:
                return slow(self, *args)
            x = args[0]
            if x.__class__ is np.ndarray:
                if x.shape != shape or x.dtype is not _F64:
                    return slow(self, *args)
                if x.strides != _FLAT:  # 0-d, n-d or strided: copied, else read in place
                    xv[...] = x
                    x = x1
            elif x.__class__ is float and not nd:
                xv[...] = x
                x = x1
            else:
                return slow(self, *args)
            k = _packed[0]
            failed = k(ibuf, fbuf, x, _PULLBACK)
            if k is T.trace_packed:
                _entry_point()
            if failed >= 0:
                return slow(self, *args)  # raises the guard's error
            return gv.copy() if nd else float(gv)

        gradient.__doc__ = Trace.gradient.__doc__
        return gradient

    def value_and_grad(self, *args):
        g = self.gradient(*args)
        return float(self._Y1[0, 0]), g

    def jvp(self, args, tangents):
        """Forward mode: (outputs, their tangents along ``tangents``, one per argument)."""
        args = args if isinstance(args, (tuple, list)) else (args,)
        tangents = tangents if isinstance(tangents, (tuple, list)) else (tangents,)
        y, g = self._one_point(args, T.PUSHFORWARD, self._x(tangents)[None, :])
        return self._outputs(y), self._outputs(g[0])

    def _jacobian_flat(self, args, mode):
        if mode is None:
            mode = "reverse" if self._nout <= self._nin else "forward"
        if mode == "reverse":
            return self._one_point(args, T.PULLBACK, np.eye(self._nout))[1]
        if mode == "forward":
            return self._one_point(args, T.PUSHFORWARD, np.eye(self._nin))[1].T
        raise ValueError("mode must be 'reverse', 'forward' or None")

    def _blocks(self, jac, lead=()):
        """Split a flat (..., outputs, inputs) Jacobian as torch.autograd.functional does."""
        rows = []
        po = 0
        for mo, so in zip(self._out_sizes, self.out_shapes):
            row, pi = [], 0
            for mi, si in zip(self._in_sizes, self.in_shapes):
                block = jac[..., po:po + mo, pi:pi + mi]
                row.append(block.reshape(lead + so + si))
                pi += mi
            rows.append(tuple(row) if len(self.in_shapes) > 1 else row[0])
            po += mo
        return tuple(rows) if self._meta["many"] else rows[0]

    def jacobian(self, *args, mode: str | None = None):
        """d outputs / d inputs, shaped ``output.shape + input.shape`` per pair (nested
        tuples for several, as torch.autograd.functional.jacobian).  ``mode``: "reverse"
        (one sweep per output element), "forward" (one tangent sweep per input element) or
        None for whichever needs fewer sweeps."""
        return self._blocks(self._jacobian_flat(args, mode))

    def hessian(self, *args):
        """Second derivatives of the scalar output: the Jacobian of a trace of the gradient
        program (recorded once, with create_graph=True, then replayed)."""
        self._scalar()
        if self._hess is None:
            if self._fn is None:
                raise RuntimeError("tapegrad.trace: hessian() needs the traced function; a "
                                   "loaded trace has only its tape")
            self._hess = trace(_gradient_program(self._fn), *args)
        h = self._hess._jacobian_flat(args, None)
        n = len(self.in_shapes)
        blocks, po = [], 0
        for mo, so in zip(self._in_sizes, self.in_shapes):
            row, pi = [], 0
            for mi, si in zip(self._in_sizes, self.in_shapes):
                row.append(h[po:po + mo, pi:pi + mi].reshape(so + si))
                pi += mi
            blocks.append(tuple(row) if n > 1 else row[0])
            po += mo
        return tuple(blocks) if n > 1 else blocks[0]

    # ------------------------------------------------------------ many points
    def _batch(self, X, seeds, threads):
        X = X if isinstance(X, (tuple, list)) else (X,)
        if len(X) != len(self.in_shapes):
            raise TypeError(f"this trace takes {len(self.in_shapes)} arguments")
        parts = []
        npts = None
        for i, (x, shape) in enumerate(zip(X, self.in_shapes)):
            a = np.asarray(_val(x) if isinstance(x, Tensor) else x, dtype=np.float64)
            if a.shape[1:] != shape or (npts is not None and a.shape[0] != npts):
                raise ValueError(f"argument {i}: expected shape [points, "
                                 f"{', '.join(map(str, shape))}], got {list(a.shape)}")
            npts = a.shape[0]
            parts.append(a.reshape(npts, -1))
        flat = np.ascontiguousarray(np.concatenate(parts, axis=1) if len(parts) > 1
                                    else parts[0])
        threads = max(1, min(threads or _threads(), npts))
        if threads == 1:
            Y, G, failed = self._run(flat, T.PULLBACK, seeds)
        else:  # the compiled code releases the GIL: each thread replays its own copy
            import concurrent.futures
            cuts = np.linspace(0, npts, threads + 1).astype(int)

            def chunk(t):
                return self._run(flat[cuts[t]:cuts[t + 1]], T.PULLBACK, seeds,
                                 _padded(self._fcols), _padded(self._bulk),
                                 _work(self.num_records, self._bulk.size))
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                res = list(pool.map(chunk, range(threads)))
            G = np.concatenate([r[1] for r in res])
            failed = np.concatenate([r[2] for r in res])
        bad = np.flatnonzero(failed >= 0)
        if bad.size:
            k = int(failed[bad[0]])
            raise TraceGuardError(f"tapegrad.trace: guard {k} fails at point {bad[0]} (and "
                                  f"{bad.size - 1} more): {self._where[k]}", k, self._where[k])
        return G, npts

    def gradient_batch(self, X, *, threads: int | None = None):
        """Gradients at many points: ``X`` has a leading points axis (a tuple of such
        arrays for several arguments); the points are spread over ``threads`` threads
        (default: the cores Numba uses), each replaying its own copy of the tape."""
        self._scalar()
        G, npts = self._batch(X, _ONE, threads)
        G = G[:, 0, :]
        parts, p = [], 0
        for m, shape in zip(self._in_sizes, self.in_shapes):
            parts.append(G[:, p:p + m].reshape((npts,) + shape))
            p += m
        return tuple(parts) if len(parts) > 1 else parts[0]

    def jacobian_batch(self, X, *, threads: int | None = None):
        """Jacobians at many points (reverse sweeps), each shaped as ``jacobian``'s with a
        leading points axis."""
        G, npts = self._batch(X, np.eye(self._nout), threads)
        return self._blocks(G, (npts,))

    # ------------------------------------------------------------ optimisation
    def optimize(self) -> int:
        """Fold constants, merge common subexpressions and drop records no output or guard
        needs; returns the number of records removed."""
        from ._trace_opt import optimize
        prog = self._program()
        before = self.num_records
        prog, meta = optimize(prog, self._meta)
        hess = self._hess
        self._set(prog, meta)
        self._hess = hess
        if hess is not None:
            hess.optimize()
        self.records_removed += before - self.num_records
        return before - self.num_records

    # ------------------------------------------------------------ saving
    def _state(self) -> dict:
        st = self._program()
        st["meta"] = json.dumps({**self._meta, "format": _FORMAT})
        if self._hess is not None:
            for k, v in self._hess._state().items():
                st["hess." + k] = v
        return st

    def save(self, path) -> None:
        """Write the trace to ``path`` (NumPy .npz); ``tapegrad.load_trace`` reads it."""
        with open(path, "wb") as f:
            np.savez_compressed(f, **self._state())

    def __getstate__(self):
        buf = io.BytesIO()
        np.savez(buf, **self._state())
        return {"npz": buf.getvalue()}

    def __setstate__(self, state):
        other = _from_npz(np.load(io.BytesIO(state["npz"])))
        self.__dict__.update(other.__dict__)


def _from_state(st: dict) -> Trace:
    meta = json.loads(str(st["meta"]))
    if meta.pop("format", None) != _FORMAT:
        raise ValueError("not a tapegrad trace, or one saved by another version")
    prog = {k: np.array(st[k]) for k in _PROGRAM + ("auxi", "bulk")}
    tr = Trace(prog, meta)
    hess = {k[5:]: st[k] for k in st if k.startswith("hess.")}
    if hess:
        tr._hess = _from_state(hess)
    return tr


def _from_npz(z) -> Trace:
    return _from_state({k: z[k] for k in z.files})


def load_trace(path) -> Trace:
    """Read a trace written by ``Trace.save``."""
    with np.load(path) as z:
        return _from_npz(z)


def _gradient_program(fn):
    from .autograd import grad

    def gradient_of(*xs):
        return tuple(grad(fn(*xs), xs, create_graph=True, materialize_grads=True))
    gradient_of.__qualname__ = f"gradient of {getattr(fn, '__qualname__', 'fn')}"
    return gradient_of


# ---------------------------------------------------------------- compile

class compile:  # noqa: N801  (a function-like wrapper, as torch.compile)
    """``tapegrad.compile(fn)``: call, differentiate and replay ``fn`` through traces, one
    per argument shapes and branch pattern; a guard failure records a new trace.  At most
    ``max_traces`` are kept (least recently used dropped)."""

    def __init__(self, fn, *, max_traces: int = 8, check: bool = True):
        self.fn = fn
        self.max_traces = max_traces
        self.check = check
        self.retraces = 0
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self.__wrapped__ = fn

    def _run(self, method, args, *extra):
        arrays = [np.asarray(_val(x) if isinstance(x, Tensor) else x, dtype=np.float64)
                  for x in args]
        shapes = tuple(a.shape for a in arrays)
        def call(tr):
            return getattr(tr, method)(arrays, *extra) if extra else getattr(tr, method)(*arrays)

        for key in [k for k in self._cache if k[0] == shapes][::-1]:  # newest first
            try:
                out = call(self._cache[key])
            except TraceGuardError:
                continue
            self._cache.move_to_end(key)
            return out
        if any(k[0] == shapes for k in self._cache):
            self.retraces += 1
        tr = trace(self.fn, *arrays, check=self.check)
        self._cache[(shapes, id(tr))] = tr
        while len(self._cache) > self.max_traces:
            self._cache.popitem(last=False)
        return call(tr)

    def __call__(self, *args):
        return self._run("__call__", args)

    def gradient(self, *args):
        return self._run("gradient", args)

    def value_and_grad(self, *args):
        return self._run("value_and_grad", args)

    def jacobian(self, *args):
        return self._run("jacobian", args)

    def hessian(self, *args):
        return self._run("hessian", args)

    def vjp(self, args, v):
        return self._run("vjp", tuple(args), v)

    def jvp(self, args, tangents):
        return self._run("jvp", tuple(args), tangents)

    @property
    def traces(self) -> list[Trace]:
        return list(self._cache.values())

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return (f"<tapegrad.compile of {name}: {len(self._cache)} traces cached (at most "
                f"{self.max_traces}), {self.retraces} retraces after guard failures>")
