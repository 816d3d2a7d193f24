"""Train an MLP classifier on scikit-learn's bundled digits with tapegrad.

    python docs/examples/train_digits.py            # tapegrad
    python docs/examples/train_digits.py --torch    # the same script on PyTorch

The 1 797 8x8 images ship with scikit-learn (no download).  The model, loss and
optimizer are PyTorch's API: ``nn.Sequential`` of ``Linear``/``ReLU``, cross
entropy, Adam.  Every function takes the library as ``lib`` (``tapegrad`` or
``torch``), so ``tests/test_train_digits.py`` and
``benchmarks/train_digits_step.py`` run the identical loop on both.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import tapegrad  # noqa: E402
import tapegrad.optim  # noqa: E402,F401  (makes tapegrad.optim available as an attribute)


def load_split(seed: int = 0, test_fraction: float = 0.2):
    """Pixels scaled to [0, 1] (float64) and labels (int64), shuffled and split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def make_model(lib, hidden: int = 128):
    nn = lib.nn
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def batches(n: int, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Minibatch indices, a fresh permutation each epoch, forever (the same for both libs)."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def train(lib, model, x: np.ndarray, y: np.ndarray, steps: int, lr: float = 1e-3,
          batch_size: int = 64, seed: int = 0, dtype=None) -> list[float]:
    """``steps`` Adam steps on cross-entropy; returns the loss of every step."""
    dtype = dtype or lib.float32
    optimizer = lib.optim.Adam(model.parameters(), lr=lr)
    criterion = lib.nn.CrossEntropyLoss()
    xs, ys = lib.tensor(x, dtype=dtype), lib.tensor(y)
    losses = []
    for _, idx in zip(range(steps), batches(len(x), batch_size, seed)):
        index = lib.tensor(idx)
        optimizer.zero_grad()
        loss = criterion(model(xs[index]), ys[index])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def accuracy(lib, model, x: np.ndarray, y: np.ndarray, dtype=None) -> float:
    with lib.no_grad():
        logits = model(lib.tensor(x, dtype=dtype or lib.float32))
    return float((np.asarray(logits.argmax(1)) == y).mean())


def main(lib=tapegrad, epochs: int = 30, verbose: bool = True) -> float:
    lib.manual_seed(0)
    x_train, y_train, x_test, y_test = load_split()
    model = make_model(lib)
    steps_per_epoch = len(x_train) // 64
    start = time.perf_counter()
    losses = train(lib, model, x_train, y_train, epochs * steps_per_epoch)
    elapsed = time.perf_counter() - start
    acc = accuracy(lib, model, x_test, y_test)
    if verbose:
        for e in range(0, epochs, 5):
            chunk = losses[e * steps_per_epoch:(e + 1) * steps_per_epoch]
            print(f"epoch {e + 1:3d}  mean loss {np.mean(chunk):.4f}")
        print(f"{lib.__name__}: {len(losses)} steps in {elapsed:.1f} s; "
              f"test accuracy {100 * acc:.2f} %")
    return acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true", help="run on PyTorch instead")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    if args.torch:
        import torch

        torch.set_num_threads(1)
        main(torch, args.epochs)
    else:
        main(tapegrad, args.epochs)
