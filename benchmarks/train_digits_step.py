"""Time per training step of ``docs/examples/train_digits.py``: tapegrad against PyTorch.

    python benchmarks/train_digits_step.py [--rounds 15] [--steps 50] [--batch 64]
                                           [--hidden 128] [--dtype float32]

One step is ``zero_grad``, forward (Linear-ReLU-Linear), cross-entropy,
``backward`` and ``Adam.step`` on a minibatch, exactly the example's loop.
Single-threaded on both sides (BLAS, OpenMP and PyTorch's intra-op pool are
pinned to one thread before anything is imported).  The engines are measured
in the same process, interleaved round by round; the figure is the median over
rounds of the mean step time in a round.  Quote the ratio: the machines are
shared and noisy.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tapegrad  # noqa: E402
import tapegrad.optim  # noqa: E402,F401

try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    torch = None


def _example():
    path = os.path.join(ROOT, "docs", "examples", "train_digits.py")
    spec = importlib.util.spec_from_file_location("train_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Loop:
    """The example's training loop, stepped a given number of times per call."""

    def __init__(self, lib, example, x, y, hidden: int, batch: int, dtype: str):
        self.lib = lib
        lib.manual_seed(0)
        self.model = example.make_model(lib, hidden).to(getattr(lib, dtype))
        self.optimizer = lib.optim.Adam(self.model.parameters(), lr=1e-3)
        self.criterion = lib.nn.CrossEntropyLoss()
        self.x = lib.tensor(x, dtype=getattr(lib, dtype))
        self.y = lib.tensor(y)
        self.index = example.batches(len(x), batch)

    def run(self, steps: int) -> float:
        lib, model, opt, crit = self.lib, self.model, self.optimizer, self.criterion
        for _ in range(steps):
            idx = lib.tensor(next(self.index))
            opt.zero_grad()
            loss = crit(model(self.x[idx]), self.y[idx])
            loss.backward()
            opt.step()
        return loss.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=50, help="steps per round")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()

    example = _example()
    x, y, _, _ = example.load_split()
    engines = {"tapegrad": Loop(tapegrad, example, x, y, args.hidden, args.batch, args.dtype)}
    if torch is not None:
        engines["torch"] = Loop(torch, example, x, y, args.hidden, args.batch, args.dtype)
    for loop in engines.values():
        loop.run(args.steps)  # warm-up: Numba cache load, allocator, first-call paths
    times = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, loop in engines.items():
            start = time.perf_counter()
            loop.run(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)
    print(f"train_digits step (batch {args.batch}, MLP 64-{args.hidden}-10, {args.dtype}, "
          f"Adam), median of {args.rounds} rounds x {args.steps} steps, single thread")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, t in medians.items():
        print(f"  {name:9s} {t * 1e6:9.1f} us/step")
    if "torch" in medians:
        print(f"  ratio tapegrad / torch: {medians['tapegrad'] / medians['torch']:.2f}")


if __name__ == "__main__":
    main()
