"""Smoke test of the benchmark suite (``tapegrad.bench``), fast enough for every test run.

Every workload runs once on tapegrad at a tiny size and its gradient is checked against central
differences (no PyTorch needed) and against PyTorch running the same source. The runner is run
end to end on tiny sizes, including the path that reports a wrong gradient as FAILED: a
benchmark that times wrong answers would be worse than none.
"""
from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest

import tapegrad
from tapegrad.bench import WORKLOADS, Case, Engine, Prepared, Workload, grad_error, run
from tapegrad.bench import runner as bench_runner
from tapegrad.bench.__main__ import main
from tapegrad.bench.engines import all_engines


def _forward(wl: Workload, case: Case, params: list[np.ndarray]) -> float:
    """The workload's output (dotted with the seed if it is a vector) on tapegrad, no graph."""
    T = tapegrad
    with T.no_grad():
        ps = [T.tensor(p, dtype=T.float64) for p in params]
        consts = {k: T.tensor(v, dtype=T.float64) if isinstance(v, np.ndarray) else v
                  for k, v in case.consts.items()}
        out = wl.torch_fn(T, ps, consts).numpy()
    return float(np.sum(out * case.seed)) if case.seed is not None else float(out)


def _central_differences(wl: Workload, case: Case) -> list[np.ndarray]:
    grads = []
    for i, p in enumerate(case.params):
        g = np.zeros_like(p)
        for k in np.ndindex(p.shape):
            h = 1e-6 * max(1.0, abs(float(p[k])))
            plus = [q.copy() for q in case.params]
            minus = [q.copy() for q in case.params]
            plus[i][k] += h
            minus[i][k] -= h
            g[k] = (_forward(wl, case, plus) - _forward(wl, case, minus)) / (2 * h)
        grads.append(g)
    return grads


def _tapegrad_grads(wl: Workload, case: Case) -> list[np.ndarray]:
    prep = all_engines()["tapegrad"].prepare(wl, case)
    return prep.to_numpy(prep.step())


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_matches_central_differences(name: str) -> None:
    wl = WORKLOADS[name]
    case = wl.case(tiny=True)
    got = _tapegrad_grads(wl, case)
    assert [g.shape for g in got] == [p.shape for p in case.params]
    assert grad_error(got, _central_differences(wl, case)) < 1e-6


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_matches_torch(name: str) -> None:
    pytest.importorskip("torch")
    wl = WORKLOADS[name]
    case = wl.case(tiny=True)
    engines = all_engines()
    engines["torch"].activate()
    prep = engines["torch"].prepare(wl, case)
    assert grad_error(_tapegrad_grads(wl, case), prep.to_numpy(prep.step())) <= 1e-8


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_trace_engine_matches_eager(name: str) -> None:
    """``tapegrad-trace`` (record once, replay) gives eager tapegrad's gradient, repeatedly,
    and reports its record time."""
    wl = WORKLOADS[name]
    case = wl.case(tiny=True)
    prep = all_engines()["tapegrad-trace"].prepare(wl, case)
    assert prep.compile_s is not None and prep.compile_s > 0
    want = _tapegrad_grads(wl, case)
    for _ in range(2):  # a replay leaves nothing behind that changes the next one
        got = prep.to_numpy(prep.step())
        assert [g.shape for g in got] == [p.shape for p in case.params]
        assert grad_error(got, want) <= 1e-12


def test_workload_sizes_are_the_documented_ones() -> None:
    """The full sizes are the ones the issue and docs/benchmarks.md state."""
    assert WORKLOADS["det_by_minor_5"].case().params[0].shape == (25,)
    llsq = WORKLOADS["llsq_obj"].case()
    assert llsq.params[0].shape == (9,) and llsq.consts["t"].shape == (100,)
    assert WORKLOADS["an_ode"].sizes == {"n": 100, "steps": 9}
    assert [p.shape for p in WORKLOADS["mlp_step"].case().params] == [
        (64, 128), (128,), (128, 128), (128,), (128, 10), (10,)]
    assert WORKLOADS["big_matmul"].sizes == {"n": 512}


def test_grad_error() -> None:
    ref = [np.array([1.0, -2.0, 0.0])]
    assert grad_error([ref[0].copy()], ref) == 0.0
    assert grad_error([ref[0] * (1 + 1e-6)], ref) > 1e-8
    assert grad_error([np.zeros(2)], ref) == float("inf")
    assert grad_error([np.array([1.0, -2.0, np.nan])], ref) == float("inf")


def test_runner_end_to_end_tiny(tmp_path) -> None:
    out = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    code = main(["--engines", "tapegrad", "--workloads", "scalar_chain,seed_loop,det*",
                 "--tiny", "--rounds", "2", "--target-ms", "1", "--no-progress",
                 "--json", str(out), "--markdown", str(md)])
    assert code == 0
    report = json.loads(out.read_text())
    assert list(report["workloads"]) == ["det_by_minor_3", "det_by_minor_5", "scalar_chain",
                                         "seed_loop"]
    for d in report["workloads"].values():
        r = d["results"]["tapegrad"]
        assert r["status"] == "ok" and len(r["times_s"]) == 2 and r["grads_per_s"] > 0
        if "torch" in report["engines"]:
            assert r["ratio"] > 0 and r["max_rel_err"] <= 1e-8
    assert "| scalar_chain |" in md.read_text()


def test_runner_trace_engine_tiny(tmp_path, capsys) -> None:
    """The trace engine end to end in the runner: checked against PyTorch, timed, its record
    time in the report, the text and Markdown tables and (with matplotlib) the plot."""
    out, md, png = tmp_path / "bench.json", tmp_path / "bench.md", tmp_path / "bench.png"
    argv = ["--engines", "tapegrad-trace", "--workloads", "det*,scalar_chain,seed_loop,an_ode",
            "--tiny", "--rounds", "2", "--target-ms", "1", "--no-progress", "--json", str(out),
            "--markdown", str(md)]
    try:
        import matplotlib  # noqa: F401
        argv += ["--plot", str(png)]
    except ImportError:
        png = None
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert "tapegrad-trace" in report["engines"]
    for d in report["workloads"].values():
        r = d["results"]["tapegrad-trace"]
        assert r["status"] == "ok" and len(r["times_s"]) == 2 and r["grads_per_s"] > 0
        assert r["compile_s"] > 0
        if "torch" in report["engines"]:
            assert r["ratio"] > 0 and r["max_rel_err"] <= 1e-8
    text = capsys.readouterr().out
    assert "tapegrad-trace record time" in text and "tapegrad-trace" in md.read_text()
    assert png is None or png.stat().st_size > 0


class _WrongEngine(Engine):
    """tapegrad with its gradient scaled by 1 + 1e-6: must be FAILED and never timed."""

    name = "wrong"

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        inner = all_engines()["tapegrad"].prepare(workload, case)
        return Prepared(inner.step,
                        lambda gs: [g * (1 + 1e-6) for g in inner.to_numpy(gs)])


def test_runner_reports_wrong_gradient_as_failed(monkeypatch) -> None:
    pytest.importorskip("torch")
    engines = all_engines()
    engines["wrong"] = _WrongEngine()
    monkeypatch.setattr(bench_runner, "all_engines", lambda: engines)
    report = run(["tapegrad", "wrong"], ["scalar_chain"], rounds=1, target_s=0.001, tiny=True,
                 progress=False, log=io.StringIO())
    res = report["workloads"]["scalar_chain"]["results"]
    assert res["tapegrad"]["status"] == "ok"
    assert res["wrong"]["status"] == "FAILED" and res["wrong"]["times_s"] == []
    assert "FAILED" in bench_runner.format_report(report)


class _SlowStartEngine(Engine):
    """tapegrad, its first three calls (the check and two more) each 30 ms slower: a batch
    must still be sized by the fast calls."""

    name = "slow-start"

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        inner = all_engines()["tapegrad"].prepare(workload, case)
        calls = []

        def step():
            calls.append(1)
            if len(calls) <= 3:
                time.sleep(0.03)
            return inner.step()

        return Prepared(step, inner.to_numpy)


def test_runner_sizes_batches_by_the_fastest_calibration_call(monkeypatch) -> None:
    engines = all_engines()
    engines["slow-start"] = _SlowStartEngine()
    monkeypatch.setattr(bench_runner, "all_engines", lambda: engines)
    report = run(["slow-start"], ["scalar_chain"], rounds=1, target_s=0.06, tiny=True,
                 progress=False, log=io.StringIO())
    res = report["workloads"]["scalar_chain"]["results"]["slow-start"]
    # a call takes well under a millisecond once fast: dozens per 60 ms batch, where a
    # calibration on one of the slow calls would have given 1 or 2
    assert res["status"] == "ok" and res["inner"] > 10


class _RaisingEngine(Engine):
    """Right gradient on the first call, then an exception: ERROR, and the run goes on."""

    name = "raising"

    def prepare(self, workload: Workload, case: Case) -> Prepared:
        inner = all_engines()["tapegrad"].prepare(workload, case)
        calls = []

        def step():
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("second call")
            return inner.step()

        return Prepared(step, inner.to_numpy)


def test_runner_reports_exceptions_as_error(monkeypatch) -> None:
    engines = all_engines()
    engines["raising"] = _RaisingEngine()
    monkeypatch.setattr(bench_runner, "all_engines", lambda: engines)
    report = run(["tapegrad", "raising"], ["scalar_chain", "seed_loop"], rounds=2,
                 target_s=0.001, tiny=True, progress=False, log=io.StringIO())
    for d in report["workloads"].values():
        assert d["results"]["tapegrad"]["status"] == "ok"
        assert d["results"]["raising"]["status"] == "ERROR"
        assert "second call" in d["results"]["raising"]["note"]
