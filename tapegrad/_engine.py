"""Segments of tape, the per-thread recording state, and the backward driver.

A thread records into its current *segment* (see ``_tape`` for the record
layout).  A non-leaf tensor holds its segment and record index; a leaf holds
only a cache ``(segment id, record, version)`` of its LEAF record, so leaves
never keep tape memory alive.

Memory stays flat without per-node bookkeeping:

* when a backward without ``retain_graph`` has freed every record of the
  current segment, its arrays pass to a fresh segment object and the old one
  is marked dead (tensors still pointing at it see a freed graph);
* when a segment fills up and no tensor refers to it any more, it is reset in
  place; if tensors still refer to it, it grows, and past ``ROTATE_RECORDS`` a
  new segment is started.  A tensor of an older live segment used as an
  operand is linked by an IMPORT record, and backward continues into the older
  segment after the newer one is swept.
"""
from __future__ import annotations

import gc
import itertools
import math
import re
import struct
import sys
import threading
import warnings

import numpy as np

from . import _config
from . import _tape as T

_ids = itertools.count(1)
_get_ident = threading.get_ident
# set (for good) once a lazy tanh, sin or cos is recorded: the flush kernel that computes them
# (_tape._make_flush) is compiled only then
LAZY_TRIG = False
# The index maps (0, k) of the elements x[k], k < ELEMS, of 1-d tensors (the scalar code of
# det_by_minor) sit at auxi[2k:2k + 2] of every aux table, written once per table: an
# element's record finds its map at 2k, where a segment's first x[k] used to add it (~1 us
# per distinct k per backward).
ELEMS = 256
ELEM_AUX = 2 * ELEMS
# The shared index maps (shared_aux) of a segment's aux table stay in it for the next owner of
# the table (a segment reset in place, or made from the pool), up to this many ints: a training
# step records the same maps every time (a bias's broadcast, a layer's matmul shape, a slice),
# and adding them again cost ~0.5 us each (mlp_step: ~4 us a step)
_KEEP_AUX = 1 << 14
_ELEM_MAPS = np.stack([np.zeros(ELEMS, dtype=np.int64), np.arange(ELEMS)], axis=1).reshape(-1)
_pack_into = struct.pack_into
_refcount = sys.getrefcount


class Segment:
    __slots__ = ("id", "nrec", "limit", "stage", "side", "nflushed", "fbulk", "cols", "bulk",
                 "badj", "nbulk", "auxi", "naux", "nconst", "nfreed", "leaves", "imports",
                 "retained", "modified", "nodes", "names", "edges", "hooked", "callbacks", "dead",
                 "maps", "elem_at", "nlazy", "lazy_off", "lock", "owner", "views", "unsaved",
                 "ftail", "stail", "slices", "auxq", "bound", "bgroups", "__weakref__")

    def __init__(self):
        try:  # the largest array set (the pool is sorted by arena size, the largest last):
            cols, bulk, badj, auxi, lock, maps, naux = _pool.pop()  # a training step never grows
            # (the flags of the last owner's records are left: the flush writes each row's
            # flags with the row, and nothing reads a record's flags before its row is flushed)
        except (IndexError, ValueError):
            maps, naux = {}, ELEM_AUX
            cols = _new_columns(_config.SEGMENT_RECORDS)
            bulk = np.empty(_config.SEGMENT_VALUES)
            badj = np.empty(_config.SEGMENT_VALUES)
            auxi = np.empty(1024, dtype=np.int64)
            auxi[:ELEM_AUX] = _ELEM_MAPS  # kept by the pool and by add_aux's growth
            lock = threading.Lock()
        self.cols = cols
        self.bulk = bulk
        self.badj = badj
        self.auxi = auxi
        self.lock = lock  # (flush; a dead segment's, free with its arrays)
        self.ftail = self.stail = None  # (the array arguments flush and sweep_args cache)
        self.owner = _get_ident()  # the thread that records into it
        self.maps = maps  # an index map's ints (a tuple) -> its aux entry (shared_aux)
        self.naux = naux
        self._reset()

    def __del__(self):
        # a segment's arrays go back to the pool when its last tensor dies: dead ones, and
        # live ones a backward rotated away from (see _rotate_after_backward), whose
        # recorded graphs nobody can reach any more (at interpreter exit _pool may be gone)
        try:
            if len(_pool) < _POOL_SIZE:
                # the shared index maps go with the aux table (see _reset), unless some wait
                # to be written (a segment that died unflushed)
                maps, naux = (self.maps, self.naux) if not self.auxq else ({}, ELEM_AUX)
                _pool.append((self.cols, self.bulk, self.badj, self.auxi, self.lock, maps, naux))
                if len(_pool) > 1 and len(_pool[-2][1]) > len(self.bulk):
                    _pool.sort(key=_arena_size)
        except (NameError, TypeError):
            pass

    def _reset(self):
        self.id = next(_ids)
        self.nrec = 0
        self.limit = len(self.cols[0])
        self.stage = []  # staged records, W floats each (see _tape.flush)
        self.side = []  # the extra fields of staged records that need them
        self.nflushed = 0
        self.fbulk = 0  # where the values of the first staged record start in the bulk arena
        self.nbulk = 0
        if self.naux > _KEEP_AUX:  # (else the shared maps stay: see below)
            self.naux = ELEM_AUX
            self.maps = {}
        self.auxq = []  # index maps added since the last flush, as (position, ints): add_aux
        self.nconst = 0
        self.bound = []  # (CONST record, version counter, version, dtype, shape): stale_bindings
        self.bgroups = {}  # id(version counter) -> [counter, version, bindings]: stale_bindings
        self.nfreed = 0
        self.leaves = {}  # LEAF record -> tensor
        self.imports = {}  # IMPORT record -> tensor of an older segment
        self.retained = {}  # record -> tensor that called retain_grad()
        self.modified = {}  # record -> (tensor, version when recorded, first record after)
        self.nodes = {}  # record -> Node, so grad_fn is the same object each time
        self.hooked = {}  # record -> tensor with hooks (flag HOOK)
        self.callbacks = {}  # PYFUNC record -> run(grads) of a custom Function
        self.names = {}  # record -> node name of a composite's output (MseLossBackward0...)
        self.edges = {}  # record -> the records a composite's node lists in next_functions
        self.dead = False
        self.elem_at = {}  # k -> the aux entry of element k's map (0, k), k >= ELEMS
        self.views = {}  # record -> the records of views _view_result made of it (_flag_views)
        self.nlazy = 0  # lazy records staged since the last flush (_tensor._lazy)
        self.lazy_off = 0  # no lazy records before record lazy_off (_tensor._lazy_value)
        self.unsaved = {}  # record -> (arena offset, value) of a deferred value (defer)
        # slices of leaves and elements this segment made, to give back when asked for
        # again (_tensor._slice_1d: (id(leaf), start, stop, step) -> (slice, its record, the
        # leaf's record); Tensor.__getitem__: id(base) << 20 | k -> element); each refers to
        # this segment: forget_slices breaks the cycles before anything counts its references
        self.slices = {}

    def forget_slices(self):
        if self.slices:
            self.slices = {}

    # ------------------------------------------------------------ recording
    def record(self, op, ra, rb, c, value, aux=-1):
        """Append a record whose output is ``value`` (float, or array of n != 1 elements)."""
        r = self.nrec
        self.nrec = r + 1
        if value.__class__ is not float:
            m = value.size
            if m == 1:
                value = float(value.reshape(()))
            else:
                o = self.nbulk
                if o + m > len(self.bulk):
                    self._grow_bulk(o + m)
                self.nbulk = o + m
                self.bulk[o:o + m] = value if value.ndim == 1 else value.reshape(-1)
                if aux == -1:
                    if T.IS_UNARY[op]:
                        self.stage.extend((op + T.ARR, ra, c, m))
                        return self._staged(r)
                    if c == 0.0:
                        self.stage.extend((op + T.ARR, ra, rb, m))
                        return self._staged(r)
                self.side.extend((c, m, o, aux))  # (before the row: see flush)
                self.stage.extend((op + T.SIDE, ra, rb, 0.0))
                return self._staged(r)
        unary = T.IS_UNARY[op]
        if aux != -1 or (c != 0.0 and not unary):
            self.side.extend((c, 1, -1, aux))
            self.stage.extend((op + T.SIDE, ra, rb, value))
        else:
            self.stage.extend((op, ra, c if unary else rb, value))
        return self._staged(r)

    def record_broadcast(self, ra, value, shape, m, at, write=True) -> int:
        """Append a BROADCAST of ra's value (a float or an array) to ``shape`` (m > 1 elements),
        its index map at ``at`` in the aux table.  Without ``write`` its values are left
        unwritten (its consumer's adjoint never reads them: see _operand)."""
        r = self.nrec
        self.nrec = r + 1
        o = self.nbulk
        if o + m > len(self.bulk):
            self._grow_bulk(o + m)
        self.nbulk = o + m
        if write:
            if value.__class__ is float:  # a 0-d value, the common case (x[k] * v): a fill
                self.bulk[o:o + m] = value
            else:  # NumPy broadcasts the assignment
                self.bulk[o:o + m].reshape(shape)[...] = value
        self.side.extend((0.0, m, o, at))
        self.stage.extend((T.BROADCAST + T.SIDE, ra, -1, 0.0))
        return self._staged(r)

    def defer(self, r, o, value):
        """Leave record r's value (a float64 array, its place at o in the arena) uncopied:
        none of its consumers so far reads it.  Copying a large result into the arena cost
        as much as computing it (big_elementwise: a product 37 us, its copy 30-60 us), and
        the values that no backward reads, such as a product feeding a sum or a tanh, are
        most of a chain's.  The array is kept until the segment dies; the flush that writes
        a row which reads it (READS) copies it first (save_read), and a lazy record (whose
        value the flush computes from its operands' in the arena) of as many elements copies
        every deferred value of its segment before it is staged (_tensor._lazy_too_big, and
        _lazy_cat).  In-place writes to it since then change what is copied, as they change
        what PyTorch saved, and a backward that needs a value written since its record
        raises as PyTorch's does."""
        self.unsaved[r] = (o, value)
        if _config.DEFER_POISON:
            self.bulk[o:o + value.size] = np.nan

    def save(self, r):
        """Copy deferred record r's value into the arena."""
        entry = self.unsaved.pop(r, None)  # (None: another thread's flush copied it)
        if entry is not None:
            o, value = entry
            self.bulk[o:o + value.size] = value.reshape(-1)

    def save_all(self):
        for r in list(self.unsaved):
            self.save(r)

    def save_read(self, lo, hi):
        """Copy the deferred values that flushed rows lo..hi read."""
        cols = self.cols
        ops = cols[0][lo:hi]
        reads = T.READS[ops]
        if not reads.any():
            return
        if T.READS_AUX[ops].any():
            self.save_all()
            return
        need = set(cols[1][lo:hi][reads].tolist())
        need.update(cols[2][lo:hi][reads].tolist())
        for r in list(self.unsaved):  # (a snapshot: the owner thread may defer meanwhile)
            if r in need:
                self.save(r)

    def _staged(self, r):
        if len(self.stage) >= STAGE_LIMIT:
            self.flush()
        return r

    def shared_aux(self, ints) -> int:
        """The aux entry of an index map (a tuple of ints), added once per segment: records
        never write their entries, so the views, elements and broadcasts of one map share it."""
        at = self.maps.get(ints)
        if at is None:
            at = self.maps[ints] = self.add_aux(ints)
        return at

    def add_aux(self, ints) -> int:
        """The position of a new index map in the aux table.  A short list of ints waits
        for the next flush (_write_aux), which writes every such map in one NumPy call: one
        per map cost ~0.5 us, most of a lazy cat's map.  Only a flushed record's map is ever
        read, by the kernels and by Python (which flushes first)."""
        at = self.naux
        k = len(ints)
        self.naux = at + k
        if k <= 32 and (ints.__class__ is list or ints.__class__ is tuple):
            self.auxq.append((at, ints))  # (one append: atomic for another thread's flush)
            return at
        with self.lock:  # (another thread's flush may be writing the waiting maps)
            self._write_aux()
            if at + k > len(self.auxi):
                self._grow_aux(at + k)
            self.auxi[at:at + k] = ints
        return at

    def _write_aux(self):
        """Write the maps add_aux left waiting (their positions are in order, contiguous)."""
        q = self.auxq
        n = len(q)
        if not n:
            return
        items = q[:n]  # (a snapshot: the owner thread may add meanwhile)
        del q[:n]
        lo = items[0][0]
        flat = []
        for _, ints in items:
            flat += ints
        hi = lo + len(flat)
        if hi > len(self.auxi):
            self._grow_aux(hi)
        self.auxi[lo:hi] = flat

    def _grow_aux(self, need):
        new = np.empty(max(2 * len(self.auxi), need), dtype=np.int64)
        new[:len(self.auxi)] = self.auxi
        self.auxi = new
        self.ftail = self.stail = None

    def flush(self):
        """Write the staged rows into the columns (computing lazy records' values).

        Another thread may flush this segment (reading a lazy tensor's value, its grad_fn)
        while the owner records into it: the lock keeps two flushes apart, the kernel holds
        the GIL (so the owner's Python code, which may grow the arena, waits), the rows
        flushed are those staged when it started (snapshots, then deleted from the front:
        the owner may append meanwhile), the next row's arena offset is where the flushed
        ones end (the owner may have reserved a value whose row is not staged yet), and a
        row's side fields are staged before the row, so a flush in between leaves them for
        the row (it deletes the side fields its rows used).
        """
        if self.stage:  # (only the owner appends: empty stays empty for any other thread)
            with self.lock:
                self.flush_locked()
        elif self.auxq:  # (maps of rows still to be staged: after a flush none waits)
            with self.lock:
                self._write_aux()

    def flush_locked(self):
        """flush, its lock held by the caller."""
        stage = self.stage
        k = len(stage)
        if not k:
            return
        if self.auxq:
            self._write_aux()
        side = self.side
        j = len(side)
        if self.owner != _get_ident():
            stage, side = stage[:k], side[:j]
        rows = k // T.W
        start = self.nflushed
        if start + rows > len(self.cols[0]):
            self._grow_columns(start + rows)
        st = state
        tail = self.ftail
        if tail is None:
            tail = self.ftail = (*self.cols[:9], self.bulk, self.auxi)
        args = (_packed(stage, st, 0), _packed(side, st, 1) if j else _EMPTY, start,
                self.fbulk) + tail
        ends = _entry(T.flush_trig if LAZY_TRIG else T.flush, args)(*args)
        self.fbulk = ends >> 20  # (one int, not a tuple to box: ~0.15 us per flush)
        used = ends & 0xFFFFF
        self.nflushed = start + rows
        self.nlazy = 0
        del self.stage[:k]
        del self.side[:used]
        if self.unsaved:
            self.save_read(start, start + rows)

    def sweep_args(self):
        """The sweep's array arguments (columns, arenas, aux table), one tuple kept until an
        array is replaced (growth): building it costs ~0.3 us a backward, as flush's."""
        tail = self.stail
        if tail is None:
            tail = self.stail = (*self.cols, self.bulk, self.badj, self.auxi)
        return tail

    def _grow_columns(self, need):
        cap = len(self.cols[0])
        while cap < need:
            cap *= 2
        new = _new_columns(cap)
        k = self.nflushed
        for old, fresh in zip(self.cols, new):
            fresh[:k] = old[:k]
        self.cols = new
        self.ftail = self.stail = None

    def _grow_bulk(self, need):
        cap = len(self.bulk)
        while cap < need:
            cap *= 2
        with self.lock:  # not while another thread's flush writes lazy values (flush)
            for name in ("bulk", "badj"):
                old = getattr(self, name)
                fresh = np.empty(cap)
                fresh[:self.nbulk] = old[:self.nbulk]
                setattr(self, name, fresh)
            self.ftail = self.stail = None

    # ------------------------------------------------------------ reading
    def adjoint(self, r):
        cols = self.cols
        m = cols[5][r]
        if m == 1:
            return cols[9][r:r + 1].copy()
        o = cols[6][r]
        return self.badj[o:o + m].copy()

    def stale_bindings(self):
        """Before a sweep: constants whose version moved since their record copied them,
        by a write that did not reach the record (to the base of a view, to the tensor it
        was detached from, to a view of it, made after the record): their consumers are
        stale, as PyTorch's version check of the saved view or detached tensor finds
        (backward raises).  Every consumer of such a record precedes the write: a use after
        it binds the new value anew (_tensor._bind compares versions).

        The bindings made since the last call are folded into groups, one per version
        counter, [counter, version, binding, ...]; a group leaves once stale (its records
        marked) or once nothing else holds its counter (no tensor is left to write it).  A
        call costs the new bindings and the groups of live constants: checking every binding
        a segment ever held made each backward of a segment holding many graphs slower than
        the last (2 ms for 3 000 graphs of 9 bindings).  The folding allocates one list per
        live counter only (a container per binding set off the collector's full passes)."""
        groups = self.bgroups
        if groups:
            gone = [k for k, g in list(groups.items())  # (list: one step under the GIL)
                    if g[0][0] != g[1] or _refcount(g[0]) <= len(g)]
            for k in gone:  # (refs of a dead counter: its group, its bindings, the argument)
                g = groups.pop(k, None)
                if g is not None and g[0][0] != g[1]:
                    for e in itertools.islice(g, 2, None):
                        self._stale(e)
        new = self.bound
        n = len(new)
        if not n:
            return
        batch = new[:n]
        del new[:n]  # (not a new list: another thread recording into the segment may append)
        for e in batch:
            vc = e[1]
            if vc[0] != e[2]:
                self._stale(e)
                continue
            g = groups.get(id(vc))
            if g is None:
                if _refcount(vc) <= 3:  # (this binding, vc, the argument): dead
                    continue  # (more bindings of it: kept, and dropped at the next call)
                g = groups[id(vc)] = [vc, e[2]]
            g.append(e)

    def _stale(self, e):
        """Binding ``e`` is stale: its record and the hidden records that view it (the
        BROADCAST of a constant broadcast to its consumer's shape, listed in ``views`` as
        _tensor._flag_views finds them) hold an old value."""
        r, vc, ver, dtype, shape = e
        modified = self.modified
        entry = (_Bound(dtype, shape, vc), ver, self.nrec)
        todo = [r]
        while todo:
            v = todo.pop()
            if v not in modified:
                modified[v] = entry
                self.mark(v, T.MODIFIED)
            todo.extend(self.views.get(v, ()))

    def mark(self, r, bit):
        self.flush()
        with self.lock:  # (another thread's flush may grow the columns)
            self.cols[8][r] |= bit

    def opcode(self, r):
        self.flush()
        return int(self.cols[0][r])

    def operands(self, r):
        """Operand records of r (for grad_fn.next_functions), also after retirement."""
        self.flush()
        op, a, b = self.cols[:3]
        aux, auxi = self.cols[7], self.auxi
        if T.KIND[op[r]] == T.CONCAT:
            at = int(aux[r])
            out, pos = [], at + 1
            for _ in range(int(auxi[at])):
                out.append(int(auxi[pos]))
                pos += 3 + 2 * int(auxi[pos + 1])
            return tuple(out)
        return int(a[r]), int(b[r])


def _new_columns(cap):
    return (np.empty(cap, dtype=np.int64),  # op
            np.empty(cap, dtype=np.int64),  # a
            np.empty(cap, dtype=np.int64),  # b
            np.empty(cap),  # c
            np.empty(cap),  # val
            np.empty(cap, dtype=np.int64),  # n
            np.empty(cap, dtype=np.int64),  # off
            np.empty(cap, dtype=np.int64),  # aux
            np.zeros(cap, dtype=np.uint8),  # flags
            np.empty(cap))  # adj


STAGE_LIMIT = _config.STAGE_RECORDS * T.W
_EMPTY = np.empty(0)


def _packed(values, st, which):
    """The staged list ``values`` as float64s, in the calling thread's buffer ``which``
    (0: stage, 1: side).  struct.pack_into converts a list of ints and floats ~20% faster
    than np.fromiter (~22 against ~28 ns per field here), and writes in place."""
    k = len(values)
    buf = st.packbufs[which]
    if len(buf) < k:
        buf = st.packbufs[which] = np.empty(max(k, 2 * len(buf)))
    _pack_into(f"{k}d", buf, 0, *values)
    return buf[:k]


_NO_RECORDS = np.empty(0, dtype=np.int64)
# Array sets of dead segments whose tensors have all died, ready for reuse (list
# append/pop are atomic, so __del__ may run in any thread).
_pool: list = []
_POOL_SIZE = 4


def _arena_size(entry):
    return len(entry[1])


class _State(threading.local):
    """Per-thread grad mode and current segment.  ``rec`` is the segment ops record into:
    ``seg`` while grad mode is on, else None (sync() keeps it so after every write of either).
    The hot paths read it alone: an attribute of a threading.local costs ~60 ns (~12 on an
    object with slots), and each op read both."""

    def __init__(self):
        self.grad_enabled = True
        self.seg = self.rec = Segment()
        self.tracing = None  # the recording of tapegrad.trace, while its function runs
        self.hits = np.empty(0, dtype=np.int64)  # the sweep's hit list, reused (_sweep_segment)
        self.packbufs = [np.empty(STAGE_LIMIT), np.empty(STAGE_LIMIT)]  # (Segment.flush)


state = _State()




def _outside_refs(obj):
    """References to obj other than those of this call."""
    return sys.getrefcount(obj) - _OWN_REFS


_OWN_REFS = 0
_probe = object()
_OWN_REFS = _outside_refs(_probe) - 1  # calibrated on an object with one outside reference
del _probe


def segment_full(seg: Segment) -> Segment:
    """Called when ``seg`` has used its record budget: reset, grow or rotate."""
    # nothing holds it but state.seg (and state.rec), current()'s local and this parameter:
    # no tensor does.  The slices and elements it keeps to give back (slices) refer to it:
    # dropped only if no other tensor does, so that where a segment grows decides nothing
    # (which ones are given back decides the order adjoints add in)
    own = 3 + (state.rec is seg)
    if seg.slices and _outside_refs(seg) <= own + len(seg.slices):
        seg.forget_slices()
    if _outside_refs(seg) <= own:
        seg.flush()
        seg._reset()  # (no flags to clear: the flush writes each row's with the row)
        return seg
    tracing = state.tracing
    if tracing is not None and tracing.seg is seg:  # a trace is one segment: it only grows
        if seg.nrec >= seg.limit:
            seg.limit *= 2
        return seg
    if seg.limit < _config.ROTATE_RECORDS and seg.nbulk <= _config.ROTATE_VALUES:
        seg.limit *= 2
        return seg
    seg.forget_slices()  # (no longer recorded into: nothing to give back)
    fresh = Segment()
    if seg.lazy_off > seg.nrec:  # (the pause goes on: _tensor._lazy_value)
        fresh.lazy_off = seg.lazy_off - seg.nrec
    state.seg = fresh
    sync(state)
    _drop_dead_imports(seg)
    return fresh


# backward runs in progress, in any thread (append/pop are atomic): _drop_dead_imports
# waits for none, since a create_graph backward walks records by number
_running: list = []
# _drop_dead_imports's schedule: rotations left to skip, and the interval between tries.  A
# try that drops nothing (one graph spanning many segments, every link live) doubles the
# interval, up to 8.  The search costs ~65 ns per object the garbage collector tracks (~7 ms
# with NumPy and Numba loaded), against ~60 ms of recording per segment of scalar records;
# a forward-only loop over 256x256 arrays spends ~25% of its time in it, and waiting longer
# between tries cost more (segments that are not reused are new arrays to fault in)
_prune = [0, 1]


def _drop_dead_imports(seg: Segment) -> None:
    """Let go of the older tensors ``seg``'s IMPORT records hold that no live tensor needs.

    ``seg`` has just stopped being the current segment, still referred to.  Without this, a
    loop that records without ever calling backward (an evaluation loop outside ``no_grad``)
    rotates mid-forward again and again: each segment's IMPORT of the previous one's
    running value holds that segment, whose own IMPORT holds the one before, and memory
    grows without bound although every graph but the last is garbage.  The tensors and
    grad_fn nodes that refer to ``seg`` (found by the garbage collector, which sees every
    Tensor and Node) are the records anything can still reach; an IMPORT none of them
    depends on is turned into a DEAD record (reaching it would be an error, never a silent
    gradient) and its tensor dropped.  Anything else referring to ``seg`` (a trace's
    recording, a Function's closure, a frame of code being traced), a backward running in
    any thread, or objects frozen by gc.freeze() leave it alone.
    """
    if not seg.imports or seg.callbacks or _running or gc.get_freeze_count():
        return  # (gc.get_referrers does not see objects gc.freeze() moved aside)
    if _prune[0] > 0:
        _prune[0] -= 1
        return
    dead = _dead_imports(seg)
    for r in dead:
        seg.cols[0][r] = T.DEAD
        del seg.imports[r]
    _prune[1] = 1 if dead else min(2 * _prune[1], 8)
    _prune[0] = _prune[1] - 1


def _dead_imports(seg: Segment) -> list:
    """The IMPORT records of ``seg`` that no tensor or node referring to it depends on."""
    roots = [*seg.retained, *seg.hooked, *seg.modified, *seg.nodes]
    for o in gc.get_referrers(seg):
        if not hasattr(o, "_rec"):
            return []  # not a Tensor or a Node (a trace's recording, a frame): unknown records
        if o._seg is seg:
            roots.append(o._rec)
    seg.flush()
    op, a, b, c = seg.cols[:4]
    reach = T.reachable(op, a, b, c, seg.cols[7], seg.auxi,
                        np.array(roots, dtype=np.int64), seg.nrec)
    return [r for r in seg.imports if not reach[r]] if len(reach) else []


def current() -> Segment:
    seg = state.seg
    if seg.nrec >= seg.limit or seg.nbulk > _config.ROTATE_VALUES:
        seg = segment_full(seg)
    return seg


def _retire(seg: Segment) -> None:
    """Every record of the current segment is freed: record on into a fresh one.

    The dead segment keeps its arrays (its tensors may still print their
    grad_fn) until its last tensor dies; then ``Segment.__del__`` returns them
    to the pool, so a training loop alternates between two array sets.
    """
    if state.seg is not seg:
        return
    seg.dead = True
    seg.imports = seg.retained = seg.modified = None
    seg.forget_slices()
    fresh = state.seg = Segment()
    sync(state)
    if seg.lazy_off > seg.nrec:  # (the pause goes on: _tensor._lazy_value)
        fresh.lazy_off = seg.lazy_off - seg.nrec


def sync(st) -> None:
    """After a write of st.seg or st.grad_enabled: st.rec follows (see _State)."""
    st.rec = st.seg if st.grad_enabled else None


# ---------------------------------------------------------------- backward

_FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


def run_backward(roots, seeds, retain_graph, capture=None, on_leaf=None):
    """Sweep from ``roots`` (tensors) with adjoints ``seeds`` (flat float64 arrays).

    ``on_leaf(tensor, grad)`` receives each leaf's gradient (``.grad``
    accumulation).  ``capture`` maps id(tensor) -> [tensor, summed grad or
    None]: those tensors' gradients are collected instead of delivered, for
    ``autograd.grad``.  Segments are swept newest first; IMPORT hits seed the
    older segment they link to.  Grad mode is off meanwhile, as in PyTorch's backward
    without create_graph: tensor hooks and retain_grad run without recording.
    """
    st = state
    st.seg.forget_slices()  # (before _retire_if_only_roots counts references to it)
    mode = st.grad_enabled
    st.grad_enabled = False
    st.rec = None
    _running.append(None)
    try:
        _run_backward(roots, seeds, retain_graph, capture, on_leaf)
    finally:
        st.grad_enabled = mode
        sync(st)
        _running.pop()


def _run_backward(roots, seeds, retain_graph, capture, on_leaf):
    pending: dict[Segment, list] = {}
    for t, g in zip(roots, seeds):
        seg = t._seg
        if seg is None:  # a leaf is its own gradient
            _deliver_leaf(t, g, capture, on_leaf)
            continue
        if seg.dead:
            raise RuntimeError(_FREED_MSG)
        pending.setdefault(seg, []).append((t._rec, g))
    _drain(pending, roots, retain_graph, capture, on_leaf, False)


def _drain(pending, roots, retain_graph, capture, on_leaf, current_swept):
    """Sweep the segments of ``pending`` (segment -> seeds), newest first, then retire or
    rotate the current segment (``current_swept``: it was swept already and not retired)."""
    while pending:
        seg = next(iter(pending)) if len(pending) == 1 else max(pending, key=_newest)
        _sweep_segment(seg, pending.pop(seg), retain_graph, capture, on_leaf, pending)
        current_swept = _swept(seg, retain_graph) or current_swept
    seg = None
    if current_swept:
        if not retain_graph:
            _retire_if_only_roots(state.seg, roots)
        _rotate_after_backward(state.seg)


def _swept(seg, retain_graph) -> bool:
    """After seg's sweep: retire it if it is the current segment and every record is freed.
    True when it is the current segment and stays it."""
    if seg is not state.seg:
        return False
    if not retain_graph and seg.nfreed + seg.nconst >= seg.nrec:
        _retire(seg)
        return False
    return True


def backward_lane(t, g=None) -> bool:
    """``t.backward()`` (``t`` a fast-path 0-d float64) or ``t.backward(gradient)`` (``g``: the
    gradient's values, flat float64 of t's size) for a ``t`` recorded in the current segment:
    run_backward's work with less Python (the root seeded in place, one kernel call, a lone
    leaf's gradient accumulated here, any other stop or hit handed to the general loop: a
    29-record graph's backward 15.5 -> 11.9 us).  False, with nothing done, while a trace
    records."""
    st = state
    if st.tracing is not None or ANOMALY_NAN:
        return False
    seg = t._seg
    seg.forget_slices()
    seg.flush()
    if seg.bound or seg.bgroups:
        seg.stale_bindings()
    cols = seg.cols
    r = t._rec
    flags = cols[8]
    m = cols[5][r]
    if flags[r] & T.REACHED or (g is not None and g.size != m):
        return False
    mode = st.grad_enabled
    st.grad_enabled = False
    st.rec = None
    _running.append(None)
    try:
        if g is None:
            cols[9][r] = 1.0
        elif m == 1:
            cols[9][r] = g[0]
        else:
            seg.badj[cols[6][r]:cols[6][r] + m] = g
        flags[r] |= T.REACHED
        hits = st.hits
        if len(hits) <= seg.nrec:
            hits = st.hits = np.empty(2 * seg.nrec + 1, dtype=np.int64)
        if seg.modified:
            mrec, mat = _modified(seg)
        else:
            mrec = mat = _NO_RECORDS
        args = seg.sweep_args() + (r, 1, False, hits, mrec, mat, -1)
        first = _entry(_kernel[0], args)(*args)
        pending: dict[Segment, list] = {}
        h = hits[0]
        if first[0] == _DONE and first[3] == 1 and cols[0][h] == _LEAF:
            seg.nfreed += first[2]  # (one leaf reached: the scalar code of one input vector)
            g = seg.adjoint(h)
            leaf = seg.leaves[h]
            x = leaf._x
            if x is None or not x.hooks:
                leaf._accumulate_grad(g)  # (_deliver_leaf's common case)
            else:
                _deliver_leaf(leaf, g, None, _accumulate)
        else:
            _sweep_loop(seg, r, 0, -1, False, None, _accumulate, pending, hits, mrec, mat, first)
        swept = _swept(seg, False)
        seg = None  # (_retire_if_only_roots counts the references to it)
        if pending or swept:
            _drain(pending, (t,), False, None, _accumulate, swept)
    finally:
        st.grad_enabled = mode
        sync(st)
        _running.pop()
    return True


def _accumulate(t, g):
    t._accumulate_grad(g)


_DONE, _LEAF = T.DONE, T.LEAF


def _newest(seg):
    return seg.id


def _retire_if_only_roots(cur, roots):
    """Retire the current segment when nothing but the backward's roots still refers to it.

    Its other records are then garbage (recorded, never differentiated, their
    tensors dead: the ``while y.norm() < 1000`` of the tutorial) or freed.  Where
    the count can't be trusted (retained grads, hooks, Functions, in-place
    records hold tensors), the segment is left alone; that errs on the safe side.
    """
    if cur.dead or cur.retained or cur.hooked or cur.callbacks or cur.modified:
        return
    nroots = len({id(t) for t in roots if t._seg is cur})
    # outside references: state.seg, the local `cur`, each root, each cached Node
    if _outside_refs(cur) == 2 + nroots + len(cur.nodes):
        _retire(cur)



def _rotate_after_backward(cur):
    """Start a fresh segment after a backward that could not retire the current one.

    The records left unfreed belong to graphs that were never differentiated (an
    ``out2`` computed beside the loss) or to tensors still held; the next
    iteration's forward would otherwise record after them, so the segment, still
    referred to by some tensor at every moment, would grow and rotate mid-forward,
    and each new segment's IMPORT records would hold the previous one: memory grows
    without bound.  Starting the next records in a fresh segment puts the segment
    boundary between iterations: the old segment is released (its arrays return to
    the pool) as soon as the last tensor of its graphs dies, as PyTorch releases an
    unreferenced graph.  Only a segment at least half used rotates, so a loop that
    keeps a small graph per iteration (``total = total + loss``) does not pay for a
    whole segment per iteration.
    """
    if cur.dead or state.tracing is not None or state.seg is not cur:
        return
    if 2 * cur.nrec >= cur.limit or 2 * cur.nbulk >= len(cur.bulk):
        cur.forget_slices()
        fresh = state.seg = Segment()
        sync(state)
        if cur.lazy_off > cur.nrec:
            fresh.lazy_off = cur.lazy_off - cur.nrec


_blas_pinned = []
# The reverse sweep backward calls: T.sweep_core until a tape holds a record of the kinds
# only T.sweep compiles (T.OTHER), then T.sweep.  The core kernel loads no BLAS: the threads
# are pinned at the switch, after that record's adjoint (maybe the first matmul).
_kernel = [T.sweep_core]
_entries = {}  # kernel -> its compiled code for the types backward passes (T.entry)


def _entry(kernel, args):
    fn = _entries.get(kernel)
    if fn is None:
        fn = _entries[kernel] = T.entry(kernel, args)
    return fn


def pin_blas_once() -> None:
    """The compiled kernels' BLAS is loaded with them: pin its threads once per process
    (when backward first runs the full sweep kernel, or after the first trace replay)."""
    if not _blas_pinned:
        _blas_pinned.append(True)
        _config.pin_blas_threads()


def _sweep_segment(seg, seeds, retain, capture, on_leaf, pending):
    """Sweep one segment from its seeds; Python runs only at hooks, Functions and hits."""
    seg.flush()
    if seg.bound or seg.bgroups:
        seg.stale_bindings()
    flags = seg.cols[8]
    marked = _mark_captures(seg, capture) if capture else []
    npend = 0
    start = 0
    for r, g in seeds:
        npend += seed(seg, r, g)
        if r > start:
            start = r
    hits = state.hits  # (a backward run by a hook reads or replaces it between kernel calls,
    if len(hits) <= seg.nrec:  # after this one's hits were handed over)
        hits = state.hits = np.empty(2 * seg.nrec + 1, dtype=np.int64)
    if seg.modified:
        mrec, mat = _modified(seg)
    else:
        mrec = mat = _NO_RECORDS
    check = None
    if ANOMALY_NAN:  # stop before every record: see _NanCheck
        check = _NanCheck(seg)
        hooked = flags[:start + 1] & T.HOOK
        flags[:start + 1] |= T.HOOK
    try:
        _sweep_loop(seg, start, npend, -1, retain, capture, on_leaf, pending, hits, mrec, mat,
                    None, check)
    finally:
        if check is not None:  # (the columns may have grown meanwhile: a hook's records)
            flags = seg.cols[8]
            flags[:start + 1] = (flags[:start + 1] & (0xFF ^ T.HOOK)) | hooked
        for r in marked:
            if r not in seg.retained:
                flags[r] &= 0xFF ^ T.CAPTURE


def _modified(seg):
    """The records of seg modified in place (sorted) and the first record after each
    modification, as the sweep's stale checks take them."""
    mrec = np.array(sorted(seg.modified), dtype=np.int64)
    return mrec, np.array([seg.modified[r][2] for r in mrec], dtype=np.int64)


# Anomaly mode (autograd.set_detect_anomaly), and its nan check (check_nan=True): set by
# tapegrad.autograd.anomaly_mode.  While the check is on, backward takes the general path.
ANOMALY = False
ANOMALY_NAN = False


class _NanCheck:
    """Anomaly mode's check of the gradients each node computes, as PyTorch's engine makes
    it (``Function 'DivBackward0' returned nan values in its 1th output.``).  The sweep stops
    before every reached record (each flagged HOOK for the sweep); at each stop, the record
    swept since the last one is checked: an operand whose adjoint holds a nan now and held
    none before that record was swept got it from that record, and the operand's position is
    the output's index.  A hidden record (an operand's broadcast, which the sweep sums into
    the operand apart) counts as the node that consumed it, as PyTorch's node reduces the
    broadcast gradient itself.  One Python stop per record: slow, as PyTorch warns anomaly
    mode is."""

    __slots__ = ("seg", "last", "before", "node")

    def __init__(self, seg):
        self.seg = seg
        self.last = -1  # the record stopped before last, swept since
        self.before = ()  # its operands' nan states then
        self.node = -1  # the last visible record swept (a hidden record's consumer)

    def _operands(self, r):
        seg = self.seg
        if seg.cols[0][r] == T.PYFUNC:  # a custom Function: aux = [k, input records...]
            at = int(seg.cols[7][r])
            return tuple(int(v) for v in seg.auxi[at + 1:at + 1 + int(seg.auxi[at])])
        return tuple(seg.operands(r))

    def _nan(self, r):
        """Whether record r's adjoint (set once r is reached) holds a nan."""
        if r < 0:
            return False
        cols = self.seg.cols
        if not cols[8][r] & T.REACHED:
            return False
        m = int(cols[5][r])
        if m == 1:
            return math.isnan(cols[9][r])
        o = int(cols[6][r])
        return bool(np.isnan(self.seg.badj[o:o + m]).any())

    def next(self, r):
        """The sweep is about to sweep record r."""
        self.last = r
        self.before = tuple(self._nan(o) for o in self._operands(r))

    def swept(self):
        r = self.last
        if r < 0:
            return
        self.last = -1
        seg = self.seg
        operands = self._operands(r)
        hidden = seg.cols[0][r] in _HIDDEN
        if not hidden:
            self.node = r
        for k, (o, was) in enumerate(zip(operands, self.before)):
            if was or not self._nan(o):
                continue
            node = r
            if hidden and self.node >= 0:  # its consumer's: the operand it broadcast
                node = self.node
                k = next((j for j, o in enumerate(self._operands(node)) if o == r), 0)
            elif len(operands) == 2 and operands[0] == operands[1]:
                k = self._same_operands(r)
            name = seg.names.get(node) or T.GRAD_FN[seg.cols[0][node]]
            warnings.warn(f"Error detected in {name}. No forward pass information available "
                          "(tapegrad keeps no traceback of the forward call).", stacklevel=4)
            raise RuntimeError(f"Function '{name}' returned nan values in its {k}th output.")

    def _same_operands(self, r):
        """The output holding a nan of a binary record whose two operands are one (x / x):
        the rules apart, on the recorded values."""
        seg = self.seg
        seg.save_all()
        cols = seg.cols
        o, a = int(cols[0][r]), int(cols[1][r])
        m = int(cols[5][r])

        def values(rec, col):
            if m == 1:
                return [float(cols[col][rec])]
            at = int(cols[6][rec])
            return (seg.badj if col == 9 else seg.bulk)[at:at + m].tolist()
        g, x, y = values(r, 9), values(a, 4), values(r, 4)
        c = float(cols[3][r])
        first = any(math.isnan(T._binary_ba_call(o, gk, xk, xk, yk, c))
                    for gk, xk, yk in zip(g, x, y) if gk != 0.0)
        return 0 if first else 1


_HIDDEN = (T.BROADCAST, T.REFRESH)


def _sweep_loop(seg, start, npend, skip, retain, capture, on_leaf, pending, hits, mrec, mat,
                first=None, check=None):
    """The kernel calls of one segment's sweep, from record ``start`` down, and the Python
    work at each stop.  ``first``: the first call's result, when the caller made it.
    ``check``: anomaly mode's _NanCheck (every record flagged HOOK)."""
    op, a, b, c, val, n, off, aux, flags, adj = seg.cols
    outputs: dict = {}  # PYFUNC record -> {output index: adjoint}, for Function.backward
    while True:
        if first is None:
            args = seg.sweep_args() + (start, npend, bool(retain), hits, mrec, mat, skip)
            status, at, nfree, nh, npend = _entry(_kernel[0], args)(*args)
        else:
            status, at, nfree, nh, npend = first
            first = None
        seg.nfreed += nfree
        if check is not None and (status == T.DONE or status == T.AT_HOOK):
            check.swept()  # the record swept since the last stop (before its hits' delivery)
        _deliver(seg, hits[:nh], capture, on_leaf, pending, outputs)
        if status == T.DONE:
            break
        if status == T.AT_OTHER:  # the full kernel from now on, after this record
            _kernel[0] = T.sweep
            st, r, new = T._other_adjoint(at, op, a, b, c, val, n, off, aux, flags, adj,
                                          seg.bulk, seg.badj, seg.auxi, mrec, mat)
            pin_blas_once()
            if st != T.DONE:
                T.clear_reached(flags, at)
                raise _sweep_error(seg, st, r)
            npend += new
            start, skip = at - 1, -1
            if check is not None:
                check.swept()
        elif status == T.AT_HOOK:
            if check is None:
                _run_hooks(seg, at)
            else:
                check.next(at)
                if at in seg.hooked:
                    _run_hooks(seg, at)
            start = skip = at
        elif status == T.AT_CALLBACK:
            npend += _run_function(seg, at, outputs.pop(at, {}))
            start, skip = at - 1, -1
            if check is not None:
                check.swept()
        else:
            T.clear_reached(flags, start)
            raise _sweep_error(seg, status, at)


def seed(seg, r, g) -> int:
    """Add g to record r's adjoint (set it on first reach); 1 when r is newly reached."""
    cols = seg.cols
    flags = cols[8]
    if cols[5][r] == 1 and g.shape[0] == 1:  # one element, without views
        if flags[r] & T.REACHED:
            cols[9][r] += g[0]
            return 0
        cols[9][r] = g[0]
        flags[r] |= T.REACHED
        return 1
    m = cols[5][r]
    tgt = cols[9][r:r + 1] if m == 1 else seg.badj[cols[6][r]:cols[6][r] + m]
    if flags[r] & T.REACHED:
        tgt += g
        return 0
    tgt[:] = g
    flags[r] |= T.REACHED
    return 1


def _deliver(seg, hits, capture, on_leaf, pending, outputs):
    """Hand the sweep's hits to Python: leaf grads, links to older segments, captures."""
    op = seg.cols[0]
    leaves = seg.leaves
    plain = capture is None and on_leaf is _accumulate and not seg.retained
    for r in hits.tolist():
        o = op[r]
        g = seg.adjoint(r)
        if o == _LEAF:
            t = leaves[r]
            x = t._x
            if plain and (x is None or not x.hooks):
                t._accumulate_grad(g)  # (_deliver_leaf's common case, as in backward_lane)
                continue
            _deliver_leaf(t, g, capture, on_leaf)
        elif o == T.IMPORT:
            src = seg.imports[r]
            if src._seg.dead:
                raise RuntimeError(_FREED_MSG)
            pending.setdefault(src._seg, []).append((src._rec, g))
        elif o == T.PYFUNC_OUT:
            outputs.setdefault(int(seg.cols[1][r]), {})[int(seg.cols[3][r])] = g
            continue
        if r in seg.retained:
            t = seg.retained[r]
            if capture is not None and id(t) in capture:
                _add_capture(capture[id(t)], g)
            elif capture is None:
                t._accumulate_grad(g, True)  # a new tensor, as PyTorch's retain_grad
        elif capture is not None and o != T.LEAF:
            for entry in capture.values():
                t = entry[0]
                if t._seg is seg and t._rec == r:
                    _add_capture(entry, g)


def _run_hooks(seg, r):
    """The tensor hooks of record r see (and may replace) its adjoint before it propagates."""
    t = seg.hooked[r]
    g = seg.adjoint(r)
    new = t._apply_hooks(g)
    if new is not g:
        m = seg.cols[5][r]
        if m == 1:
            seg.cols[9][r] = new[0]
        else:
            o = seg.cols[6][r]
            seg.badj[o:o + m] = new


def _run_function(seg, r, grads) -> int:
    """Run a custom Function's backward; seed its inputs. Returns records newly reached."""
    run = seg.callbacks[r]
    reached = 0
    for rec, g in run(grads):
        reached += seed(seg, rec, g)
    return reached


def _mark_captures(seg, capture):
    marked = []
    flags = seg.cols[8]
    for entry in capture.values():
        t = entry[0]
        if t._seg is seg:
            marked.append(t._rec)
    for r, t in seg.leaves.items():
        if id(t) in capture:
            marked.append(r)
    for r in marked:
        flags[r] |= T.CAPTURE
    return marked


def _add_capture(entry, g):
    entry[1] = g if entry[1] is None else entry[1] + g


def _deliver_leaf(t, g, capture, on_leaf):
    x = t._x
    if x is not None and x.hooks:
        g = t._apply_hooks(g)
    if capture is not None:
        entry = capture.get(id(t))
        if entry is not None:
            _add_capture(entry, g)
        return
    if on_leaf is not None:
        on_leaf(t, g)


_BACKWARD = re.compile(r"Backward\d*$")


class _Bound:
    """A bound constant, or a view, as _sweep_error describes it (the tensor may be gone)."""

    __slots__ = ("dtype", "shape", "vc", "node")

    def __init__(self, dtype, shape, vc, node=None):
        self.dtype, self.shape, self.vc = dtype, shape, vc
        self.node = node  # the node PyTorch names, if not the record's own

    @property
    def _version(self):
        return self.vc[0]


def modified_message(dtype, shape, node, version, expected, label=None):
    """PyTorch 2.13's version error for a saved tensor of ``dtype`` and ``shape`` that is the
    output of ``node`` (a grad_fn name, or None; ``label``: what it is, if not output 0 of a
    node), at ``version`` where ``expected`` was saved: its words, the node's name without
    "Backward0", and its hint (another one in anomaly mode)."""
    kind = {"float32": "FloatTensor", "float64": "DoubleTensor"}.get(dtype.name, "Tensor")
    dims = ", ".join(str(d) for d in shape)
    if label is None and node:
        label = f"output 0 of {_BACKWARD.sub('', node)}"
    where = f", which is {label}," if label else ""
    return ("one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: [torch.{kind} [{dims}]]{where} is at version {version}; "
            f"expected version {expected} instead. Hint: "
            + (_ANOMALY_HINT if ANOMALY else _HINT))


_HINT = ("enable anomaly detection to find the operation that failed to compute its gradient, "
         "with torch.autograd.set_detect_anomaly(True, check_nan=False).")
_ANOMALY_HINT = ("the backtrace further above shows the operation that failed to compute its "
                 "gradient. The variable in question was changed in there or anywhere later. "
                 "Good luck!")


def _sweep_error(seg, status, r):
    if status == T.ERR_FREED:
        return RuntimeError(_FREED_MSG)
    if status == T.ERR_MODIFIED:
        t, ver, _ = seg.modified.get(r, (None, 0, 0))
        op = seg.opcode(r)
        while op == T.BROADCAST:  # (hidden: the tensor broadcast is the one PyTorch names)
            r = seg.operands(r)[0]
            op = seg.opcode(r)
        name = T.GRAD_FN[op] if T.GRAD_FN[op] and op != T.LEAF else None
        if getattr(t, "node", None) is not None:
            name = t.node
        elif t is not None and not isinstance(t, _Bound) and (t._x is None or t._x.base is None):
            fn = t.grad_fn  # PyTorch names the tensor's node now: an in-place op's since
            name = fn.name() if fn is not None else None
        if t is not None:
            return RuntimeError(modified_message(t.dtype, t.shape, name, t._version, ver))
        return RuntimeError("one of the variables needed for gradient computation has been "
                            "modified by an inplace operation")
    return RuntimeError(f"internal error: unknown opcode at record {r}")
