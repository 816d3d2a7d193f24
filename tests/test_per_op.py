"""benchmarks/per_op.py splits workloads of the suite into their operations: its step functions
must stay the suite's computations (the same values and gradients as tapegrad.bench's
workloads), and its laps must account for a step's time."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import tapegrad
from tapegrad.bench import WORKLOADS

_spec = importlib.util.spec_from_file_location(
    "tapegrad_bench_per_op",
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks", "per_op.py"))
per_op = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(per_op)


def _run(fn, name, lap):
    params, consts, seed = per_op._inputs(tapegrad, name)
    out = fn(tapegrad, params, consts, lap) if lap is not None else fn(tapegrad, params, consts)
    out.backward(seed)
    return out.detach().numpy().copy(), [p.grad.numpy().copy() for p in params]


@pytest.mark.parametrize("name", sorted(per_op.STEPS))
def test_step_is_the_workload(name):
    laps = per_op.Laps()
    value, grads = _run(per_op.STEPS[name], name, laps)
    ref_value, ref_grads = _run(WORKLOADS[name].torch_fn, name, None)
    assert np.array_equal(value, ref_value)  # the same operations in the same order
    for g, r in zip(grads, ref_grads):
        assert np.array_equal(g, r)
    assert laps.ns and all(ns >= 0 for ns in laps.ns.values())


def test_round_times_every_operation():
    times = per_op._round(tapegrad, "seed_loop", 3)
    assert set(times) == {"x * 2", "y.norm()", "< 1000", "bool(...)", "y * 2", "backward"}
    assert all(ns > 0 for ns in times.values())


def test_main_against_pytorch(capsys):
    pytest.importorskip("torch")
    per_op.main(["--rounds", "1", "--steps", "2", "--workloads", "seed_loop,mlp_step"])
    out = capsys.readouterr().out
    assert "seed_loop" in out and "mlp_step" in out and out.count("total") == 2


def test_a_wrong_gradient_stops_it(monkeypatch):
    pytest.importorskip("torch")
    real = per_op._grads

    def off(T, name):
        grads = real(T, name)
        return [g * 1.001 for g in grads] if T is tapegrad else grads

    monkeypatch.setattr(per_op, "_grads", off)
    with pytest.raises(SystemExit, match="differs from PyTorch"):
        per_op.main(["--rounds", "1", "--steps", "1", "--workloads", "llsq_obj"])
