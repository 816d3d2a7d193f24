"""Scalar code in PyTorch's default dtype (float32), tapegrad against PyTorch in one run.

    python benchmarks/float32.py [--rounds N]

``torch.tensor(1.5, requires_grad=True)`` is float32, and so is tutorial-style code; the
benchmark suite (``python -m tapegrad.bench``) is float64, where tapegrad's 0-d fast path
holds a Python float.  This times the 1 000-op scalar chain and det_by_minor_3 with float32
and with float64 tensors on both libraries, rounds interleaved, and prints the median time
per gradient and tapegrad's speed relative to PyTorch for each dtype.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tapegrad  # noqa: E402
from tapegrad.bench.workloads import det_by_minor, elementwise_chain, mlp_torch  # noqa: E402


def chain(T, dt):
    x = T.tensor(0.3, dtype=dt, requires_grad=True)
    y = x
    for _ in range(500):
        y = y * 1.0001
        y = y + 0.5
    y.backward()
    return x.grad


_DET3 = np.random.default_rng(3).uniform(0.0, 1.0, 9)


def det3(T, dt):
    x = T.tensor(_DET3, dtype=dt, requires_grad=True)
    det_by_minor(T, (x,), {"ell": 3}).backward()
    return x.grad


_VEC16 = np.random.default_rng(16).uniform(-1.0, 1.0, 16)


def vec16(T, dt):
    x = T.tensor(_VEC16, dtype=dt, requires_grad=True)
    elementwise_chain(T, (x,), {"n_ops": 200}).backward()
    return x.grad


_MLP_RNG = np.random.default_rng(64)
_MLP = [_MLP_RNG.standard_normal(s) / 8 for s in ((64, 128), (128,), (128, 128), (128,),
                                                  (128, 10), (10,))]
_MLP_DATA = {"x": _MLP_RNG.standard_normal((32, 64)), "target": _MLP_RNG.standard_normal((32, 10))}


def mlp(T, dt):
    ps = [T.tensor(w, dtype=dt, requires_grad=True) for w in _MLP]
    consts = {k: T.tensor(v, dtype=dt) for k, v in _MLP_DATA.items()}
    mlp_torch(T, ps, consts).backward()
    return ps[0].grad


def _time(fn, budget=0.1):
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter() - t0
        if t >= budget:
            return t / n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9)
    args = p.parse_args()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        sys.exit("PyTorch is not installed: nothing to compare with")
    for name, work in (("scalar_chain (1 000 ops)", chain), ("det_by_minor_3", det3),
                       ("vec16_chain (200 ops)", vec16), ("mlp_step", mlp)):
        for dname in ("float32", "float64"):
            fns = {lib.__name__: (lambda lib=lib, work=work, dname=dname:
                                  work(lib, getattr(lib, dname)))
                   for lib in (tapegrad, torch)}
            got = {k: f().numpy() for k, f in fns.items()}  # the same gradient first
            np.testing.assert_allclose(got["tapegrad"], got["torch"], rtol=1e-4, atol=1e-6)
            times = {k: [] for k in fns}
            ratios = []
            for _ in range(args.rounds):
                t = {k: _time(f) for k, f in fns.items()}
                for k in fns:
                    times[k].append(t[k])
                ratios.append(t["torch"] / t["tapegrad"])
            print(f"{name:26s} {dname}: tapegrad {np.median(times['tapegrad']) * 1e6:8.1f} us,"
                  f" torch {np.median(times['torch']) * 1e6:8.1f} us,"
                  f" {np.median(ratios):.2f}x torch (rounds {min(ratios):.2f}-"
                  f"{max(ratios):.2f}x)", flush=True)


if __name__ == "__main__":
    main()
