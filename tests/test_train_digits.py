"""``docs/examples/train_digits.py``: the same 50 Adam steps on tapegrad and PyTorch, from the
same initial weights, in float64, give the same loss curve; the example reaches 95 %.
Skipped without scikit-learn; the comparison is skipped without PyTorch."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import tapegrad

pytest.importorskip("sklearn")
try:
    import torch
except ImportError:
    torch = None

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                     "examples", "train_digits.py")


def _example():
    spec = importlib.util.spec_from_file_location("train_digits", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _example()


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_loss_curves_agree_with_torch_float64():
    x_train, y_train, _, _ = example.load_split()
    torch.manual_seed(0)
    theirs = example.make_model(torch).double()
    ours = example.make_model(tapegrad).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    losses_t = example.train(torch, theirs, x_train, y_train, 50, dtype=torch.float64)
    losses_o = example.train(tapegrad, ours, x_train, y_train, 50, dtype=tapegrad.float64)
    np.testing.assert_allclose(losses_o, losses_t, rtol=1e-6)
    assert np.mean(losses_o[-5:]) < 0.8 * losses_o[0]  # it learned something
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-6,
                                   atol=1e-9, err_msg=k)


def test_example_reaches_95_percent():
    assert example.main(tapegrad, verbose=False) >= 0.95
