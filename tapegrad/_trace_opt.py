"""``Trace.optimize``: constant folding, common-subexpression merging, multiply-add and
axpy fusion and dead-record elimination on a recorded tape (Python: it runs once per trace,
not per replay).

Operands of a record are ``a``, ``b`` for the kinds that read it, MASK's mask record (kept
in ``c``, as AXPYS's v) and CONCAT's and AXPYN's operand lists in the aux table; every
rewrite below goes through ``_operands``/``_list_operands`` so they agree.
"""
from __future__ import annotations

import numpy as np

from . import _tape as T

_USES_B = frozenset((T.BINARY, T.MATMUL, T.SETITEM, T.SCATTERADD, T.COPY, T.MASK, T.AXPY))


def _c_record(o) -> bool:
    """Whether c holds a record for opcode o: MASK's mask, AXPYS's v (AXPYC's c is a
    number)."""
    return T.KIND[o] == T.MASK or o == T.AXPYS


def _aux_ends(aux, naux):
    """The end of each record's aux entry: entries are appended one after another, so an
    entry ends where the next larger start begins."""
    starts = np.unique(aux[aux >= 0])
    ends = np.append(starts[1:], naux)
    return dict(zip(starts.tolist(), ends.tolist()))


def _concat_operands(auxi, at):
    out, pos = [], at + 1
    for _ in range(int(auxi[at])):
        out.append((pos, int(auxi[pos])))
        pos += 3 + 2 * int(auxi[pos + 1])
    return out


def _axpyn_operands(auxi, at):
    """AXPYN's terms: the (position in auxi, record) of s1, v1, s2, v2, ..."""
    return [(at + 1 + t, int(auxi[at + 1 + t])) for t in range(2 * int(auxi[at]))]


def _list_operands(p, i):
    """The operands a CONCAT or AXPYN record lists in the aux table, as (position, record),
    or None for a record of another opcode."""
    if T.KIND[p["op"][i]] == T.CONCAT:
        return _concat_operands(p["auxi"], int(p["aux"][i]))
    if p["op"][i] == T.AXPYN:
        return _axpyn_operands(p["auxi"], int(p["aux"][i]))
    return None


def _operands(p, i):
    kd = T.KIND[p["op"][i]]
    if kd == T.SOURCE:
        return []
    if kd == T.CONCAT:
        return [r for _, r in _concat_operands(p["auxi"], int(p["aux"][i]))]
    if p["op"][i] == T.AXPYN:
        return [int(p["a"][i])] + [r for _, r in _axpyn_operands(p["auxi"], int(p["aux"][i]))]
    out = [int(p["a"][i])]
    if kd in _USES_B and p["b"][i] >= 0:
        out.append(int(p["b"][i]))
    if _c_record(p["op"][i]):
        out.append(int(p["c"][i]))
    return out


def _value(p, i):
    m = int(p["n"][i])
    if m == 1:
        return np.array([p["val"][i]])
    o = int(p["off"][i])
    return p["bulk"][o:o + m]


def _uses(p, canon, kept):
    """How many operands refer to each record; outputs, guards and inputs (``kept``) count
    once more, so they stay records of their own."""
    uses = np.zeros(p["op"].size, dtype=np.int64)
    for i in range(p["op"].size):
        for r in _operands(p, i):
            uses[canon[r]] += 1
    uses[kept] += 1
    return uses


def _axpys(p, canon, kept):
    """Sums of scaled arrays become one record (the sum's; the others then die):
    ``z + broadcast(s) * v`` over 1-d arrays, s one element, is AXPYS ``z + s * v``;
    ``z + v * c / d`` (c, d numbers; the division optional) is AXPYC.  The parts must be
    used only there.  Each element rounds as the records did, left to right, and each
    operand's adjoint and tangent add up in the same order: the rewrites are exact."""
    op, n, a, b = p["op"], p["n"], p["a"], p["b"]
    uses = _uses(p, canon, kept)
    extra = []
    for j in range(op.size):
        if op[j] != T.ADD or canon[j] != j or n[j] <= 1:
            continue
        for z, pr in ((canon[a[j]], canon[b[j]]), (canon[b[j]], canon[a[j]])):
            # z + v * c / d (AXPYC): a product by a number, maybe divided by one
            q, d = pr, 1.0
            if op[q] == T.DIVC and uses[q] == 1 and p["aux"][q] < 0:
                q, d = canon[a[q]], float(p["c"][q])
            if (op[q] == T.MULC and uses[q] == 1 and p["aux"][q] < 0 and n[q] == n[j]
                    and n[z] == n[j] and (q != pr or d == 1.0)):
                op[j] = T.AXPYC
                a[j], b[j], p["c"][j] = z, canon[a[q]], p["c"][q]
                p["aux"][j] = p["auxi"].size + len(extra)
                extra.append(np.float64(d).view(np.int64))
                uses[q] = uses[pr] = 0
                break
            if op[pr] != T.MUL or uses[pr] != 1:
                continue
            for bc, v in ((canon[a[pr]], canon[b[pr]]), (canon[b[pr]], canon[a[pr]])):
                if (T.KIND[op[bc]] == T.GATHER and uses[bc] == 1 and n[canon[a[bc]]] == 1
                        and n[v] == n[j] and n[z] == n[j] and p["auxi"][p["aux"][bc]] == 1):
                    op[j] = T.AXPYS
                    a[j], b[j], p["c"][j] = z, canon[a[bc]], float(v)
                    uses[pr] = uses[bc] = 0
                    break
            if op[j] == T.AXPYS:
                break
    if extra:
        p["auxi"] = np.concatenate([p["auxi"], np.array(extra, dtype=np.int64)])


def _live(p, canon, roots, inputs):
    """The records the roots (outputs, guards) need, and the inputs."""
    live = np.zeros(p["op"].size, dtype=bool)
    live[list(inputs)] = True
    live[roots] = True
    for i in range(p["op"].size - 1, -1, -1):
        if live[i] and p["op"][i] != T.CONST:
            for r in _operands(p, i):
                live[canon[r]] = True
    return live


def _axpy_chains(p, canon, roots, inputs):
    """A chain of AXPYS records, each the next one's z and used only there, becomes one
    AXPYN record (the last one's): ``z + s1 * v1 + ... + sn * vn``, summed left to right
    as the chain was, its adjoints and tangents added in the chain's order.  A link joins
    only if no live record between it and the chain's previous link reads one of the
    chain's operands (whose adjoint would then sum in another order), so the rewrite is
    exact.  It saves each inner record's pass over its value and its adjoint (llsq_obj: 9
    AXPYS records become one)."""
    op, a = p["op"], p["a"]
    uses = _uses(p, canon, roots + list(inputs))
    live = _live(p, canon, roots, inputs)
    terms = {}  # AXPYN record -> its terms, innermost first
    reads = {}  # AXPYN record -> the records its terms and z read
    extra = []
    base = p["auxi"].size
    for j in range(op.size):
        if op[j] != T.AXPYS or canon[j] != j:
            continue
        z = canon[a[j]]
        if uses[z] != 1 or not (op[z] == T.AXPYS or z in terms):
            continue
        if z in terms:
            inner, seen = terms[z], reads[z]
        else:  # the chain's first link, an AXPYS record
            inner = [(int(canon[p["b"][z]]), int(canon[int(p["c"][z])]))]
            seen = {int(canon[a[z]]), *inner[0]}
        if any(live[r] and not seen.isdisjoint(int(canon[q]) for q in _operands(p, r))
               for r in range(z + 1, j)):
            continue
        terms.pop(z, None)
        reads.pop(z, None)
        term = (int(canon[p["b"][j]]), int(canon[int(p["c"][j])]))
        terms[j] = inner + [term]
        reads[j] = seen | set(term)
        a[j] = canon[a[z]]
        op[j] = T.AXPYN
        p["c"][j] = 0.0
        p["b"][j] = -1
        uses[z] = 0
    for j, ts in terms.items():
        p["aux"][j] = base + len(extra)
        extra.append(len(ts))
        for s_rec, v_rec in ts:
            extra.extend((s_rec, v_rec))
    if extra:
        p["auxi"] = np.concatenate([p["auxi"], np.array(extra, dtype=np.int64)])


def _multiply_adds(p, canon, kept):
    """``x * c`` whose one consumer is ``+ d`` becomes one MULADDC record ``x * c + d`` (the
    ``+`` record's, so nothing downstream changes; the ``*`` record then dies).  The value is
    rounded twice, as before, and the derivative is the ``*``'s: the rewrite is exact and
    halves the records of affine chains."""
    op, n = p["op"], p["n"]
    uses = _uses(p, canon, kept)
    extra = []
    for j in range(op.size):
        if op[j] != T.ADDC or canon[j] != j:
            continue
        i = canon[p["a"][j]]
        if op[i] != T.MULC or uses[i] != 1 or n[i] != n[j] or p["aux"][i] >= 0:
            continue
        op[j] = T.MULADDC
        p["a"][j] = p["a"][i]
        p["aux"][j] = p["auxi"].size + len(extra)  # d, as the bits of a float
        extra.append(np.float64(p["c"][j]).view(np.int64))
        p["c"][j] = p["c"][i]
        uses[i] = 0
    if extra:
        p["auxi"] = np.concatenate([p["auxi"], np.array(extra, dtype=np.int64)])


def optimize(prog, meta):
    p = {k: v.copy() for k, v in prog.items()}
    op, n = p["op"], p["n"]
    k = op.size
    ends = _aux_ends(p["aux"], p["auxi"].size)
    inputs = set(meta["ins"])
    # 1. constant folding: a record whose operands are all constants is one itself (its
    # value, computed when recorded, does not depend on the inputs); FILL writes a constant
    const = (op == T.CONST)
    for i in range(k):
        kd = T.KIND[op[i]]
        if kd == T.SOURCE or i in inputs:
            continue
        if kd == T.FILL or all(const[r] for r in _operands(p, i)):
            const[i] = True
            op[i] = T.CONST
    # 2. common subexpressions: same op, same (canonical) operands, constants and maps
    canon = np.arange(k)
    seen = {}
    for i in range(k):
        o = int(op[i])
        if i in inputs or o in (T.LEAF, T.IMPORT):
            continue
        if o == T.CONST:
            key = ("const", int(n[i]), _value(p, i).tobytes())
        else:
            at = int(p["aux"][i])
            auxkey = p["auxi"][at:ends[at]].tobytes() if at >= 0 else b""
            listed = _list_operands(p, i)
            if listed is not None:  # the operands canonical, the rest of the entry as is
                auxkey = tuple(int(canon[r]) for _, r in listed) + (auxkey,)
            kd = T.KIND[o]
            b = int(canon[p["b"][i]]) if kd in _USES_B and p["b"][i] >= 0 else -1
            c = int(canon[int(p["c"][i])]) if _c_record(o) else float(p["c"][i])
            key = (o, int(canon[p["a"][i]]), b, c, int(n[i]), auxkey)
        j = seen.setdefault(key, i)
        canon[i] = j
    roots = [canon[r] for r in meta["outs"]] + [canon[g[0]] for g in meta["guards"]]
    _multiply_adds(p, canon, roots + list(inputs))
    _axpys(p, canon, roots + list(inputs))
    _axpy_chains(p, canon, roots, inputs)
    # 3. dead records: keep what outputs and guards need, and the inputs
    keep = np.flatnonzero(_live(p, canon, roots, inputs))
    new = np.full(k, -1, dtype=np.int64)
    new[keep] = np.arange(keep.size)

    def renum(r):
        return int(new[canon[r]])

    # 4. compaction: renumber operands, copy values into a compact bulk arena
    q = {name: p[name][keep].copy() for name in ("op", "a", "b", "c", "val", "n", "off", "aux")}
    auxi = [p["auxi"]]
    naux = p["auxi"].size
    bulk = []
    nbulk = 0
    for j, i in enumerate(keep):
        kd = T.KIND[op[i]]
        if q["n"][j] != 1:
            m = int(q["n"][j])
            bulk.append(_value(p, i))
            q["off"][j] = nbulk
            nbulk += m
        if kd == T.SOURCE:
            q["a"][j] = q["b"][j] = -1
            continue
        listed = _list_operands(p, i)
        if listed is not None:  # a copy of the entry with the operand records renumbered
            at = int(p["aux"][i])
            end = ends[at] if kd == T.CONCAT else at + 1 + 2 * int(p["auxi"][at])
            entry = p["auxi"][at:end].copy()
            for pos, r in listed:
                entry[pos - at] = renum(r)
            auxi.append(entry)
            q["aux"][j] = naux
            naux += entry.size
            if kd == T.CONCAT:
                continue
        q["a"][j] = renum(p["a"][i])
        if kd in _USES_B and p["b"][i] >= 0:
            q["b"][j] = renum(p["b"][i])
        if _c_record(op[i]):
            q["c"][j] = float(renum(int(p["c"][i])))
    q["auxi"] = np.concatenate(auxi)
    q["bulk"] = np.concatenate(bulk) if bulk else np.empty(0)
    meta = dict(meta)
    meta["ins"] = [renum(r) for r in meta["ins"]]
    meta["outs"] = [renum(r) for r in meta["outs"]]
    guards = []
    for r, e, truth, where in meta["guards"]:
        if op[canon[r]] == T.CONST:  # decided whatever the inputs: drop it
            continue
        guards.append([renum(r), e, truth, where])
    meta["guards"] = guards
    return q, meta
