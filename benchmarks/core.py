"""Core measurements of the tape design, with PyTorch measured in the same run.

    python benchmarks/core.py [--quick] [--json PATH]

1. scalar chain: 1 000 alternating ``*`` and ``+`` on a 0-d float64 tensor,
   forward + backward, against PyTorch eager (single-threaded);
2. the reverse sweep alone, ns per scalar record, on a 10^6-record chain;
3. bytes of memory per scalar tape record (10^6-op chain, tracemalloc + arrays);
4. ``import tapegrad`` plus a first ``backward()`` in a fresh process, with a warm
   and with a cold Numba cache;
5. a training-style loop of 100 000 iterations: memory at 10 000 vs 100 000.

Times are medians of interleaved rounds; quote ratios, not absolute times: the
machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tapegrad  # noqa: E402
from tapegrad import _tape  # noqa: E402

try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    torch = None


def chain(T, x, n):
    y = x
    for _ in range(n // 2):
        y = y * 1.0001
        y = y + 0.5
    return y


def chain_step(T, n=1000):
    x = T.tensor(0.3, dtype=T.float64, requires_grad=True)
    chain(T, x, n).backward()
    return x.grad


def interleaved(fns: dict, rounds: int, inner: int) -> dict:
    """Median seconds per call of each fn, engines interleaved round by round."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times[k].append((time.perf_counter() - t0) / inner)
    return {k: float(np.median(v)) for k, v in times.items()}


def bench_chain(quick):
    fns = {"tapegrad": lambda: chain_step(tapegrad)}
    if torch is not None:
        fns["torch"] = lambda: chain_step(torch)
    return interleaved(fns, 5 if quick else 15, 5 if quick else 20)


def bench_sweep(n=1_000_000):
    """ns per record of the compiled sweep alone (the core kernel, which a scalar backward
    runs), on an n-record scalar chain."""
    x = tapegrad.tensor(0.3, dtype=tapegrad.float64, requires_grad=True)
    y = chain(tapegrad, x, n)
    seg = y._seg
    seg.flush()
    op, a, b, c, val, n_, off, aux, flags, adj = seg.cols
    hits = np.empty(seg.nrec + 1, dtype=np.int64)
    best = float("inf")
    for _ in range(5):
        adj[y._rec] = 1.0
        flags[y._rec] |= _tape.REACHED
        t0 = time.perf_counter()
        none = np.empty(0, dtype=np.int64)
        _tape.sweep_core(op, a, b, c, val, n_, off, aux, flags, adj, seg.bulk, seg.badj,
                         seg.auxi, y._rec, 1, True, hits, none, none, -1)
        best = min(best, time.perf_counter() - t0)
    return best / seg.nrec * 1e9


def bench_memory(n=1_000_000):
    """Bytes per scalar record: Python allocations plus the tape's NumPy arrays."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    x = tapegrad.tensor(0.3, dtype=tapegrad.float64, requires_grad=True)
    y = chain(tapegrad, x, n)
    y._seg.flush()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    seg = y._seg
    used_cols = sum(col[:seg.nrec].nbytes for col in seg.cols)
    per_record_used = used_cols / seg.nrec
    per_record_alloc = (after - before) / n  # n records, over every segment the chain spans
    result = {"bytes_per_record_columns": per_record_used,
              "bytes_per_record_allocated": per_record_alloc}
    if torch is not None:
        tracemalloc.start()
        xt = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        import resource
        r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        yt = chain(torch, xt, n)
        r1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.stop()
        result["torch_bytes_per_op_rss"] = (r1 - r0) * 1024 / n
        del yt
    del y
    return result


_STARTUP = (
    "import time; t0 = time.perf_counter(); import tapegrad as torch; "
    "x = torch.tensor([1.0, 2.0], requires_grad=True); {}.backward(); "
    "print(time.perf_counter() - t0)")
# the first a vector tape (the core sweep kernel), the second a matmul (the full kernel)
_FIRST = {"": "(x * x).sum()", "_matmul": "(x.reshape(2, 1) @ x.reshape(1, 2)).sum()"}


def bench_startup():
    """Fresh-process import + first backward, warm cache and cold cache: of a vector tape
    (the core sweep kernel only) and of a matmul (the full kernel).

    The processes keep Python's bytecode (in a temporary PYTHONPYCACHEPREFIX), as an
    installed package has it (pip compiles it at install): without it (PYTHONDONTWRITEBYTECODE
    set) every import compiles tapegrad's sources again, ~0.2 s.  "Cold" empties Numba's
    cache only."""
    out = {}
    with tempfile.TemporaryDirectory() as pyc:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPATH=ROOT, PYTHONPYCACHEPREFIX=pyc)
        run = lambda e, first: float(subprocess.run(
            [sys.executable, "-c", _STARTUP.format(first)], env=e, check=True,
            capture_output=True, text=True).stdout.split()[-1])
        for tag, first in _FIRST.items():
            run(env, first)  # make sure the caches are warm
            out["warm" + tag + "_s"] = min(run(env, first) for _ in range(3))
            with tempfile.TemporaryDirectory() as d:
                out["cold" + tag + "_s"] = run(dict(env, NUMBA_CACHE_DIR=d), first)
    return out


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _loop(T, w, xs, iters, marks):
    for i in range(1, iters + 1):
        loss = ((w * xs).tanh() - 0.5).sum() * 0.1 + (w * w).sum()
        loss.backward()
        w.grad.zero_()
        if marks is not None and i in (iters // 10, iters):
            marks[i] = _rss_mb()


def bench_training_loop(iters=100_000):
    """loss = f(w); loss.backward(); w.grad.zero_(): memory must stay flat."""
    w = tapegrad.randn(8, dtype=tapegrad.float64, requires_grad=True)
    xs = tapegrad.randn(8, dtype=tapegrad.float64)
    marks = {}
    t0 = time.perf_counter()
    _loop(tapegrad, w, xs, iters, marks)
    out = {"rss_mb_at_10pct": marks[iters // 10], "rss_mb_at_end": marks[iters],
           "us_per_iteration": (time.perf_counter() - t0) / iters * 1e6}
    if torch is not None:
        wt = torch.randn(8, dtype=torch.float64, requires_grad=True)
        xt = torch.randn(8, dtype=torch.float64)
        n = max(iters // 10, 1000)
        t0 = time.perf_counter()
        _loop(torch, wt, xt, n, None)
        out["torch_us_per_iteration"] = (time.perf_counter() - t0) / n * 1e6
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    args = p.parse_args()
    out = {}
    t = bench_chain(args.quick)
    out["chain_1000"] = t
    print(f"scalar chain (1000 ops, fwd+bwd): tapegrad {t['tapegrad'] * 1e6:.0f} us", end="")
    if "torch" in t:
        print(f", PyTorch {t['torch'] * 1e6:.0f} us, ratio {t['torch'] / t['tapegrad']:.1f}x",
              end="")
    print()
    ns = bench_sweep(100_000 if args.quick else 1_000_000)
    out["sweep_ns_per_record"] = ns
    print(f"reverse sweep alone: {ns:.1f} ns per scalar record")
    mem = bench_memory(100_000 if args.quick else 1_000_000)
    out["memory"] = mem
    print(f"tape memory: {mem['bytes_per_record_columns']:.0f} B/record in the columns, "
          f"{mem['bytes_per_record_allocated']:.0f} B/record allocated while recording"
          + (f"; PyTorch {mem['torch_bytes_per_op_rss']:.0f} B/op (RSS)"
             if "torch_bytes_per_op_rss" in mem else ""))
    st = bench_startup()
    out["startup"] = st
    print(f"import + first backward, fresh process: warm cache {st['warm_s']:.2f} s, "
          f"cold cache {st['cold_s']:.1f} s; a first matmul backward: warm "
          f"{st['warm_matmul_s']:.2f} s, cold {st['cold_matmul_s']:.1f} s")
    loop = bench_training_loop(10_000 if args.quick else 100_000)
    out["training_loop"] = loop
    print(f"training loop: RSS {loop['rss_mb_at_10pct']:.1f} MB at 10% -> "
          f"{loop['rss_mb_at_end']:.1f} MB at the end, {loop['us_per_iteration']:.1f} us/iter"
          + (f" (PyTorch {loop['torch_us_per_iteration']:.1f} us/iter)"
             if "torch_us_per_iteration" in loop else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
