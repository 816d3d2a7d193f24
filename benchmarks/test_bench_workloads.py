"""pytest-benchmark tracking of the ``tapegrad.bench`` workloads, on tapegrad and PyTorch.

    pytest benchmarks/ --benchmark-only                        # one table, grouped by workload
    pytest benchmarks/ --benchmark-only --benchmark-autosave   # keep a run in .benchmarks/
    pytest benchmarks/ --benchmark-only --benchmark-compare    # compare with the last saved run

This tracks tapegrad's own speed over time (pytest-benchmark's saved runs and comparisons). It
does not interleave the engines, so the ratio between tapegrad and PyTorch is best read from
``python -m tapegrad.bench``, which does. Every benchmark first checks its gradient against
PyTorch's, so a speed-up that breaks a gradient fails instead of being recorded.

The default test suite does not collect this directory (``testpaths = ["tests"]``).
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytest.importorskip("pytest_benchmark")

from tapegrad.bench import WORKLOADS, Prepared, all_engines, grad_error  # noqa: E402
from tapegrad.bench.runner import RTOL  # noqa: E402
from tapegrad.bench.threads import set_blas_threads  # noqa: E402

ENGINES = all_engines()
_REFERENCE: dict[str, list] = {}


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    """NumPy's BLAS on one thread, like ``torch`` and like the runner's default."""
    set_blas_threads(1)
    yield
    set_blas_threads(None)


def _prepare(engine: str, workload: str) -> Prepared:
    eng = ENGINES[engine]
    why = eng.unavailable()
    if why is not None:
        pytest.skip(why)
    eng.activate()
    wl = WORKLOADS[workload]
    return eng.prepare(wl, wl.case())


def _reference(workload: str) -> list | None:
    """PyTorch's gradient of the workload (None when PyTorch is not installed)."""
    if workload not in _REFERENCE:
        if ENGINES["torch"].unavailable() is not None:
            return None
        prep = _prepare("torch", workload)
        _REFERENCE[workload] = prep.to_numpy(prep.step())
    return _REFERENCE[workload]


@pytest.mark.parametrize("engine", ["tapegrad", "torch"])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_workload(benchmark, workload: str, engine: str) -> None:
    prep = _prepare(engine, workload)
    grads = prep.to_numpy(prep.step())
    ref = _reference(workload)
    if ref is not None:
        assert grad_error(grads, ref) <= RTOL, "gradient differs from PyTorch's"
    set_blas_threads(1)  # again: the first call may have loaded another BLAS (SciPy's)
    ENGINES[engine].activate()
    benchmark.group = workload
    benchmark.extra_info["engine"] = engine
    benchmark(prep.step)
