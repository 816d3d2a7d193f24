"""The sweep is plain Python when Numba's JIT is off (NUMBA_DISABLE_JIT=1), as a test oracle
for the compiled kernels: a mixed program gives the same gradients both ways."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import tapegrad

PROGRAM = r"""
import json, numpy as np, tapegrad as t
x = t.tensor(np.linspace(-1, 1, 6).reshape(2, 3), dtype=t.float64, requires_grad=True)
s = t.tensor(0.7, dtype=t.float64, requires_grad=True)
y = (x @ x.T).softmax(-1).log().sum() + (x * s).tanh().amax(1).sum() + s * s - x[1, 2]
y = y + t.cat([x.cumsum(1), x.flip(0)]).norm() + x.where(x > 0, 0.5).prod()
y.backward()
print(json.dumps([x.grad.numpy().tolist(), s.grad.item()]))
"""


TRACE_PROGRAM = r"""
import json, numpy as np, tapegrad as t
def f(x, s):
    y = (x @ x.T).softmax(-1).log().sum() + (x * s).tanh().amax(1).sum() + s * s - x[1, 2]
    y = y + t.cat([x.cumsum(1), x.flip(0)]).norm() + t.where(x > 0, x, 0.5).prod()
    return y if y > -100 else -y
x = np.linspace(-1, 1, 6).reshape(2, 3)
tr = t.trace(f, x, 0.7)
g = tr.gradient(x * 1.1, 0.6)
_, tangent = tr.jvp((x * 1.1, 0.6), (np.ones((2, 3)), 1.0))
print(json.dumps([g[0].tolist(), g[1], tangent]))
"""


def _run(env_extra, program=PROGRAM):
    env = dict(os.environ, **env_extra)
    root = os.path.dirname(os.path.dirname(os.path.abspath(tapegrad.__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", program], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_pure_python_sweep_agrees_with_the_compiled_one():
    compiled = _run({})
    python = _run({"NUMBA_DISABLE_JIT": "1"})
    np.testing.assert_allclose(python[0], compiled[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(python[1], compiled[1], rtol=1e-12, atol=1e-14)
    assert np.all(np.isfinite(compiled[0])) and compiled[1] != 0.0


def test_pure_python_replay_agrees_with_the_compiled_one():
    compiled = _run({}, TRACE_PROGRAM)
    python = _run({"NUMBA_DISABLE_JIT": "1"}, TRACE_PROGRAM)
    for a, b in zip(python, compiled):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert np.all(np.isfinite(compiled[0])) and compiled[1] != 0.0 and compiled[2] != 0.0
