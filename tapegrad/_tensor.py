"""The Tensor facade: it owns values, validates, computes eagerly and records.

A tensor's value is either a Python float (``_v``: 0-d float64, the scalar fast
path that avoids NumPy's per-call cost) or a NumPy array (``_a``).  Op results
that require grad hold their segment (``_seg``) and record (``_rec``); leaves
and constants cache their LEAF/CONST record per segment and storage version.
Rarely used state (``.grad``, version counter, view base, hooks) lives in a
side object ``_x`` created on demand, so an op result costs seven slot writes.

Views share storage and a version counter ``[version, exported]`` with their
base, as in PyTorch.  A write through any of them bumps the version; a tensor
whose record predates the current version is re-bound on its next use
(AS-STRIDED from its base's current record, or a hidden REFRESH record), so a
value the graph holds never silently disagrees with what the forward computed.
"""
from __future__ import annotations

import builtins
import functools
import gc
import itertools
import math
import operator
import struct
import sys
import threading
import warnings
import weakref

import numpy as np

from . import _config
from . import _dtype as D
from . import _engine as E
from . import _tape as T
from ._format import format_tensor

state = E.state
_new = object.__new__
_NUMBER = (builtins.int, builtins.float, builtins.bool)
_grad_lock = threading.Lock()


class _Extra:
    # (Tensor.__getitem__ makes an element's inline: a field added here is set there too)
    __slots__ = ("grad", "lc", "vc", "rver", "base", "retain", "hooks", "alias", "elem", "elems")

    def __init__(self, vc=None, base=None, alias=None, elem=None):
        self.grad = None
        self.lc = None  # (segment id, LEAF/CONST record, version) of a leaf or constant
        self.vc = vc if vc is not None else [0, False]  # [version, storage exported]
        self.rver = self.vc[0]  # version at which _rec became valid
        self.base = base  # the tensor this one views; detach()/.data share vc but no base
        self.retain = False
        self.hooks = None
        # (tensor, is .data): the tensor whose storage this one shares without its history
        self.alias = alias
        # a fast-path scalar element (Tensor.__getitem__): (1-d owner, index) it views
        self.elem = elem
        # on a root: weak references to its live fast-path elements, refreshed on writes
        self.elems = None


def _extra(t):
    x = t._x
    if x is None:
        x = t._x = _Extra()
    return x


def _view_extra(t):
    """The side object of a view of t: t's version counter, and t's root as its base."""
    x = _extra(t)
    return _Extra(x.vc, t if x.base is None else x.base)  # positional: ~0.15 us less


class Size(tuple):
    """``torch.Size``: a tuple that prints as ``torch.Size([2, 3])``."""

    def __repr__(self) -> str:
        return f"torch.Size([{', '.join(str(d) for d in self)}])"

    def numel(self) -> int:
        return math.prod(self)


# ---------------------------------------------------------------- construction

def _leaf(a: np.ndarray, dt, requires_grad=False, shared=False):
    """A leaf tensor owning (or, with ``shared``, sharing) the array ``a``."""
    t = _new(Tensor)
    if dt is D.float64 and a.ndim == 0 and not shared:
        t._v = float(a)
        t._a = None
    else:
        t._v = None
        t._a = a
    t._dt = dt
    t._rg = False
    t._seg = None
    t._rec = -1
    t._x = None
    if shared:
        _extra(t).vc[1] = True
    if requires_grad:
        _require_float_grad(dt)
        t.requires_grad_(True)
    return t


def _result(value, dt, seg=None, rec=-1):
    """An op result: a non-leaf when ``seg`` is given."""
    t = _new(Tensor)
    if value.__class__ is float:
        t._v = value
        t._a = None
    elif dt is D.float64 and value.ndim == 0:
        t._v = float(value)
        t._a = None
    else:
        t._v = None
        t._a = value
    t._dt = dt
    t._rg = seg is not None
    t._seg = seg
    t._rec = rec
    t._x = None
    return t


_F64 = D.float64
_ADD_REDUCE = np.add.reduce
_LIMIT = E.STAGE_LIMIT
_ARR = T.ARR
_SIDE = T.SIDE
_DOT = np.dot
_ROTATE_VALUES = _config.ROTATE_VALUES


# _scalar_c and _scalar_b build their result inline rather than through _result: they are the
# hottest path of the library (one call per 0-d op) and a call costs ~10% of the op.
def _scalar_c(op, x, c, v):
    """Result v of op on the fast-path scalar x and the Python number c."""
    if x._rg:
        seg = state.rec  # (the recording segment: None under no_grad)
        if seg is not None:
            r = seg.nrec
            xx = x._x
            if x._seg is seg and r < seg.limit and (xx is None or xx.rver == xx.vc[0]):
                seg.nrec = r + 1
                stage = seg.stage
                stage.extend((op, x._rec, c, v))
                if len(stage) >= _LIMIT:
                    seg.flush()
            else:
                seg = None  # release it: segment_full checks that no tensor holds the old one
                seg = E.current()
                r = seg.record(op, _ref(seg, x), -1, builtins.float(c), v)
            t = _new(Tensor)
            t._v = v
            t._a = None
            t._dt = _F64
            t._rg = True
            t._seg = seg
            t._rec = r
            t._x = None
            return t
    return _result(v, _F64)


def _scalar_b(op, x, y, v):
    """Result v of the binary op on two fast-path scalars."""
    if x._rg or y._rg:
        seg = state.rec
        if seg is not None:
            r = seg.nrec
            xx = x._x
            yx = y._x
            if (x._seg is seg and y._seg is seg and r < seg.limit
                    and (xx is None or xx.rver == xx.vc[0])
                    and (yx is None or yx.rver == yx.vc[0])):
                seg.nrec = r + 1
                stage = seg.stage
                stage.extend((op, x._rec, y._rec, v))
                if len(stage) >= _LIMIT:
                    seg.flush()
            else:
                seg = None  # release it: segment_full checks that no tensor holds the old one
                seg = E.current()
                ra = _ref(seg, x)
                r = seg.record(op, ra, _ref(seg, y), 0.0, v)
            t = _new(Tensor)
            t._v = v
            t._a = None
            t._dt = _F64
            t._rg = True
            t._seg = seg
            t._rec = r
            t._x = None
            return t
    return _result(v, _F64)


def _f64_result(seg, op, ra, third, y, dt=_F64, written=False):
    """The recorded result y (a C-contiguous array of dtype dt, float64 or float32) of op in
    the current segment: Segment.record's compact form (op + ARR: y's values copied into the
    float64 arena, ``third`` the unary op's constant or the binary op's second record) and
    _result, inline, ~0.4 us less per op on small arrays; one element takes Segment.record.
    A value of DEFER_MIN or more elements that op's backward does not read is left uncopied
    (Segment.defer)."""
    o = seg.nbulk
    m = y.size
    if 1 < m:
        if o + m > len(seg.bulk):
            seg._grow_bulk(o + m)
        r = seg.nrec
        seg.nrec = r + 1
        seg.nbulk = o + m
        if written:  # (its caller wrote y's values there: _rows_f64)
            pass
        elif m < _DEFER_MIN or _SAVES_OUT[op] or state.tracing is not None:
            seg.bulk[o:o + m] = y if y.ndim == 1 else y.reshape(-1)
        else:
            seg.defer(r, o, y)
        stage = seg.stage
        stage.extend((op + _ARR, ra, third, m))
        if len(stage) >= _LIMIT:
            seg.flush()
    elif T.IS_UNARY[op]:
        r = seg.record(op, ra, -1, third, y)
    else:
        r = seg.record(op, ra, third, 0.0, y)
    if m == 1:  # as _result: a one-element float64 value is a fast-path float when 0-d
        return _result(y, dt, seg, r)
    t = _new(Tensor)
    t._v = None
    t._a = y
    t._dt = dt
    t._rg = True
    t._seg = seg
    t._rec = r
    t._x = None
    return t


def _current():
    """The segment ops record into (E.current(), its common case inline), or None under
    no_grad: one per-thread read (state.rec), where grad_enabled and seg were two."""
    seg = state.rec
    if seg is not None and (seg.nrec >= seg.limit or seg.nbulk > _ROTATE_VALUES):
        seg = None  # (segment_full counts the references to it)
        return E.current()
    return seg


# --- lazily computed results ------------------------------------------------------------------
# A recorded op on small float64 arrays (+ - * of one shape, + - * / with a number, negation,
# tanh, sin, cos: _LAZY_MAX) does not compute its value: it reserves the value's place in the
# arena and stages its record as op + LAZY, and the compiled flush computes the values there
# (from its operands' values, already in the arena), 2 048 records at a time or when something
# needs them.  Its result is a _Lazy tensor, which knows its shape and gets its own array (a
# copy of the arena's values) when anything reads _a.  A chain of such ops costs Python only
# the staging and the Tensor: NumPy's call, its result array and the copy into the arena
# (~2 us of the ~3 us an op on 16 elements took) are gone.  The values are the eager
# forward's, bit for bit (_tape._lazy_arith, _tape._lazy_trig).  A tensor keeps its segment,
# whose arrays live until the segment's last tensor dies, so the values are there whenever
# it asks.

def _lazy_limits():
    limits = [0] * len(T.OPS)
    if _config.LAZY:
        for op in (*T.LAZY_UNARY, *T.LAZY_BINARY):
            limits[op] = _config.LAZY_ARITH
        limits[T.TANH] = _config.LAZY_TANH
        limits[T.SIN] = limits[T.COS] = 127  # from 128 elements: SINC, COSC (_trig_recorded)
    return tuple(limits)


_LAZY_MAX = _lazy_limits()
_DEFER_MIN = _config.DEFER_MIN  # (_f64_result: Segment.defer)
_SAVES_OUT = T.SAVES_OUT


def _lazy_big(defer_min):
    """Per op, the size from which _lazy calls _lazy_too_big: past _LAZY_MAX, or from
    defer_min (an operand's value may be deferred).  One comparison, as before deferral."""
    return tuple(min(k + 1, defer_min) for k in _LAZY_MAX)


_LAZY_BIG = _lazy_big(_DEFER_MIN)


def _lazy_too_big(seg, op, m):
    """Whether m elements are too many for a lazy op; if not, copy the segment's deferred
    values first (Segment.defer): the flush computes the op from its operands' values in the
    arena, maybe after writes to their arrays."""
    if m > _LAZY_MAX[op]:
        return True
    if seg.unsaved:
        seg.save_all()
    return False


_ADD, _SUB, _MUL = T.ADD, T.SUB, T.MUL
_LAZY_TRIG = (T.TANH, T.SIN, T.COS)
_ADDC, _SUBC, _RSUBC, _MULC, _DIVC = T.ADDC, T.SUBC, T.RSUBC, T.MULC, T.DIVC
# A lazy record read while fewer than _LAZY_PAYS lazy records are staged (code that reads
# each result soon, as a loop that tests y.norm() after each y = y * 2): the next
# _LAZY_PAUSE records of that segment are computed at once.  Reading one costs more than
# computing it at once (a NumPy call, or a flush: ~2-3 us), so laziness pays only when
# several lazy records are computed per read.
_LAZY_PAYS = 8
_LAZY_PAUSE = 512
_LAZYBIT = T.LAZY


def _lazy(op, x, y, c):
    """op of x (with the constant c), or x op y (+ - * of float64 arrays of one shape),
    recorded lazily when x is a float64 array of 2 to _LAZY_MAX[op] elements; None when it
    may not be (the caller checked that an operand requires grad).  One function,
    everything inline: it is most of such an op's cost."""
    seg = state.rec
    if seg is None:
        return None
    r = seg.nrec
    if r < seg.lazy_off:
        return None  # (paused: the common refusal; a trace's segment is always paused)
    if r >= seg.limit or seg.nbulk > _ROTATE_VALUES:
        seg = E.current()
    if x.__class__ is _Lazy:
        sm = _A_GET(x)
        if sm.__class__ is not tuple:
            return None  # (just made by another thread)
        m = sm[1]
        xx = x._x  # (a lazy view, or the base of one: its record must be current)
        if m >= _LAZY_BIG[op] and _lazy_too_big(seg, op, m):
            return None
        if x._seg is not seg or xx is not None and xx.rver != xx.vc[0]:
            return None  # (the eager path reads its value and checks its version)
        shape = sm[0]
        ra = x._rec
        xk = None  # (lazy operands are not kept: chains of them would hold every link)
    else:
        a = x._a
        if a is None or a.dtype is not _F64NP:
            return None
        m = a.size
        if m >= _LAZY_BIG[op] and _lazy_too_big(seg, op, m) or m < 2:
            return None
        shape = a.shape
        ra = -1
        xk = x
    yk = None
    if y is not None:
        if y.__class__ is _Lazy:
            sy = _A_GET(y)
            yx = y._x
            if (sy.__class__ is not tuple or sy[0] != shape or y._seg is not seg
                    or yx is not None and yx.rver != yx.vc[0]):
                return None
            c = y._rec
        else:
            b = y._a
            if b is None or b.dtype is not _F64NP or b.shape != shape:
                return None
            c = y._rec if y._seg is seg and y._x is None else _ref(seg, y)
            yk = y
    if ra < 0:
        ra = x._rec if x._seg is seg and x._x is None else _ref(seg, x)
    o = seg.nbulk
    if o + m > len(seg.bulk):
        seg._grow_bulk(o + m)
    seg.nbulk = o + m
    sm = (shape, m, o, xk, yk)
    r = seg.nrec  # (again: _ref may have recorded, current() may have rotated)
    seg.nrec = r + 1
    seg.nlazy += 1
    stage = seg.stage
    stage.extend((op + _LAZYBIT, ra, c, m))  # c: the constant, or y's record
    if len(stage) >= _LIMIT:
        seg.flush()
    t = _new(_Lazy)
    t._v = None
    _A_SET(t, sm)
    t._dt = _F64
    t._rg = True
    t._seg = seg
    t._rec = r
    t._x = None
    return t


_LAZY_BROADCAST = T.BROADCAST + T.LAZY + T.ELEM


def _lazy_scalar(op, x, y):
    """x op y (+ - *) for a fast-path scalar and a float64 array of 2 to _LAZY_MAX[op]
    elements, in either order, recorded lazily: a BROADCAST of the scalar (a lazy row whose
    values the flush fills in, _tape._lazy_gather) and the op on two arrays of one shape, as
    the eager path records them (_operand); None when it may not be.  A coefficient times a
    constant vector (llsq_obj's x[i] * t ** i) cost ~5.6 us eagerly: a NumPy call, its
    result array, and the broadcast values and the result copied into the arena."""
    seg = state.rec
    if seg is None:
        return None
    r = seg.nrec
    if r < seg.lazy_off:
        return None
    if r >= seg.limit or seg.nbulk > _ROTATE_VALUES:
        seg = E.current()
    if x._v is not None:
        s, t = x, y
    else:
        s, t = y, x
    if t.__class__ is _Lazy:
        sm = _A_GET(t)
        if sm.__class__ is not tuple:
            return None
        tx = t._x
        if t._seg is not seg or tx is not None and tx.rver != tx.vc[0]:
            return None
        m = sm[1]
        if m >= _LAZY_BIG[op] and _lazy_too_big(seg, op, m):
            return None
        shape = sm[0]
        rt = t._rec
    else:
        a = t._a
        if a is None or a.dtype is not _F64NP:
            return None
        m = a.size
        if m < 2 or m >= _LAZY_BIG[op] and _lazy_too_big(seg, op, m):
            return None
        shape = a.shape
        rt = t._rec if t._seg is seg and t._x is None else _ref(seg, t)
    rs = _ref(seg, s)
    at = seg.shared_aux(_broadcast_map((), shape))
    o = seg.nbulk
    if o + m + m > len(seg.bulk):
        seg._grow_bulk(o + m + m)
    seg.nbulk = o + m + m
    rb = seg.nrec  # (again: _ref may have recorded, current() may have rotated)
    seg.nrec = rb + 2
    seg.nlazy += 2
    if op == _MUL:  # (the product saves the broadcast: as _operand)
        seg.views.setdefault(rs, []).append(rb)
    stage = seg.stage
    if s is x:
        stage.extend((_LAZY_BROADCAST, rs, at, m, op + _LAZYBIT, rb, rt, m))
    else:
        stage.extend((_LAZY_BROADCAST, rs, at, m, op + _LAZYBIT, rt, rb, m))
    if len(stage) >= _LIMIT:
        seg.flush()
    return _lazy_tensor(seg, rb + 1, (shape, m, o + m, None, None), None)


def _lazy_value(t):
    """The _a of a _Lazy tensor: its array, made from the arena's values on first use; the
    tensor is a plain Tensor from then on.  A record still staged whose operands' arrays
    hold their records' values (_settled) is computed here with NumPy, as the eager path
    would have (a flush costs ~2 us: the staged list packed, a compiled call with a dozen
    arrays); otherwise the flush computes every lazy record staged so far.  Under the
    segment's lock: another thread may be flushing it, or making this same value."""
    sm = _A_GET(t)
    if sm.__class__ is not tuple:
        return sm  # (made by another thread, whose __class__ assignment is still to come)
    if len(sm) == 6:  # a lazy view: a view of its root's array, made outside the lock (the
        return _lazy_view_value(t, sm)  # root may be lazy too)
    seg = t._seg
    with seg.lock:
        sm = _A_GET(t)
        if sm.__class__ is not tuple:
            return sm
        a = None
        k = (t._rec - seg.nflushed) * 4
        if k >= 0:  # still staged: read soon after it was made
            if seg.nlazy < _LAZY_PAYS:  # too soon for laziness to pay: none for a while
                seg.lazy_off = seg.nrec + _LAZY_PAUSE
            if sm[3] is not None:
                a = _lazy_now(seg, k, sm)
        if a is None:
            seg.flush_locked()  # computes every lazy record staged so far
            o = sm[2]
            a = seg.bulk[o:o + sm[1]].copy()
            if len(sm[0]) != 1:
                a = a.reshape(sm[0])
        _A_SET(t, a)
        t.__class__ = Tensor
    return a


def _lazy_view_value(t, sm):
    """The _a of a lazy slice: a view of its root's array (PyTorch's view: writes through
    either reach the other), the root's value read first."""
    root, start, step = sm[5]
    ra = root._a
    m = sm[1]
    a = ra[start:start + (m - 1) * step + 1:step]
    with t._seg.lock:
        if _A_GET(t).__class__ is tuple:
            _A_SET(t, a)
            t.__class__ = Tensor
    return _A_GET(t)


def _lazy_slice(t, index):
    """t[index] for a lazy 1-d t and a slice with a positive step, recorded lazily: a SLICE
    row the flush gathers (op + LAZY + ELEM, its map in aux), and a lazy view whose read
    views its root's array; None when it may not be (paused, another segment, t's record
    stale, fewer than 2 elements)."""
    seg = state.rec
    if seg is None:
        return None
    r = seg.nrec
    if (r < seg.lazy_off or t._seg is not seg or r >= seg.limit
            or seg.nbulk > _ROTATE_VALUES):
        return None
    sm = _A_GET(t)
    if sm.__class__ is not tuple or len(sm[0]) != 1:
        return None
    if not (index.step is None or index.step.__class__ is builtins.int and index.step > 0):
        return None
    x = t._x
    if x is not None and x.rver != x.vc[0]:
        return None
    start, stop, step = index.indices(sm[1])
    m = len(range(start, stop, step))
    if m < 2:
        return None
    if len(sm) == 6:  # a view of a view: of the same root, the maps composed
        root, rstart, rstep = sm[5]
        rstart, rstep = rstart + start * rstep, step * rstep
    else:
        root, rstart, rstep = t, start, step
    if x is None:
        x = _extra(t)
    return _stage_lazy_slice(seg, t._rec, x, start, m, step, root, rstart, rstep)


def _stage_lazy_slice(seg, ra, x, start, m, step, root, rstart, rstep):
    """Stage record ra's elements start, start + step, ... (m of them) as a lazy SLICE row
    (op + LAZY + ELEM: the flush gathers them, _tape._lazy_gather) and return its lazy view,
    whose first read views root's array from rstart by rstep.  ``x``: the sliced tensor's side
    object (the view shares its version counter and its base)."""
    at = seg.shared_aux((1, start, m, step))
    o = seg.nbulk
    if o + m > len(seg.bulk):
        seg._grow_bulk(o + m)
    seg.nbulk = o + m
    v = seg.nrec
    seg.nrec = v + 1
    seg.nlazy += 1
    stage = seg.stage
    stage.extend((_LAZY_VIEW_SLICE, ra, at, m))
    if len(stage) >= _LIMIT:
        seg.flush()
    views = seg.views.get(ra)
    if views is None:
        seg.views[ra] = [v]  # (_flag_views)
    else:
        views.append(v)
    return _lazy_tensor(seg, v, ((m,), m, o, None, None, (root, rstart, rstep)),
                        _Extra(x.vc, root if x.base is None else x.base))


def _lazy_cat(tensors):
    """cat of 1-d float64 tensors, one of them lazy, recorded lazily (a CAT row the flush
    gathers); None when it may not be.  One pass over the parts builds the map; a part not
    recorded in this segment at its current version is bound after the checks (_ref)."""
    seg = state.rec
    if seg is None:
        return None
    r = seg.nrec
    if r < seg.lazy_off or r >= seg.limit or seg.nbulk > _ROTATE_VALUES:
        return None
    grad = False
    unbound = False
    aux = [len(tensors)]
    total = 0
    for t in tensors:
        c = t.__class__
        if c is _Lazy:
            sm = _A_GET(t)
            x = t._x
            if (sm.__class__ is not tuple or len(sm[0]) != 1 or t._seg is not seg
                    or x is not None and x.rver != x.vc[0]):
                return None
            m = sm[1]
            rt = t._rec
        elif c is Tensor:
            a = t._a
            if a is None or a.ndim != 1 or a.dtype is not _F64NP or not a.shape[0]:
                return None
            m = a.shape[0]
            x = t._x
            if t._seg is seg and (x is None or x.rver == x.vc[0]):
                rt = t._rec  # (_ref's first case, inline)
            else:
                rt = t
                unbound = True
        else:
            return None
        if t._rg:
            grad = True
        aux += (rt, 1, total, m, 1)
        total += m
    if not grad or total > _LAZY_ARITH:
        return None
    if seg.unsaved:
        seg.save_all()  # (the flush gathers the parts' values from the arena)
    if unbound:
        for k in range(1, len(aux), 5):
            t = aux[k]
            if t.__class__ is not int:
                aux[k] = _ref(seg, t)
    at = seg.add_aux(aux)
    o = seg.nbulk
    if o + total > len(seg.bulk):
        seg._grow_bulk(o + total)
    seg.nbulk = o + total
    v = seg.nrec  # (again: _ref may have recorded)
    seg.nrec = v + 1
    seg.nlazy += 1
    stage = seg.stage
    stage.extend((_LAZY_VIEW_CAT, -1, at, total))
    if len(stage) >= _LIMIT:
        seg.flush()
    return _lazy_tensor(seg, v, ((total,), total, o, None, None), None)


_LAZY_ARITH = _config.LAZY_ARITH


def _lazy_tensor(seg, r, sm, x):
    """The _Lazy result of record r of seg (_lazy builds its own inline: its hot path)."""
    t = _new(_Lazy)
    t._v = None
    _A_SET(t, sm)
    t._dt = _F64
    t._rg = True
    t._seg = seg
    t._rec = r
    t._x = x
    return t


_LAZY_VIEW_SLICE = T.SLICE + T.LAZY + T.ELEM
_LAZY_VIEW_CAT = T.CAT + T.LAZY + T.ELEM


def _settled(t, seg, r):
    """t's array if it holds the values of record r of seg (t's record unchanged since, or a
    leaf's or constant's cached record at its current version), else None.  Writes through
    views, detach() and in-place ops bump the version; numpy() makes it untrackable; writes
    through .data also update the arena's copy of t's current record."""
    if t.__class__ is _Lazy:
        return None
    x = t._x
    if t._seg is seg:
        if t._rec != r or (x is not None and (x.rver != x.vc[0] or x.vc[1])):
            return None
    elif t._seg is not None or x is None:
        return None
    else:
        lc = x.lc
        if lc is None or lc[0] != seg.id or lc[1] != r or lc[2] != x.vc[0] or x.vc[1]:
            return None
    a = t._a
    return a if a is not None and a.dtype is _F64NP else None


def _lazy_now(seg, k, sm):
    """The value of the lazy record staged at seg.stage[k] computed with NumPy from its
    operands' arrays, or None if they may differ from the values the flush would read.
    The record is then staged as a plain array record whose values are in the arena."""
    stage = seg.stage
    op = stage[k] - _LAZYBIT
    if op < 0:
        return None  # (computed already)
    xa = _settled(sm[3], seg, stage[k + 1])
    if xa is None:
        return None
    y = sm[4]
    if T.ADD <= op <= T.MUL:
        if y is None:
            return None
        ya = _settled(y, seg, stage[k + 2])
        if ya is None or ya.shape != xa.shape:
            return None
        token = _quiet_on(_IGNORE)
        try:
            a = _NP_BINARY[op](xa, ya)
        finally:
            _quiet_off(token)
    elif op == T.SIN or op == T.COS:
        a = _sin_cos(xa, op == T.COS)
    elif op == T.TANH:
        a = _tanh(xa)
    elif op == T.NEG:
        a = np.negative(xa)
    elif op == T.POWC:  # (x ** 2: the only power staged lazily)
        a = _quiet(np.square, xa)
    else:
        c = stage[k + 2]
        token = _quiet_on(_IGNORE)
        try:
            a = np.subtract(c, xa) if op == T.RSUBC else _NP_CONST[op](xa, c)
        finally:
            _quiet_off(token)
    if a.shape != sm[0]:
        return None
    if not a.flags.c_contiguous:
        a = np.ascontiguousarray(a)
    o = sm[2]
    seg.bulk[o:o + sm[1]] = a.reshape(-1)
    stage[k] = op + _ARR
    return a


def _lazy_set(t, a):
    _A_SET(t, a)
    t.__class__ = Tensor


def _val(t) -> np.ndarray:
    """t's value as an array (a temporary for fast-path scalars)."""
    a = t._a
    return a if a is not None else np.array(t._v)


def _storage(t) -> np.ndarray:
    """t's canonical array; a fast-path scalar becomes array-backed for good (an element of
    another tensor becomes a view of it)."""
    a = t._a
    if a is None:
        x = t._x
        if x is not None and x.elem is not None:
            _as_view(t)
            return t._a
        a = t._a = np.array(t._v)
        t._v = None
    return a


_F64NP = np.dtype(np.float64)


def _val64(t):
    """t's value for the tape: a float, or an array (Segment.record converts to float64)."""
    v = t._v
    return v if v is not None else t._a


def _out(a, dt):
    """Make a NumPy result a C-contiguous array of dtype dt."""
    if a.__class__ is not np.ndarray:
        a = np.asarray(a)  # a ufunc on 0-d arrays returns a NumPy scalar
    if a.dtype is not dt.np:  # a cast: 1e308 to float32, nan to int64 warn in NumPy only
        a = _quiet(np.asarray, a, dt.np, "C")
    elif not a.flags.c_contiguous:
        a = np.array(a, order="C")
    return a


# ---------------------------------------------------------------- recording

def _traced(t) -> bool:
    """t is a value of a function being traced (tapegrad.trace): Python reading it outside
    the tape must become a guard or be refused, or a replay would reuse a stale value."""
    return t._rg and state.tracing is not None


def _untraced(t, what):
    """Refuse, while tracing, an op whose result a replay could not recompute."""
    if isinstance(t, Tensor) and t._rg and state.tracing is not None:
        state.tracing.refuse(what)


def _recording(*ts) -> bool:
    if not state.grad_enabled:
        return False
    for t in ts:
        if isinstance(t, Tensor) and t._rg:
            return True
    return False


def _ref(seg, t) -> int:
    """The record in ``seg`` that holds t's current value."""
    x = t._x
    if t._seg is seg and (x is None or x.rver == x.vc[0]):
        return t._rec
    return _bind(seg, t)


def _bind(seg, t) -> int:
    x = t._x
    s = t._seg
    if s is None:
        x = _extra(t)
        ver = x.vc[0]
        lc = x.lc
        if lc is not None and lc[0] == seg.id and lc[2] == ver and not x.vc[1]:
            return lc[1]
        if t._rg:
            rec = seg.record(T.LEAF, -1, -1, 0.0, _val64(t))
            seg.leaves[rec] = t
        else:
            rec = seg.record(T.CONST, -1, -1, 0.0, _val64(t))
            seg.nconst += 1
            seg.bound.append((rec, x.vc, ver, t._dt, () if t._a is None else t._a.shape))
        x.lc = (seg.id, rec, ver)
        return rec
    if x is not None and x.rver != x.vc[0]:
        return _rebind_view(seg, t)
    if s.dead:
        return seg.record(T.DEAD, -1, -1, 0.0, _val64(t))
    rec = seg.record(T.IMPORT, -1, -1, 0.0, _val64(t))
    seg.imports[rec] = t
    return rec


def _rebind_view(seg, t) -> int:
    """t's storage was written since its record: record its current value anew."""
    x = t._x
    _as_view(t)  # a fast-path element first becomes a real view of its owner
    base = x.base
    if base is not None and (base._rg or base._seg is not None):
        rb = _ref(seg, base)
        rec = seg.record(T.ASSTRIDED, rb, -1, 0.0, _val64(t), seg.add_aux(_view_map(base, t)))
    else:
        s = t._seg
        old = t._rec if s is seg else (seg.record(T.DEAD, -1, -1, 0.0, _val64(t)) if s.dead else
                                       _import(seg, t))
        rec = seg.record(T.REFRESH, old, -1, 0.0, _val64(t))
    t._seg = seg
    t._rec = rec
    t._rg = True
    x.rver = x.vc[0]
    return rec


def _import(seg, t):
    rec = seg.record(T.IMPORT, -1, -1, 0.0, _val64(t))
    seg.imports[rec] = t
    return rec


def _view_map(base, t):
    """t's elements as offsets into base's C-ordered elements (strided map)."""
    ba = _storage(base)
    ta = _storage(t)
    if not ba.flags.c_contiguous:
        raise RuntimeError("tapegrad: in-place writes through views need a contiguous base tensor")
    isz = ba.itemsize
    off = (ta.__array_interface__["data"][0] - ba.__array_interface__["data"][0]) // isz
    strides = [s // isz for s in ta.strides]
    lo = off + sum(st * (n - 1) for st, n in zip(strides, ta.shape) if st < 0 and n)
    hi = off + sum(st * (n - 1) for st, n in zip(strides, ta.shape) if st > 0 and n)
    if ta.size and (lo < 0 or hi >= ba.size):  # never hand the sweep an out-of-range map
        raise RuntimeError("tapegrad: internal error: a view does not lie inside its base")
    return [ta.ndim, off, *ta.shape, *strides]


def _operand(seg, t, shape, op=-1) -> int:
    """Record of t broadcast to ``shape`` (a hidden BROADCAST record when needed), an operand
    of ``op``.  The BROADCAST's values are written into the arena unless ``op`` is + or -:
    their adjoints never read operand values, and the BROADCAST is that op's alone (a bias
    added to a batch: writing 4096 broadcast values cost ~12 us, more than the add).  A trace
    writes them all: its constant folding (_trace_opt) reads recorded values."""
    r = _ref(seg, t)
    a = t._a
    tshape = () if a is None else a.shape
    if tshape == shape:
        return r
    m = math.prod(shape)
    if m == 1:
        v = seg.record(T.BROADCAST, r, -1, 0.0, np.broadcast_to(_val64(t), shape),
                       seg.shared_aux(_broadcast_map(tshape, shape)))
    else:
        v = seg.record_broadcast(r, _val64(t), shape, m,
                                 seg.shared_aux(_broadcast_map(tshape, shape)),
                                 not (op == T.ADD or op == T.SUB) or state.tracing is not None)
    if not (op == T.ADD or op == T.SUB):
        # op saves the broadcast copy, which is t's value to PyTorch: a write to t before
        # backward makes it stale as well (_flag_views), and backward raises PyTorch's error
        seg.views.setdefault(r, []).append(v)
    return v


def _c_strides(shape):
    strides = [0] * len(shape)
    acc = 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc
        acc *= shape[d]
    return strides


@functools.lru_cache(maxsize=1024)
def _broadcast_map(src, dst):
    """The strided map of src broadcast to dst (shapes as tuples; a tuple, shared)."""
    lead = len(dst) - len(src)
    cs = _c_strides(src)
    strides = [0] * len(dst)
    for d in range(len(src)):
        if src[d] != 1 or dst[lead + d] == 1:
            strides[lead + d] = cs[d]
    return (len(dst), 0, *dst, *strides)


@functools.lru_cache(maxsize=1024)
def _broadcast2(s, t):
    """broadcast_shapes(s, t) for two shapes (tuples), the operators' case."""
    if s == t:
        return s
    ls, lt = len(s), len(t)
    if ls != lt:
        if ls < lt:
            s = (1,) * (lt - ls) + tuple(s)
        else:
            t = (1,) * (ls - lt) + tuple(t)
    out = []
    for j, (a, b) in enumerate(zip(s, t)):
        if a == b or b == 1:
            out.append(a)
        elif a == 1:
            out.append(b)
        else:  # PyTorch names the two operands "a" and "b"
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) "
                               f"at non-singleton dimension {j}")
    return tuple(out)


def broadcast_shapes(*shapes):
    """``torch.broadcast_shapes``: the shape the given shapes (or ints) broadcast to, with
    PyTorch's errors (right-aligned, in order: the mismatch names the first argument that
    cannot broadcast to the shape of those before it)."""
    shapes = tuple((s,) if isinstance(s, int) else s for s in shapes if s is not None)
    for s in shapes:
        if not isinstance(s, (tuple, list)):
            raise RuntimeError("Input shapes should be of type ints, a tuple of ints, or a list "
                               f"of ints, got {s}")
    out = [1] * max((len(s) for s in shapes), default=0)
    for k, s in enumerate(shapes):
        for i in range(-1, -1 - len(s), -1):
            d = s[i]
            if d == out[i]:
                continue
            if out[i] == 1:
                if d < 0:
                    raise ValueError("Attempting to broadcast a dimension with negative length!")
                out[i] = d
            if d != 1 and out[i] != d:
                raise RuntimeError(
                    f"Attempting to broadcast a dimension of length {d} at {i}! Mismatching "
                    f"argument at index {k} had {s}; but expected shape should be broadcastable "
                    f"to {out}")
    return Size(out)


def _broadcast_shapes(*shapes):
    """The shape tensors of these shapes broadcast to, with the operators' error."""
    if len(shapes) == 2:
        return _broadcast2(tuple(shapes[0]), tuple(shapes[1]))
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        for i, d in enumerate(s):
            j = ndim - len(s) + i
            if out[j] == 1:
                out[j] = d
            elif d != 1 and d != out[j]:
                # PyTorch names the first two operands "a" and "b"
                raise RuntimeError(
                    f"The size of tensor a ({out[j]}) must match the size of tensor b ({d}) at "
                    f"non-singleton dimension {j}")
    return tuple(out)


def _record_result(op, value, dt, operands, c=0.0, aux_ints=None, shape=None):
    """Record op over ``operands`` (one or two tensors, broadcast to ``shape`` if given)."""
    seg = E.current()
    if shape is None:
        ra = _ref(seg, operands[0])
        rb = _ref(seg, operands[1]) if len(operands) > 1 else -1
    else:
        ra = _operand(seg, operands[0], shape, op)
        rb = _operand(seg, operands[1], shape, op)
    aux = -1 if aux_ints is None else seg.add_aux(aux_ints)
    rec = seg.record(op, ra, rb, c, value, aux)
    return _result(value, dt, seg, rec)


# ---------------------------------------------------------------- op helpers

def _require_float_grad(dt):
    if not dt.is_floating_point:
        raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")


_INT_STAYS = frozenset((T.NEG, T.ABS, T.RELU, T.SIGN))


def _quiet_set(_ignore):
    """The fallback of ``_quiet_on``: warnings off, returning what restores them."""
    state = np.errstate(all="ignore")
    state.__enter__()
    return state


def _quiet_reset(state):
    state.__exit__(None, None, None)


try:  # np.errstate(all="ignore") without its ~1.5 us: the context variable it sets, set
    from numpy._core.umath import _extobj_contextvar as _EXTOBJ  # directly (NumPy >= 2)
    from numpy._core.umath import _make_extobj
    _IGNORE = _make_extobj(all="ignore")
    _quiet_on, _quiet_off = _EXTOBJ.set, _EXTOBJ.reset
except (ImportError, AttributeError, TypeError):  # another NumPy: the public way
    _IGNORE = None
    _quiet_on, _quiet_off = _quiet_set, _quiet_reset


def _make_quiet(on, off, ignore):
    def quiet(fn, *args):
        """fn(*args) with NumPy's floating-point warnings off, as PyTorch is silent.  The
        hottest paths (+ - * on float64 arrays) inline it: token = _quiet_on(_IGNORE), the op,
        then _quiet_off(token) in a finally clause (~0.2 us; this call ~0.45)."""
        token = on(ignore)
        try:
            return fn(*args)
        finally:
            off(token)
    return quiet


_quiet = _make_quiet(_quiet_on, _quiet_off, _IGNORE)

# ops whose NumPy forms warn on domain errors/overflow (+ - * too: 1e308 * 10, inf - inf),
# where PyTorch is silent
_MAY_WARN = frozenset((T.EXP, T.LOG, T.SQRT, T.RECIPROCAL, T.DIV, T.POW, T.DIVC, T.POWC,
                       T.ADD, T.SUB, T.MUL, T.ADDC, T.SUBC, T.RSUBC, T.MULC,
                       T.SIN, T.COS, T.FMOD, T.FMODC, T.REMAINDER, T.REMAINDERC,
                       T.RPOWC, T.LOG1P, T.EXPM1, T.LOG2, T.LOG10, T.EXP2, T.TAN, T.SINH,
                       T.COSH, T.ASIN, T.ACOS, T.RSQRT, T.ELU, T.GELU, T.SILU, T.SOFTPLUS,
                       T.LOGSIGMOID, T.SIGMOID))


def _unary(x, op, c=0.0, d=0.0):
    """An elementwise op; c, d: the op's constants (slope, bounds, beta...)."""
    v = x._v
    if v is None and x._rg and _LAZY_MAX[op]:
        if not E.LAZY_TRIG and op in _LAZY_TRIG:
            E.LAZY_TRIG = True  # (before the record: the flush must compute it)
        t = _lazy(op, x, None, 0.0)  # a small float64 array: recorded, computed later
        if t is not None:
            return t
    spec = T.OPS[op]
    if v is not None:
        try:
            y = builtins.float(spec.py_fn(v) if not spec.nconst else spec.py_fn(v, c, d))
        except (ValueError, ArithmeticError):
            # math raises where NumPy (and PyTorch) return nan/inf: log(-1), sin(inf), 1/0
            with np.errstate(all="ignore"):
                a = np.float64(v)
                y = builtins.float(spec.np_fn(a) if not spec.nconst else spec.np_fn(a, c, d))
        if x._rg and state.grad_enabled:
            seg = E.current()
            ra = x._rec if x._seg is seg and x._x is None else _ref(seg, x)
            aux = -1 if spec.nconst < 2 else seg.add_aux(_float_bits(d))
            return _result(y, D.float64, seg, seg.record(op, ra, -1, c, y, aux))
        return _result(y, D.float64)
    dt = x._dt
    a = x._a
    if a.dtype is _F64NP and not spec.nconst:  # the common case, without the checks below
        if op in _TRIG:
            if x._rg and a.size >= 128 and state.grad_enabled and state.tracing is None:
                return _trig_recorded(x, a, op)  # (smaller: the sweep's trig costs less)
            y = _sin_cos(a, op == T.COS)
        elif op == T.TANH:
            if a.size <= _config.LAZY_TANH:  # libm's, as a lazy tanh's
                y = _tanh(a)
            elif x._rg and state.grad_enabled and state.tracing is None:
                return _written_recorded(x, a, T.TANH, T.tanh_big)
            else:
                y = _tanh_big(a)
        elif (op == _RELU and x._rg and a.size > 1 and state.rec is not None
              and state.tracing is None):
            return _written_recorded(x, a, _RELU, T.relu_into)
        elif op in _MAY_WARN:
            y = _quiet(spec.np_fn, a)
        else:
            y = spec.np_fn(a)
        if y.__class__ is not np.ndarray or not y.flags.c_contiguous:
            y = _out(y, _F64)
    elif a.dtype is _F32NP and not spec.nconst and a.ndim:  # float32 arrays: NumPy's float32
        y = _quiet(spec.np_fn, a) if op in _MAY_WARN else spec.np_fn(a)  # functions, as below,
        if y.__class__ is not np.ndarray or not y.flags.c_contiguous or y.dtype is not _F32NP:
            y = _out(y, _F32)  # without its checks (they hold for float32)
    else:
        y = None
    if y is not None:  # (either case above: dt is y's dtype)
        seg = _current() if x._rg else None
        if seg is not None:
            return _f64_result(seg, op, x._rec if x._seg is seg and x._x is None else
                               _ref(seg, x), c, y, dt)
        return _result(y, dt)
    if not dt.is_floating_point and op not in _INT_STAYS:
        dt = D.get_default_dtype()
        a = a.astype(dt.np)
    if dt is D.bool_ and op == T.NEG:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you "
                           "are trying to invert a mask, use the `~` or `logical_not()` operator "
                           "instead.")
    if dt is D.bool_ and op == T.SIGN:
        return _result(_out(a.copy(), dt), dt)  # (a mask's sign is the mask, as PyTorch's)
    fn = spec.np_fn if not spec.nconst else (lambda a: spec.np_fn(a, c, d))
    if op in _MAY_WARN:
        y = _out(_quiet(fn, a), dt)
    else:
        y = _out(fn(a), dt)
    if x._rg and state.grad_enabled:
        if spec.nconst == 2:
            return _record_result(op, y, dt, (x,), c=c, aux_ints=_float_bits(d))
        return _record_result(op, y, dt, (x,), c=c)
    return _result(y, dt)


_TRIG = (T.SIN, T.COS)


def _trig_recorded(x, a, op):
    """sin or cos of x (a float64 array of m elements), recorded as SINC or COSC: the
    derivative computed in the same pass and kept in the arena before the value (T.SINC).
    A trace records SIN and COS, which its replay recomputes."""
    seg = _current()
    ra = x._rec if x._seg is seg and x._x is None else _ref(seg, x)
    m = a.size
    o = seg.nbulk
    if o + 2 * m > len(seg.bulk):
        seg._grow_bulk(o + 2 * m)
    bulk = seg.bulk
    y = np.empty(a.shape)
    yf = y.reshape(-1)
    T.sin_cos_d(a.reshape(-1), yf, bulk[o:o + m], bulk[o + m:o + 2 * m], op == T.COS)
    seg.nbulk = o + 2 * m
    r = seg.nrec
    seg.nrec = r + 1
    seg.side.extend((0.0, m, o + m, -1))  # (before the row: see Segment.flush)
    seg.stage.extend(((T.COSC if op == T.COS else T.SINC) + _SIDE, ra, -1, 0.0))
    seg._staged(r)
    return _result(y, _F64, seg, r)


def _sin_cos(a, cos):
    """sin or cos of a float64 array, vectorized (_tape.sin_cos: within an ulp; NumPy's
    call libm per element, ~3x slower here, and warn on inf)."""
    out = np.empty(a.shape)
    T.sin_cos(a.ravel(), out.reshape(-1), cos)
    return out


def _tanh_big(a):
    """tanh of a float64 array of more than LAZY_TANH elements (_tape.tanh_big: within 2 ulp,
    1.5x NumPy's speed here), recorded or not."""
    out = np.empty(a.shape)
    flat = out.reshape(-1)
    T.tanh_big(a.reshape(-1), flat, flat)
    return out


def _written_recorded(x, a, op, kernel):
    """op of x (a float64 array of 2 or more elements), recorded, for an op that saves its
    output: ``kernel(x, y, y2)`` writes the result into y and its copy into the arena's place
    y2 in the same pass, where the result, then its copy, took two (tanh of more than
    LAZY_TANH elements; relu: benchmarks/per_op.py, mlp_step's two 32 x 128 relus 8.8 us
    against PyTorch's 8.5, 13.5 against 9.5 before)."""
    seg = _current()
    ra = x._rec if x._seg is seg and x._x is None else _ref(seg, x)
    y = np.empty(a.shape)
    flat = y.reshape(-1)
    m = flat.size
    o = seg.nbulk
    if o + m > len(seg.bulk):
        seg._grow_bulk(o + m)
    # C-contiguous arrays only: the compiled entry does not check its arguments' layout (a
    # strided view's reshape(-1) is that view, and was read as if contiguous)
    args = (np.ascontiguousarray(a).reshape(-1), flat, seg.bulk[o:o + m])
    E._entry(kernel, args)(*args)
    return _f64_result(seg, op, ra, 0.0, y, _F64, True)


_RELU = T.RELU


def _tanh(a):
    """tanh of a float64 array, libm's (_tape.tanh_into): what a lazy tanh computes."""
    out = np.empty(a.shape)
    T.tanh_into(a.reshape(-1), out.reshape(-1))
    return out


def _float_bits(d):
    """A float constant for the int aux table (the sweep reads it through a float view)."""
    return [int(np.float64(d).view(np.int64))]


def _np_remainder(a, b):
    """PyTorch's remainder: fmod, then the divisor's sign where they differ (np.remainder
    gives 0.0 for -0.0 % 3, PyTorch -0.0)."""
    m = np.fmod(a, b)
    return np.where((m != 0) & ((b < 0) != (m < 0)), m + b, m)


_CONST_OP = {T.ADD: T.ADDC, T.SUB: T.SUBC, T.MUL: T.MULC, T.DIV: T.DIVC, T.POW: T.POWC,
             T.FMOD: T.FMODC, T.REMAINDER: T.REMAINDERC}
_NP_CONST = {T.ADDC: np.add, T.SUBC: np.subtract, T.MULC: np.multiply, T.DIVC: np.true_divide}
_NP_BINARY = {T.ADD: np.add, T.SUB: np.subtract, T.MUL: np.multiply, T.DIV: np.true_divide,
              T.POW: np.power, T.MAXIMUM: np.maximum, T.MINIMUM: np.minimum,
              T.ATAN2: np.arctan2, T.FMOD: np.fmod, T.REMAINDER: _np_remainder}


def _number(y):
    if isinstance(y, np.generic):
        return y.item()
    return y


def _binary(op, x, y, reverse=False, tried=False):
    """x (a Tensor) op y (a Tensor or a Python number); ``reverse``: y op x.  ``tried``: the
    caller (an operator) already tried a lazy result."""
    if not isinstance(y, Tensor):  # subclasses (nn.Parameter) are tensors too
        if not isinstance(y, _NUMBER):
            if isinstance(y, np.generic):
                y = y.item()
            elif isinstance(y, (np.ndarray, list, tuple)):
                y = tensor(y)
            else:
                return NotImplemented
        if not isinstance(y, Tensor):
            return _binary_number(op, x, y, reverse, tried)
    if reverse:
        x, y = y, x
    xv = x._v
    yv = y._v
    if T.ADD <= op <= T.MUL:
        if x._rg or y._rg:
            if xv is None:
                if yv is None:
                    if not tried:
                        t = _lazy(op, x, y, 0)  # small float64 arrays of one shape
                        if t is not None:
                            return t
                else:
                    t = _lazy_scalar(op, x, y)  # an array and a fast-path scalar
                    if t is not None:
                        return t
            elif yv is None:
                t = _lazy_scalar(op, x, y)
                if t is not None:
                    return t
        # + - * on float64 arrays of one shape, or an array and a fast-path scalar
        xa = x._a
        ya = y._a
        if xa is not None:
            if xa.dtype is _F64NP:
                if ya is None:
                    if yv is not None:
                        return _binary_f64(op, x, y, xa, yv)
                elif ya.dtype is _F64NP:
                    if xa.shape == ya.shape:  # 2048+ elements: a compiled loop
                        return _binary_f64(op, x, y, xa, ya, None, xa.size >= 2048)
                    if ya.ndim and xa.ndim:  # broadcast (a bias added to a batch)
                        shape = _broadcast2(xa.shape, ya.shape)  # PyTorch's error first
                        mat, vec = (xa, ya) if xa.ndim == 2 else (ya, xa)
                        if (mat.ndim == 2 and vec.ndim == 1 and shape == mat.shape
                                and 256 <= mat.size < _DEFER_MIN and mat.flags.c_contiguous
                                and vec.flags.c_contiguous):
                            return _rows_f64(op, x, y, mat, vec, mat is ya)
                        return _binary_f64(op, x, y, xa, ya, shape)
            elif (xa.dtype is _F32NP and ya is not None and ya.dtype is _F32NP and xa.ndim
                  and ya.ndim):  # float32 arrays (PyTorch's default dtype), as float64's
                if xa.shape == ya.shape:
                    return _binary_f64(op, x, y, xa, ya, None, False, _F32)
                return _binary_f64(op, x, y, xa, ya, _broadcast2(xa.shape, ya.shape), False,
                                   _F32)
        elif ya is not None and xv is not None and ya.dtype is _F64NP:
            return _binary_f64(op, x, y, xv, ya)
    if xv is not None and yv is not None and T.ADD <= op <= T.DIV:  # + - * / on 0-d float64
        if op == T.ADD:
            v = xv + yv
        elif op == T.MUL:
            v = xv * yv
        elif op == T.SUB:
            v = xv - yv
        else:
            v = xv / yv if yv != 0.0 else _py_div0(xv, yv)
        if (x._rg or y._rg) and state.grad_enabled:
            seg = E.current()
            ra = x._rec if x._seg is seg and x._x is None else _ref(seg, x)
            rb = y._rec if y._seg is seg and y._x is None else _ref(seg, y)
            return _result(v, D.float64, seg, seg.record(op, ra, rb, 0.0, v))
        return _result(v, D.float64)
    dt = x._dt
    if dt is _F32 and y._dt is _F32 and T.ADD <= op <= T.DIV:
        xa = x._a
        ya = y._a
        if xa.ndim == 0 and ya.ndim == 0:
            t = _f32_pair(op, x, y, xa.item(), ya.item())
            if t is not None:
                return t
    if dt is not y._dt:
        dt = D.result_type((x, y))
    if (op == T.DIV or op == T.ATAN2) and not dt.is_floating_point:
        dt = D.get_default_dtype()
    if dt is D.bool_ and op == T.SUB:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    xa = _val(x)
    ya = _val(y)
    shape = xa.shape
    if shape != ya.shape:
        shape = _broadcast2(shape, ya.shape)
    if xa.dtype is not dt.np:
        xa = xa.astype(dt.np)
    if ya.dtype is not dt.np:
        ya = ya.astype(dt.np)
    if op in _MAY_WARN:
        out = _out(_quiet(_NP_BINARY[op], xa, ya), dt)
    else:
        out = _out(_NP_BINARY[op](xa, ya), dt)
    if (x._rg or y._rg) and state.grad_enabled:
        return _record_result(op, out, dt, (x, y), shape=shape)
    return _result(out, dt)


def _binary_f64(op, x, y, xa, ya, shape=None, loop=False, dt=_F64):
    """x op y for op in + - *: xa and ya float64 arrays of one shape, or one of them a float
    (the value of a fast-path scalar, broadcast); with ``shape``, arrays broadcast to it.
    ``loop``: arrays of one shape, through _tape.binary_into (NumPy's call costs less for
    fewer than a few thousand elements).  With ``dt`` float32: xa and ya float32 arrays (at
    least 1-d), NumPy's float32 arithmetic, the values recorded in the float64 arena as any
    float32 result's are."""
    if loop:
        out = np.empty(xa.shape)
        T.binary_into(op, xa.reshape(-1), ya.reshape(-1), out.reshape(-1))
    else:
        token = _quiet_on(_IGNORE)  # overflow, inf - inf, 0 * inf: NumPy warns, PyTorch not
        try:
            out = _NP_BINARY[op](xa, ya)
        finally:
            _quiet_off(token)
    if out.__class__ is not np.ndarray or not out.flags.c_contiguous:
        out = _out(out, dt)
    seg = _current() if x._rg or y._rg else None
    if seg is not None:
        if shape is not None:
            return _f64_result(seg, op, _operand(seg, x, shape, op), _operand(seg, y, shape, op),
                               out, dt)
        shape = out.shape
        # an operand of this segment, not broadcast, without a version to check: its record
        ra = x._rec if (x._seg is seg and x._x is None and xa.__class__ is np.ndarray
                        ) else _operand(seg, x, shape, op)
        rb = y._rec if (y._seg is seg and y._x is None and ya.__class__ is np.ndarray
                        ) else _operand(seg, y, shape, op)
        return _f64_result(seg, op, ra, rb, out, dt)
    return _result(out, dt)


def _rows_f64(op, x, y, mat, vec, swap):
    """x op y (+ - *) for a float64 matrix and a float64 vector as long as its rows (a bias
    and a batch), both C-contiguous, of 256 to _DEFER_MIN elements; ``swap``: x is the
    vector.  One compiled pass (_tape.rows_into) computes the result and, when it is
    recorded, writes its copy into the arena: NumPy's broadcast add and the copy cost ~3x
    as much.  The records are _binary_f64's (the vector's BROADCAST, then the op)."""
    out = np.empty(mat.shape)
    flat = out.reshape(-1)
    seg = _current() if x._rg or y._rg else None
    if seg is None:
        args = (op, swap, mat.reshape(-1), vec, flat, flat)
        E._entry(T.rows_into, args)(*args)
        return _result(out, _F64)
    shape = mat.shape
    ra = _operand(seg, x, shape, op)
    rb = _operand(seg, y, shape, op)
    o = seg.nbulk
    m = flat.size
    if o + m > len(seg.bulk):
        seg._grow_bulk(o + m)
    args = (op, swap, mat.reshape(-1), vec, flat, seg.bulk[o:o + m])
    E._entry(T.rows_into, args)(*args)
    return _f64_result(seg, op, ra, rb, out, _F64, True)


_F32 = D.float32
_F32NP = np.dtype(np.float32)
_FLOAT32 = struct.Struct("f")
_pack32, _unpack32 = _FLOAT32.pack, _FLOAT32.unpack


def _f32_number(code, x, xa, c):
    """x op c (+ - * /, c - x, x ** 2) for a 0-d float32 x and a Python number c (a float),
    in Python floats instead of NumPy's 0-d arrays (~1.5 against ~5 us an op): c rounded to
    float32, as PyTorch and NumPy take it, then _f32_arith.  None where the NumPy path is
    needed (see _f32_arith; c beyond float32's range, which NumPy takes as inf)."""
    try:
        c32 = _unpack32(_pack32(c))[0]
    except OverflowError:
        return None
    xv = xa.item()
    if code == T.RSUBC:
        v = _f32_arith(T.SUB, c32, xv)
    elif code == T.POWC:  # (x ** 2 only: x * x, as PyTorch's pow and NumPy's square)
        v = _f32_arith(T.MUL, xv, xv)
    else:
        v = _f32_arith(_BINARY_OF[code], xv, c32)
    if v is None:
        return None
    if x._rg:  # (the record's constant is c, as the NumPy path's)
        return _as_f32(_scalar_c(code, x, c, v), v)
    return _result(np.array(v, _F32NP), _F32)


_FLT_MAX = float(np.finfo(np.float32).max)
_F32_INT = 2 ** 24  # (every int up to it is a float32, converted exactly either way)


def _f32_const(code, x, xa, c):
    """x op c (+ - * /, c - x, x ** 2) for a float32 array x of at least one dimension and a
    number c that float32 holds without overflow: NumPy's float32 arithmetic (c converted to
    float32, as NumPy and PyTorch take a Python number), recorded as the general path records
    it, with ~1.5 us of its checks gone; NumPy's warnings off, as PyTorch is silent."""
    token = _quiet_on(_IGNORE)
    try:
        if code == T.RSUBC:
            out = np.subtract(c, xa)
        elif code == T.POWC:
            out = np.power(xa, c)  # (as the general path: x ** 2 only)
        else:
            out = _NP_CONST[code](xa, c)
    finally:
        _quiet_off(token)
    if out.__class__ is not np.ndarray or not out.flags.c_contiguous or out.dtype is not _F32NP:
        out = _out(out, _F32)
    seg = _current() if x._rg else None
    if seg is not None:
        return _f64_result(seg, code, x._rec if x._seg is seg and x._x is None else
                           _ref(seg, x), c, out, _F32)
    return _result(out, _F32)


def _f32_pair(op, x, y, xv, yv):
    """x op y (+ - * /) for 0-d float32 tensors x and y (their values xv, yv), as
    _f32_number."""
    v = _f32_arith(op, xv, yv)
    if v is None:
        return None
    if x._rg or y._rg:
        return _as_f32(_scalar_b(op, x, y, v), v)
    return _result(np.array(v, _F32NP), _F32)


def _as_f32(t, v):
    """t, a 0-d float64 result of _scalar_c or _scalar_b (whose inline recording, the same
    row as Segment.record's, is ~0.8 us cheaper than E.current, _ref, record and _result),
    made the 0-d float32 tensor of the float32 value v."""
    t._v = None
    t._a = np.array(v, _F32NP)
    t._dt = _F32
    return t


def _f32_arith(op, a, b):
    """a op b (+ - * /) of float32 values (as floats): the exact operands' double result
    rounded to float32 once, which is float32's result, since a double holds more than twice
    float32's digits (rounding twice is then exact for + - * /).  None where Python's floats
    raise (a division by zero) or the result leaves float32's range: the NumPy path's inf and
    nan."""
    if op == T.MUL:
        v = a * b
    elif op == T.ADD:
        v = a + b
    elif op == T.SUB:
        v = a - b
    elif b != 0.0:
        v = a / b
    else:
        return None
    try:
        return _unpack32(_pack32(v))[0]
    except OverflowError:
        return None


_BINARY_OF = {T.MULC: T.MUL, T.ADDC: T.ADD, T.SUBC: T.SUB, T.DIVC: T.DIV}


def _py_div0(a, b):
    if a == 0.0 or a != a:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _binary_number(op, x, c, reverse, tried=False):
    """x op c, or c op x with ``reverse``; c a Python number."""
    if reverse and op == T.DIV:  # c / x = reciprocal(x) * c, as PyTorch records it
        return _binary_number(T.MUL, x.reciprocal(), c, False)
    if reverse and op in (T.ADD, T.MUL):
        reverse = False
    if reverse:
        code = T.RSUBC if op == T.SUB else T.RPOWC
    else:
        code = _CONST_OP[op]
    cf = builtins.float(c)
    xv = x._v
    if xv is not None:
        if code == T.ADDC:
            v = xv + cf
        elif code == T.MULC:
            v = xv * cf
        elif code == T.SUBC:
            v = xv - cf
        elif code == T.RSUBC:
            v = cf - xv
        elif code == T.DIVC:
            v = xv / cf if cf != 0.0 else _py_div0(xv, cf)
        elif code == T.FMODC:
            v = math.fmod(xv, cf) if cf != 0.0 and not math.isinf(xv) else math.nan
        elif code == T.REMAINDERC:
            v = builtins.float(T.remainder(xv, cf))
        else:
            v = builtins.float(_pow(xv, cf) if code == T.POWC else _pow(cf, xv))
        if x._rg and state.grad_enabled:
            seg = E.current()
            ra = x._rec if x._seg is seg and x._x is None else _ref(seg, x)
            return _result(v, D.float64, seg, seg.record(code, ra, -1, cf, v))
        return _result(v, D.float64)
    if x._rg and not tried and (T.ADDC <= code <= T.DIVC or code == T.POWC and cf == 2.0) and (
            c.__class__ is float or c.__class__ is int):
        t = _lazy(code, x, None, cf)  # (a small float64 array: recorded, computed later)
        if t is not None:
            return t
    xa = x._a
    if (xa.dtype is _F64NP and (T.ADDC <= code <= T.DIVC or code == T.POWC and cf == 2.0)
            and (c.__class__ is float or c.__class__ is int)
            and (code != T.DIVC or 1.0 <= abs(cf) < math.inf)):
        # + - * on float64 arrays, / by a finite constant of magnitude >= 1 (which can
        # neither overflow nor divide by zero), and squares (NumPy's power by 2 is x * x, as
        # PyTorch's); NumPy's warnings off, as _binary_f64
        token = _quiet_on(_IGNORE)
        try:
            if code == T.POWC:
                out = np.multiply(xa, xa)
            else:
                out = _NP_CONST[code](xa, cf) if code != T.RSUBC else np.subtract(cf, xa)
        finally:
            _quiet_off(token)
        if out.__class__ is not np.ndarray or not out.flags.c_contiguous:
            out = _out(out, _F64)
        seg = _current() if x._rg else None
        if seg is not None:
            return _f64_result(seg, code, x._rec if x._seg is seg and x._x is None else
                               _ref(seg, x), cf, out)
        return _result(out, _F64)
    if (xa.dtype is _F32NP and (T.ADDC <= code <= T.DIVC or code == T.POWC and cf == 2.0)
            and (c.__class__ is float or c.__class__ is int)):
        if not xa.ndim:
            t = _f32_number(code, x, xa, cf)  # (a 0-d float32, PyTorch's default dtype)
            if t is not None:
                return t
        elif c.__class__ is float and abs(cf) <= _FLT_MAX or -_F32_INT <= c <= _F32_INT:
            return _f32_const(code, x, xa, cf)
    dt = x._dt
    if not dt.is_floating_point or (c.__class__ is not float and c.__class__ is not int):
        dt = D.result_type((x, c))
    if op == T.DIV and not dt.is_floating_point:
        dt = D.get_default_dtype()
    a = _val(x)
    if a.dtype is not dt.np:
        a = a.astype(dt.np)
    if op == T.POW and not dt.is_floating_point and not reverse and c < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    fn = _NP_BINARY[op]
    if code in _MAY_WARN:
        out = _quiet(fn, c, a) if reverse else _quiet(fn, a, c)
    else:
        out = fn(c, a) if reverse else fn(a, c)
    out = _out(out, dt)
    if x._rg and state.grad_enabled:
        return _record_result(code, out, dt, (x,), c=cf)
    return _result(out, dt)


def _pow(a, b):
    """a ** b for floats as C's pow (PyTorch's): where Python raises (an overflow, 0 to a
    negative power) NumPy's power gives the signed infinity ((-10.) ** 401 is -inf, (-0.) ** -1
    is -inf); a negative base to a fractional power is nan."""
    try:
        r = a**b
    except (ZeroDivisionError, OverflowError):
        with np.errstate(all="ignore"):
            return builtins.float(np.power(np.float64(a), np.float64(b)))
    return r if r.__class__ is not complex else math.nan


def _scalar_value(value, dt):
    """A value written into a tensor of dtype dt (x[k] = v, copy_(v)) as a tensor of dt: a
    Python float written into float64 stays float64 (not rounded through the default dtype);
    a finite one beyond float32's range into float32 raises PyTorch's error."""
    if dt is _F32 and value.__class__ is float and _FLT_MAX < abs(value) < math.inf:
        raise RuntimeError("value cannot be converted to type float without overflow")
    return tensor(value, dtype=dt)


_HOW = {np.less: T.CMP_LT, np.less_equal: T.CMP_LE, np.greater: T.CMP_GT,
        np.greater_equal: T.CMP_GE, np.equal: T.CMP_EQ, np.not_equal: T.CMP_NE}


_PY_COMPARE = {np.less: operator.lt, np.less_equal: operator.le, np.greater: operator.gt,
               np.greater_equal: operator.ge, np.equal: operator.eq, np.not_equal: operator.ne}


def _compare(ufunc, x, y):
    out = _compared(ufunc, x, y)
    if state.tracing is not None and (x._rg or (isinstance(y, Tensor) and y._rg)) and (
            out is not NotImplemented):
        # while tracing, a comparison is a record (CMPC, CMP), so a replay recomputes masks
        # and the guards of Python branches on it
        how = builtins.float(_HOW[ufunc])
        if isinstance(y, Tensor):
            return _record_result(T.CMP, _val(out), D.bool_, (x, y), c=how,
                                  shape=tuple(out.shape))
        return _record_result(T.CMPC, _val64(out), D.bool_, (x,), c=builtins.float(_number(y)),
                              aux_ints=_float_bits(how))
    return out


def _compared(ufunc, x, y):
    if x._v is not None and (y.__class__ is float or y.__class__ is int):
        # a float64 scalar and a number: Python's comparison of two floats is NumPy's
        return _result(np.array(_PY_COMPARE[ufunc](x._v, builtins.float(y))), D.bool_)
    if (y.__class__ is float or y.__class__ is int) and x._a.size == 1 and x._a.ndim == 0:
        return _result(np.array(ufunc(x._a[()].item(), y)), D.bool_)  # one Python comparison
    if isinstance(y, Tensor):
        _broadcast_shapes(x.shape, y.shape)
        dt = D.result_type((x, y))
        yv = _val(y).astype(dt.np, copy=False)
    elif isinstance(y, _NUMBER) or isinstance(y, np.generic):
        dt = D.result_type((x, _number(y)))
        yv = _number(y)
    else:
        return NotImplemented
    return _result(_out(ufunc(_val(x).astype(dt.np, copy=False), yv), D.bool_), D.bool_)


def _is_bool(y):
    return y.__class__ is builtins.bool or isinstance(y, Tensor) and y._dt is D.bool_


def _logical(ufunc, op, x, y):
    if y.__class__ is builtins.bool:
        y = tensor(y)
    out = _out(ufunc(_val(x), _val(y)), D.bool_)
    if state.tracing is not None and (_traced(x) or isinstance(y, Tensor) and _traced(y)):
        # traced masks: and = min, or = max of 0/1 values
        if x._dt is not D.bool_ or not isinstance(y, Tensor) or y._dt is not D.bool_:
            state.tracing.refuse("& and | other than on two masks")
        return _record_result(op, out, D.bool_, (x, y), shape=tuple(out.shape))
    return _result(out, D.bool_)


def _dims(dim, ndim):
    """Validated, wrapped dims; a 0-d tensor accepts 0 and -1 and has nothing to reduce."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, builtins.int):
        dim = (dim,)
    out = []
    for d in dim:
        out.append(_wrap_dim(d, ndim))
    if ndim == 0:
        return ()
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {out[0]} appears multiple times in the list of dims")
    return tuple(out)


def _wrap_dim(d, ndim):
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {d})")
    return d % n


def _reduce_map(shape, dims):
    """For each input element (C order), its offset in the keepdim output."""
    kshape = [1 if d in dims else s for d, s in enumerate(shape)]
    ks = _c_strides(kshape)
    strides = [0 if d in dims else ks[d] for d in range(len(shape))]
    return [len(shape), 0, *shape, *strides]


def _shape_arg(args, name="size"):
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        args = tuple(args[0])
    out = []
    for a in args:
        if isinstance(a, Tensor):
            a = a.item()
        if not isinstance(a, (builtins.int, np.integer)) or isinstance(a, builtins.bool):
            raise TypeError(f"{name}(): argument '{name}' must be tuple of ints, but found element "
                            f"of type {type(a).__name__}")
        out.append(builtins.int(a))
    return tuple(out)


def _infer_shape(shape, numel):
    shape = list(shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = math.prod(s for s in shape if s != -1)
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '[{', '.join(map(str, shape))}]' is invalid for input of "
                               f"size {numel}")
        shape[neg[0]] = numel // known
    if math.prod(shape) != numel:
        raise RuntimeError(f"shape '[{', '.join(map(str, shape))}]' is invalid for input of "
                           f"size {numel}")
    return tuple(shape)


# ---------------------------------------------------------------- indexing

def _basic_index(shape, index):
    """Basic indexing (ints, slices, None, Ellipsis) as a strided map.

    Returns (out_shape, base, strides, opcode) or None when the index is advanced.
    """
    if not isinstance(index, tuple):
        index = (index,)
    for i in index:
        if not (i is None or i is Ellipsis or isinstance(i, (builtins.int, slice, np.integer)))\
                or isinstance(i, builtins.bool):
            if isinstance(i, Tensor) and i.ndim == 0 and not i.dtype.is_floating_point \
                    and i.dtype is not D.bool_:
                continue
            return None
    index = tuple(builtins.int(i.item()) if isinstance(i, Tensor) else i for i in index)
    real = sum(1 for i in index if i is not None and i is not Ellipsis)
    if real > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    strides = _c_strides(shape)
    out_shape, out_strides = [], []
    base = 0
    d = 0
    op = T.SLICE
    trivial = True
    for i in index:
        if i is Ellipsis:
            for _ in range(len(shape) - real):
                out_shape.append(shape[d])
                out_strides.append(strides[d])
                d += 1
        elif i is None:
            out_shape.append(1)
            out_strides.append(0)
            op, trivial = T.UNSQUEEZE, False
        elif isinstance(i, slice):
            if i.step is not None and i.step <= 0:
                raise ValueError("step must be greater than zero")
            start, stop, step = i.indices(shape[d])
            size = len(range(start, stop, step))
            base += start * strides[d]
            out_shape.append(size)
            out_strides.append(strides[d] * step)
            if size != shape[d]:
                op, trivial = T.SLICE, False
            d += 1
        else:
            i = builtins.int(i)
            if not -shape[d] <= i < shape[d]:
                raise IndexError(f"index {i} is out of bounds for dimension {d} with size "
                                 f"{shape[d]}")
            base += (i % shape[d]) * strides[d]
            op, trivial = T.SELECT, False
            d += 1
    for k in range(d, len(shape)):
        out_shape.append(shape[k])
        out_strides.append(strides[k])
    if trivial and all(i is Ellipsis for i in index):
        op = T.ALIAS  # x[...] and x[()]
    return tuple(out_shape), base, out_strides, op


def _np_index(index):
    """Convert tensors in an index to NumPy arrays."""
    if isinstance(index, tuple):
        return tuple(_np_index(i) for i in index)
    if isinstance(index, Tensor):
        _untraced(index, "indexing with a traced tensor (its values pick the elements)")
        return _val(index)
    if isinstance(index, list):
        return np.asarray([_val(i) if isinstance(i, Tensor) else i for i in index])
    return index


# ---------------------------------------------------------------- grad_fn nodes

class Node:
    """A grad_fn: a view of one record, printed with PyTorch's node name."""

    __slots__ = ("_seg", "_rec", "__weakref__")

    def name(self) -> str:
        n = type(self).__name__
        return "torch::autograd::CopySlices" if n == "CopySlices" else n

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {hex(id(self))}>"

    @property
    def next_functions(self):
        seg = self._seg
        r = self._rec
        edges = seg.edges.get(r)
        if edges is None:
            edges = _frontier(seg, r)
            if seg.opcode(r) in _SCALAR_EDGE:
                edges.append(-1)  # PyTorch lists the Python number as (None, 0)
        return tuple((_node_for(seg, _visible(seg, e)) if e >= 0 else None, 0) for e in edges)

    @property
    def metadata(self) -> dict:
        return {}


class RemovableHandle:
    """Returned by register_hook: ``remove()`` unregisters the hook."""

    def __init__(self, hooks, key):
        self._hooks = hooks
        self.id = key

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


_hook_ids = itertools.count()


class AccumulateGrad:
    __slots__ = ("variable", "__weakref__")

    def __init__(self, variable):
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"

    @property
    def next_functions(self):
        return ()


_NODE_CLASSES: dict[str, type] = {}


def _node_class(name):
    cls = _NODE_CLASSES.get(name)
    if cls is None:
        cls = _NODE_CLASSES[name] = type(name, (Node,), {"__slots__": ()})
    return cls


_SCALAR_EDGE = frozenset((T.ADDC, T.SUBC, T.MULC, T.DIVC))


def _hidden(seg, r):
    """Records a user never sees as nodes: operand broadcasting and refreshes."""
    op = seg.opcode(r)
    return op == T.BROADCAST or op == T.REFRESH


def _frontier(seg, r):
    """The visible records feeding r, looking through hidden ones, in operand order."""
    out = []
    for o in seg.operands(r):
        if o < 0:
            continue
        if _hidden(seg, o):
            out.extend(_frontier(seg, o))
        else:
            out.append(o)
    return out


def _visible(seg, r):
    """r, or the visible record below a hidden single-operand chain."""
    while _hidden(seg, r):
        r = seg.operands(r)[0]
    return r


def _node_for(seg, r):
    op = seg.opcode(r)
    if op == T.LEAF:
        t = seg.leaves.get(r)
        return _accumulate_node(t) if t is not None else None
    if op == T.CONST or op == T.DEAD:
        return None
    if op == T.IMPORT:
        src = seg.imports.get(r) if seg.imports is not None else None
        return src.grad_fn if src is not None else None
    node = seg.nodes.get(r)
    if node is None:
        node = _new(_node_class(seg.names.get(r) or T.GRAD_FN[op]))
        node._seg = seg
        node._rec = r
        seg.nodes[r] = node
    return node


_ACC_NODES = {}


def _accumulate_node(t):
    node = _ACC_NODES.get(id(t))
    if node is None or node.variable is not t:
        node = _ACC_NODES[id(t)] = AccumulateGrad(t)
    return node


# ---------------------------------------------------------------- Tensor

_autograd_backward = [None]  # tapegrad.autograd.backward, once imported


class Tensor:
    """A tensor with PyTorch's autograd API, recording onto a Numba-swept tape."""

    __slots__ = ("_v", "_a", "_dt", "_rg", "_seg", "_rec", "_x", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our reflected operators
    __hash__ = object.__hash__

    def __new__(cls, *args, **kwargs):
        if args and not kwargs and all(isinstance(a, builtins.int) for a in args):
            t = zeros(*args)
        else:
            t = tensor(args[0] if args else [], dtype=kwargs.get("dtype", D.get_default_dtype()))
        if cls is Tensor:
            return t
        sub = _new(cls)  # a subclass instance (MyTensor([1., 2.])) with the same state
        for k in ("_v", "_a", "_dt", "_rg", "_seg", "_rec", "_x"):
            setattr(sub, k, getattr(t, k))
        return sub

    # ------------------------------------------------------------ basics
    @property
    def shape(self) -> Size:
        a = self._a
        return Size(() if a is None else a.shape)

    def size(self, dim=None):
        if dim is None:
            return self.shape
        return self.shape[_wrap_dim(dim, self.ndim)]

    @property
    def ndim(self) -> int:
        a = self._a
        return 0 if a is None else a.ndim

    def dim(self) -> int:
        return self.ndim

    def ndimension(self) -> int:
        return self.ndim

    # ------------------------------------------------------------ new tensors, value tests
    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return zeros(*size, dtype=dtype or self._dt, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return ones(*size, dtype=dtype or self._dt, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return empty(*size, dtype=dtype or self._dt, requires_grad=requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return full(size, fill_value, dtype=dtype or self._dt, requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.detach().numpy().copy()
        return tensor(data, dtype=dtype or self._dt, requires_grad=requires_grad)

    def type_as(self, other):
        return self.to(other.dtype)

    def isnan(self):
        return P.isnan(self)

    def isinf(self):
        return P.isinf(self)

    def isfinite(self):
        return P.isfinite(self)

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return P.isclose(self, other, rtol, atol, equal_nan)

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return P.allclose(self, other, rtol, atol, equal_nan)

    def logical_and(self, other):
        return P.logical_and(self, other)

    def logical_or(self, other):
        return P.logical_or(self, other)

    def logical_xor(self, other):
        return P.logical_xor(self, other)

    def logical_not(self):
        return P.logical_not(self)

    def numel(self) -> int:
        a = self._a
        return 1 if a is None else a.size

    def nelement(self) -> int:
        return self.numel()

    @property
    def dtype(self):
        return self._dt

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def is_cuda(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return self._dt.is_floating_point

    def element_size(self) -> int:
        return self._dt.itemsize

    def __len__(self) -> int:
        if self._a is None or self._a.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._a.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(L.unbind(self, 0))

    def item(self):
        v = self._v
        if v is None:
            a = self._a
            if a.size != 1:
                raise RuntimeError(f"a Tensor with {a.size} elements cannot be converted to "
                                   "Scalar")
            v = a.reshape(-1)[0].item()
        if self._rg and state.tracing is not None:
            state.tracing.guard(self, v)  # Python goes on with this value: replays must agree
        return v

    def tolist(self):
        _untraced(self, "tolist()")
        v = self._v
        return v if v is not None else self._a.tolist()

    def numpy(self, *, force=False) -> np.ndarray:
        _untraced(self, "numpy()")
        if self._rg and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        a = _storage(self)
        _extra(self).vc[1] = True  # writes through the array can't be seen: stop caching
        return a

    def __array__(self, dtype=None, copy=None):
        _untraced(self, "conversion to a NumPy array")
        a = _val(self)
        return a if dtype is None else a.astype(dtype)

    def __bool__(self) -> bool:
        v = self._v
        if v is not None:
            r = v != 0.0
        else:
            a = self._a
            if a.size != 1:
                raise RuntimeError("Boolean value of Tensor with more than one value is "
                                   "ambiguous")
            r = builtins.bool(a.reshape(-1)[0] if a.ndim else a[()])
        if self._rg and state.tracing is not None:
            state.tracing.guard(self, r)  # a Python branch on a traced value
        return r

    def __float__(self) -> float:
        return builtins.float(self._scalar_item("float"))

    def __int__(self) -> int:
        return builtins.int(self._scalar_item("int"))

    def __index__(self) -> int:
        if self._dt.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def _scalar_item(self, kind):
        if self.numel() != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __repr__(self) -> str:
        return _repr(self)

    def __format__(self, spec):
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    def __reduce_ex__(self, proto):
        return (_rebuild, (np.array(_val(self)), self._dt.name, self.is_leaf and self._rg))

    def __deepcopy__(self, memo):
        if not self.is_leaf:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support "
                               "the deepcopy protocol at the moment.  If you were attempting to "
                               "deepcopy a module, this may be because of a torch.nn.utils.weight_"
                               "norm usage, see https://github.com/pytorch/pytorch/pull/103001")
        t = _leaf(np.array(_val(self)), self._dt, self._rg)
        memo[id(self)] = t
        return t

    # ------------------------------------------------------------ autograd attributes
    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag):
        if flag and not self._dt.is_floating_point:
            raise RuntimeError("only Tensors of floating point and complex dtype can require "
                               "gradients")
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        flag = builtins.bool(requires_grad)
        if self._seg is not None:
            if not flag:
                raise RuntimeError("you can only change requires_grad flags of leaf variables. If "
                                   "you want to use a computed variable in a subgraph that doesn't "
                                   "require differentiation use var_no_grad = var.detach().")
            return self
        if flag and not self._dt.is_floating_point:
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if flag != self._rg:
            self._rg = flag
            _extra(self).lc = None
        return self

    @property
    def is_leaf(self) -> bool:
        return self._seg is None

    @property
    def grad_fn(self):
        seg = self._seg
        if seg is None:
            return None
        return _node_for(seg, _visible(seg, self._rec))

    @property
    def grad(self):
        x = self._x
        if self._seg is not None and (x is None or not x.retain):
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during autograd.backward(). If you indeed "
                "want the .grad field to be populated for a non-leaf Tensor, use .retain_grad() "
                "on the non-leaf Tensor. If you access the non-leaf Tensor by mistake, make sure "
                "you access the leaf Tensor instead. See github.com/pytorch/pytorch/pull/30531 "
                "for more information.", UserWarning, stacklevel=2)
        return None if x is None else x.grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError("assigned grad has data of a different size")
            if value.dtype is not self._dt:
                raise RuntimeError("assigned grad has data of a different type")
        _extra(self).grad = value

    @property
    def _version(self) -> int:
        x = self._x
        return 0 if x is None else x.vc[0]

    def retain_grad(self):
        if self._seg is None:
            return
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        x = _extra(self)
        x.retain = True
        seg = self._seg
        if not seg.dead:
            seg.retained[self._rec] = self
            seg.mark(self._rec, T.CAPTURE)

    def register_hook(self, hook):
        """hook(grad) runs when this tensor's gradient is computed; it may return a new one."""
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        _untraced(self, "register_hook() (a replay's sweep runs no Python)")
        x = _extra(self)
        if x.hooks is None:
            x.hooks = {}
        key = next(_hook_ids)
        x.hooks[key] = hook
        seg = self._seg
        if seg is not None and not seg.dead:
            seg.hooked[self._rec] = self
            seg.mark(self._rec, T.HOOK)
        return RemovableHandle(x.hooks, key)

    def _apply_hooks(self, g):
        """Run the hooks on the flat float64 gradient g; returns the (possibly new) g."""
        grad = _leaf(_out(g.reshape(self.shape), self._dt), self._dt)
        for hook in list(self._x.hooks.values()):
            out = hook(grad)
            if out is not None:
                if not isinstance(out, Tensor) or out.shape != grad.shape:
                    raise RuntimeError("hook 'hook' has changed the size of value")
                grad = out
        new = np.asarray(_val(grad), dtype=np.float64).reshape(-1)
        return new if not np.array_equal(new, g) else g

    @property
    def retains_grad(self) -> bool:
        return self._seg is not None and self._x is not None and self._x.retain

    def _accumulate_grad(self, g, fresh=False):
        """Add the flat float64 gradient g into .grad: in place, as PyTorch's AccumulateGrad
        of a leaf does, or (``fresh``: a non-leaf's retain_grad) as a new tensor, as PyTorch's
        retain_grad hook does (grad = grad + g; a .grad read before stays as it was)."""
        own = self._a
        shape = () if own is None else own.shape
        x = self._x
        if x is None:
            x = _extra(self)
        if own is not None and g.shape != shape and g.size == own.size:
            g = g.reshape(shape)  # (the flat adjoint of a leaf of 2 or more dimensions)
        with _grad_lock:
            old = x.grad
            if old is None:
                if (own is not None and g.__class__ is np.ndarray and g.shape == shape
                        and g.dtype is self._dt.np and g.flags.c_contiguous):
                    t = x.grad = _new(Tensor)  # (_leaf(_out(g)) without the calls: ~0.5 us)
                    t._v = None
                    t._a = g
                    t._dt = self._dt
                    t._rg = False
                    t._seg = None
                    t._rec = -1
                    t._x = None
                else:
                    x.grad = _leaf(_out(g.reshape(shape), self._dt), self._dt)
            elif fresh:
                x.grad = _leaf(_out(_val(old) + g.reshape(shape), self._dt), self._dt)
            elif old._v is not None:
                old._v += builtins.float(g[0])
            else:
                a = old._a
                a += g.reshape(shape)
                ox = old._x
                if ox is not None:
                    ox.vc[0] += 1

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        if (inputs is None and not retain_graph and not create_graph and self._seg is state.seg
                and self._x is None):  # the common case: E.backward_lane
            if self._dt is _F64:
                if gradient is None:
                    if self._v is not None and E.backward_lane(self):
                        return
                elif (gradient.__class__ is Tensor and gradient._dt is _F64
                      and gradient.shape == self.shape):
                    g = gradient._a
                    if g is None:
                        g = np.array((gradient._v,))
                    if E.backward_lane(self, g.reshape(-1)):
                        return
            elif (gradient is None and self._dt is _F32 and self._a.ndim == 0
                  and E.backward_lane(self)):
                return  # (a 0-d float32 loss, PyTorch's default dtype)
        backward = _autograd_backward[0]
        if backward is None:  # tapegrad.autograd imports this module: bound at first use
            from .autograd import backward
            _autograd_backward[0] = backward
        backward((self,), None if gradient is None else (gradient,), retain_graph, create_graph,
                 inputs=inputs)

    @property
    def data(self):
        _untraced(self, ".data")
        a = _storage(self)
        t = _leaf(a, self._dt)
        t._v = None
        t._a = a  # (_leaf makes a 0-d float64 a Python float: this one shares self's array)
        # PyTorch's .data shares storage but not the version counter: writes through
        # it raise no errors; they update the values the tape holds for self (_mark_modified)
        t._x = _Extra(alias=(self, True))
        _register_alias(self, t)
        return t

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError("data must be a Tensor")
        self._a = _storage(value)
        self._v = None
        self._dt = value._dt
        x = _extra(self)
        _write_through(self, True)  # (before the leaf's cached record is dropped)
        x.vc = _extra(value).vc
        x.vc[0] += 1
        x.lc = None

    def detach(self):
        _untraced(self, "detach()")
        t = _new(Tensor)
        t._dt = self._dt
        t._rg = False
        t._seg = None
        t._rec = -1
        t._v = None
        t._a = _storage(self)
        t._x = _Extra(vc=_extra(self).vc, alias=(self, False))  # storage and version, no history
        _register_alias(self, t)
        return t

    def detach_(self):
        _untraced(self, "detach_()")
        if self._x is not None and self._x.base is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self._seg = None
        self._rec = -1
        self._rg = False
        return self

    def clone(self, *, memory_format=None):
        a = np.array(_val(self), copy=True, order="C")
        if self._rg and state.grad_enabled:
            return _record_result(T.CLONE, a, self._dt, (self,))
        return _result(a, self._dt)

    def contiguous(self, memory_format=None):
        """self, or a C-ordered copy (CloneBackward0) of a transposed, strided or expanded
        view, as PyTorch's (``x.t().contiguous().view(-1)``)."""
        a = self._a
        if a is None or a.flags.c_contiguous:
            return self
        return self.clone()

    def is_contiguous(self, memory_format=None) -> bool:
        a = self._a
        return a is None or a.flags.c_contiguous

    # ------------------------------------------------------------ dtype conversion
    def to(self, *args, **kwargs):
        dt = kwargs.get("dtype")
        for a in args:
            if isinstance(a, D.dtype):
                dt = a
            elif isinstance(a, Tensor):
                dt = a.dtype
        if (dt is None or dt is self._dt) and not kwargs.get("copy", False):
            return self
        return self._cast(self._dt if dt is None else dt)

    def type(self, dtype=None):
        if dtype is None:
            return f"torch.{_TYPE_NAMES.get(self._dt.name, 'Tensor')}"
        return self.to(D.as_dtype(dtype))

    def float(self):
        return self.to(D.float32)

    def double(self):
        return self.to(D.float64)

    def half(self):
        return self.to(D.float16)

    def long(self):
        return self.to(D.int64)

    def int(self):
        return self.to(D.int32)

    def bool(self):
        return self.to(D.bool_)

    def cpu(self):
        return self

    def _cast(self, dt):
        mask = self._dt is D.bool_  # 0/1: exact in every dtype
        if not mask and (not dt.is_floating_point or dt.itemsize < 8):
            _untraced(self, f"a cast to {dt}")  # replays compute in float64
        a = _out(_val(self), dt)
        if self._rg and state.grad_enabled and (dt.is_floating_point or mask):
            narrowing = dt.itemsize < self._dt.itemsize  # its gradient is rounded, as PyTorch's
            return _record_result(T.TOCOPY, a, dt, (self,), c=1.0 if narrowing else 0.0)
        return _result(a, dt)

    # ------------------------------------------------------------ arithmetic
    # The 0-d float64 fast path is inlined in the hottest operators: a Python
    # number or another fast-path scalar, no NumPy, one staged record.
    def __add__(self, other):
        sv = self._v
        if sv is not None:
            oc = other.__class__
            if oc is float or oc is int:
                return _scalar_c(T.ADDC, self, other, sv + other)
            if oc is Tensor and other._v is not None:
                return _scalar_b(T.ADD, self, other, sv + other._v)
        elif self._rg:  # an array that requires grad: a lazy result if it may be
            oc = other.__class__
            if oc is float or oc is int:
                t = _lazy(_ADDC, self, None, other)
                return t if t is not None else _binary_number(T.ADD, self, other, False, True)
            if oc is _Lazy or oc is Tensor:
                t = _lazy(_ADD, self, other, 0)
                return t if t is not None else _binary(T.ADD, self, other, False, True)
        elif other.__class__ is float or other.__class__ is int:
            return _binary_number(T.ADD, self, other, False)
        return _binary(T.ADD, self, other)

    def __radd__(self, other):
        sv = self._v
        if sv is not None and (other.__class__ is float or other.__class__ is int):
            return _scalar_c(T.ADDC, self, other, other + sv)
        if sv is None and self._rg and (other.__class__ is float or other.__class__ is int):
            t = _lazy(_ADDC, self, None, other)
            if t is not None:
                return t
            return _binary(T.ADD, self, other, True, True)
        return _binary(T.ADD, self, other, True)

    def __sub__(self, other):
        sv = self._v
        if sv is not None:
            oc = other.__class__
            if oc is float or oc is int:
                return _scalar_c(T.SUBC, self, other, sv - other)
            if oc is Tensor and other._v is not None:
                return _scalar_b(T.SUB, self, other, sv - other._v)
        elif self._rg:
            oc = other.__class__
            if oc is float or oc is int:
                t = _lazy(_SUBC, self, None, other)
                return t if t is not None else _binary_number(T.SUB, self, other, False, True)
            if oc is _Lazy or oc is Tensor:
                t = _lazy(_SUB, self, other, 0)
                return t if t is not None else _binary(T.SUB, self, other, False, True)
        return _binary(T.SUB, self, other)

    def __rsub__(self, other):
        sv = self._v
        if sv is not None and (other.__class__ is float or other.__class__ is int):
            return _scalar_c(T.RSUBC, self, other, other - sv)
        if sv is None and self._rg and (other.__class__ is float or other.__class__ is int):
            t = _lazy(_RSUBC, self, None, other)
            if t is not None:
                return t
            return _binary(T.SUB, self, other, True, True)
        return _binary(T.SUB, self, other, True)

    def __mul__(self, other):
        sv = self._v
        if sv is not None:
            oc = other.__class__
            if oc is float or oc is int:
                return _scalar_c(T.MULC, self, other, sv * other)
            if oc is Tensor and other._v is not None:
                return _scalar_b(T.MUL, self, other, sv * other._v)
        elif self._rg:
            oc = other.__class__
            if oc is float or oc is int:
                t = _lazy(_MULC, self, None, other)
                return t if t is not None else _binary_number(T.MUL, self, other, False, True)
            if oc is _Lazy or oc is Tensor:
                t = _lazy(_MUL, self, other, 0)
                return t if t is not None else _binary(T.MUL, self, other, False, True)
        elif other.__class__ is float or other.__class__ is int:
            return _binary_number(T.MUL, self, other, False)
        return _binary(T.MUL, self, other)

    def __rmul__(self, other):
        sv = self._v
        if sv is not None and (other.__class__ is float or other.__class__ is int):
            return _scalar_c(T.MULC, self, other, other * sv)
        if sv is None and self._rg and (other.__class__ is float or other.__class__ is int):
            t = _lazy(_MULC, self, None, other)
            if t is not None:
                return t
            return _binary(T.MUL, self, other, True, True)
        return _binary(T.MUL, self, other, True)

    def __truediv__(self, other):
        sv = self._v
        if sv is not None:
            oc = other.__class__
            if (oc is float or oc is int) and other != 0:
                return _scalar_c(T.DIVC, self, other, sv / other)
            if oc is Tensor and other._v:  # a nonzero fast-path scalar
                return _scalar_b(T.DIV, self, other, sv / other._v)
        elif self._rg and (other.__class__ is float or other.__class__ is int):
            t = _lazy(_DIVC, self, None, other)
            if t is not None:
                return t
            return _binary(T.DIV, self, other, False, True)
        return _binary(T.DIV, self, other)

    def __rtruediv__(self, other):
        return _binary(T.DIV, self, other, True)

    def __pow__(self, other):
        sv = self._v
        if sv is not None and (other.__class__ is int or other.__class__ is float) and other == 2:
            # a fast-path scalar squared (x ** 2: PowBackward0): x * x, the bits of pow(x, 2),
            # overflowing to inf where Python's ** raises
            return _scalar_c(T.POWC, self, 2.0, sv * sv)
        return _binary(T.POW, self, other)

    def __rpow__(self, other):
        return _binary(T.POW, self, other, True)

    def __neg__(self):
        return _unary(self, T.NEG)

    def __pos__(self):
        return self

    def __abs__(self):
        return _unary(self, T.ABS)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(tensor(other) if not isinstance(other, Tensor) else other, self)

    def add(self, other, *, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, *, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        if rounding_mode is None:
            return self / other
        return R.divide(self, other, rounding_mode)

    divide = div

    def true_divide(self, other):
        return self / other

    def floor_divide(self, other):
        return R.divide(self, other, "floor", floor_divide=True)

    __floordiv__ = floor_divide

    def __rfloordiv__(self, other):
        return R.divide(self, other, "floor", reverse=True, floor_divide=True)

    def pow(self, exponent):
        return self**exponent

    def neg(self):
        return _unary(self, T.NEG)

    def exp(self):
        return _unary(self, T.EXP)

    def log(self):
        return _unary(self, T.LOG)

    def sin(self):
        return _unary(self, T.SIN)

    def cos(self):
        return _unary(self, T.COS)

    def tanh(self):
        return _unary(self, T.TANH)

    def sigmoid(self):
        return _unary(self, T.SIGMOID)

    def relu(self):
        return _unary(self, T.RELU)

    def sqrt(self):
        return _unary(self, T.SQRT)

    def abs(self):
        return _unary(self, T.ABS)

    def reciprocal(self):
        return _unary(self, T.RECIPROCAL)

    def log1p(self):
        return _unary(self, T.LOG1P)

    def expm1(self):
        return _unary(self, T.EXPM1)

    def log2(self):
        return _unary(self, T.LOG2)

    def log10(self):
        return _unary(self, T.LOG10)

    def exp2(self):
        return _unary(self, T.EXP2)

    def tan(self):
        return _unary(self, T.TAN)

    def sinh(self):
        return _unary(self, T.SINH)

    def cosh(self):
        return _unary(self, T.COSH)

    def asin(self):
        return _unary(self, T.ASIN)

    def acos(self):
        return _unary(self, T.ACOS)

    def atan(self):
        return _unary(self, T.ATAN)

    arcsin = asin
    arccos = acos
    arctan = atan

    def erf(self):
        return _unary(self, T.ERF)

    def rsqrt(self):
        return _unary(self, T.RSQRT)

    def square(self):
        return self**2

    def sign(self):
        return _unary(self, T.SIGN)

    def floor(self):
        return _rounding(self, T.FLOOR)

    def ceil(self):
        return _rounding(self, T.CEIL)

    def round(self, decimals=0):
        if decimals:
            scale = 10.0**decimals
            return _rounding(self * scale, T.ROUND) / scale
        return _rounding(self, T.ROUND)

    def trunc(self):
        return _rounding(self, T.TRUNC)

    def clamp(self, min=None, max=None):
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            return L.clamp_tensor(self, min, max)
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        lo = -math.inf if min is None else builtins.float(min)
        hi = math.inf if max is None else builtins.float(max)
        if not self._dt.is_floating_point:
            return _result(_out(np.clip(_val(self), min, max), self._dt), self._dt)
        return _unary(self, T.CLAMP, lo, hi)

    clip = clamp

    def clamp_min(self, min):
        return L.clamp_min(self, min)

    def clamp_max(self, max):
        return L.clamp_max(self, max)

    # ------------------------------------------------------------ comparisons
    def __eq__(self, other):
        return _compare(np.equal, self, other)

    def __ne__(self, other):
        return _compare(np.not_equal, self, other)

    def __lt__(self, other):
        return _compare(np.less, self, other)

    def __le__(self, other):
        return _compare(np.less_equal, self, other)

    def __gt__(self, other):
        return _compare(np.greater, self, other)

    def __ge__(self, other):
        return _compare(np.greater_equal, self, other)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def equal(self, other) -> bool:
        _untraced(self, "equal()")
        _untraced(other, "equal()")
        return self.shape == other.shape and builtins.bool(np.array_equal(_val(self), _val(other)))

    def __invert__(self):
        if self._dt is not D.bool_ and self._dt.is_floating_point:
            raise TypeError("~ (operator.invert) is only implemented on integer and Boolean-type "
                            "tensors")
        out = _out(np.invert(_val(self)), self._dt)
        if self._dt is D.bool_ and _traced(self):  # a traced mask: not m = 1 - m
            return _record_result(T.RSUBC, out, D.bool_, (self,), c=1.0)
        _untraced(self, "~")
        return _result(out, self._dt)

    def __and__(self, other):
        if self._dt is D.bool_ and _is_bool(other):  # masks (traced: their minimum)
            return _logical(np.logical_and, T.MINIMUM, self, other)
        from ._ops_math import bitwise_and  # (integers: bitwise, as PyTorch's &)
        return bitwise_and(self, other)

    def __or__(self, other):
        if self._dt is D.bool_ and _is_bool(other):
            return _logical(np.logical_or, T.MAXIMUM, self, other)
        from ._ops_math import bitwise_or
        return bitwise_or(self, other)

    def all(self, dim=None, keepdim=False):
        return L.all(self, dim, keepdim)

    def any(self, dim=None, keepdim=False):
        return L.any(self, dim, keepdim)

    # ------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False, *, dtype=None):
        return _reduce(self, T.SUM, T.SUMDIM, dim, keepdim, dtype)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        dt = D.as_dtype(dtype) if dtype is not None else self._dt
        if not dt.is_floating_point:
            raise RuntimeError("mean(): could not infer output dtype. Input dtype must be either a "
                               f"floating point or complex dtype. Got: {_SHORT[dt.name]}")
        return _reduce(self, T.MEAN, T.MEANDIM, dim, keepdim, dtype)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        if (dim is None and self._dt is _F64 and not keepdim
                and (p == "fro" or p == 2)):  # the 2-norm of a float64 tensor, to a float
            flat = _val(self).reshape(-1)
            token = _quiet_on(_IGNORE)  # (an overflow to inf: NumPy warns, PyTorch not)
            try:
                v = math.sqrt(_DOT(flat, flat))
            finally:
                _quiet_off(token)
            seg = _current() if self._rg else None
            if seg is not None:
                ra = self._rec if self._seg is seg and self._x is None else _ref(seg, self)
                return _result(v, _F64, seg, seg.record(T.NORM2, ra, -1, 0.0, v))
            return _result(v, _F64)
        if p not in ("fro", 2, 2.0):
            return L.norm(self, p, dim, keepdim, dtype)
        if not self._dt.is_floating_point:
            raise RuntimeError("linalg.vector_norm: Expected a floating point or complex tensor as "
                               f"input. Got {_SHORT[self._dt.name]}")
        a = _val(self)
        dims = _dims(dim, self.ndim)
        token = _quiet_on(_IGNORE)
        try:
            if dim is None and not keepdim:
                flat = a.reshape(-1)
                out = _out(np.sqrt(np.dot(flat, flat)), self._dt)
            else:
                out = _out(np.sqrt(np.sum(np.square(a), axis=dims, keepdims=keepdim)), self._dt)
        finally:
            _quiet_off(token)
        if self._rg and state.grad_enabled:
            full = dim is None or builtins.len(dims) == self.ndim
            aux = None if full else _reduce_map(self.shape, dims)
            return _record_result(T.NORM2, out, self._dt, (self,), aux_ints=aux)
        return _result(out, self._dt)

    # ------------------------------------------------------------ library ops (_library)
    def maximum(self, other):
        L.tensors_only("maximum", self, other, True)
        return L.maximum(self, other)

    def minimum(self, other):
        L.tensors_only("minimum", self, other, True)
        return L.minimum(self, other)

    def fmax(self, other):
        L.tensors_only("fmax", self, other, True)
        return L.fmax(self, other)

    def fmin(self, other):
        L.tensors_only("fmin", self, other, True)
        return L.fmin(self, other)

    def atan2(self, other):
        L.tensors_only("atan2", self, other, True)
        return L.atan2(self, other)

    arctan2 = atan2

    def fmod(self, other):
        return L.fmod(self, other)

    def remainder(self, other):
        return L.remainder(self, other)

    def __mod__(self, other):
        return L.remainder(self, other)

    def lerp(self, end, weight):
        return L.lerp(self, end, weight)

    def where(self, condition, other):
        return L.where(condition, self, other)

    def tril(self, diagonal=0):
        return L.tril(self, diagonal)

    def triu(self, diagonal=0):
        return L.triu(self, diagonal)

    def amax(self, dim=(), keepdim=False):
        return L.amax(self, dim, keepdim)

    def amin(self, dim=(), keepdim=False):
        return L.amin(self, dim, keepdim)

    def max(self, dim=None, keepdim=False):
        return L.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return L.min(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return L.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return L.argmin(self, dim, keepdim)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return A.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return A.addcdiv(self, tensor1, tensor2, value=value)

    def diff(self, n=1, dim=-1, prepend=None, append=None):
        return A.diff(self, n, dim, prepend, append)

    def nansum(self, dim=None, keepdim=False, *, dtype=None):
        return A.nansum(self, dim, keepdim, dtype=dtype)

    def nanmean(self, dim=None, keepdim=False, *, dtype=None):
        return A.nanmean(self, dim, keepdim, dtype=dtype)

    def nonzero(self, *, as_tuple=False):
        return A.nonzero(self, as_tuple=as_tuple)

    def count_nonzero(self, dim=None):
        return A.count_nonzero(self, dim)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return A.nan_to_num(self, nan, posinf, neginf)

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        return A.uniform_(self, a, b, generator=generator)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        return A.normal_(self, mean, std, generator=generator)

    def sort(self, dim=-1, descending=False, stable=False):
        return L.sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return L.argsort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return L.topk(self, k, dim, largest, sorted)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        return L.prod(self, dim, keepdim, dtype=dtype)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return L.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return L.std(self, dim, unbiased, keepdim, correction=correction)

    def logsumexp(self, dim, keepdim=False):
        return L.logsumexp(self, dim, keepdim)

    def softmax(self, dim, dtype=None):
        return L.softmax(self, dim, dtype)

    def log_softmax(self, dim, dtype=None):
        return L.log_softmax(self, dim, dtype)

    def cumsum(self, dim, *, dtype=None):
        return L.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, *, dtype=None):
        return L.cumprod(self, dim, dtype=dtype)

    def gather(self, dim, index):
        return L.gather(self, dim, index)

    def index_select(self, dim, index):
        return L.index_select(self, dim, index)

    def masked_select(self, mask):
        return L.masked_select(self, mask)

    def masked_fill(self, mask, value):
        return L.masked_fill(self, mask, value)

    def masked_fill_(self, mask, value):
        return _write_result(self, lambda: L.masked_fill(self, mask, value))

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        return L.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim, index, src):
        return L.scatter_add(self, dim, index, src)

    def flip(self, *dims):
        return L.flip(self, _shape_arg(dims, "dims"))

    def roll(self, shifts, dims=None):
        return L.roll(self, shifts, dims)

    def repeat(self, *sizes):
        return L.repeat(self, *sizes)

    def tile(self, *dims):
        return L.tile(self, _shape_arg(dims, "dims"))

    def narrow(self, dim, start, length):
        return L.narrow(self, dim, start, length)

    def select(self, dim, index):
        return L.select(self, dim, index)

    def split(self, split_size, dim=0):
        return L.split(self, split_size, dim)

    def chunk(self, chunks, dim=0):
        return L.chunk(self, chunks, dim)

    def unbind(self, dim=0):
        return L.unbind(self, dim)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return L.diagonal(self, offset, dim1, dim2)

    def unflatten(self, dim, sizes):
        return L.unflatten(self, dim, sizes)

    def broadcast_to(self, size):
        return self.expand(size)

    def bmm(self, mat2):
        return L.bmm(self, mat2)

    def baddbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return L.baddbmm(self, batch1, batch2, beta=beta, alpha=alpha)

    def outer(self, vec2):
        return L.outer(self, vec2)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1):
        return L.addmm(self, mat1, mat2, beta=beta, alpha=alpha)

    # ------------------------------------------------------------ linear algebra
    def dot(self, other):
        return dot(self, other)

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, other):
        if self.ndim != 2:
            raise RuntimeError("self must be a matrix")
        if other.ndim != 2:
            raise RuntimeError("mat2 must be a matrix")
        return matmul(self, other)

    def mv(self, vec):
        if self.ndim != 2 or vec.ndim != 1:
            raise RuntimeError("vector + matrix @ vector expected, got "
                               f"{vec.ndim}, {self.ndim}, {vec.ndim}")
        return matmul(self, vec)

    # ------------------------------------------------------------ shapes and views
    def view(self, *shape):
        shape = _infer_shape(_shape_arg(shape), self.numel())
        a = _storage(self)
        b = a.reshape(shape)
        if not np.shares_memory(a, b) and a.size > 0:
            raise RuntimeError("view size is not compatible with input tensor's size and stride "
                               "(at least one dimension spans across two contiguous subspaces). "
                               "Use .reshape(...) instead.")
        return self._view_result(b, T.VIEW, None)

    def reshape(self, *shape):
        shape = _infer_shape(_shape_arg(shape), self.numel())
        if self._v is not None:
            return self._reshaped(np.array(self._v).reshape(shape), T.VIEW)
        a = self._a
        b = a.reshape(shape)
        if a.size == 0 or np.shares_memory(a, b):
            return self._view_result(b, T.VIEW if a.flags.c_contiguous else T.RESHAPE_ALIAS, None)
        return self._reshaped(np.array(b, order="C"), T.UNSAFE_VIEW)

    def flatten(self, start_dim=0, end_dim=-1):
        nd = self.ndim
        if nd == 0:
            return self.reshape(1)
        s = _wrap_dim(start_dim, nd)
        e = _wrap_dim(end_dim, nd)
        if s == e:
            return self
        shape = self.shape
        return self.reshape(*shape[:s], math.prod(shape[s:e + 1]), *shape[e + 1:])

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def squeeze(self, dim=None):
        shape = self.shape
        if dim is None:
            new = tuple(s for s in shape if s != 1)
            op = T.SQUEEZE0
        else:
            dims = _dims(dim, self.ndim)
            new = tuple(s for d, s in enumerate(shape) if not (d in dims and s == 1))
            op = T.SQUEEZE if isinstance(dim, builtins.int) else T.SQUEEZE2
        return self._view_result(_storage(self).reshape(new), op, None)

    def unsqueeze(self, dim):
        d = _wrap_dim(dim, self.ndim + 1)
        shape = list(self.shape)
        shape.insert(d, 1)
        return self._view_result(_storage(self).reshape(shape), T.UNSQUEEZE, None)

    def permute(self, *dims):
        dims = _dims(_shape_arg(dims, "dims"), self.ndim)
        if builtins.len(dims) != self.ndim:
            raise RuntimeError("permute(sparse_coo): number of dimensions in the tensor input does "
                               "not match the length of the desired ordering of dimensions i.e. "
                               f"input.dim() = {self.ndim} is not equal to len(dims) = "
                               f"{builtins.len(dims)}")
        return self._strided(T.PERMUTE, _storage(self).transpose(dims),
                             [self.shape[d] for d in dims],
                             [_c_strides(self.shape)[d] for d in dims])

    def transpose(self, dim0, dim1):
        nd = self.ndim
        perm = list(range(nd))
        if nd == 0:
            return self
        d0, d1 = _wrap_dim(dim0, nd), _wrap_dim(dim1, nd)
        perm[d0], perm[d1] = perm[d1], perm[d0]
        cs = _c_strides(self.shape)
        return self._strided(T.TRANSPOSE, _storage(self).transpose(perm),
                             [self.shape[d] for d in perm], [cs[d] for d in perm])

    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                               f"{self.ndim}D")
        if self.ndim < 2:
            n = self.numel()
            return self._strided(T.TBACK, _storage(self), list(self.shape), [1] * self.ndim)\
                if n else self._strided(T.TBACK, _storage(self), list(self.shape), [0] * self.ndim)
        cs = _c_strides(self.shape)
        return self._strided(T.TBACK, _storage(self).T, [self.shape[1], self.shape[0]],
                             [cs[1], cs[0]])

    @property
    def T(self):
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def expand(self, *sizes):
        sizes = _shape_arg(sizes)
        shape = self.shape
        if builtins.len(sizes) < builtins.len(shape):
            raise RuntimeError(f"expand({self.type()}{{{list(shape)}}}, size={list(sizes)}): the "
                               "number of sizes provided ({}) must be greater or equal to the "
                               "number of dimensions in the tensor ({})".format(
                                   builtins.len(sizes), builtins.len(shape)))
        lead = builtins.len(sizes) - builtins.len(shape)
        target = []
        for i, s in enumerate(sizes):
            own = shape[i - lead] if i >= lead else 1
            if s == -1:
                if i < lead:
                    raise RuntimeError("The expanded size of the tensor (-1) isn't allowed in a "
                                       "leading, non-existing dimension " + str(i))
                s = own
            elif own != 1 and s != own:
                raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing "
                                   f"size ({own}) at non-singleton dimension {i}.  Target sizes: "
                                   f"{list(sizes)}.  Tensor sizes: {list(shape)}")
            target.append(s)
        target = tuple(target)
        m = _broadcast_map(shape, target)
        src = _storage(self)
        view = np.broadcast_to(src, target)
        if src.flags.writeable:  # PyTorch writes through an expanded view (fill_, zero_,
            view.flags.writeable = True  # setitem; _check_overlap refuses arithmetic on one)
        return self._strided(T.EXPAND, view, m[2:2 + builtins.len(target)],
                             m[2 + builtins.len(target):])

    def expand_as(self, other):
        return self.expand(other.shape)

    def _strided(self, op, view, shape, strides, base=0):
        return self._view_result(view, op, [builtins.len(shape), base, *shape, *strides])

    def _view_result(self, view, op, aux):
        """A result sharing storage with self; recorded as op with index map aux."""
        if self._rg and state.grad_enabled:
            seg = E.current()  # Segment.record copies the values into the float64 arena
            base = _ref(seg, self)
            rec = seg.record(op, base, -1, 0.0, view, -1 if aux is None else
                             seg.shared_aux(tuple(aux)))
            seg.views.setdefault(base, []).append(rec)  # (_flag_views)
        else:
            seg, rec = None, -1
        if view.__class__ is not np.ndarray:
            return _result(view, self._dt, seg, rec)
        # a view, even 0-d float64 (no fast-path float): built here, not by _result and then
        # rewritten (~0.4 us less for a 1-d slice)
        t = _new(Tensor)
        t._v = None
        t._a = view
        t._dt = self._dt
        t._rg = seg is not None
        t._seg = seg
        t._rec = rec
        t._x = _view_extra(self)
        return t

    def _reshaped(self, a, op):
        if self._rg and state.grad_enabled:
            return _record_result(op, a, self._dt, (self,))
        return _result(a, self._dt)

    def __getitem__(self, index):
        if self.__class__ is _Lazy and index.__class__ is slice:
            t = _lazy_slice(self, index)
            if t is not None:
                return t
        a = self._a
        if index.__class__ is builtins.int and a is not None and a.ndim == 1:
            n = a.shape[0]
            if not -n <= index < n:
                raise IndexError(f"index {index} is out of bounds for dimension 0 with size {n}")
            k = index if index >= 0 else index + n
            seg = state.rec if self._rg else None
            if seg is not None and self._dt is _F64:
                # self[k] for a 1-d float64 self that requires grad, the indexing of scalar
                # code (most of det_by_minor's forward), inline: a fast-path scalar that
                # remembers its owner, so that an in-place op on it becomes a write through a
                # view (_as_view), and that writes to the owner's root refresh
                # (_refresh_elements: the root keeps weak references to its live elements)
                if seg.nrec >= seg.limit:  # as _scalar_c: an element adds no values to the arena
                    seg = E.current()
                ox = self._x
                if ox is None:
                    ox = _extra(self)
                slices = seg.slices
                if slices is not None:
                    key = id(self) << 20 | k if k < _KEY_K else (id(self), k)
                    t = slices.get(key)
                    if t is not None and _getrefcount(t) == _ELEM_REFS and t._seg is seg:
                        # an element made before in this segment that nothing refers to but
                        # the segment, its base unwritten since (the same version: the same
                        # values, the same record of self): given back as _slice_1d gives
                        # back slices (det_by_minor reads each entry of a minor once per
                        # product it is in)
                        e = t._x
                        vc = ox.vc
                        if (e.vc is vc and e.rver == vc[0] and not vc[1]
                                and _unobserved(t, e, seg)):
                            return t
                if self._seg is seg and ox.rver == ox.vc[0]:
                    ra = self._rec
                else:
                    lc = ox.lc  # a leaf's LEAF record in this segment, as _bind finds it
                    if (lc is not None and self._seg is None and lc[0] == seg.id
                            and lc[2] == ox.vc[0] and not ox.vc[1]):
                        ra = lc[1]
                    else:
                        ra = _bind(seg, self)
                if k < _ELEMS:
                    at = k + k  # the maps of the first elements are in every aux table (E.ELEMS)
                else:
                    at = seg.elem_at.get(k)
                    if at is None:
                        at = seg.elem_at[k] = seg.shared_aux((0, k))
                v = a.item(k)
                r = seg.nrec
                seg.nrec = r + 1
                stage = seg.stage
                stage.extend((_SELECT_ELEM, ra, at, v))
                if len(stage) >= _LIMIT:
                    seg.flush()
                t = _new(Tensor)
                t._v = v
                t._a = None
                t._dt = _F64
                t._rg = True
                t._rec = r
                t._seg = seg
                root = ox.base
                if root is None:
                    root = self
                    rx = ox
                else:
                    rx = _extra(root)
                e = t._x = _new(_Extra)  # (_Extra(ox.vc, root, None, (self, k)), without the call)
                e.grad = e.lc = e.hooks = e.alias = None
                e.vc = vc = ox.vc
                e.rver = vc[0]
                e.base = root
                e.retain = False
                e.elem = (self, k)
                elems = rx.elems
                if elems.__class__ is _ElementMark:  # (most roots: _refresh_elements finds
                    e.elems = elems  # their live elements through the mark when written)
                    if slices is not None and len(slices) < _KEEP:
                        slices[key] = t  # (weakly referred to, it never could be)
                    return t
                e.elems = None
                if elems is None:
                    if _MARKS[0] and root._seg is None:  # (a leaf: its writes are optimizer
                        e.elems = rx.elems = _ElementMark()  # steps, its elements dead by then)
                    else:
                        rx.elems = [_weakref(t)]
                else:
                    m = len(elems)
                    if m >= 4096 and not m & (m - 1):  # prune the dead ones at each power of
                        elems[:] = [w for w in elems if w() is not None]  # two: O(1) amortized
                    elems.append(_weakref(t))
                return t
            if seg is None:  # (not recording)
                return self._view_result(a[k:k + 1].reshape(()), T.SELECT, None)
            # recorded, of another dtype (float32, the default): _view_result's SELECT (a 0-d
            # view of self, map (0, k)) without the general index parsing, its row staged as
            # a float64 element's (the map of a k < E.ELEMS is in every aux table)
            if seg.nrec >= seg.limit:
                seg = E.current()
            ra = _ref(seg, self)
            view = a[k:k + 1].reshape(())
            r = seg.nrec
            seg.nrec = r + 1
            stage = seg.stage
            stage.extend((_SELECT_ELEM, ra, k + k if k < _ELEMS else seg.shared_aux((0, k)),
                          view.item()))
            if len(stage) >= _LIMIT:
                seg.flush()
            seg.views.setdefault(ra, []).append(r)  # (_flag_views, as _view_result)
            t = _new(Tensor)
            t._v = None
            t._a = view
            t._dt = self._dt
            t._rg = True
            t._seg = seg
            t._rec = r
            t._x = _view_extra(self)
            return t
        elif (index.__class__ is slice and self._a is not None and self._a.ndim == 1
              and (index.step is None or index.step.__class__ is builtins.int and index.step > 0)):
            return _slice_1d(self, self._a, index)
        basic = _basic_index(self.shape, index)
        a = _storage(self)
        if basic is not None:
            shape, base, strides, op = basic
            idx = tuple(builtins.int(i.item()) if isinstance(i, Tensor) else i
                        for i in (index if isinstance(index, tuple) else (index,)))
            if not builtins.any(i is Ellipsis for i in idx):
                idx = idx + (Ellipsis,)  # NumPy then returns a 0-d view, not a scalar
            return self._strided(op, a[idx], shape, strides, base)
        npidx = _np_index(index)
        value = np.array(a[npidx], order="C")
        if self._rg and state.grad_enabled:
            offsets = np.arange(a.size, dtype=np.int64).reshape(a.shape)[npidx].reshape(-1)
            return _record_result(T.INDEX, value, self._dt, (self,),
                                  aux_ints=np.concatenate(([-1, offsets.size], offsets)))
        return _result(value, self._dt)

    def __setitem__(self, index, value):
        if state.grad_enabled and self._seg is None and self._rg:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
                if _is_advanced(index) else
                "a view of a leaf Variable that requires grad is being used in an in-place "
                "operation.")
        region = self[index] if not _is_advanced(index) else None
        if region is not None and region._a is not None and np.shares_memory(region._a, _val(self)):
            region.copy_(value)  # (copy_ converts a number at region's dtype: self's)
            return
        # advanced index: out-of-place write recorded as CopySlices with an explicit map
        a = _storage(self)
        npidx = _np_index(index)
        offsets = np.arange(a.size, dtype=np.int64).reshape(a.shape)[npidx]
        src = value if isinstance(value, Tensor) else _scalar_value(value, self._dt)
        src_b = src.expand(offsets.shape) if src.shape != offsets.shape else src
        aux = np.concatenate(([-1, offsets.size], offsets.reshape(-1)))
        _write(self, lambda: _setitem_value(self, npidx, src), T.INDEX_PUT, src_b, aux)

    # ------------------------------------------------------------ in-place
    def add_(self, other, *, alpha=1):
        return _inplace(self, lambda: self.add(other, alpha=alpha), other)

    def sub_(self, other, *, alpha=1):
        return _inplace(self, lambda: self.sub(other, alpha=alpha), other)

    def mul_(self, other):
        return _inplace(self, lambda: self * other, other)

    def div_(self, other, *, rounding_mode=None):
        return _inplace(self, lambda: self.div(other, rounding_mode=rounding_mode), other)

    divide_ = div_

    def floor_divide_(self, other):
        return _inplace(self, lambda: self.floor_divide(other), other)

    def __ifloordiv__(self, other):
        return self.floor_divide_(other)

    def pow_(self, exponent):
        return _inplace(self, lambda: self**exponent, exponent)

    def neg_(self):
        return _inplace(self, lambda: -self, None)

    def exp_(self):
        return _inplace(self, self.exp, None)

    def clamp_(self, min=None, max=None):
        return _inplace(self, lambda: self.clamp(min, max), (min, max))

    clip_ = clamp_

    def clamp_min_(self, min):
        return _inplace(self, lambda: self.clamp_min(min), min)

    def clamp_max_(self, max):
        return _inplace(self, lambda: self.clamp_max(max), max)

    def lerp_(self, end, weight):
        return _inplace(self, lambda: self.lerp(end, weight), (end, weight))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def zero_(self):
        if self._rg and state.grad_enabled:  # (recorded: PyTorch checks the overlap then)
            _check_overlap(self)
        return _write(self, lambda: _fill_value(self, 0), T.ZERO_, None, None)

    def fill_(self, value):
        if self._rg and state.grad_enabled:
            _check_overlap(self)
        if isinstance(value, Tensor):
            if value.ndim != 0:
                raise RuntimeError("fill_ only supports 0-dimension value tensor but got tensor "
                                   f"with {value.ndim} dimensions.")
            if value._rg:
                v = value.expand(self.shape) if self.ndim else value
                return _write(self, lambda: _fill_value(self, value.item()), T.FILLT, v, None)
            value = value.item()
        return _write(self, lambda: _fill_value(self, value), T.FILL_, None, None)

    def copy_(self, src, non_blocking=False):
        if not isinstance(src, Tensor):
            src = _scalar_value(src, self._dt)
        _broadcast_shapes(self.shape, src.shape)
        if src.shape != self.shape:
            src_b = src.expand(self.shape)
        else:
            src_b = src
        _check_overlap(self)
        return _write(self, lambda: _copy_value(self, src_b), T.COPY_, src_b, None)


_A_GET = Tensor.__dict__["_a"].__get__
_A_SET = Tensor.__dict__["_a"].__set__


class _Lazy(Tensor):
    """A Tensor whose value the tape computes (see _lazy): until something reads its
    _a, that slot holds (shape, number of elements); then it holds the array and the object
    is a plain Tensor (same slots, so __class__ can change).  It is named Tensor too."""

    __slots__ = ()
    _a = property(_lazy_value, _lazy_set)

    @property
    def shape(self) -> Size:
        return Size(_lazy_shape(self))

    @property
    def ndim(self) -> int:
        return len(_lazy_shape(self))

    def numel(self) -> int:
        return math.prod(_lazy_shape(self))

    def __len__(self) -> int:
        return _lazy_shape(self)[0]


def _lazy_shape(t):
    sm = _A_GET(t)
    return sm[0] if sm.__class__ is tuple else sm.shape  # (made meanwhile by another thread)


_Lazy.__name__ = _Lazy.__qualname__ = "Tensor"


def _rounding(x, op):
    if not x._dt.is_floating_point:
        return x.clone()
    return _unary(x, op)


def _write_result(t, compute):
    """t <- compute() in place, where compute is an out-of-place op on t."""
    return _inplace(t, compute, None)


def _is_advanced(index):
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if isinstance(i, (list, np.ndarray)) or isinstance(i, builtins.bool):
            return True
        if isinstance(i, Tensor) and (i.ndim > 0 or i.dtype.is_floating_point or
                                      i.dtype is D.bool_):
            return True
    return False


def _fill_value(t, value):
    a = _storage(t)
    a[...] = value
    return a


def _copy_value(t, src):
    a = _storage(t)
    a[...] = _val(src)
    return a


def _setitem_value(t, npidx, src):
    a = _storage(t)
    a[npidx] = _val(src)
    return a


def _check_overlap(t):
    """PyTorch's internal-overlap check of an arithmetic in-place op or copy_ (fill_ and zero_
    have none; setitem copies into the region indexed), in grad mode or not: a view with a
    dimension of stride 0 and size > 1 (an expanded one) may not be written."""
    a = t._a
    if a is not None and 0 in a.strides and builtins.any(
            st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
        raise RuntimeError("unsupported operation: more than one element of the written-to "
                           "tensor refers to a single memory location. Please clone() the "
                           "tensor before performing the operation.")


def _check_inplace(t):
    if not state.grad_enabled:
        return
    if t._seg is None and t._rg:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation.")
    x = t._x
    if x is not None and x.base is not None and x.base._seg is None and x.base._rg:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                           "in-place operation.")


def _mark_modified(t, at=None):
    """t's storage was written: flag the records that saved its old value.

    Writes through ``.data`` raise no errors in PyTorch and its saved tensors see
    the new values: the tape's copies of the aliased tensor's records are updated
    instead.  Every other write bumps the version and flags the records of every
    tensor sharing t's storage and version (_sharers: t, its base, what either was
    detached from, transitively), with the record index the write happened at
    (consumers recorded later are not stale).
    """
    x = _extra(t)
    old = x.vc[0]
    for u, data in _sharers(t):
        if data:
            continue  # (through .data: no version, _after_data_write writes the values)
        ux = _extra(u)
        seg = u._seg
        if seg is not None and not seg.dead and ux.rver == old:
            _flag_modified(seg, u._rec, u, old, at)
        lc = ux.lc
        cur = state.seg
        if lc is not None and lc[0] == cur.id and lc[2] == old:
            _flag_modified(cur, lc[1], u, old, at)
    x.vc[0] = old + 1


def _flag_modified(seg, rec, t, version, at=None):
    """``at``: the first record that sees the new value (default: the next one)."""
    if rec not in seg.modified:
        seg.modified[rec] = (t, version, seg.nrec if at is None else at)
    seg.mark(rec, T.MODIFIED)
    x = t._x
    rx = x if x is None or x.base is None else x.base._x
    elements = rx is not None and rx.elems is not None
    if seg.views or elements:
        _flag_views(seg, rec, version, at if seg is state.seg else None, elements, t)


def _flag_views(seg, rec, version, at, elements, t=None):
    """The records of views of rec's value (x[k] elements, slices, reshapes...: records that
    share its storage, made before the write) hold old values too: a consumer that saved one
    of them is stale, as PyTorch's version check of a saved view finds (``y[0] * y[0]``, then
    ``y.mul_(2)``; ``x[0] * x[1]``, then an optimizer step on x before backward), whether or
    not the view's tensor is still alive.  ``seg.views`` lists the views _view_result made
    of each record; ``elements``: x[k] elements were taken of the written tensor's root, and
    the records after rec are searched for SELECT records of it (Tensor.__getitem__ lists
    none: it is the hot path of scalar code).  A hidden BROADCAST of rec (an operand broadcast
    to its consumer's shape) is rec's tensor ``t`` to PyTorch, and names it in the error; an
    element of a 1-d ``t`` is described as PyTorch's regenerated view (AsStrided)."""
    cols = seg.cols  # (flushed by mark)
    op, a = cols[0], cols[1]
    n = seg.nflushed
    at = seg.nrec if at is None else at
    todo = [(rec, t)]
    while todo:
        r, owner = todo.pop()
        found = seg.views.get(r, [])
        if elements and r + 1 < n:
            found = found + [v for v in (np.flatnonzero(a[r + 1:n] == r) + (r + 1)).tolist()
                             if op[v] == T.SELECT]
        for v in found:
            o = op[v]
            if o == T.BROADCAST:
                vt = owner
            elif o == T.SELECT and r == rec and t is not None and t.dim() == 1:
                # an element: to PyTorch a view regenerated after the write (AsStrided)
                vt = E._Bound(t._dt, (), _extra(t).vc, "AsStridedBackward0")
            else:
                vt = None
            if v not in seg.modified:
                seg.modified[v] = (vt, version, at)
                seg.mark(v, T.MODIFIED)  # (under the lock: a flush may grow the columns)
            todo.append((v, vt))


def _write_through(t, assigned=False):
    """After a write through ``t.data``: the tape's copies of t's current records see it.

    ``assigned``: after ``t.data = value`` instead.  PyTorch's backward then sees the new
    value where t was saved as an input (the saved variable is t itself) but not where t is
    a saved output (saved apart from t): a record whose op saves its output keeps its value."""
    state.seg.forget_slices()  # (slices made before hold t's old values: _slice_1d)
    x = _extra(t)
    value = _val(t)
    targets = []
    if t._seg is not None and not t._seg.dead:
        targets.append((t._seg, t._rec))
    lc = x.lc
    if lc is not None and lc[0] == state.seg.id:
        targets.append((state.seg, lc[1]))
    for seg, rec in targets:
        seg.flush()
        if assigned and T.SAVES[seg.cols[0][rec]] & T.SAVE_OUT:
            continue
        n, off = seg.cols[5], seg.cols[6]
        if n[rec] == 1:
            if value.size == 1:
                seg.cols[4][rec] = builtins.float(value.reshape(-1)[0])
        elif n[rec] == value.size:
            seg.bulk[off[rec]:off[rec] + n[rec]] = value.reshape(-1)
            _refresh_derivatives(seg, rec)


def _refresh_derivatives(seg, rec):
    """The SINC and COSC records of rec's value recompute the derivative they saved: as in
    PyTorch, where sin saves its input, a write through .data reaches the backward."""
    op, a = seg.cols[0][:seg.nrec], seg.cols[1][:seg.nrec]
    n, off = seg.cols[5], seg.cols[6]
    bulk = seg.bulk
    x = bulk[off[rec]:off[rec] + n[rec]]
    for r in np.flatnonzero(((op == T.SINC) | (op == T.COSC)) & (a == rec)):
        o, m = int(off[r]), int(n[r])
        y = np.empty(m)
        T.sin_cos_d(x, y, bulk[o - m:o], y, op[r] == T.COSC)


def _unary_inplace(name):
    method = getattr(Tensor, name)

    def op_(self):
        return _inplace(self, lambda: method(self), None)
    op_.__name__ = op_.__qualname__ = name + "_"
    op_.__doc__ = f"``{name}`` in place (PyTorch's ``Tensor.{name}_``)."
    return op_


for _name in ("sqrt", "rsqrt", "abs", "log", "log1p", "log2", "log10", "expm1", "exp2", "sin",
              "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "sigmoid", "tanh", "relu",
              "sign", "square", "reciprocal", "erf", "floor", "ceil", "round", "trunc"):
    setattr(Tensor, _name + "_", _unary_inplace(_name))
del _name


def _inplace(t, compute, other):
    """t <- compute() in place: the out-of-place result's record becomes t's history.
    ``other``: the op's other operand, or a tuple of them (lerp_'s end and weight)."""
    _check_overlap(t)
    _check_inplace(t)
    _as_view(t)
    others = other if other.__class__ is tuple else (other,)
    recording = _recording(t, *others)
    base = t._x.base if t._x is not None else None
    seg = E.current() if recording else None
    base_ref = _ref(seg, base) if recording and base is not None else -1
    at = state.seg.nrec  # the in-place op's own record reads the old value legitimately,
    for o in others:
        if isinstance(o, Tensor) and _same_storage(o, t):
            at = None  # unless an operand is the tensor it overwrites (PyTorch errs)
    new = compute()
    if t._dt is not new._dt and not _can_cast(new._dt, t._dt):
        raise RuntimeError(f"result type {_SHORT[new._dt.name]} can't be cast to the desired "
                           f"output type {_SHORT[t._dt.name]}")
    if new.shape != t.shape:
        raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(new.shape)}")
    _mark_modified(t, at)
    if t._a is None:
        t._v = new._v if new._v is not None else builtins.float(_val(new))
    else:
        t._a[...] = _val(new)
    if recording:
        _adopt(t, new._seg, new._rec)
        if base is not None:
            o = next((o for o in others if isinstance(o, Tensor) and o._rg), None)
            _record_base_write(seg, base, base_ref, t, -1 if o is None else _ref(seg, o))
    _after_data_write(t)
    return t


def _write(t, compute, op, src, aux):
    """An in-place write that replaces values (zero_, fill_, copy_, setitem)."""
    _check_inplace(t)
    _as_view(t)
    recording = _recording(t, src)
    x = t._x
    base = x.base if x is not None else None
    seg = E.current() if recording else None
    if recording:
        ra = _ref(seg, t)
        rb = _ref(seg, src) if src is not None else -1
        base_ref = _ref(seg, base) if base is not None else -1
    _mark_modified(t)
    if t._v is not None:
        _storage(t)
    compute()
    if recording:
        rec = seg.record(op, ra, rb, 0.0, _val64(t), -1 if aux is None else seg.add_aux(aux))
        _adopt(t, seg, rec)
        if base is not None:
            _record_base_write(seg, base, base_ref, t, rb if src is not None and src._rg else -1)
    _after_data_write(t)
    return t


def _after_data_write(t):
    """After any in-place write to t: fast-path elements and the tape follow the new values."""
    if t._x is None:
        return
    for u, data in _sharers(t):
        x = u._x
        _refresh_elements(u if x is None or x.base is None else x.base)
        if data:
            _write_through(u)


def _sharers(t):
    """The tensors a write to t writes: t, the base it views, what either was detached from
    or is the ``.data`` of, and the live tensors detached from or the ``.data`` of any of
    these (_register_alias), with their bases, transitively (``y.detach()[1:]``,
    ``y[1:].detach()``, ``y.data[0]``, ``y.detach().detach()``, a write to y after
    ``d = y.detach()``); each with whether the way to it crossed a ``.data`` (whose writes
    bump no version of it in PyTorch, and reach its saved values).  Their records saved the
    old values."""
    out = []
    seen = set()
    todo = [(t, False)]
    while todo:
        u, data = todo.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        out.append((u, data))
        x = u._x
        if x is not None:
            if x.base is not None:
                todo.append((x.base, data))
            if x.alias is not None:
                todo.append((x.alias[0], data or x.alias[1]))
            vc = x.vc
            if len(vc) > 2:
                for ref in vc[2]:
                    a = ref()
                    if a is not None and id(a) not in seen:
                        todo.append((a, data or a._x.alias[1]))
    return out


def _register_alias(origin, t):
    """t is ``origin.detach()`` or ``origin.data``: list it on origin's version counter
    (shared by origin, the base it views and its views), so that a write to any of them
    reaches t's records (_sharers).  PyTorch raises at backward for a saved ``detach()``
    written since (it shares the version), and its saved ``.data`` sees the new values (it
    shares the storage); the tape copied the values t had when recorded.  Weak references,
    the dead ones pruned as the list doubles."""
    vc = _extra(origin).vc
    if len(vc) == 2:
        vc.append([_weakref(t)])
        return
    refs = vc[2]
    m = len(refs)
    if m >= 64 and not m & (m - 1):
        refs[:] = [w for w in refs if w() is not None]
    refs.append(_weakref(t))


def _same_storage(a, b):
    if a is b:
        return True
    xa, xb = a._x, b._x
    return xa is not None and xb is not None and xa.vc is xb.vc


def _slice_1d(t, a, index):
    """t[start:stop:step] of a 1-d t, step > 0: a view recorded as SliceBackward0.  A float64
    t that records takes _view_result's and Segment.record's steps inline (~0.4 us of a
    slice's ~1.8: an_ode slices its state and its parameters ~100 times per gradient).  A
    slice of 2 or more elements of a leaf is lazy (_lazy_leaf_slice)."""
    seg = state.rec if t._rg else None
    if seg is not None and (t._dt is not _F64 or seg.nrec >= seg.limit
                            or seg.nbulk > _ROTATE_VALUES):
        seg = None  # (_view_result records it, the segment rotated first if full)
    if seg is not None and t._seg is None:
        slices = seg.slices  # (None in a trace's segment)
        if slices is None:
            return _leaf_slice(seg, t, a, index)
        key = (id(t), index.start, index.stop, index.step)
        try:
            hit = slices.get(key)
        except TypeError:  # (an unhashable bound: not kept)
            return _leaf_slice(seg, t, a, index)
        if hit is not None:
            # A slice of the leaf t made before in this segment that nothing refers to any
            # more but the segment: the same slice again, as valid as a new one would be (t
            # unchanged since, and the same binding of it), is returned instead of recording
            # a new one.  Nothing can tell the difference: no one holds it, weakly or not; it
            # has no hooks, no retained grad and no grad_fn read; its record is its own.
            # an_ode slices its parameters as x[:1] and x[1:] at each RK4 stage (~2 us each,
            # recorded; ~0.7 given back)
            v, r, ra = hit
            if _getrefcount(v) == _SLICE_REFS and v._seg is seg and v._rec == r:
                vx = v._x
                lx = t._x
                vc = lx.vc
                lc = lx.lc
                if (vx.vc is vc and vx.rver == vc[0] and not vc[1] and lc is not None
                        and lc[0] == seg.id and lc[1] == ra and lc[2] == vc[0]
                        and _unobserved(v, vx, seg)):
                    return v
        v = _leaf_slice(seg, t, a, index)
        if len(slices) < _KEEP:
            slices[key] = (v, v._rec, t._x.lc[1])  # (_bind made t's lc)
        return v
    return _slice_recorded(seg, t, a, index)


def _unobserved(t, x, seg):
    """A kept slice or element (``x`` its side object) of which nothing could tell that it is
    given back again: no hook, no retained grad, no grad_fn read (seg.nodes), no weak
    reference; its caller checked that nothing else refers to it."""
    return (not x.retain and x.hooks is None and x.grad is None and t._rec not in seg.nodes
            and not _getweakrefcount(t))


_getweakrefcount = weakref.getweakrefcount
# at most this many slices and elements kept per segment: scalar code that reads each of a
# million entries once would otherwise keep a million elements (~350 B each) until backward
_KEEP = 1024
_KEY_K = 1 << 20  # an element's key: id(base) << 20 | k below, (id(base), k) from it


def _kept_refs():
    """sys.getrefcount of a kept slice and a kept element that nothing else refers to, read
    as _slice_1d and Tensor.__getitem__ read them: counted here on objects held the same way
    (the entry's tuple or the entry, the local, getrefcount's argument: 3 on CPython 3.11;
    interpreters differ in counting references from a function's own stack)."""
    slices = {0: (object(), 0, 0), 1: object()}
    hit = slices.get(0)
    v, r, ra = hit
    t = slices.get(1)
    return _getrefcount(v), _getrefcount(t)


def _leaf_slice(seg, t, a, index):
    """t[index] of a 1-d float64 leaf t, recorded in seg: lazy if it may be."""
    if seg.nrec >= seg.lazy_off:
        v = _lazy_leaf_slice(seg, t, a, index)
        if v is not None:
            return v
    return _slice_recorded(seg, t, a, index)


def _slice_recorded(seg, t, a, index):
    """_slice_1d's eager slice, recorded in seg (None: not recording)."""
    view = a[index]
    start, _, step = index.indices(a.shape[0])
    m = view.shape[0]
    if seg is None:
        return t._view_result(view, T.SLICE, (1, start, m, step))
    ra = _ref(seg, t)
    x = _extra(t)
    at = seg.shared_aux((1, start, m, step))
    r = seg.nrec
    seg.nrec = r + 1
    if m == 1:
        seg.side.extend((0.0, 1, -1, at))  # (side fields before the row: see Segment.flush)
        seg.stage.extend((_SLICE_SIDE, ra, -1, view.item(0)))
    else:
        o = seg.nbulk  # (after _bind, which may have put t's values there)
        if o + m > len(seg.bulk):
            seg._grow_bulk(o + m)
        seg.nbulk = o + m
        seg.bulk[o:o + m] = view
        seg.side.extend((0.0, m, o, at))
        seg.stage.extend((_SLICE_SIDE, ra, -1, 0.0))
    if len(seg.stage) >= _LIMIT:
        seg.flush()
    seg.views.setdefault(ra, []).append(r)  # (_flag_views)
    v = _new(Tensor)
    v._v = None
    v._a = view
    v._dt = _F64
    v._rg = True
    v._seg = seg
    v._rec = r
    v._x = _Extra(x.vc, t if x.base is None else x.base)  # (_view_extra)
    return v


def _lazy_leaf_slice(seg, t, a, index):
    """t[index] (step > 0, 2 or more elements) of a 1-d float64 leaf t, recorded lazily as
    _lazy_slice records a slice of a lazy value: its values gathered by the flush from the
    leaf's record (its values are in the arena from its binding), a lazy view whose first
    read views t's array.  No NumPy view made, no values copied (an_ode slices its
    parameters as x[1:] at each RK4 stage: ~0.7 us of ~1.9).  None when it may not be."""
    start, stop, step = index.indices(a.shape[0])
    m = len(range(start, stop, step))
    if m < 2:
        return None
    ra = _ref(seg, t)
    return _stage_lazy_slice(seg, ra, t._x, start, m, step, t, start, step)  # (_bind made _x)


_SLICE_SIDE = T.SLICE + T.SIDE


_SELECT_ELEM = T.SELECT + T.ELEM
_ELEMS = E.ELEMS
_weakref = weakref.ref


def _as_view(t):
    """A fast-path scalar element (Tensor.__getitem__) becomes a 0-d view of its owner."""
    x = t._x
    if t._v is None or x is None or x.elem is None:
        return
    owner, k = x.elem
    t._a = _storage(owner)[k:k + 1].reshape(())
    t._v = None


class _ElementMark:
    """A root's ``elems`` until a write finds elements of it alive: each element's side object
    refers to it (in its own ``elems``, unused on an element) instead of the root keeping a
    weak reference to each element (~0.15 us of an element's ~1 us: det_by_minor takes one
    per product).  Its reference count then says whether any element is alive; a write while
    one is makes _track_elements find them (two gc.get_referrers scans, ~10 ms) and track the
    root's elements by weak references from then on."""
    __slots__ = ()


# [mark new roots]: after _MARK_SCANS scans the process tracks every root's elements by weak
# reference, so code that keeps elements across writes to new roots pays a bounded cost
_MARK_SCANS = 8
_MARKS = [_MARK_SCANS]
_getrefcount = sys.getrefcount
_SLICE_REFS, _ELEM_REFS = _kept_refs()


def _mark_refs():
    """sys.getrefcount of a mark that no element refers to, read as _refresh_elements reads
    it (the root's side object, the local, getrefcount's argument), counted the same way."""
    rx = _Extra()
    rx.elems = _ElementMark()
    elems = rx.elems
    return _getrefcount(elems)


_MARK_REFS = _mark_refs()


def _track_elements(rx, mark):
    """A root whose mark says elements of it are alive: find them (their side objects refer
    to the mark, they to their side objects) and track them by weak reference: the list
    that is the root's ``elems`` from now on."""
    extras = [e for e in gc.get_referrers(mark) if e.__class__ is _Extra and e.elems is mark]
    ids = {id(e) for e in extras}
    live = [u for u in gc.get_referrers(*extras)
            if isinstance(u, Tensor) and id(u._x) in ids] if extras else []
    for e in extras:
        e.elems = None
    rx.elems = elems = [_weakref(u) for u in live]
    _MARKS[0] = max(_MARKS[0] - 1, 0)
    return elems


def _refresh_elements(root):
    """root's storage was written: the cached floats of its fast-path elements follow it,
    as PyTorch's views would."""
    rx = root._x
    if rx is None:
        return
    elems = rx.elems
    if elems.__class__ is _ElementMark:
        # references: rx.elems, `elems`, getrefcount's argument, and each live element's
        if _getrefcount(elems) <= _MARK_REFS:
            return
        state.seg.forget_slices()  # (elements kept to be given back: Tensor.__getitem__)
        if _getrefcount(elems) <= _MARK_REFS:
            return
        elems = _track_elements(rx, elems)
    if not elems:
        return
    for ref in elems:
        e = ref()
        if e is not None and e._v is not None:
            owner, k = e._x.elem
            e._v = builtins.float(_storage(owner)[k])


def _adopt(t, seg, rec):
    t._seg = seg
    t._rec = rec
    t._rg = True
    x = _extra(t)
    x.rver = x.vc[0]


def _record_base_write(seg, base, base_ref, view, other=-1):
    """A view was written in place: base's new history is CopySlices(base, view), and the
    view is regenerated from it (AsStridedBackward0), as PyTorch does.  Its node lists
    base's old history and the in-place op's other operand (``other``, -1: none)."""
    vmap = seg.add_aux(_view_map(base, view))
    rec = seg.record(T.COPYSLICES, base_ref, view._rec, 0.0, _val64(base), vmap)
    seg.edges[rec] = (base_ref, other)
    _adopt(base, seg, rec)
    _adopt(view, seg, seg.record(T.ASSTRIDED, rec, -1, 0.0, _val64(view), vmap))


def _can_cast(src, dst):
    return src._category <= dst._category


def _reduce(x, op_all, op_dim, dim, keepdim, dtype):
    a = x._a
    if dim is None and dtype is None and a is not None and x._dt.is_floating_point:
        # the common case: everything to one float
        n = a.size
        # inf - inf is nan: PyTorch says nothing, NumPy warns unless quiet
        if x._dt is _F64 and n:  # a.sum() and a.mean() are this reduction, ~0.4-1.8 us slower
            v = _quiet(_ADD_REDUCE, a, None)
            if op_all == T.MEAN:
                v = v / n
        elif op_all == T.MEAN:
            v = _quiet(a.mean) if n else a.dtype.type(math.nan)  # PyTorch: nan, no warning
        else:
            v = _quiet(a.sum)
        out = builtins.float(v) if x._dt is _F64 else np.asarray(v, dtype=x._dt.np)
        if x._rg and state.grad_enabled:
            seg = E.current()
            c = (1.0 / n if n else math.nan) if op_all == T.MEAN else 1.0
            return _result(out, x._dt, seg, seg.record(op_all, _ref(seg, x), -1, c,
                                                        out if out.__class__ is float
                                                        else builtins.float(v)))
        return _result(out, x._dt)
    dt = D.as_dtype(dtype) if dtype is not None else x._dt
    if dtype is None and not dt.is_floating_point:
        dt = D.int64
    nd = x.ndim
    dims = _dims(dim, nd)
    full = dim is None or (builtins.len(dims) == nd and not keepdim)
    if dim is not None and isinstance(dim, (tuple, list)) and builtins.len(dim) == 0:
        dims, full = tuple(range(nd)), not keepdim
    xv = x._v
    mean = op_all == T.MEAN
    if xv is not None and nd == 0:
        v = xv
        if x._rg and state.grad_enabled:
            seg = E.current()
            return _result(v, D.float64, seg,
                           seg.record(op_all if dim is None else op_dim, _ref(seg, x), -1, 1.0, v))
        return _result(v, D.float64)
    a = _val(x)
    n = a.size
    keep = keepdim and not full
    if not mean:
        out = _quiet(np.sum, a, dims, dt.np, None, keep)
    elif n:
        out = _quiet(np.mean, a.astype(dt.np, copy=False), dims, None, None, keep)
    else:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean of empty: nan, silently
            out = np.mean(a.astype(dt.np, copy=False), axis=dims, keepdims=keep)
    out = _out(out, dt)
    if x._rg and state.grad_enabled:
        count = math.prod(x.shape[d] for d in dims) if dims else 1
        scale = (1.0 / count if count else math.nan) if mean else 1.0
        if dim is None:
            return _record_result(op_all, out, dt, (x,), c=(1.0 / n if n else math.nan)
                                  if mean else 1.0)
        return _record_result(op_dim, out, dt, (x,), c=scale, aux_ints=_reduce_map(x.shape, dims))
    return _result(out, dt)


# ---------------------------------------------------------------- free functions

def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.dtype is not other.dtype:
        raise RuntimeError("dot : expected both vectors to have same dtype, but found "
                           f"{_SHORT[input.dtype.name]} and {_SHORT[other.dtype.name]}")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{other.shape[0]}] to have the same number of elements, but got "
                           f"{input.shape[0]} and {other.shape[0]} elements respectively")
    return matmul(input, other)


def matmul(input, other):
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul(): argument 'other' (position 2) must be Tensor")
    a = input._a
    b = other._a
    if (a is not None and b is not None and a.ndim == 2 and b.ndim == 2 and a.dtype is b.dtype
            and (a.dtype is _F64NP or a.dtype is _F32NP) and a.shape[1] == b.shape[0]):
        # two float matrices (a layer's x @ w): the checks below hold; ~1.5 us less
        token = _quiet_on(_IGNORE)  # inf, nan: PyTorch is silent
        try:
            out = np.matmul(a, b)
        finally:
            _quiet_off(token)
        dt = input._dt
        if not out.flags.c_contiguous:
            out = _out(out, dt)
        seg = _current() if input._rg or other._rg else None
        if seg is not None:
            m, k = a.shape
            ra = _ref(seg, input)
            rec = seg.record(T.MM, ra, _ref(seg, other), 0.0, out,
                             seg.shared_aux((m, k, b.shape[1], 1)))
            return _result(out, dt, seg, rec)
        return _result(out, dt)
    na, nb = input.ndim, other.ndim
    if na == 0 or nb == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {na}D "
                           f"and {nb}D")
    if na > 2 or nb > 2:
        return L.batched_matmul(input, other)
    if input.dtype is not other.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: "
                           f"{_CTYPE[input.dtype.name]} != {_CTYPE[other.dtype.name]}")
    sa, sb = input.shape, other.shape
    if na == 1 and nb == 1:
        op, m, k, n, k2 = T.DOT, 1, sa[0], 1, sb[0]
    elif na == 2 and nb == 1:
        op, m, k, n, k2 = T.MV, sa[0], sa[1], 1, sb[0]
        if k != k2:
            raise RuntimeError(f"size mismatch, got input ({sa[0]}), mat ({sa[0]}x{sa[1]}), vec "
                               f"({sb[0]})")
    elif na == 1:
        op, m, k, n, k2 = T.VM, 1, sa[0], sb[1], sb[0]
    else:
        op, m, k, n, k2 = T.MM, sa[0], sa[1], sb[1], sb[0]
    if k != k2:
        if na == 1 and nb == 1:
            return dot(input, other)
        ls = f"{m}x{k}" if na == 2 else f"1x{k}"
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({ls} and {k2}x{n})")
    dt = input.dtype
    out = _out(_quiet(np.matmul, _val(input), _val(other)), dt)  # inf, nan: PyTorch is silent
    if (input._rg or other._rg) and state.grad_enabled:
        if not dt.is_floating_point:
            raise RuntimeError("Only Tensors of floating point dtype can require gradients")
        seg = E.current()
        rec = seg.record(op, _ref(seg, input), _ref(seg, other), 0.0, out,
                         seg.shared_aux((m, k, n, 1)))
        return _result(out, dt, seg, rec)
    return _result(out, dt)


def cat(tensors, dim=0, *, out=None):
    """Concatenate along ``dim``; one CatBackward0 record whatever the number of tensors."""
    if (dim == 0 or dim == -1) and (tensors.__class__ is list or tensors.__class__ is tuple):
        for t in tensors:
            if t.__class__ is _Lazy:
                out = _lazy_cat(tensors)
                if out is not None:
                    return out
                break
        arrays = []
        for t in tensors:  # the common case first: non-empty 1-d float64 arrays
            a = t._a if t.__class__ is Tensor or t.__class__ is _Lazy else None
            if a is None or a.ndim != 1 or a.dtype is not _F64NP or not a.shape[0]:
                break
            arrays.append(a)
        else:
            if arrays:
                return _cat_1d(tensors, arrays)
    return _concat(T.CAT, tensors, dim)


def _cat_1d(tensors, arrays):
    value = np.concatenate(arrays)
    if state.grad_enabled:
        for t in tensors:
            if t._rg:
                break
        else:
            return _result(value, _F64)
        seg = E.current()
        aux = [len(tensors)]
        start = 0
        for t, a in zip(tensors, arrays):
            m = a.shape[0]
            # the part's record (_ref, inline for a result of this segment), then its strided
            # map in the output
            aux += (t._rec if t._seg is seg and t._x is None else _ref(seg, t), 1, start, m, 1)
            start += m
        return _result(value, _F64, seg, seg.record(T.CAT, -1, -1, 0.0, value, seg.add_aux(aux)))
    return _result(value, _F64)


concat = cat
concatenate = cat


def stack(tensors, dim=0, *, out=None):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shape)}"
                               f" at entry 0 and {list(t.shape)} at entry {i}")
    d = _wrap_dim(dim, len(shape) + 1)
    return _concat(T.STACK, [_unsqueezed(t, d) for t in tensors], d, stacked=tensors)


def _unsqueezed(t, d):
    """t with a new axis d, sharing storage and unrecorded (stack records once)."""
    r = _new(Tensor)
    r._v = None
    r._a = _val(t).reshape(t.shape[:d] + (1,) + t.shape[d:])
    r._dt, r._rg, r._seg, r._rec, r._x = t._dt, t._rg, None, -1, None
    return r


def _concat(op, tensors, dim, stacked=None):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"expected Tensor as element {tensors.index(t)} in argument 0, but got "
                            f"{type(t).__name__}")
    parts = [t for t in tensors if not (t.ndim == 1 and t.numel() == 0)] or tensors[:1]
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    ref = parts[0]
    d = _wrap_dim(dim, ref.ndim)
    for i, t in enumerate(parts):
        if t.ndim != ref.ndim:
            raise RuntimeError("Tensors must have same number of dimensions: got "
                               f"{ref.ndim} and {t.ndim}")
        for k in range(ref.ndim):
            if k != d and t.shape[k] != ref.shape[k]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {d}. "
                                   f"Expected size {ref.shape[k]} but got size {t.shape[k]} "
                                   f"for tensor number {i} in the list.")
    dt = parts[0]._dt
    for t in parts[1:]:
        dt = D.promote(dt, t._dt)
    value = np.concatenate([_val(t).astype(dt.np, copy=False) for t in parts], axis=d)
    sources = stacked if stacked is not None else tensors
    if not (state.grad_enabled and any(t._rg for t in sources)):
        return _result(value, dt)
    seg = E.current()
    ostrides = _c_strides(value.shape)
    aux = [len(tensors)]
    kept = {id(t) for t in parts}
    start = 0
    originals = stacked if stacked is not None else tensors
    for t, src in zip(tensors, originals):
        rec = _ref(seg, src)  # stack: the map's shape has the new axis; the record hasn't
        if id(t) not in kept:  # a skipped empty 1-d tensor: an empty map, still a graph edge
            aux += [rec, 1, 0, 0, 1]
            continue
        shape = t.shape
        aux += [rec, len(shape), start * ostrides[d], *shape, *ostrides]
        start += shape[d]
    return _result(value, dt, seg, seg.record(op, -1, -1, 0.0, value, seg.add_aux(aux)))


# ---------------------------------------------------------------- creation

def _infer_dtype(data):
    if isinstance(data, builtins.bool):
        return D.bool_
    if isinstance(data, builtins.int):
        return D.int64
    if isinstance(data, builtins.float):
        return D.get_default_dtype()
    if isinstance(data, (list, tuple)):
        found = D.bool_
        empty = True
        for item in data:
            empty = False
            d = _infer_dtype(item)
            if d._category > found._category:
                found = d
        return D.get_default_dtype() if empty else found
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, np.ndarray):
        return D.from_numpy_dtype(data.dtype)
    if isinstance(data, np.generic):
        return D.from_numpy_dtype(data.dtype)
    raise TypeError(f"Could not infer dtype of {type(data).__name__}")


def _to_array(data, dt):
    if isinstance(data, Tensor):
        return np.array(_val(data), dtype=dt.np)
    if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
        data = [_to_array(d, dt) if isinstance(d, Tensor) else d for d in data]
    try:
        with np.errstate(over="ignore"):  # 1e308 as float32 is inf, silently, as in PyTorch
            a = np.array(data, dtype=dt.np)
    except (ValueError, TypeError) as e:
        raise ValueError(f"expected sequence of equal-length sequences: {e}") from None
    if a.dtype == object:
        raise TypeError("tensor(): could not convert data")
    return a


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """A new leaf tensor holding a copy of ``data``."""
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.detach().clone() or sourceTensor.detach().clone()."
                      "requires_grad_(True), rather than torch.tensor(sourceTensor).",
                      UserWarning, stacklevel=2)
    dt = D.as_dtype(dtype) if dtype is not None else _infer_dtype(data)
    return _leaf(_to_array(data, dt), dt, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array or tensor when it can."""
    if isinstance(data, Tensor):
        return data if dtype is None or D.as_dtype(dtype) is data.dtype else data.to(dtype)
    if isinstance(data, np.ndarray):
        dt = D.as_dtype(dtype) if dtype is not None else D.from_numpy_dtype(data.dtype)
        if data.dtype == dt.np:
            return _leaf(data, dt, shared=True)
        return _leaf(data.astype(dt.np), dt)
    return tensor(data, dtype=dtype)


def from_numpy(ndarray: np.ndarray) -> Tensor:
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return _leaf(ndarray, D.from_numpy_dtype(ndarray.dtype), shared=True)


def _factory(fill, size, dtype, requires_grad, default=None):
    shape = _shape_arg(size)
    dt = D.as_dtype(dtype) if dtype is not None else (default or D.get_default_dtype())
    if requires_grad:
        _require_float_grad(dt)
    return _leaf(fill(shape, dt.np), dt, requires_grad)


def _size_args(size, kw):
    if kw is not None:
        return (kw,)
    return size


def zeros(*args, size=None, out=None, dtype=None, layout=None, device=None,
          requires_grad=False) -> Tensor:
    return _factory(np.zeros, _size_args(args, size), dtype, requires_grad)


def ones(*args, size=None, out=None, dtype=None, layout=None, device=None,
         requires_grad=False) -> Tensor:
    return _factory(_ones, _size_args(args, size), dtype, requires_grad)


def _ones(shape, dt):
    """np.ones, without its Python-level wrapper (~0.8 against ~0.3 us)."""
    a = np.empty(shape, dt)
    a.fill(1)
    return a


def empty(*args, size=None, out=None, dtype=None, layout=None, device=None, requires_grad=False,
          memory_format=None) -> Tensor:
    return _factory(np.zeros, _size_args(args, size), dtype, requires_grad)


def full(size, fill_value, *, out=None, dtype=None, layout=None, device=None,
         requires_grad=False) -> Tensor:
    default = D.scalar_dtype(fill_value) if dtype is None else None
    return _factory(lambda s, d: np.full(s, fill_value, dtype=d), (size,), dtype, requires_grad,
                    default)


def eye(n, m=None, *, out=None, dtype=None, layout=None, device=None,
        requires_grad=False) -> Tensor:
    m = n if m is None else m
    return _factory(lambda s, d: np.eye(n, m, dtype=d), (n, m), dtype, requires_grad)


def arange(start, end=None, step=1, *, out=None, dtype=None, layout=None, device=None,
           requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    nums = [_number(v.item() if isinstance(v, Tensor) else v) for v in (start, end, step)]
    if nums[2] == 0:
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        dt = D.int64 if all(isinstance(v, builtins.int) for v in nums) else D.get_default_dtype()
    else:
        dt = D.as_dtype(dtype)
    a = np.arange(nums[0], nums[1], nums[2], dtype=np.float64 if dt.is_floating_point else None)
    return _leaf(a.astype(dt.np), dt, requires_grad)


def linspace(start, end, steps, *, out=None, dtype=None, layout=None, device=None,
             requires_grad=False) -> Tensor:
    dt = D.as_dtype(dtype) if dtype is not None else D.get_default_dtype()
    return _leaf(np.linspace(start, end, steps).astype(dt.np), dt, requires_grad)


class Generator:
    """A random generator; PyTorch's streams are not reproduced, only the API."""

    def __init__(self, device="cpu"):
        self._rng = np.random.default_rng()
        self._seed = None

    def manual_seed(self, seed):
        self._seed = builtins.int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        s = builtins.int(np.random.SeedSequence().entropy % (1 << 63))
        self.manual_seed(s)
        return s


default_generator = Generator()


def manual_seed(seed) -> Generator:
    return default_generator.manual_seed(seed)


def initial_seed():
    return default_generator.initial_seed()


def seed():
    return default_generator.seed()


def _rng(generator):
    if state.tracing is not None:
        state.tracing.refuse("random numbers (a replay would repeat the same draws)")
    return (generator or default_generator)._rng


def rand(*args, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
         requires_grad=False) -> Tensor:
    rng = _rng(generator)
    return _factory(lambda s, d: rng.random(s).astype(d), _size_args(args, size), dtype,
                    requires_grad)


def randn(*args, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
          requires_grad=False) -> Tensor:
    rng = _rng(generator)
    return _factory(lambda s, d: rng.standard_normal(s).astype(d), _size_args(args, size), dtype,
                    requires_grad)


def randint(low, high=None, size=None, *, generator=None, out=None, dtype=None, layout=None,
            device=None, requires_grad=False) -> Tensor:
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint() missing 1 required positional arguments: \"size\"")
    rng = _rng(generator)
    return _factory(lambda s, d: rng.integers(low, high, s).astype(d), (size,), dtype,
                    requires_grad, D.int64)


def _like(t, fill, dtype, requires_grad):
    dt = D.as_dtype(dtype) if dtype is not None else t.dtype
    return _factory(fill, (t.shape,), dt, requires_grad)


def zeros_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None) -> Tensor:
    return _like(input, np.zeros, dtype, requires_grad)


def ones_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    return _like(input, np.ones, dtype, requires_grad)


def empty_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None) -> Tensor:
    return _like(input, np.zeros, dtype, requires_grad)


def full_like(input, fill_value, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    return _like(input, lambda s, d: np.full(s, fill_value, dtype=d), dtype, requires_grad)


def rand_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    rng = _rng(None)
    return _like(input, lambda s, d: rng.random(s).astype(d), dtype, requires_grad)


def randn_like(input, *, dtype=None, layout=None, device=None, requires_grad=False,
               memory_format=None) -> Tensor:
    rng = _rng(None)
    return _like(input, lambda s, d: rng.standard_normal(s).astype(d), dtype, requires_grad)


def _rebuild(a, dtype_name, requires_grad):
    return _leaf(a, D._by_name(dtype_name), requires_grad)


# ---------------------------------------------------------------- printing

_SHORT = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
          "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
_CTYPE = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
          "int32": "int", "int16": "short int", "int8": "signed char", "uint8": "unsigned char",
          "bool": "bool"}
_TYPE_NAMES = {k: v + "Tensor" for k, v in _SHORT.items()}


def _repr(t) -> str:
    suffixes = []
    if t._seg is not None:
        node = t.grad_fn
        suffixes.append(f"grad_fn=<{type(node).__name__ if node is not None else 'Node'}>")
    elif t._rg:
        suffixes.append("requires_grad=True")
    return format_tensor(np.asarray(_val(t)), t._dt.name, suffixes)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input) -> int:
    return input.numel()



# the op library and the ops built on it and on autograd.Function use this module
from . import _assemble as A  # noqa: E402
from . import _library as L  # noqa: E402
from . import _predicates as P  # noqa: E402
from . import _rounding as R  # noqa: E402
