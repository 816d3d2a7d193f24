"""PyTorch's 60-minute blitz "Neural Networks" tutorial, run unchanged on tapegrad.

The tutorial's source is kept once, as text, split into its cells.  It runs with
``torch``, ``nn``, ``F`` and ``optim`` bound to PyTorch's modules and then to
tapegrad's.  Between the cells that build the network and that use it, the test
loads PyTorch's initial weights into the tapegrad network; ``torch.randn`` replays
the numbers the PyTorch run drew.  Everything the tutorial prints must agree
(node addresses normalised, numbers to the printed precision) and so must the
parameters after its two update steps.
"""
from __future__ import annotations

import contextlib
import io
import re
import types

import numpy as np
import pytest

import tapegrad
import tapegrad.nn
import tapegrad.nn.functional
import tapegrad.optim

torch = pytest.importorskip("torch")

TUTORIAL = '''
class Net(nn.Module):

    def __init__(self):
        super(Net, self).__init__()
        # 1 input image channel, 6 output channels, 5x5 square convolution
        # kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        # Max pooling over a (2, 2) window
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        # If the size is a square, you can specify with a single number
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1) # flatten all dimensions except the batch dimension
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


net = Net()
print(net)
# %% cell
params = list(net.parameters())
print(len(params))
print(params[0].size())  # conv1's .weight
# %% cell
input = torch.randn(1, 1, 32, 32)
out = net(input)
print(out)
# %% cell
net.zero_grad()
out.backward(torch.randn(1, 10))
# %% cell
output = net(input)
TARGET_LINE
criterion = nn.MSELoss()

loss = criterion(output, target)
print(loss)
# %% cell
print(loss.grad_fn)  # MSELoss
print(loss.grad_fn.next_functions[0][0])  # Linear
print(loss.grad_fn.next_functions[0][0].next_functions[0][0])  # ReLU
# %% cell
net.zero_grad()     # zeroes the gradient buffers of all parameters

print('conv1.bias.grad before backward')
print(net.conv1.bias.grad)

loss.backward()

print('conv1.bias.grad after backward')
print(net.conv1.bias.grad)
# %% cell
learning_rate = 0.01
for f in net.parameters():
    f.data.sub_(f.grad.data * learning_rate)
# %% cell
# create your optimizer
optimizer = optim.SGD(net.parameters(), lr=0.01)

# in your training loop:
optimizer.zero_grad()   # zero the gradient buffers
output = net(input)
loss = criterion(output, target)
loss.backward()
optimizer.step()    # Does the update
print(loss)
'''

TARGETS = {
    # the tutorial's line, and the variant (an integer target: MSELoss promotes it)
    "randn": "target = torch.randn(10)  # a dummy target, for example\n"
             "target = target.view(1, -1)  # make it the same shape as output",
    "arange": "target = torch.arange(1, 11).view(1, -1)",
}


class _Torch(types.ModuleType):
    """``torch`` for the tutorial: the library, with ``randn`` recorded or replayed."""

    def __init__(self, lib, draws: list):
        super().__init__(lib.__name__)
        self._lib = lib
        self._draws = draws
        self._replay = lib is tapegrad
        self._next = 0

    def __getattr__(self, name):
        return getattr(self._lib, name)

    def randn(self, *size):
        if not self._replay:
            value = self._lib.randn(*size)
            self._draws.append(value.numpy().copy())
            return value
        value = self._draws[self._next]
        self._next += 1
        assert value.shape == tuple(size)
        return self._lib.tensor(value)


def _run(lib, target: str, draws: list, weights: dict):
    """Run the tutorial cell by cell.  PyTorch's run fills ``draws`` and ``weights`` (its
    network right after creation); tapegrad's replays the draws and loads the weights.
    Returns the text each cell printed and the final namespace."""
    if lib is torch:
        torch.manual_seed(0)
        ns = {"torch": _Torch(torch, draws), "nn": torch.nn, "F": torch.nn.functional,
              "optim": torch.optim}
    else:
        ns = {"torch": _Torch(tapegrad, draws), "nn": tapegrad.nn,
              "F": tapegrad.nn.functional, "optim": tapegrad.optim}
    printed = []
    for k, cell in enumerate(TUTORIAL.replace("TARGET_LINE", TARGETS[target]).split("# %% cell")):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(cell, f"<tutorial cell {k}>", "exec"), ns)
        printed.append(buf.getvalue())
        if k == 0 and lib is torch:
            weights.update((k, v.detach().numpy().copy())
                           for k, v in ns["net"].state_dict().items())
        elif k == 0:
            ns["net"].load_state_dict(weights)
    return printed, ns


_NUMBER = re.compile(r"-?\d+\.\d+(?:e[+-]?\d+)?")


def _normalise(text: str) -> str:
    return re.sub(r"0x[0-9a-f]+", "0x...", text)


def _assert_same_print(ours: str, theirs: str, what: str) -> None:
    """Same text apart from addresses; printed numbers equal to the last printed digit."""
    ours, theirs = _normalise(ours), _normalise(theirs)
    assert _NUMBER.sub("#", ours) == _NUMBER.sub("#", theirs), what
    a = [float(x) for x in _NUMBER.findall(ours)]
    b = [float(x) for x in _NUMBER.findall(theirs)]
    np.testing.assert_allclose(a, b, rtol=0, atol=1.5e-4, err_msg=what)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_tutorial_runs_unchanged_and_prints_like_torch(target):
    draws: list = []
    weights: dict = {}
    printed_t, ns_t = _run(torch, target, draws, weights)
    printed_o, ns_o = _run(tapegrad, target, draws, weights)
    assert len(draws) == (3 if target == "randn" else 2)

    assert len(printed_o) == len(printed_t)
    for k, (ours, theirs) in enumerate(zip(printed_o, printed_t)):
        _assert_same_print(ours, theirs, f"cell {k}")
    # the things the tutorial points out
    assert printed_o[1] == "10\ntorch.Size([6, 1, 5, 5])\n"
    assert "<MseLossBackward0 object at" in printed_o[5]
    assert "<AddmmBackward0 object at" in printed_o[5]
    assert "<AccumulateGrad object at" in printed_o[5]
    assert "conv1.bias.grad before backward\nNone\n" in printed_o[6]
    # after the manual update and the optimizer's step, the weights still agree
    final_t = ns_t["net"].state_dict()
    for k, v in ns_o["net"].state_dict().items():
        np.testing.assert_allclose(v.numpy(), final_t[k].numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=k)
    assert ns_o["optimizer"].state_dict()["param_groups"][0]["lr"] == 0.01

