"""``python -m tapegrad.bench``: gradients per second of every engine on every workload.

Engines are interleaved round by round in this one process, each engine's gradient is checked
against PyTorch's before it is timed, and ratios are to PyTorch eager single-threaded.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .engines import all_engines
from .runner import format_report, markdown_table, run, select, write_plot
from .workloads import WORKLOADS


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run, print the tables; the exit status is 1 if any FAILED."""
    engines = list(all_engines())
    p = argparse.ArgumentParser(
        prog="python -m tapegrad.bench",
        description="Gradients per second of autodiff engines on shared workloads, "
                    "interleaved in one process, checked against PyTorch.")
    p.add_argument("--engines", help="comma-separated engines or patterns "
                   f"(default: all available): {', '.join(engines)}")
    p.add_argument("--workloads", help="comma-separated workloads or patterns such as 'det*' "
                   f"(default: all): {', '.join(WORKLOADS)}")
    p.add_argument("--quick", action="store_true",
                   help="3 rounds of ~15 ms batches (under a minute for every engine)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 9, --quick 3)")
    p.add_argument("--target-ms", type=float,
                   help="duration of one engine's batch of calls per round (default 100, "
                        "--quick 15)")
    p.add_argument("--tiny", action="store_true",
                   help="tiny workload sizes (a smoke test of the runner, not a measurement)")
    p.add_argument("--blas-threads", type=int, default=1, metavar="N",
                   help="threads of NumPy's BLAS, used by tapegrad and autograd (default 1, "
                        "like torch; 0: the library default)")
    p.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart (needs matplotlib)")
    p.add_argument("--markdown", metavar="PATH", help="write the results as a Markdown table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = p.parse_args(argv)

    rounds = args.rounds or (3 if args.quick else 9)
    target_s = (args.target_ms or (15.0 if args.quick else 100.0)) / 1e3
    report = run(select(args.engines, engines, "engine"),
                 select(args.workloads, list(WORKLOADS), "workload"),
                 rounds=rounds, target_s=target_s, tiny=args.tiny,
                 progress=not args.no_progress, blas_threads=args.blas_threads or None)
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m.items()
                         if k not in ("cpu", "cores", "platform", "load_at_start", "load_at_end"))
    print(f"\n{m['cpu']}, {m['cores']} cores; {versions}")
    print(f"float64; engines interleaved round by round; NumPy BLAS threads "
          f"{report['settings']['numpy_blas_threads']}; total {report['elapsed_s']:.1f} s\n")
    print(format_report(report), end="")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_table(report))
    if args.plot:
        err = write_plot(report, args.plot)
        print(err if err else f"plot written to {args.plot}")
    failed = any(r["status"] == "FAILED" for d in report["workloads"].values()
                 for r in d["results"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
