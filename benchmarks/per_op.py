"""Op by op: where a workload's time goes in tapegrad and in PyTorch, in one run.

    python benchmarks/per_op.py [--rounds N] [--steps N] [--workloads a,b,...]

The suite (``python -m tapegrad.bench``) times whole gradients; this splits a step of the
workloads that miss their targets into its operations, the same source running on both
libraries (the module is an argument, as in ``tapegrad/bench/workloads.py``, whose
inputs it uses), with a clock read between two operations.  Rounds interleave the two
libraries; each prints the median over rounds of the time per step spent in each
operation (all of a step's calls of it summed), and PyTorch's time over tapegrad's.
A clock read costs ~0.1 us, in both columns alike; PyTorch runs single-threaded, as the
suite's ratios.  Before timing, each workload's gradient is checked against PyTorch's.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tapegrad  # noqa: E402
from tapegrad.bench.workloads import WORKLOADS  # noqa: E402

_now = time.perf_counter_ns


class Laps:
    """Nanoseconds per named operation, summed over the laps taken."""

    def __init__(self):
        self.ns = Counter()
        self.t = _now()

    def __call__(self, name, value=None):
        t = _now()
        self.ns[name] += t - self.t
        self.t = _now()
        return value


def llsq_obj(T, params, consts, lap):
    (x,) = params
    t, q = consts["t"], consts["q"]
    model = 0.0
    lap("setup")
    ti = lap("ones(100)", T.ones(t.shape[0], dtype=T.float64))
    for i in range(x.shape[0]):
        xi = lap("x[i]", x[i])
        p = lap("x[i] * t^i", xi * ti)
        model = lap("model + ...", model + p)
        ti = lap("t^i * t (no grad)", ti * t)
    r = lap("model - q", model - q)
    s = lap("square", T.square(r))
    s = lap("sum", s.sum())
    return lap("0.5 * ...", 0.5 * s)


def seed_loop(T, params, consts, lap):
    (x,) = params
    lap("setup")
    y = lap("x * 2", x * 2)
    while True:
        n = lap("y.norm()", y.norm())
        c = lap("< 1000", n < 1000)
        if not lap("bool(...)", bool(c)):
            break
        y = lap("y * 2", y * 2)
    return y


def an_ode(T, params, consts, lap):
    (x,) = params
    h = 2.0 / consts["steps"]
    lap("setup")

    def f(y):
        head = lap("x[:1]", x[:1])
        tail = lap("x[1:] * y[:-1]", x[1:] * y[:-1])
        return lap("cat", T.cat([head, tail]))

    y = lap("zeros(n)", T.zeros(x.shape[0], dtype=T.float64))
    for _ in range(consts["steps"]):
        k1 = f(y)
        k2 = f(lap("y + h * k / 2", y + h * k1 / 2.0))
        k3 = f(lap("y + h * k / 2", y + h * k2 / 2.0))
        k4 = f(lap("y + h * k", y + h * k3))
        y = lap("y + h * (k1 + ...) / 6", y + h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0)
    return lap("sum", y.sum())


def mlp_step(T, params, consts, lap):
    w1, b1, w2, b2, w3, b3 = params
    lap("setup")
    a = lap("x @ w1", consts["x"] @ w1)
    a = lap("+ b1", a + b1)
    h = lap("relu", T.relu(a))
    a = lap("h @ w2", h @ w2)
    a = lap("+ b2", a + b2)
    h = lap("relu", T.relu(a))
    a = lap("h @ w3", h @ w3)
    out = lap("+ b3", a + b3)
    d = lap("- target", out - consts["target"])
    s = lap("** 2", d ** 2)
    return lap("mean", s.mean())


STEPS = {"llsq_obj": llsq_obj, "seed_loop": seed_loop, "an_ode": an_ode, "mlp_step": mlp_step}


def _inputs(T, name):
    case = WORKLOADS[name].case()
    params = [T.tensor(p, dtype=T.float64, requires_grad=True) for p in case.params]
    consts = {k: T.tensor(v, dtype=T.float64) if isinstance(v, np.ndarray) else v
              for k, v in case.consts.items()}
    seed = None if case.seed is None else T.tensor(case.seed, dtype=T.float64)
    return params, consts, seed


def _grads(T, name):
    """The step's gradients (as NumPy arrays), taken without the clock."""
    params, consts, seed = _inputs(T, name)
    STEPS[name](T, params, consts, lambda _name, value=None: value).backward(seed)
    return [p.grad.numpy() for p in params]


def _round(T, name, steps):
    """Mean ns per step spent in each operation over ``steps`` steps (after 10 untimed)."""
    params, consts, seed = _inputs(T, name)
    step = STEPS[name]
    lap = Laps()
    for k in range(steps + 10):
        if k == 10:
            lap.ns.clear()
        for p in params:
            p.grad = None
        lap.t = _now()
        out = step(T, params, consts, lap)
        lap("backward", out.backward(seed))
    lap.ns.pop("setup", None)
    return {op: ns / steps for op, ns in lap.ns.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workloads", default=",".join(STEPS))
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    for name in args.workloads.split(","):
        for ours, theirs in zip(_grads(tapegrad, name), _grads(torch, name)):
            if not np.allclose(ours, theirs, rtol=1e-9, atol=1e-12):
                raise SystemExit(f"{name}: tapegrad's gradient differs from PyTorch's")
        runs = {"tapegrad": [], "torch": []}
        for _ in range(args.rounds):
            runs["tapegrad"].append(_round(tapegrad, name, args.steps))
            runs["torch"].append(_round(torch, name, args.steps))
        ops = list(runs["tapegrad"][0])
        print(f"\n{name}: us per step, median of {args.rounds} rounds of {args.steps} steps")
        print(f"{'operation':28s} {'tapegrad':>9s} {'torch':>9s} {'torch/tapegrad':>15s}")
        total = {"tapegrad": 0.0, "torch": 0.0}
        for op in ops:
            us = {lib: float(np.median([r.get(op, 0.0) for r in rs])) / 1000
                  for lib, rs in runs.items()}
            for lib in us:
                total[lib] += us[lib]
            print(f"{op:28s} {us['tapegrad']:9.1f} {us['torch']:9.1f} "
                  f"{us['torch'] / us['tapegrad']:14.2f}x")
        print(f"{'total':28s} {total['tapegrad']:9.1f} {total['torch']:9.1f} "
              f"{total['torch'] / total['tapegrad']:14.2f}x")


if __name__ == "__main__":
    main()
