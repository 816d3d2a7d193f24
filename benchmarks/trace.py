"""``tapegrad.trace`` against the eager peers, in one process, interleaved round by round.

    PYTHONPATH=. python benchmarks/trace.py [--quick] [--json PATH]

A trace records a function once and replays its tape in one compiled call per gradient. This
measures what that buys (issue #5), with PyTorch eager single-threaded
(``torch.set_num_threads(1)``) as the reference and ``jax.jit(jax.grad(f))`` of the NumPy-style
source as the compiled peer:

1. replay of ``scalar_chain`` (1 000 alternating ``* 1.0001`` and ``+ 0.5`` on a 0-d value) with
   ``tr.gradient``: ns per op, forward + reverse, fixed call overhead included; beside it the
   per-op slope between a 1 000- and a 100 000-op chain (the call overhead excluded);
2. gradients per second on det_by_minor_3, det_by_minor_5, llsq_obj, an_ode and scalar_chain
   (``tapegrad.bench``'s workloads, full size): ``tapegrad-trace`` against PyTorch eager and
   against jax-jit, each ratio the median of per-round paired ratios; the trace's record time
   (``tapegrad.trace``, both recordings of ``check=True``) beside JAX's trace + compile time
   (the first call of the jitted function). Every gradient is checked against PyTorch's first;
3. the full 100 x 100 Jacobian of an_ode's final state: ``tr.jacobian`` (reverse and forward
   sweeps) against ``torch.autograd.functional.jacobian`` (and its ``vectorize=True``);
4. ``tr.gradient_batch`` over 10^5 points of det_by_minor_3 with ``threads=1`` and
   ``threads=2``: points per second and the speed-up.

Targets (issue #5): 1. <= 10 ns/op; 2. >= 100x PyTorch, >= 1x jax-jit (stretch 3x); 3. >= 50x.
The machines are shared and noisy: quote the ratios (same run, paired per round), not the
absolute rates.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tapegrad  # noqa: E402
from tapegrad.bench import WORKLOADS  # noqa: E402
from tapegrad.bench.engines import all_engines  # noqa: E402
from tapegrad.bench.runner import Progress, machine_info, run_workload  # noqa: E402
from tapegrad.bench.threads import set_blas_threads  # noqa: E402
from tapegrad.bench.workloads import an_ode_state, scalar_chain  # noqa: E402

GRAD_WORKLOADS = ("det_by_minor_3", "det_by_minor_5", "llsq_obj", "an_ode", "scalar_chain")
TARGETS = {"ns_per_op": 10.0, "vs_torch": 100.0, "vs_jax_jit": 1.0, "vs_jax_jit_stretch": 3.0,
           "jacobian_vs_torch": 50.0}


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    return torch


def interleaved(fns: dict[str, Callable[[], object]], rounds: int,
                target_s: float) -> dict[str, list[float]]:
    """Seconds per call of each fn in every round; the order rotates between rounds and each
    fn's batch lasts about ``target_s`` (calibrated on a call after a first warm-up call)."""
    inner = {}
    for k, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        inner[k] = max(1, min(100_000, int(target_s / max(time.perf_counter() - t0, 1e-9))))
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    gc.collect()
    gc.freeze()
    try:
        for r in range(rounds):
            k0 = r % len(names)
            for k in names[k0:] + names[:k0]:
                fn, m = fns[k], inner[k]
                t0 = time.perf_counter()
                for _ in range(m):
                    fn()
                times[k].append((time.perf_counter() - t0) / m)
    finally:
        gc.unfreeze()
    return times


def paired(num: list[float], den: list[float]) -> float:
    """Median over rounds of num/den: den's speed relative to num's."""
    return float(np.median(np.asarray(num) / np.asarray(den)))


def med(ts: list[float]) -> float:
    return float(np.median(ts))


# --- 1. scalar chain, ns per op ----------------------------------------------------------------

def chain_trace(n: int) -> tapegrad.Trace:
    return tapegrad.trace(lambda x: scalar_chain(tapegrad, [x], {"n": n}), np.array(0.3))


def bench_chain(rounds: int, target_s: float, n_long: int, torch) -> dict:
    n = 1000
    x = np.array(0.3)
    tr, tr_long = chain_trace(n), chain_trace(n_long)
    want = 1.0001 ** (n // 2)
    assert abs(tr.gradient(x) - want) <= 1e-12 * want, "scalar_chain gradient"
    fns: dict[str, Callable[[], object]] = {"trace": lambda: tr.gradient(x),
                                            "trace_long": lambda: tr_long.gradient(x)}
    if torch is not None:
        def torch_step():
            t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
            scalar_chain(torch, [t], {"n": n}).backward()
            return t.grad
        fns["torch"] = torch_step
    times = interleaved(fns, rounds, target_s)
    per_op = [t / n for t in times["trace"]]
    slope = [(b - a) / (n_long - n) for a, b in zip(times["trace"], times["trace_long"])]
    out = {"ops": n, "ns_per_op": med(per_op) * 1e9, "call_us": med(times["trace"]) * 1e6,
           "long_ops": n_long, "slope_ns_per_op": med(slope) * 1e9,
           "records": tr.num_records, "record_s": tr.record_seconds}
    if torch is not None:
        out["torch_ns_per_op"] = med(times["torch"]) / n * 1e9
        out["vs_torch"] = paired(times["torch"], times["trace"])
    return out


# --- 2. gradients per second -------------------------------------------------------------------

def bench_grads(rounds: int, target_s: float) -> dict:
    every = all_engines()
    engines = {n: every[n] for n in ("torch", "tapegrad-trace", "jax-jit")
               if every[n].unavailable() is None}
    reference = "torch" if "torch" in engines else None
    out = {}
    for name in GRAD_WORKLOADS:
        res = run_workload(WORKLOADS[name], engines, rounds, target_s, False,
                           Progress(1, enabled=False), reference, blas_threads=1)
        tr = res["tapegrad-trace"]
        row = {"trace_status": tr.status, "trace_note": tr.note,
               "trace_grads_per_s": tr.grads_per_s, "trace_record_s": tr.compile_s,
               "max_rel_err": tr.max_rel_err}
        if "torch" in res and res["torch"].status == "ok":
            row["torch_grads_per_s"] = res["torch"].grads_per_s
            row["vs_torch"] = tr.ratio
        jj = res.get("jax-jit")
        if jj is not None and jj.status == "ok" and tr.status == "ok":
            row["jax_jit_grads_per_s"] = jj.grads_per_s
            row["jax_compile_s"] = jj.compile_s
            row["vs_jax_jit"] = paired(jj.times_s, tr.times_s)
        elif jj is not None:
            row["jax_jit_status"] = f"{jj.status} {jj.note}".strip()
        out[name] = row
    return out


# --- 3. an_ode Jacobian ------------------------------------------------------------------------

def ode_state(lib, x, consts):
    """an_ode's final state (the workload without its final sum)."""
    return an_ode_state(lib, x, consts["steps"])


def bench_jacobian(rounds: int, target_s: float, torch) -> dict:
    case = WORKLOADS["an_ode"].case()
    (x,) = case.params
    consts = dict(case.consts)
    t0 = time.perf_counter()
    tr = tapegrad.trace(lambda t: ode_state(tapegrad, t, consts), x)
    record_s = time.perf_counter() - t0
    jr = tr.jacobian(x, mode="reverse")
    jf = tr.jacobian(x, mode="forward")
    np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-14)
    fns: dict[str, Callable[[], object]] = {"trace_reverse": lambda: tr.jacobian(x, mode="reverse"),
                                            "trace_forward": lambda: tr.jacobian(x, mode="forward")}
    if torch is not None:
        xt = torch.tensor(x)
        f = lambda t: ode_state(torch, t, consts)  # noqa: E731
        jt = torch.autograd.functional.jacobian(f, xt).numpy()
        np.testing.assert_allclose(jr, jt, rtol=1e-12, atol=1e-14)
        fns["torch"] = lambda: torch.autograd.functional.jacobian(f, xt)
        try:
            jv = torch.autograd.functional.jacobian(f, xt, vectorize=True).numpy()
            np.testing.assert_allclose(jv, jt, rtol=1e-12, atol=1e-14)
            fns["torch_vectorize"] = lambda: torch.autograd.functional.jacobian(
                f, xt, vectorize=True)
        except Exception as exc:  # vmap over cat may be unsupported: report without it
            print(f"note: torch jacobian(vectorize=True) not measured: {exc}", file=sys.stderr)
    times = interleaved(fns, rounds, target_s)
    out = {"shape": list(jr.shape), "record_s": record_s, "records": tr.num_records,
           "trace_reverse_per_s": 1 / med(times["trace_reverse"]),
           "trace_forward_per_s": 1 / med(times["trace_forward"])}
    if "torch" in times:
        out["torch_per_s"] = 1 / med(times["torch"])
        out["vs_torch"] = paired(times["torch"], times["trace_reverse"])
        out["forward_vs_torch"] = paired(times["torch"], times["trace_forward"])
    if "torch_vectorize" in times:
        out["torch_vectorize_per_s"] = 1 / med(times["torch_vectorize"])
        out["vs_torch_vectorize"] = paired(times["torch_vectorize"], times["trace_reverse"])
    return out


# --- 4. gradient_batch over threads ------------------------------------------------------------

def bench_batch(rounds: int, points: int) -> dict:
    wl = WORKLOADS["det_by_minor_3"]
    case = wl.case()
    consts = dict(case.consts)
    tr = tapegrad.trace(lambda a: wl.torch_fn(tapegrad, [a], consts), case.params[0])
    X = np.random.default_rng(5).uniform(0.0, 1.0, (points, case.params[0].size))
    g1 = tr.gradient_batch(X, threads=1)
    g2 = tr.gradient_batch(X, threads=2)
    assert np.array_equal(g1, g2), "gradient_batch differs between 1 and 2 threads"
    for i in (0, points // 2, points - 1):
        np.testing.assert_allclose(g1[i], tr.gradient(X[i]), rtol=1e-14, atol=0)
    times = interleaved({"threads1": lambda: tr.gradient_batch(X, threads=1),
                         "threads2": lambda: tr.gradient_batch(X, threads=2)}, rounds, 0.0)
    cores = {}  # CPU seconds per wall second of one call: the cores the process really got
    for th in (1, 2):
        c0, t0 = time.process_time(), time.perf_counter()
        tr.gradient_batch(X, threads=th)
        cores[th] = (time.process_time() - c0) / (time.perf_counter() - t0)
    return {"workload": "det_by_minor_3", "points": points,
            "threads1_points_per_s": points / med(times["threads1"]),
            "threads2_points_per_s": points / med(times["threads2"]),
            "speedup": paired(times["threads1"], times["threads2"]),
            "threads1_cores_used": cores[1], "threads2_cores_used": cores[2]}


# --- report ------------------------------------------------------------------------------------

def _rate(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _x(r: float | None) -> str:
    return "-" if r is None else f"{r:.3g}x"


def _s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.2f} s" if s >= 0.1 else f"{s * 1e3:.2g} ms"


def _mark(ok: bool) -> str:
    return "meets" if ok else "misses"


def format_report(rep: dict) -> str:
    lines = []
    c = rep["chain"]
    lines.append("1. scalar_chain replay (tr.gradient), forward + reverse")
    lines.append(f"   {c['ns_per_op']:.1f} ns/op at {c['ops']} ops ({c['call_us']:.1f} us per "
                 f"call) [target <= {TARGETS['ns_per_op']:g}: "
                 f"{_mark(c['ns_per_op'] <= TARGETS['ns_per_op'])}]; slope "
                 f"{c['slope_ns_per_op']:.1f} ns/op between {c['ops']} and {c['long_ops']} ops")
    if "torch_ns_per_op" in c:
        lines.append(f"   PyTorch eager: {c['torch_ns_per_op']:.0f} ns/op "
                     f"(trace {_x(c['vs_torch'])} faster)")
    lines.append("")
    lines.append("2. gradients per second (median of interleaved rounds); ratios are medians "
                 "of per-round paired ratios")
    hdr = (f"   {'workload':<16}{'trace':>9}{'torch':>9}{'jax-jit':>9}{'vs torch':>10}"
           f"{'vs jax-jit':>12}{'record':>10}{'jax compile':>13}")
    lines.append(hdr)
    for w, r in rep["grads"].items():
        if r["trace_status"] != "ok":
            lines.append(f"   {w:<16}{r['trace_status']}: {r['trace_note']}")
            continue
        lines.append(f"   {w:<16}{_rate(r['trace_grads_per_s']):>9}"
                     f"{_rate(r.get('torch_grads_per_s')):>9}"
                     f"{_rate(r.get('jax_jit_grads_per_s')):>9}{_x(r.get('vs_torch')):>10}"
                     f"{_x(r.get('vs_jax_jit')):>12}{_s(r['trace_record_s']):>10}"
                     f"{_s(r.get('jax_compile_s')):>13}")
    ok = [r for r in rep["grads"].values() if r["trace_status"] == "ok"]
    vt = [w for w, r in rep["grads"].items() if (r.get("vs_torch") or 0) >= TARGETS["vs_torch"]]
    vj = [w for w, r in rep["grads"].items()
          if (r.get("vs_jax_jit") or 0) >= TARGETS["vs_jax_jit"]]
    lines.append(f"   >= {TARGETS['vs_torch']:g}x PyTorch: {len(vt)}/{len(ok)} "
                 f"({', '.join(vt) or 'none'}); >= {TARGETS['vs_jax_jit']:g}x jax-jit: "
                 f"{len(vj)}/{len(ok)} ({', '.join(vj) or 'none'})")
    lines.append("")
    j = rep["jacobian"]
    lines.append(f"3. an_ode Jacobian {j['shape'][0]}x{j['shape'][1]} of the final state "
                 f"(trace recorded in {_s(j['record_s'])}, {j['records']} records)")
    lines.append(f"   tr.jacobian reverse {_rate(j['trace_reverse_per_s'])}/s, forward "
                 f"{_rate(j['trace_forward_per_s'])}/s")
    if "torch_per_s" in j:
        lines.append(f"   torch.autograd.functional.jacobian {_rate(j['torch_per_s'])}/s: "
                     f"reverse {_x(j['vs_torch'])}, forward {_x(j['forward_vs_torch'])} "
                     f"[target >= {TARGETS['jacobian_vs_torch']:g}x: "
                     f"{_mark(j['vs_torch'] >= TARGETS['jacobian_vs_torch'])}]")
    if "torch_vectorize_per_s" in j:
        lines.append(f"   ... vectorize=True {_rate(j['torch_vectorize_per_s'])}/s: reverse "
                     f"{_x(j['vs_torch_vectorize'])}")
    lines.append("")
    b = rep["batch"]
    lines.append(f"4. gradient_batch, {b['workload']}, {b['points']:,} points")
    lines.append(f"   threads=1 {_rate(b['threads1_points_per_s'])} points/s, threads=2 "
                 f"{_rate(b['threads2_points_per_s'])} points/s, speed-up {_x(b['speedup'])}")
    lines.append(f"   cores the process got during one call (CPU s / wall s): threads=1 "
                 f"{b['threads1_cores_used']:.2f}, threads=2 {b['threads2_cores_used']:.2f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 rounds, short batches, 10^4 points")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 9, --quick 3)")
    p.add_argument("--json", metavar="PATH", help="write the measurements as JSON")
    args = p.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    target_s = 0.015 if args.quick else 0.1
    set_blas_threads(1)
    torch = _torch()
    t0 = time.perf_counter()
    rep: dict = {"machine": machine_info(), "settings": {"rounds": rounds,
                                                         "target_ms": target_s * 1e3},
                 "targets": TARGETS}
    if torch is not None:
        rep["machine"]["torch"] = torch.__version__
    try:
        import jax
        rep["machine"]["jax"] = jax.__version__
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        rep["machine"]["load_at_start"] = round(os.getloadavg()[0], 2)
    warm = tapegrad.trace(lambda x: (x * x).sum(), np.ones(2))  # load the replay kernels
    warm.gradient(np.ones(2))
    warm.jacobian(np.ones(2), mode="forward")
    stages = (("chain", lambda: bench_chain(rounds, target_s, 10_000 if args.quick else 100_000,
                                            torch)),
              ("grads", lambda: bench_grads(rounds, target_s)),
              ("jacobian", lambda: bench_jacobian(rounds, target_s, torch)),
              ("batch", lambda: bench_batch(rounds, 10_000 if args.quick else 100_000)))
    for name, stage in stages:
        ts = time.perf_counter()
        rep[name] = stage()
        print(f"[{name}: {time.perf_counter() - ts:.1f} s]", file=sys.stderr)
    rep["elapsed_s"] = time.perf_counter() - t0
    if hasattr(os, "getloadavg"):
        rep["machine"]["load_at_end"] = round(os.getloadavg()[0], 2)
    m = rep["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores; numpy {m['numpy']}, numba {m['numba']}, "
          f"torch {m.get('torch', '-')} (1 thread), jax {m.get('jax', '-')}; load "
          f"{m.get('load_at_start')} -> {m.get('load_at_end')}; {rounds} rounds; total "
          f"{rep['elapsed_s']:.1f} s\n")
    print(format_report(rep), end="")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
