"""``python -m tapegrad``: the autograd tutorial with tapegrad's real output, then speed.

Each step of PyTorch's autograd tutorial (the seed documents) is shown as code
followed by what tapegrad prints for it.  When PyTorch is installed, a short
speed comparison follows, measured in this run.
"""
from __future__ import annotations

import contextlib
import io
import sys
import textwrap
import time

import tapegrad

STEPS = [
    ("Create a tensor and set requires_grad=True to track computation with it",
     "x = torch.ones(2, 2, requires_grad=True)\nprint(x)"),
    ("Do a tensor operation", "y = x + 2\nprint(y)"),
    ("y was created as a result of an operation, so it has a grad_fn",
     "print(y.grad_fn)\nprint(x.grad_fn)"),
    ("Do more operations on y", "z = y * y * 3\nout = z.mean()\nprint(z, out)"),
    (".requires_grad_( ... ) changes an existing tensor's requires_grad flag in-place",
     "a = torch.randn(2, 2)\na = ((a * 3) / (a - 1))\nprint(a.requires_grad)\n"
     "a.requires_grad_(True)\nprint(a.requires_grad)\nb = (a * a).sum()\nprint(b.grad_fn)"),
    ("Backprop: out contains a single scalar, so out.backward() is out.backward(torch.tensor(1.))",
     "out.backward()\nprint(x.grad)"),
    ("Backpropagating a second time without retain_graph is an error",
     "try:\n    out.backward()\nexcept RuntimeError as e:\n    print('RuntimeError:', e)"),
    ("A vector-Jacobian product",
     "x = torch.randn(3, requires_grad=True)\ny = x * 2\nwhile y.data.norm() < 1000:\n"
     "    y = y * 2\nprint(y)\nv = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)\n"
     "y.backward(v)\nprint(x.grad)"),
    ("Stop tracking history with torch.no_grad()",
     "print(x.requires_grad)\nprint((x ** 2).requires_grad)\nwith torch.no_grad():\n"
     "    print((x ** 2).requires_grad)"),
    ("d2l: the gradient of y = 2 x^T x",
     "x = torch.arange(4.0, requires_grad=True)\ny = 2 * torch.dot(x, x)\nprint(y)\n"
     "y.backward()\nprint(x.grad)\nprint(x.grad == 4 * x)"),
    ("Gradients accumulate: zero them first",
     "x.grad.zero_()\ny = x.sum()\ny.backward()\nprint(x.grad)"),
    ("detach() moves a computation out of the graph",
     "x.grad.zero_()\ny = x * x\nu = y.detach()\nz = u * x\nz.sum().backward()\n"
     "print(x.grad == u)"),
    ("Python control flow just works",
     "def f(a):\n    b = a * 2\n    while b.norm() < 1000:\n        b = b * 2\n"
     "    if b.sum() > 0:\n        c = b\n    else:\n        c = 100 * b\n    return c\n\n"
     "a = torch.randn(size=(), requires_grad=True)\nd = f(a)\nd.backward()\n"
     "print(a.grad == d / a)"),
]


def walkthrough(out=sys.stdout) -> None:
    ns = {"torch": tapegrad}
    print("tapegrad: PyTorch's autograd tutorial, run with `import tapegrad as torch`\n", file=out)
    for title, code in STEPS:
        print(f"# {title}", file=out)
        print(textwrap.indent(code, ">>> ", lambda line: True), file=out)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<tutorial>", "exec"), ns)
        print(buf.getvalue(), file=out)


def _chain(torch, x, n):
    y = x
    for _ in range(n // 2):
        y = y * 1.0001
        y = y + 0.5
    return y


def _seed_loop(torch, dtype):
    x = torch.tensor([0.3, -0.2, 0.1], dtype=dtype, requires_grad=True)
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    y.backward(torch.tensor([0.1, 1.0, 0.0001], dtype=dtype))
    return x.grad


def _time(fn, rounds=7, inner=20):
    fn()
    best = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best.append((time.perf_counter() - t0) / inner)
    best.sort()
    return best[len(best) // 2]


def speed(out=sys.stdout) -> None:
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: no speed comparison (pip install torch==2.13.0).",
              file=out)
        return
    torch.set_num_threads(1)
    work = {
        "scalar chain, 1000 ops (0-d float64)": lambda T: _chain(
            T, T.tensor(0.3, dtype=T.float64, requires_grad=True), 1000).backward(),
        "seed tutorial loop (y = y * 2 until norm > 1000)": lambda T: _seed_loop(T, T.float64),
    }
    print("Speed: forward + backward, median of rounds, PyTorch single-threaded, same run",
          file=out)
    print(f"{'workload':52s} {'PyTorch':>10s} {'tapegrad':>10s} {'speed-up':>9s}", file=out)
    for name, fn in work.items():
        tt = _time(lambda fn=fn: fn(torch))
        to = _time(lambda fn=fn: fn(tapegrad))
        print(f"{name:52s} {tt * 1e6:8.1f}us {to * 1e6:8.1f}us {tt / to:8.1f}x", file=out)


def main() -> None:
    walkthrough()
    speed()


if __name__ == "__main__":
    main()
