"""Measure every engine on every workload in one process, interleaved round by round.

The machines this runs on are shared and noisy, so absolute times drift by tens of percent
within minutes. Each workload's engines are therefore measured round by round: in every round
each engine times a batch of calls (rotating which engine goes first), so every engine sees the
same machine state, and the ratio to PyTorch is the median of the per-round paired ratios.

Before any timing, each engine's gradient is compared with PyTorch's (float64, rtol 1e-8): an
engine that computes a different gradient is reported as FAILED and not timed, since a fast
wrong answer is not a result.
"""
from __future__ import annotations

import fnmatch
import gc
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import numpy as np

from .engines import Engine, Prepared, all_engines
from .threads import set_blas_threads
from .workloads import WORKLOADS, Workload

BASELINE = "torch"
RTOL = 1e-8
#: engines whose preparation has a one-off cost kept apart from the timed step, and its name
ONE_OFF = {"jax-jit": "trace + compile time (its first call)",
           "tapegrad-trace": "record time (tapegrad.trace, both recordings of check=True)"}


@dataclass
class Result:
    """One engine on one workload: status, per-round times and the ratio to the baseline.

    ``status``: ``ok``, ``FAILED`` (gradient differs from PyTorch's), ``ERROR`` (raised),
    ``n/a`` (the engine has no form of the workload). ``ratio`` is baseline time over this
    engine's time (above 1: faster than PyTorch single-threaded).
    """

    status: str
    note: str = ""
    times_s: list[float] = field(default_factory=list)
    inner: int = 0
    median_s: float | None = None
    grads_per_s: float | None = None
    ratio: float | None = None
    compile_s: float | None = None
    max_rel_err: float | None = None


def grad_error(grads: Sequence[np.ndarray], ref: Sequence[np.ndarray]) -> float:
    """Largest error of ``grads`` relative to ``ref``, element by element.

    An element's error is |g - r| / (|r| + max|ref|): relative for the large components, and
    measured against the array's scale for components that are zero or nearly so (a sum of
    hundreds of products legitimately ends ~1e-16 away from zero in another summation order).
    A shape mismatch is an infinite error.
    """
    if len(grads) != len(ref):
        return float("inf")
    worst = 0.0
    for g, r in zip(grads, ref):
        g, r = np.asarray(g, dtype=np.float64), np.asarray(r, dtype=np.float64)
        if g.shape != r.shape:
            return float("inf")
        if r.size == 0:
            continue
        scale = float(np.max(np.abs(r))) or 1e-300
        err = np.abs(g - r) / (np.abs(r) + scale)
        worst = max(worst, float(np.max(err)) if np.all(np.isfinite(err)) else float("inf"))
    return worst


class Progress:
    """A plain-text progress bar on stderr (``\\r`` redrawn on a terminal, lines otherwise)."""

    def __init__(self, total: int, enabled: bool = True, stream: IO[str] | None = None):
        self.total, self.done, self.enabled = max(total, 1), 0, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()

    def update(self, label: str, step: int = 1) -> None:
        """Advance by ``step`` units and redraw with ``label`` (what is running now)."""
        self.done = min(self.total, self.done + step)
        if not (self.enabled and self.tty):
            return
        width = shutil.get_terminal_size((100, 20)).columns
        frac = self.done / self.total
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        line = (f"[{bar}] {100 * frac:3.0f}%  {time.perf_counter() - self.t0:5.1f}s  "
                f"{label}")[: width - 1]
        self.stream.write("\r" + line.ljust(width - 1))
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line that stays (workload finished); on a terminal it replaces the bar."""
        if not self.enabled:
            return
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + " " * (width - 1) + "\r")
        self.stream.write(f"{text}  ({time.perf_counter() - self.t0:.1f}s)\n")
        self.stream.flush()

    def close(self) -> None:
        """Erase the bar."""
        if self.enabled and self.tty:
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + " " * (width - 1) + "\r")
            self.stream.flush()


def select(names: str | None, known: Sequence[str], what: str) -> list[str]:
    """Comma-separated names or shell patterns (``det*``) to known names, in known order."""
    if not names:
        return list(known)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    for n in wanted:
        if not any(fnmatch.fnmatchcase(k, n) for k in known):
            raise SystemExit(f"unknown {what} {n!r}; choose from: {', '.join(known)}")
    return [k for k in known if any(fnmatch.fnmatchcase(k, n) for n in wanted)]


def machine_info(engines: dict[str, Engine] | None = None) -> dict[str, Any]:
    """The machine and library versions, for the report (the numbers mean nothing without)."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    import numba
    info["numpy"], info["numba"] = np.__version__, numba.__version__
    for name, eng in (engines or {}).items():
        if name in ("torch-mt", "jax-jit", "tapegrad-trace") or eng.unavailable() is not None:
            continue
        try:
            info[name] = eng.version()
        except Exception:  # a version lookup must never stop a benchmark
            pass
    return info


def _error(res: Result, exc: BaseException) -> Result:
    """Mark ``res`` as ERROR with the exception's first line (traceback on request)."""
    res.status = "ERROR"
    res.note = f"{type(exc).__name__}: {exc}".splitlines()[0]
    res.times_s = []
    if os.environ.get("TAPEGRAD_BENCH_TRACEBACK"):
        traceback.print_exception(exc)
    return res


def _timed(prep: Prepared, inner: int) -> float:
    step = prep.step
    t0 = time.perf_counter()
    for _ in range(inner):
        step()
    return (time.perf_counter() - t0) / inner


def run_workload(wl: Workload, engines: dict[str, Engine], rounds: int, target_s: float,
                 tiny: bool, progress: Progress, reference: str | None,
                 blas_threads: int | None = 1) -> dict[str, Result]:
    """Check, calibrate and time every engine on one workload, interleaved round by round.

    ``reference`` names the engine whose gradient the others must match (PyTorch when it is
    installed); it is prepared first. ``blas_threads`` is applied again once every engine has
    run: a BLAS library loaded lazily by a first call (Numba's ``np.dot`` binds SciPy's) would
    otherwise keep its default thread count.
    """
    case = wl.case(tiny)
    results: dict[str, Result] = {}
    prepared: dict[str, Prepared] = {}
    ref_grads: list[np.ndarray] | None = None
    order = sorted(engines, key=lambda n: n != reference)
    for name in order:
        eng = engines[name]
        why = eng.unsupported(wl)
        if why is not None:
            results[name] = Result("n/a", why)
            continue
        progress.update(f"{wl.name}: {name} prepare + check", 0)
        try:
            eng.activate()
            prep = eng.prepare(wl, case)
            grads = prep.to_numpy(prep.step())
        except Exception as exc:
            results[name] = _error(Result(""), exc)
            progress.update(f"{wl.name}: {name}", 1 + rounds)
            continue
        if name == reference:
            ref_grads = grads
        res = Result("ok", compile_s=prep.compile_s)
        if ref_grads is not None and name != reference:
            res.max_rel_err = grad_error(grads, ref_grads)
            if not res.max_rel_err <= RTOL:
                res.status = "FAILED"
                res.note = (f"gradient differs from {reference}'s: max rel. error "
                            f"{res.max_rel_err:.2e}")
        elif ref_grads is None and name != reference:
            res.note = "not checked: the reference engine failed"
        results[name] = res
        if res.status == "ok":
            # calibrate on the fastest of three more calls (the first one may include
            # compilation, the next ones a first use of memory or of a cache: one slow
            # calibration call left big_elementwise's tapegrad batches at 2 calls, half of them
            # paying the cost of following another engine): enough calls per round that a
            # batch lasts about target_s
            try:
                t_one = min(_timed(prep, 1) for _ in range(3))
            except Exception as exc:
                _error(res, exc)
            else:
                prepared[name] = prep
                res.inner = max(1, min(100_000, int(target_s / max(t_one, 1e-9))))
        progress.update(f"{wl.name}: {name} {res.status}", 1 if res.status == "ok" else 1 + rounds)
    names = list(prepared)
    if blas_threads is not None:
        set_blas_threads(blas_threads)
    # Freeze what exists now (libraries, inputs) so that a full garbage collection triggered by
    # one engine's garbage does not traverse every other engine's heap inside its timing.
    gc.collect()
    gc.freeze()
    for r in range(rounds):
        k = r % max(len(names), 1)
        for name in names[k:] + names[:k]:
            if name not in prepared:
                continue
            progress.update(f"{wl.name}: {name} round {r + 1}/{rounds}", 0)
            engines[name].activate()
            try:
                results[name].times_s.append(_timed(prepared[name], results[name].inner))
            except Exception as exc:  # e.g. state left over by an earlier call
                _error(results[name], exc)
                del prepared[name]
                progress.update(f"{wl.name}: {name} ERROR", rounds - r)
                continue
            progress.update(f"{wl.name}: {name} round {r + 1}/{rounds}", 1)
    names = list(prepared)
    base = results.get(BASELINE)
    for name in names:
        res = results[name]
        res.median_s = float(np.median(res.times_s))
        res.grads_per_s = 1.0 / res.median_s
        if base is not None and base.status == "ok" and base.times_s:
            res.ratio = float(np.median(np.array(base.times_s) / np.array(res.times_s)))
    gc.unfreeze()
    prepared.clear()
    gc.collect()
    return results


def run(engine_names: Sequence[str], workload_names: Sequence[str], rounds: int = 9,
        target_s: float = 0.1, tiny: bool = False, progress: bool = True,
        blas_threads: int | None = 1, log: IO[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and return a JSON-ready report (see ``docs/benchmarks.md``).

    Unavailable engines are skipped with a note; PyTorch is added as the baseline when it is
    installed, since every ratio is relative to it. ``blas_threads`` pins NumPy's BLAS (used
    by tapegrad and autograd) for the whole run; ``None`` leaves the library default.
    """
    log = log if log is not None else sys.stdout
    blas = set_blas_threads(blas_threads)
    every = all_engines()
    engines: dict[str, Engine] = {}
    notes: list[str] = []
    wanted = list(engine_names)
    if BASELINE not in wanted and every[BASELINE].unavailable() is None:
        wanted.insert(0, BASELINE)
        notes.append(f"{BASELINE} added: it is the baseline of the ratios")
    for name in wanted:
        why = every[name].unavailable()
        if why is None:
            engines[name] = every[name]
        else:
            notes.append(f"{name} skipped: {why}")
    engines = {n: engines[n] for n in every if n in engines}  # report order
    for n in notes:
        print(f"note: {n}", file=log)
    reference = BASELINE if BASELINE in engines else None
    if reference is None:
        for alt in ("autograd", "jax", "tapegrad"):
            if alt in engines:
                reference = alt
                break
        print(f"note: PyTorch is not installed: gradients are checked against {reference}, "
              "and no ratios are reported", file=log)
    wls = [WORKLOADS[n] for n in workload_names]
    total = sum((1 + rounds) * sum(e.unsupported(w) is None for e in engines.values())
                for w in wls)
    bar = Progress(total, progress)
    report: dict[str, Any] = {
        "machine": machine_info(engines),
        "settings": {"rounds": rounds, "target_ms": target_s * 1e3, "tiny": tiny,
                     "numpy_blas_threads": blas,
                     "rtol": RTOL, "baseline": BASELINE, "reference": reference},
        "engines": {n: every[n].description for n in engines},
        "notes": notes,
        "workloads": {},
    }
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        report["machine"]["load_at_start"] = round(load, 2)
        if load > 0.5:
            print(f"note: load average {load:.2f} before starting: other processes are using "
                  "the CPU, expect noisier numbers (ratios are paired per round)", file=log)
    t0 = time.perf_counter()
    for i, wl in enumerate(wls):
        res = run_workload(wl, engines, rounds, target_s, tiny, bar, reference, blas_threads)
        report["workloads"][wl.name] = {"summary": wl.summary,
                                        "results": {n: asdict(r) for n, r in res.items()}}
        bar.note(f"[{i + 1}/{len(wls)}] {wl.name}")
    bar.close()
    report["elapsed_s"] = time.perf_counter() - t0
    if hasattr(os, "getloadavg"):
        report["machine"]["load_at_end"] = round(os.getloadavg()[0], 2)
    return report


def _rate(x: float | None) -> str:
    if x is None:
        return ""
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s >= 0.1 else f"{s * 1e3:.2g} ms"


def _cell(r: dict[str, Any], field_: str) -> str:
    if r["status"] != "ok":
        return r["status"]
    if field_ == "rate":
        return _rate(r["grads_per_s"])
    return "" if r["ratio"] is None else f"{r['ratio']:.2f}x"


def format_report(report: dict[str, Any]) -> str:
    """The two text tables (gradients per second; ratio to PyTorch) and the notes."""
    engines = list(report["engines"])
    wls = report["workloads"]
    w0 = max([len("workload")] + [len(w) for w in wls]) + 2
    cw = max([9] + [len(e) + 2 for e in engines])
    lines = []
    rounds = report["settings"]["rounds"]
    for title, kind in ((f"gradients per second (median of {rounds} interleaved rounds)", "rate"),
                        (f"speed relative to {BASELINE} (1 thread), median of per-round ratios; "
                         ">1 is faster", "ratio")):
        if kind == "ratio" and not any(r.get("ratio") for d in wls.values()
                                       for r in d["results"].values()):
            continue  # no baseline in this run
        lines.append(title)
        lines.append("workload".ljust(w0) + "".join(e.rjust(cw) for e in engines))
        for w, d in wls.items():
            row = w.ljust(w0)
            for e in engines:
                r = d["results"].get(e)
                row += ("" if r is None else _cell(r, kind)).rjust(cw)
            lines.append(row)
        lines.append("")
    for eng, label in ONE_OFF.items():
        compile_lines = [f"  {w}: {_seconds(d['results'][eng]['compile_s'])}"
                         for w, d in wls.items()
                         if d["results"].get(eng, {}).get("compile_s") is not None]
        if compile_lines:
            lines.append(f"{eng} {label}, not in the tables above:")
            lines.extend(compile_lines)
            lines.append("")
    # n/a cells: one line per engine and reason; anything else: one line per cell
    na: dict[tuple[str, str], list[str]] = {}
    extra = []
    for w, d in wls.items():
        for e, r in d["results"].items():
            if r["status"] == "n/a":
                na.setdefault((e, r["note"]), []).append(w)
            elif r["note"]:
                extra.append(f"  {w} / {e}: {r['status']}: {r['note']}")
    extra += [f"  {e}: n/a ({why}): {', '.join(ws)}" for (e, why), ws in na.items()]
    if extra:
        lines.append("notes:")
        lines.extend(extra)
    return "\n".join(lines).rstrip() + "\n"


def markdown_table(report: dict[str, Any]) -> str:
    """One Markdown table, each cell ``gradients/s (ratio to torch)``, for the docs."""
    engines = list(report["engines"])
    out = ["| workload | " + " | ".join(engines) + " |",
           "|---|" + "---:|" * len(engines)]
    for w, d in report["workloads"].items():
        cells = []
        for e in engines:
            r = d["results"].get(e)
            if r is None:
                cells.append("")
            elif r["status"] != "ok":
                cells.append(r["status"])
            else:
                ratio = "" if r["ratio"] is None or e == BASELINE else f" ({r['ratio']:.2f}x)"
                cells.append(_rate(r["grads_per_s"]) + ratio)
        out.append(f"| {w} | " + " | ".join(cells) + " |")
    for eng, label in ONE_OFF.items():
        times = [f"{w} {_seconds(d['results'][eng]['compile_s'])}"
                 for w, d in report["workloads"].items()
                 if d["results"].get(eng, {}).get("compile_s") is not None]
        if times:
            out.append(f"\n`{eng}` {label}, not included above: {', '.join(times)}.")
    return "\n".join(out) + "\n"


def write_plot(report: dict[str, Any], path: str) -> str | None:
    """A PNG bar chart of the ratios to PyTorch (log scale); returns an error text or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot written (pip install matplotlib)"
    engines = [e for e in report["engines"] if e != BASELINE]
    wls = list(report["workloads"])
    fig, ax = plt.subplots(figsize=(12, 4.6), dpi=80)
    width = 0.8 / max(len(engines), 1)
    x = np.arange(len(wls))
    for i, e in enumerate(engines):
        vals = []
        for w in wls:
            r = report["workloads"][w]["results"].get(e)
            vals.append(r["ratio"] if r and r["status"] == "ok" and r["ratio"] else np.nan)
        ax.bar(x + (i - (len(engines) - 1) / 2) * width, vals, width, label=e)
    ax.axhline(1.0, color="black", linewidth=0.8, label=f"{BASELINE} (1 thread) = 1")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(wls, rotation=20, ha="right", fontsize=9)
    ax.set_ylabel(f"speed relative to {BASELINE} (1 thread)")
    m = report["machine"]
    ax.set_title(f"Gradient evaluations, float64, ratio to PyTorch eager single-threaded "
                 f"(higher is faster)\n{m['cpu']}, {m['cores']} cores", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return None
