"""Numba's on-disk cache: a second process must load every kernel a first backward and the
float64 array fast paths use, not compile it again.

A kernel whose cache entry cannot be found again costs its whole cold compile in every
process (~7 s for the core sweep), and nothing else notices: the results are the same. It
happened once (a closure holding dispatchers: they pickle with a new id per process).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# what a first program touches: the core sweep (elementwise, reduce, gather, concat), the
# flush (with lazy records), the sin/cos kernels with their recorded derivative, the compiled
# + - * of large arrays (not recorded: recorded ones are lazy), small tanh, relu
_PROGRAM = """
import json, sys
from numba.core import event
rec = event.RecordingListener()
event.register("numba:compile", rec)
import tapegrad as torch
x = torch.linspace(-2.0, 2.0, 4096, dtype=torch.float64, requires_grad=True)
y = torch.cat([torch.sin(x[:2048]) * x[2048:], torch.relu(x[:10]) + 1.0])
w = x.detach() * x.detach() + x[:8].detach().tanh().sum()
z = (y * y.detach().cos()).sum() + x[3] * 2.0 + torch.tanh(x[:8] * w[:8]).sum()
z.backward()
print(json.dumps(sorted({ev.data["dispatcher"].py_func.__qualname__
                         for _, ev in rec.buffer
                         if ev.is_start and ev.data.get("dispatcher") is not None})))
"""


def _run(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
    env.pop("NUMBA_DISABLE_JIT", None)
    env.pop("TAPEGRAD_NO_CACHE", None)
    out = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_compiles_nothing(tmp_path):
    first = _run(str(tmp_path))
    assert "_make_sweep.<locals>.sweep" in first  # the first process did compile (cold)
    assert {"sin_cos_d", "binary_into", "tanh_into", "_make_flush.<locals>.flush"} <= set(first)
    assert _run(str(tmp_path)) == []
