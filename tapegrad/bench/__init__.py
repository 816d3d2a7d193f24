"""tapegrad's benchmark suite: the same workloads on every autodiff engine, in one process.

``python -m tapegrad.bench`` runs it (see ``docs/benchmarks.md``). The workloads live in
``workloads`` (each written once per API style), the engines in ``engines``, the interleaved
timing, gradient checks and reports in ``runner``.
"""
from __future__ import annotations

from .engines import Engine, Prepared, all_engines
from .runner import format_report, grad_error, markdown_table, run, write_plot
from .workloads import WORKLOADS, Case, Workload

__all__ = ["WORKLOADS", "Case", "Engine", "Prepared", "Workload", "all_engines", "format_report",
           "grad_error", "markdown_table", "run", "write_plot"]
