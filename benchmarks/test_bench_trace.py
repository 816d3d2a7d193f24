"""pytest-benchmark tracking of ``tapegrad.trace`` replays against PyTorch eager and jax-jit.

    pytest benchmarks/test_bench_trace.py --benchmark-only                       # grouped
    pytest benchmarks/test_bench_trace.py --benchmark-only --benchmark-autosave  # keep a run
    pytest benchmarks/test_bench_trace.py --benchmark-only --benchmark-compare   # vs last saved

The same measurements as ``benchmarks/trace.py`` (which interleaves the engines and reports
paired ratios: read the ratios there), here for tracking over time: gradients of the cmpad
workloads and scalar_chain (``tapegrad-trace``, ``torch``, ``jax-jit``), the scalar_chain replay
alone, the 100 x 100 Jacobian of an_ode's final state, and ``gradient_batch`` on 10^4 points
with one and two threads. Every benchmark first checks its result against PyTorch (or, for
the batch, against one-point gradients), so a speed-up that breaks a derivative fails instead
of being recorded.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

pytest.importorskip("pytest_benchmark")

import tapegrad  # noqa: E402
from tapegrad.bench import WORKLOADS, Prepared, all_engines, grad_error  # noqa: E402
from tapegrad.bench.runner import RTOL  # noqa: E402
from tapegrad.bench.threads import set_blas_threads  # noqa: E402

# benchmarks/trace.py, loaded by path: the name ``trace`` is the standard library's
_spec = importlib.util.spec_from_file_location(
    "tapegrad_bench_trace_script", os.path.join(os.path.dirname(__file__), "trace.py"))
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)

ENGINES = all_engines()
GRAD_WORKLOADS = list(_script.GRAD_WORKLOADS)
_REFERENCE: dict[str, list] = {}


_torch = _script._torch  # PyTorch single-threaded, or None


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """NumPy's BLAS on one thread and PyTorch single-threaded, as in benchmarks/trace.py."""
    set_blas_threads(1)
    _torch()
    yield
    set_blas_threads(None)


def _prepare(engine: str, workload: str) -> Prepared:
    eng = ENGINES[engine]
    why = eng.unavailable() or eng.unsupported(WORKLOADS[workload])
    if why is not None:
        pytest.skip(why)
    eng.activate()
    wl = WORKLOADS[workload]
    return eng.prepare(wl, wl.case())


def _reference(workload: str) -> list | None:
    if workload not in _REFERENCE:
        if ENGINES["torch"].unavailable() is not None:
            return None
        prep = _prepare("torch", workload)
        _REFERENCE[workload] = prep.to_numpy(prep.step())
    return _REFERENCE[workload]


@pytest.mark.parametrize("engine", ["tapegrad-trace", "torch", "jax-jit"])
@pytest.mark.parametrize("workload", GRAD_WORKLOADS)
def test_trace_gradient(benchmark, workload: str, engine: str) -> None:
    prep = _prepare(engine, workload)
    grads = prep.to_numpy(prep.step())
    ref = _reference(workload)
    if ref is not None:
        assert grad_error(grads, ref) <= RTOL, "gradient differs from PyTorch's"
    set_blas_threads(1)
    ENGINES[engine].activate()
    benchmark.group = f"trace gradient: {workload}"
    benchmark.extra_info["engine"] = engine
    if prep.compile_s is not None:
        benchmark.extra_info["one_off_s"] = prep.compile_s  # record / compile time
    benchmark(prep.step)


def test_trace_scalar_chain_replay(benchmark) -> None:
    """tr.gradient of the 1 000-op scalar chain; ns per op in extra_info."""
    n = 1000
    tr = _script.chain_trace(n)
    x = np.array(0.3)
    want = 1.0001 ** (n // 2)
    assert abs(tr.gradient(x) - want) <= 1e-12 * want
    benchmark.group = "trace replay: scalar_chain"
    benchmark(tr.gradient, x)
    benchmark.extra_info["ns_per_op"] = benchmark.stats.stats.median / n * 1e9


@pytest.fixture(scope="module")
def _ode():
    case = WORKLOADS["an_ode"].case()
    (x,) = case.params
    consts = dict(case.consts)
    tr = tapegrad.trace(lambda t: _script.ode_state(tapegrad, t, consts), x)
    torch = _torch()
    ref = None
    if torch is not None:
        ref = torch.autograd.functional.jacobian(
            lambda t: _script.ode_state(torch, t, consts), torch.tensor(x)).numpy()
    return tr, x, consts, ref


@pytest.mark.parametrize("how", ["trace-reverse", "trace-forward", "torch"])
def test_trace_ode_jacobian(benchmark, _ode, how: str) -> None:
    tr, x, consts, ref = _ode
    if how == "torch":
        torch = _torch()
        if torch is None:
            pytest.skip("PyTorch is not installed")
        xt = torch.tensor(x)
        f = lambda t: _script.ode_state(torch, t, consts)  # noqa: E731
        step = lambda: torch.autograd.functional.jacobian(f, xt)  # noqa: E731
        got = step().numpy()
    else:
        mode = how.split("-")[1]
        step = lambda: tr.jacobian(x, mode=mode)  # noqa: E731
        got = step()
    if ref is not None:
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    benchmark.group = "trace: an_ode 100x100 Jacobian"
    benchmark.extra_info["engine"] = how
    benchmark(step)


@pytest.mark.parametrize("threads", [1, 2])
def test_trace_gradient_batch(benchmark, threads: int) -> None:
    wl = WORKLOADS["det_by_minor_3"]
    case = wl.case()
    tr = tapegrad.trace(lambda a: wl.torch_fn(tapegrad, [a], case.consts), case.params[0])
    points = 10_000
    X = np.random.default_rng(5).uniform(0.0, 1.0, (points, case.params[0].size))
    g = tr.gradient_batch(X, threads=threads)
    for i in (0, points - 1):
        np.testing.assert_allclose(g[i], tr.gradient(X[i]), rtol=1e-14, atol=0)
    benchmark.group = f"trace: gradient_batch det_by_minor_3, {points} points"
    benchmark.extra_info["threads"] = threads
    benchmark.extra_info["points"] = points
    benchmark(tr.gradient_batch, X, threads=threads)

