"""``create_graph=True``: gradients that are themselves differentiable.

The compiled sweep computes adjoints as plain float64 numbers, which no later
backward can see through.  With ``create_graph=True`` the backward runs here
instead, in Python, one record at a time, newest first (the same order, the
same checks and the same hits as ``_tape.sweep``), and computes every adjoint as
a tapegrad Tensor with ordinary differentiable tapegrad ops, so the work is
itself recorded on the tape.

The tape holds values only, so a record's saved values (its operands, its
output) become Tensors that *point at the record itself*: a Tensor whose
``_seg``/``_rec`` is the record and whose value is the tape's copy.  A formula
such as ``g * cos(x)`` then records new records whose operand is the original
record of ``x``: differentiating the gradient goes back through the original
graph, exactly as PyTorch's double backward goes through the saved variables'
own ``grad_fn``.  Every adjoint is a flat float64 tensor of the record's element
count (the tape is flat too); index maps become explicit GATHER records
(``out = g[m]``) and REDUCE records with a map (a scatter-add), each the
other's derivative.
"""
from __future__ import annotations

import heapq
import math
import warnings

import numpy as np

from . import _dtype as D
from . import _engine as E
from . import _tape as T
from ._tensor import (
    Tensor,
    _extra,
    _record_result,
    _result,
    _val,
)

F64 = D.float64
_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_SQRT_2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_2_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

CYCLE_WARNING = (
    "Using backward() with create_graph=True will create a reference cycle between the "
    "parameter and its gradient which can cause a memory leak. We recommend using "
    "autograd.grad when creating the graph to avoid this. If you have to use this function, "
    "make sure to reset the .grad fields of your parameters to None after use to break the "
    "cycle and avoid the leak.")


# ---------------------------------------------------------------- flat tensor helpers

def _lib():
    from . import _library
    return _library


def _const(values) -> Tensor:
    """A constant flat float64 tensor (no history)."""
    return _result(np.array(values, dtype=np.float64).reshape(-1), F64)


def _zeros(n) -> Tensor:
    return _const(np.zeros(n))


def _mask(values) -> Tensor:
    return _result(np.asarray(values, dtype=bool), D.bool_)


def _where(cond, a, b):
    """Elementwise choice; a or b may be a number.  Conditions on values are comparisons of
    tensors (not of NumPy arrays), so a trace of the gradient program records them and a
    replay recomputes them; NumPy conditions are for structural masks only."""
    return _lib().where(cond if isinstance(cond, Tensor) else _mask(cond), a, b)


def _explicit(m):
    m = np.asarray(m, dtype=np.int64).reshape(-1)
    return np.concatenate((np.array([-1, m.size], dtype=np.int64), m))


def _records(t) -> bool:
    return t._rg and E.state.grad_enabled


def gather(t: Tensor, m) -> Tensor:
    """out[k] = t[m[k]] (a GATHER record; its derivative is ``scatter``)."""
    m = np.asarray(m, dtype=np.int64).reshape(-1)
    value = np.asarray(_val(t), dtype=np.float64).reshape(-1)[m]
    if _records(t):
        return _record_result(T.GATHERX, value, F64, (t,), aux_ints=_explicit(m))
    return _result(value, F64)


def scatter(t: Tensor, m, size: int) -> Tensor:
    """out[j] = sum of t[k] over m[k] == j (a REDUCE record with a map; derivative: gather)."""
    m = np.asarray(m, dtype=np.int64).reshape(-1)
    value = np.zeros(size)
    np.add.at(value, m, np.asarray(_val(t), dtype=np.float64).reshape(-1))
    if _records(t):
        return _record_result(T.SUMDIM, value, F64, (t,), c=1.0, aux_ints=_explicit(m))
    return _result(value, F64)


def flat(t: Tensor) -> Tensor:
    """t as a flat float64 tensor (differentiable)."""
    if t.dtype is not F64:
        t = t.to(F64)
    return t.reshape(-1) if t.ndim != 1 else t


def shaped(g: Tensor, like: Tensor) -> Tensor:
    """A flat float64 adjoint in the shape and dtype of ``like`` (differentiable)."""
    g = g.reshape(like.shape)
    if like.dtype is not F64:
        g = g.to(like.dtype)
    return g


def _add(old, new):
    return new if old is None else old + new


# ---------------------------------------------------------------- the backward

class _Pass:
    """One create_graph backward over the segments reachable from the roots."""

    def __init__(self, retain, capture, on_leaf):
        self.retain = retain
        self.capture = capture
        self.on_leaf = on_leaf
        self.pending: dict = {}  # Segment -> {record: adjoint}
        self.values: dict = {}  # (segment id, record) -> Tensor pointing at the record
        self.by_rec: dict = {}  # (segment id, record) -> capture entries of non-leaf inputs
        if capture:
            for entry in capture.values():
                t = entry[0]
                if t._seg is not None:
                    self.by_rec.setdefault((t._seg.id, t._rec), []).append(entry)

    # ------------------------------------------------------------ driver
    def run(self, roots, seeds):
        for t, g in zip(roots, seeds):
            seg = t._seg
            if seg is None:
                self.deliver_leaf(t, g)
                continue
            if seg.dead:
                raise RuntimeError(E._FREED_MSG)
            self.add(seg, t._rec, g)
        while self.pending:
            seg = max(self.pending, key=lambda s: s.id)
            self.sweep(seg, self.pending.pop(seg))

    def add(self, seg, r, g):
        adj = self.pending.get(seg)
        if adj is None:
            adj = self.pending[seg] = {}
        adj[r] = _add(adj.get(r), g)

    def value(self, seg, r) -> Tensor:
        """The value of record r, as a tensor whose history is record r itself."""
        key = (seg.id, r)
        t = self.values.get(key)
        if t is None:
            cols = seg.cols
            m = int(cols[5][r])
            if m == 1:
                v = np.array([cols[4][r]])
            else:
                o = int(cols[6][r])
                v = seg.bulk[o:o + m].copy()
            if cols[0][r] == T.CONST:
                t = _result(v, F64)
            else:
                t = _result(v, F64, seg, r)
            self.values[key] = t
        return t

    def raw(self, seg, r) -> np.ndarray:
        cols = seg.cols
        m = int(cols[5][r])
        if m == 1:
            return np.array([cols[4][r]])
        o = int(cols[6][r])
        return seg.bulk[o:o + m]

    def stale(self, seg, r, consumer) -> bool:
        if not seg.cols[8][r] & T.MODIFIED or not seg.modified:
            return False
        entry = seg.modified.get(r)
        return entry is not None and consumer < entry[2]

    # ------------------------------------------------------------ one segment
    def sweep(self, seg, adj):
        seg.flush()
        if seg.bound or seg.bgroups:
            seg.stale_bindings()
        self.adj = adj
        self.seg = seg
        heap = [-r for r in adj]
        heapq.heapify(heap)
        self.heap = heap
        fn_grads: dict = {}  # PYFUNC record -> {output index: adjoint}
        while heap:
            r = -heapq.heappop(heap)
            g = adj.pop(r)
            cols = seg.cols
            o = int(cols[0][r])
            kd = T.OPS[o].kind
            sv = T.OPS[o].saves
            f = int(cols[8][r])
            if f & T.HOOK and r in seg.hooked:
                g = self.hooks(seg.hooked[r], g)
            if f & T.FREED and sv:
                raise E._sweep_error(seg, T.ERR_FREED, r)
            if sv & T.SAVE_OUT and self.stale(seg, r, r):
                raise E._sweep_error(seg, T.ERR_MODIFIED, r)
            if not self.retain and not f & T.FREED:
                seg.cols[8][r] |= T.FREED
                seg.nfreed += 1
            if o == T.DEAD:
                raise RuntimeError(E._FREED_MSG)
            self.hits(seg, r, o, g)
            if kd == T.SOURCE:
                if o == T.LEAF:
                    self.deliver_leaf(seg.leaves[r], g)
                elif o == T.IMPORT:
                    src = seg.imports[r]
                    if src._seg.dead:
                        raise RuntimeError(E._FREED_MSG)
                    self.add(src._seg, src._rec, g)
                continue
            if kd == T.CBOUT:
                fn = int(cols[1][r])
                outs = fn_grads.setdefault(fn, {})
                j = int(cols[3][r])
                outs[j] = _add(outs.get(j), g)
                self.reach(fn)
                continue
            if kd == T.CALLBACK:
                self.function(seg, r, fn_grads.pop(r, {}))
                continue
            self.propagate(seg, r, o, kd, sv, g)

    def reach(self, r):
        if r not in self.adj:
            self.adj[r] = None
            heapq.heappush(self.heap, -r)

    def contribute(self, r, g):
        """Add g to the adjoint of record r of the segment being swept (not to constants)."""
        if self.seg.cols[0][r] == T.CONST:
            return
        if r in self.adj:
            self.adj[r] = _add(self.adj[r], g)
        else:
            self.adj[r] = g
            heapq.heappush(self.heap, -r)

    # ------------------------------------------------------------ Python at records
    def hits(self, seg, r, o, g):
        """retain_grad tensors and non-leaf inputs of grad()."""
        capture = self.capture
        if g is None:
            return
        t = seg.retained.get(r) if seg.retained else None
        if t is not None:
            if capture is not None and id(t) in capture:
                entry = capture[id(t)]
                entry[1] = _add(entry[1], g)
            elif capture is None:
                accumulate(t, g)
        elif capture is not None and o != T.LEAF:
            for entry in self.by_rec.get((seg.id, r), ()):
                entry[1] = _add(entry[1], g)

    def hooks(self, t, g):
        x = t._x
        if x is None or not x.hooks or g is None:
            return g
        return run_hooks(t, g)

    def deliver_leaf(self, t, g):
        if g is None:
            return
        x = t._x
        if x is not None and x.hooks:
            g = run_hooks(t, g)
        if self.capture is not None:
            entry = self.capture.get(id(t))
            if entry is not None:
                entry[1] = _add(entry[1], g)
            return
        if self.on_leaf is not None:
            self.on_leaf(t, g)

    def function(self, seg, r, grads):
        """A custom Function: its backward runs in grad mode on Tensor gradients."""
        from .autograd.function import _run_backward, checked_gradients, sum_axes
        from .autograd.grad_mode import enable_grad
        run = seg.callbacks[r]
        if getattr(run, "func", None) is not _run_backward:
            raise RuntimeError("tapegrad: create_graph=True through this custom Function is not "
                               "supported")
        cls, ctx, args, in_recs, meta, name = run.args
        grad_outputs = []
        for j, m in enumerate(meta):
            if m is None:
                grad_outputs.append(None)
            elif grads.get(j) is not None:
                grad_outputs.append(grads[j].reshape(m[0]).to(m[1]))
            elif ctx.materialize_grads:
                from ._tensor import zeros
                grad_outputs.append(zeros(m[0], dtype=m[1]))
            else:
                grad_outputs.append(None)
        with enable_grad():
            result = cls.backward(ctx, *grad_outputs)
        if not isinstance(result, tuple):
            result = (result,)
        if _once(cls.backward) and any(isinstance(g, Tensor) and g.requires_grad
                                       for g in grad_outputs):
            # PyTorch: the gradients of a @once_differentiable backward raise when differentiated
            live = [g for g in grad_outputs if isinstance(g, Tensor) and g.requires_grad]
            result = tuple(_delayed_error(gi, live) if isinstance(gi, Tensor) else gi
                           for gi in result)
        for i, rec, gi, a in checked_gradients(name, result, args, in_recs):
            if tuple(gi.shape) != tuple(a.shape):  # summed back differentiably
                lead, axes = sum_axes(gi.shape, tuple(a.shape), name, i)
                gi = gi.sum(dim=lead) if lead else gi
                gi = gi.sum(dim=axes, keepdim=True) if axes else gi
            self.contribute(rec, flat(gi))

    # ------------------------------------------------------------ the derivative rules
    def propagate(self, seg, r, o, kd, sv, g):
        cols = seg.cols
        ra = int(cols[1][r])
        rb = int(cols[2][r])
        cc = float(cols[3][r])
        at = int(cols[7][r])
        opc = cols[0]
        a_var = ra >= 0 and opc[ra] != T.CONST
        b_var = rb >= 0 and opc[rb] != T.CONST
        if g is None:  # reached without an adjoint (a Function none of whose outputs got one)
            return
        X = self.value
        if kd == T.UNARY:
            if a_var:
                if sv & T.SAVE_IN and self.stale(seg, ra, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, ra)
                dd = float(seg.auxi[at:at + 1].view(np.float64)[0]) if at >= 0 else 0.0
                self.contribute(ra, unary_backward(o, g, lambda: X(seg, ra), lambda: X(seg, r),
                                                   self.raw(seg, ra), self.raw(seg, r), cc, dd))
        elif kd == T.BINARY:
            if a_var:
                if sv & T.SAVE_IN and self.stale(seg, rb, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, rb)
                self.contribute(ra, binary_backward(o, 0, g, seg, ra, rb, r, cc, self))
            if b_var:
                if sv & T.SAVE_IN and self.stale(seg, ra, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, ra)
                self.contribute(rb, binary_backward(o, 1, g, seg, ra, rb, r, cc, self))
        elif kd == T.GATHER:
            if a_var:
                m = T.index_map(seg.auxi, at)
                self.contribute(ra, scatter(g, m, int(cols[5][ra])))
        elif kd == T.REDUCE:
            if a_var:
                na = int(cols[5][ra])
                m = T.group_map(seg.auxi, at, na)
                gx = gather(g, m)
                self.contribute(ra, gx * cc if cc != 1.0 else gx)
        elif kd == T.NORM:
            if a_var:
                if self.stale(seg, ra, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, ra)
                na = int(cols[5][ra])
                m = T.group_map(seg.auxi, at, na)
                y = X(seg, r)
                y = gather(y, m)
                nz = y != 0.0  # g * (x / y), PyTorch's order (its bits), as the sweep's
                q = X(seg, ra) / _where(nz, y, 1.0)
                self.contribute(ra, _where(nz, gather(g, m) * q, 0.0))
        elif kd == T.MATMUL:
            mm, kk, nn, nb = (int(v) for v in seg.auxi[at:at + 4])
            if a_var:
                if self.stale(seg, rb, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, rb)
                self.contribute(ra, _bmm(g, X(seg, rb), nb, mm, nn, kk, False, True))
            if b_var:
                if self.stale(seg, ra, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, ra)
                self.contribute(rb, _bmm(X(seg, ra), g, nb, kk, mm, nn, True, False))
        elif kd == T.SETITEM:
            m = T.index_map(seg.auxi, at)
            if a_var:
                keep = np.ones(int(cols[5][r]), dtype=bool)
                keep[m] = False
                self.contribute(ra, _where(keep, g, 0.0))
            if b_var:
                self.contribute(rb, gather(g, m))
        elif kd == T.FILL:
            if a_var:  # the old value does not reach the output
                self.contribute(ra, _zeros(int(cols[5][ra])))
        elif kd == T.COPY:
            if a_var:
                self.contribute(ra, _zeros(int(cols[5][ra])))
            if b_var:
                self.contribute(rb, g)
        elif kd == T.MASK:
            mask = X(seg, int(cc)) != 0.0
            if a_var:
                self.contribute(ra, _where(mask, g, 0.0))
            if b_var:
                self.contribute(rb, _where(mask, 0.0, g))
        elif kd == T.EXTREME:
            if a_var:
                if self.stale(seg, ra, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, ra)
                x = X(seg, ra)
                ny = int(cols[5][r])
                m = T.group_map(seg.auxi, at, int(cols[5][ra]))
                yg = gather(X(seg, r), m)
                eq = x == yg  # the elements that reach the extreme (max(), min(): nan too)
                if cols[0][r] in (T.MAXALL, T.MINALL):
                    eq = _where(yg != yg, x != x, eq)
                ties = scatter(eq.to(F64), m, ny)
                scale = gather(_where(ties > 0.0, ties, 1.0).reciprocal(), m)
                self.contribute(ra, _where(eq, gather(g, m) * scale, 0.0))
        elif kd == T.PRODUCT:
            if a_var:
                if self.stale(seg, ra, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, ra)
                na = int(cols[5][ra])
                m = T.group_map(seg.auxi, at, na)
                self.contribute(ra, product_backward(g, X(seg, ra), m, int(cols[5][r])))
        elif kd == T.SCAN:
            if a_var:
                outer, length, inner = (int(v) for v in seg.auxi[at:at + 3])
                if o == T.CUMPROD and self.stale(seg, ra, r):
                    raise E._sweep_error(seg, T.ERR_MODIFIED, ra)
                if o == T.CUMSUM:
                    g3 = g.reshape(outer, length, inner)
                    gx = _lib().flip(_lib().flip(g3, (1,)).cumsum(1), (1,))
                    self.contribute(ra, gx.reshape(-1))
                else:
                    self.contribute(ra, cumprod_backward(g, X(seg, ra), outer, length, inner))
        elif kd == T.SOFTMAXES:
            if a_var:
                outer, length, inner = (int(v) for v in seg.auxi[at:at + 3])
                g3 = g.reshape(outer, length, inner)
                y3 = X(seg, r).reshape(outer, length, inner)
                if o == T.SOFTMAX:
                    gx = y3 * (g3 - (g3 * y3).sum(1, keepdim=True))
                else:
                    gx = g3 - y3.exp() * g3.sum(1, keepdim=True)
                self.contribute(ra, gx.reshape(-1))
        elif kd == T.SCATTERADD:
            m = T.index_map(seg.auxi, at)
            if a_var:
                self.contribute(ra, g)
            if b_var:
                self.contribute(rb, gather(g, m))
        elif kd == T.CONCAT:
            auxi = seg.auxi
            pos = at + 1
            for _ in range(int(auxi[at])):
                rj = int(auxi[pos])
                ndim = int(auxi[pos + 1])
                if opc[rj] != T.CONST:
                    self.contribute(rj, gather(g, T.index_map(auxi, pos + 1)))
                pos += 3 + 2 * ndim
        else:
            raise RuntimeError(f"tapegrad: create_graph=True is not supported through "
                               f"{T.GRAD_FN[o] or T.NAMES[o]}")


def unary_backward(o, g, x, y, xv, yv, c, d):
    """The adjoint of the operand of a unary record; x(), y(): operand and output tensors,
    xv, yv: the operand's and the output's values (for the constant masks)."""
    if o in _IDENTITY:
        if o == T.TOCOPY and c == 1.0:  # a float64 -> float32 cast: a float32 gradient
            return g.to(D.float32).to(F64)
        return g
    if o == T.NEG or o == T.RSUBC:
        return -g
    if o == T.EXP:
        return g * y()
    if o == T.LOG:
        return g / x()
    if o == T.SIN or o == T.SINC:
        return g * x().cos()
    if o == T.COS or o == T.COSC:
        return -g * x().sin()
    if o == T.TANH:
        yy = y()
        return g * (1.0 - yy * yy)
    if o == T.SIGMOID:
        yy = y()
        return g * (yy * (1.0 - yy))
    if o == T.RELU:
        return _where(y() <= 0.0, 0.0, g)  # (nan passes g on, as the sweep's)
    if o == T.SQRT:
        return g / (2.0 * y())
    if o == T.ABS:
        return g * x().sign()  # sgn(x) has history in PyTorch too (its derivative is 0)
    if o == T.RECIPROCAL:
        yy = y()
        return -g * (yy * yy)
    if o == T.MULC:
        return g * c
    if o == T.DIVC:
        return g / c
    if o == T.POWC:
        if c == 0.0:
            return _zeros(xv.size)
        return g * (c * x() ** (c - 1.0))
    if o == T.RPOWC:
        with np.errstate(all="ignore"):
            lc = float(np.log(np.float64(c)))
        gy = g * (y() * lc)
        return _where(x() >= 0.0, 0.0, gy) if c == 0.0 else gy
    if o == T.LOG1P:
        return g / (x() + 1.0)
    if o == T.EXPM1:
        return g * (y() + 1.0)
    if o == T.LOG2:
        return g / (x() * _LN2)
    if o == T.LOG10:
        return g / (x() * _LN10)
    if o == T.EXP2:
        return g * (y() * _LN2)
    if o == T.TAN:
        yy = y()
        return g * (1.0 + yy * yy)
    if o == T.SINH:
        return g * x().cosh()
    if o == T.COSH:
        return g * x().sinh()
    if o == T.ASIN:
        xx = x()
        return g * (1.0 - xx * xx).rsqrt()
    if o == T.ACOS:
        xx = x()
        return g * -((1.0 - xx * xx).rsqrt())
    if o == T.ATAN:
        xx = x()
        return g / (xx * xx + 1.0)
    if o == T.ERF:
        xx = x()
        return g * ((-(xx * xx)).exp() * _2_SQRT_PI)
    if o == T.RSQRT:
        yy = y()
        return g * (yy * yy * yy * -0.5)
    if o in _ZERO:
        return _zeros(xv.size)  # PyTorch: zeros_like(grad), no history
    if o == T.LEAKY_RELU:
        return _where(x() > 0.0, g, g * c)
    if o == T.ELU:  # at 0, PyTorch's first derivative is c and its second 0
        xx = x()
        return _where(xx > 0.0, g, _where(xx < 0.0, g * (xx.exp() * c), g * c))
    if o == T.GELU:
        xx = x()
        if c == 0.0:
            cdf = ((xx * (1.0 / _SQRT_2)).erf() + 1.0) * 0.5
            pdf = (xx * xx * -0.5).exp() * _INV_SQRT_2PI
            return g * (cdf + xx * pdf)
        t = ((xx + xx * xx * xx * 0.044715) * _SQRT_2_PI).tanh()
        return g * ((t + 1.0) * 0.5 + xx * 0.5 * (1.0 - t * t) * _SQRT_2_PI
                    * (xx * xx * (3.0 * 0.044715) + 1.0))
    if o == T.SILU:
        xx = x()
        s = xx.sigmoid()
        return g * (s * (xx * (1.0 - s) + 1.0))
    if o == T.SOFTPLUS:
        xc = x() * c
        return _where(xc > d, g, g * xc.sigmoid())
    if o == T.HARDTANH:
        xx = x()
        return _where((xx <= c) | (xx >= d), 0.0, g)
    if o == T.LOGSIGMOID:
        return g * (-x()).sigmoid()
    if o == T.CLAMP:
        xx = x()
        return _where((xx >= c) & (xx <= d), g, 0.0)
    raise RuntimeError(f"tapegrad: create_graph=True is not supported through "
                       f"{T.GRAD_FN[o] or T.NAMES[o]}")


_IDENTITY = frozenset((T.ADDC, T.SUBC, T.CLONE, T.VIEW, T.UNSQUEEZE, T.SQUEEZE, T.REFRESH,
                       T.SQUEEZE0, T.SQUEEZE2, T.ALIAS, T.UNSAFE_VIEW, T.RESHAPE_ALIAS, T.TOCOPY,
                       T.FMODC, T.REMAINDERC))


# derivative zero almost everywhere: PyTorch's zeros_like(grad), no history
_ZERO = frozenset((T.SIGN, T.FLOOR, T.CEIL, T.ROUND, T.TRUNC, getattr(T, "CMPC", -1),
                   getattr(T, "CMP", -1)))


def binary_backward(o, which, g, seg, ra, rb, r, c, p):
    """The adjoint of operand ``which`` (0: a, 1: b) of a binary record."""
    X = p.value
    if o in _ZERO:
        return _zeros(int(seg.cols[5][ra if which == 0 else rb]))
    if o == T.ADD:
        return g
    if o == T.SUB:
        return g if which == 0 else -g
    if o == T.MUL:
        return g * X(seg, rb if which == 0 else ra)
    if o == T.DIV:
        z = X(seg, rb)
        if which == 0:
            return g / z
        return -g * ((X(seg, ra) / z) / z)
    x, z = X(seg, ra), X(seg, rb)
    if o == T.POW:
        if which == 0:
            return _where(z == 0.0, 0.0, g * (z * x ** (z - 1.0)))
        return _where((x == 0.0) & (z >= 0.0), 0.0, g * (X(seg, r) * x.log()))
    if o in (T.MAXIMUM, T.MINIMUM):
        mine, other = (x, z) if which == 0 else (z, x)
        loses = mine < other if o == T.MAXIMUM else mine > other  # (nan: neither)
        return _where(mine == other, g * 0.5, _where(loses, 0.0, g))
    if o == T.ATAN2:
        recip = (x * x + z * z).reciprocal()
        return g * (z * recip) if which == 0 else g * (-x * recip)
    if o == T.FMOD or o == T.REMAINDER:
        if which == 0:
            return g
        q = x / z
        return -g * (q.trunc() if o == T.FMOD else q.floor())  # derivative 0: no x, z terms
    if o == T.LERP:
        return g * (1.0 - c) if which == 0 else g * c
    raise RuntimeError(f"tapegrad: create_graph=True is not supported through "
                       f"{T.GRAD_FN[o] or T.NAMES[o]}")


def _bmm(p, q, nb, m, k, n, tp, tq):
    """Flat (nb, m, n) = op(p) @ op(q), where op transposes the batches of p (tq: of q)
    stored as (nb, k, m) (resp. (nb, n, k)); the batches of p are (nb, m, k) otherwise."""
    if nb * m * n == 0 or k == 0:
        return _zeros(nb * m * n)
    p3 = p.reshape(nb, k, m).transpose(1, 2) if tp else p.reshape(nb, m, k)
    q3 = q.reshape(nb, n, k).transpose(1, 2) if tq else q.reshape(nb, k, n)
    if nb == 1:
        return (p3[0] @ q3[0]).reshape(-1)
    return (p3 @ q3).reshape(-1)


def _others(xg):
    """For rows of xg (B, L): the product of the other elements of the row, exactly (no
    division), differentiably."""
    B, L = xg.shape
    eye = np.broadcast_to(np.eye(L, dtype=bool), (B, L, L))
    return _lib().where(_mask(eye), 1.0, xg.unsqueeze(1).expand(B, L, L)).prod(2)


def product_backward(g, x, m, nout):
    """prod over the groups of the map m (ties, zeros: exact, as PyTorch)."""
    na = m.size
    if na == 0:
        return _zeros(0)
    L = na // max(nout, 1)
    order = np.argsort(m, kind="stable")
    counts = np.bincount(m, minlength=nout)
    if not np.all(counts == L):  # not a reduction over whole dimensions: never made by the library
        raise RuntimeError("tapegrad: create_graph=True through this prod is not supported")
    xg = gather(x, order).reshape(nout, L)
    v = (g.reshape(nout, 1) * _others(xg)).reshape(-1)
    inv = np.empty(na, dtype=np.int64)
    inv[order] = np.arange(na)
    return gather(v, inv)


def cumprod_backward(g, x, outer, length, inner):
    """d y_t / d x_s = prod_{r <= t, r != s} x_r for t >= s: exact with zeros."""
    B, L = outer * inner, length
    if B * L == 0:
        return _zeros(B * L)

    def rows(t):
        return t.reshape(outer, L, inner).permute(0, 2, 1).reshape(B, L)

    x2, g2 = rows(x), rows(g)
    eye = np.broadcast_to(np.eye(L, dtype=bool), (B, L, L))
    xs = _lib().where(_mask(eye), 1.0, x2.unsqueeze(1).expand(B, L, L))
    cp = xs.cumprod(2)  # [b, s, t] = prod_{r <= t, r != s} x_r
    upper = np.broadcast_to(np.triu(np.ones((L, L), dtype=bool)), (B, L, L))
    gx = _lib().where(_mask(upper), cp * g2.unsqueeze(1), 0.0).sum(2)
    return gx.reshape(outer, inner, L).permute(0, 2, 1).reshape(-1)


def _once(fn):
    from .autograd.function import once_differentiable
    global _ONCE_CODE
    if _ONCE_CODE is None:
        _ONCE_CODE = once_differentiable(lambda ctx: None).__code__
    return getattr(fn, "__code__", None) is _ONCE_CODE


_ONCE_CODE = None
_DELAYED = None


def _delayed_error(g, sources):
    """g, with a history (from ``sources``) whose backward raises PyTorch's DelayedError
    message."""
    global _DELAYED
    if _DELAYED is None:
        from .autograd.function import Function

        class DelayedError(Function):
            @staticmethod
            def forward(ctx, x, *sources):
                return x.clone()

            @staticmethod
            def backward(ctx, grad):
                raise RuntimeError("trying to differentiate twice a function that was marked "
                                   "with @once_differentiable")

        _DELAYED = DelayedError
    return _DELAYED.apply(g, *sources)


# ---------------------------------------------------------------- hooks and .grad

def run_hooks(t, g):
    """t's hooks see (and may replace) its gradient, as a tensor with history."""
    grad = shaped(g, t)
    new = grad
    for hook in list(t._x.hooks.values()):
        out = hook(new)
        if out is not None:
            if not isinstance(out, Tensor) or tuple(out.shape) != tuple(grad.shape):
                raise RuntimeError("hook 'hook' has changed the size of value")
            new = out
    return g if new is grad else flat(new)


def accumulate(t, g):
    """PyTorch's AccumulateGrad in grad mode: .grad = clone(g), then .grad = .grad + g."""
    g = shaped(g, t)
    x = _extra(t)
    old = x.grad
    x.grad = g.clone() if old is None else old + g


# ---------------------------------------------------------------- entry point

def run_backward(roots, seeds, retain_graph, capture=None, on_leaf=None):
    """``_engine.run_backward`` for create_graph=True: ``seeds`` are flat float64 tensors
    (they may have history); captured and delivered gradients are flat float64 tensors."""
    st = E.state
    was = st.grad_enabled
    st.grad_enabled = True
    E.sync(st)
    E._running.append(None)
    try:
        with np.errstate(all="ignore"):  # PyTorch's formulas meet inf and nan silently too
            _Pass(bool(retain_graph), capture, on_leaf).run(roots, seeds)
    finally:
        st.grad_enabled = was
        E.sync(st)
        E._running.pop()


def seeds(outputs, grad_outputs, arrays):
    """Flat float64 seed tensors; ``arrays`` are the checked seeds of ``autograd._seeds``."""
    out = []
    for i, a in enumerate(arrays):
        go = None if grad_outputs is None else grad_outputs[i]
        if isinstance(go, Tensor):
            out.append(flat(go))
        else:
            out.append(_const(a))
    return out


def warn_cycle():
    warnings.warn(CYCLE_WARNING, UserWarning, stacklevel=4)
