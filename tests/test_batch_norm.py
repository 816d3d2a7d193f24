"""``F.batch_norm`` and ``nn.BatchNorm1d/2d/3d``: values, gradients (central differences
always, PyTorch when installed), running statistics, train and eval, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

try:
    import torch as real_torch
except ImportError:  # pragma: no cover
    real_torch = None

LIBS = [tg] + ([real_torch] if real_torch is not None else [])


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 2.0 + 0.5


def _reference(x, mean, var, w, b, eps=1e-5):
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    out = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return out * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6), (2, 3, 2, 3), (2, 2, 2, 1, 3)])
def test_batch_norm_training_values_and_running_stats(shape):
    x0 = _x(shape)
    dims = (0, *range(2, len(shape)))
    n = x0.size // shape[1]
    mean, var = x0.mean(axis=dims), x0.var(axis=dims)
    w0, b0 = np.linspace(0.5, 1.5, shape[1]), np.linspace(-1, 1, shape[1])
    for L in LIBS:
        rm, rv = L.zeros(shape[1], dtype=L.float64), L.ones(shape[1], dtype=L.float64)
        y = L.nn.functional.batch_norm(L.tensor(x0), rm, rv, L.tensor(w0), L.tensor(b0),
                                       training=True, momentum=0.3)
        assert y.grad_fn is None or y.grad_fn.name() == "NativeBatchNormBackward0"
        np.testing.assert_allclose(y.numpy(), _reference(x0, mean, var, w0, b0), rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(rm.numpy(), 0.3 * mean, rtol=1e-14)
        np.testing.assert_allclose(rv.numpy(), 0.7 + 0.3 * var * n / (n - 1), rtol=1e-14)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 4)])
def test_batch_norm_gradients(training, shape):
    x0 = _x(shape, 1)
    c = shape[1]
    rm0, rv0 = np.linspace(-0.2, 0.3, c), np.linspace(0.5, 2.0, c)
    x = tg.tensor(x0, requires_grad=True)
    w = tg.tensor(np.linspace(0.5, 1.5, c), requires_grad=True)
    b = tg.tensor(np.linspace(-1, 1, c), requires_grad=True)

    def f(x, w, b):
        y = tg.nn.functional.batch_norm(x, tg.tensor(rm0), tg.tensor(rv0), w, b,
                                        training=training)
        return (y * tg.tensor(np.cos(np.arange(y.numel())).reshape(y.shape))).sum()

    assert tg.autograd.gradcheck(f, (x, w, b))
    if real_torch is not None:
        f(x, w, b).backward()
        tx = real_torch.tensor(x0, requires_grad=True)
        tw = real_torch.tensor(np.linspace(0.5, 1.5, c), requires_grad=True)
        tb = real_torch.tensor(np.linspace(-1, 1, c), requires_grad=True)
        ty = real_torch.nn.functional.batch_norm(tx, real_torch.tensor(rm0),
                                                 real_torch.tensor(rv0), tw, tb,
                                                 training=training)
        (ty * real_torch.tensor(np.cos(np.arange(ty.numel())).reshape(ty.shape))).sum().backward()
        for ours, theirs in ((x, tx), (w, tw), (b, tb)):
            np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-11,
                                       atol=1e-13)


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_batch_norm_module(L):
    L.manual_seed(0)
    m = L.nn.BatchNorm2d(3, momentum=None).double()
    assert list(m.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                    "num_batches_tracked"]
    assert repr(m) == ("BatchNorm2d(3, eps=1e-05, momentum=None, affine=True, bias=True, "
                       "track_running_stats=True)")
    batches = [_x((2, 3, 2, 2), k) for k in range(3)]
    for x0 in batches:
        m(L.tensor(x0))
    assert int(m.num_batches_tracked) == 3
    allx = np.stack(batches)  # momentum None: the running stats are the batches' average
    np.testing.assert_allclose(m.running_mean.numpy(), allx.mean(axis=(1, 3, 4)).mean(axis=0),
                               rtol=1e-13)
    unb = np.stack([b.var(axis=(0, 2, 3), ddof=1) for b in batches]).mean(axis=0)
    np.testing.assert_allclose(m.running_var.numpy(), unb, rtol=1e-13)
    m.eval()
    x0 = _x((2, 3, 2, 2), 9)
    y = m(L.tensor(x0))
    np.testing.assert_allclose(y.detach().numpy(), _reference(
        x0, m.running_mean.numpy(), m.running_var.numpy(), np.ones(3), np.zeros(3)),
        rtol=1e-12)
    assert int(m.num_batches_tracked) == 3
    assert not m.running_mean.requires_grad


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_batch_norm_errors(L):
    F = L.nn.functional
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(L.ones(1, 3), L.zeros(3), L.ones(3), training=True)
    with pytest.raises(RuntimeError, match="running_mean must be defined in evaluation mode"):
        F.batch_norm(L.ones(2, 3), None, None, training=False)
    with pytest.raises(RuntimeError, match="running_mean should contain 4 elements not 3"):
        F.batch_norm(L.ones(2, 4), L.zeros(3), L.ones(3), training=True)
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        L.nn.BatchNorm1d(3)(L.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        L.nn.BatchNorm2d(3)(L.ones(2, 3, 4))


@pytest.mark.parametrize("L", LIBS, ids=lambda m: m.__name__)
def test_batch_norm_without_running_stats(L):
    m = L.nn.BatchNorm1d(3, track_running_stats=False, affine=False).double()
    assert m.running_mean is None and m.weight is None
    m.eval()  # (no running statistics: the batch's, in eval too)
    x0 = _x((6, 3), 4)
    np.testing.assert_allclose(m(L.tensor(x0)).numpy(), _reference(
        x0, x0.mean(axis=0), x0.var(axis=0), np.ones(3), np.zeros(3)), rtol=1e-12, atol=1e-13)
