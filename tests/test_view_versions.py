"""A view shares its base's version counter: writing the base (or any view of it) in place makes
every saved view of the old value stale, whether or not the view's tensor is still alive, and
backward then raises PyTorch's version error.  Views made after the write, and views whose
consumers saved nothing, are not stale.  (``_tensor._flag_views``.)

Each program runs on tapegrad and, when installed, on PyTorch: both raise the version error or
both give the same gradient.  Without PyTorch the expected outcome is written out.
"""
from __future__ import annotations

import numpy as np
import pytest

import tapegrad

try:
    import torch as real_torch
except ImportError:  # pragma: no cover - the written-out outcomes still run
    real_torch = None

VERSION_ERROR = "one of the variables needed for gradient computation has been modified"
STALE = "stale"


def _x(lib):
    return lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)


def element_saved_then_base_written(lib):
    x = _x(lib)
    y = x * 1.0
    a = y[0]
    loss = a * a
    y.mul_(2.0)
    return x, loss


def dead_elements_then_optimizer_step_before_backward(lib):
    x = _x(lib)
    loss = x[0] * x[1]  # the elements are temporaries: only their records remain
    with lib.no_grad():
        x -= 0.1
    return x, loss


def element_written_in_place_stales_its_sibling(lib):
    x = _x(lib)
    y = x * 1.0
    a, b = y[0], y[1]
    loss = b * b
    a.mul_(2.0)  # one version counter for y and all its views
    return x, loss


def slice_saved_then_base_written_under_no_grad(lib):
    x = _x(lib)
    y = x * 1.0
    loss = (y[1:3] * y[1:3]).sum()
    with lib.no_grad():
        y.add_(1.0)
    return x, loss


def view_of_a_view_saved_then_base_written(lib):
    x = _x(lib)
    y = x * 1.0
    v = y.reshape(2, 2)[1]
    loss = (v * v).sum()
    y.mul_(3.0)
    return x, loss


def element_not_saved_by_its_consumer(lib):  # a + 1 saves nothing: no error
    x = _x(lib)
    y = x * 1.0
    loss = y[0] + 1.0
    y.mul_(2.0)
    return x, loss


def element_made_after_the_write(lib):
    x = _x(lib)
    y = x * 1.0
    y.mul_(2.0)
    loss = y[0] * y[1]
    return x, loss


def optimizer_step_after_backward_then_a_new_graph(lib):
    x = _x(lib)
    (x[0] * x[1]).backward()
    with lib.no_grad():
        x -= 0.1 * x.grad
    x.grad = None
    return x, x[2] * x[0]


def copy_of_the_old_value_is_not_stale(lib):
    x = _x(lib)
    y = x * 1.0
    c = y[0] * 1.0  # a copy, not a view
    loss = c * c
    y.mul_(2.0)
    return x, loss


def sibling_slice_saved_then_other_slice_written(lib):
    x = _x(lib)
    y = x * 1.0
    a, b = y[0:2], y[2:4]
    loss = (b * b).sum()
    a.mul_(2.0)
    return x, loss


def transpose_of_a_view_saved_then_base_written(lib):
    x = _x(lib)
    y = x * 1.0
    t = y.view(2, 2).t()
    loss = (t * t).sum()
    y.add_(1.0)
    return x, loss


def unsqueezed_saved_then_a_slice_of_the_base_written(lib):
    x = _x(lib)
    y = x * 1.0
    u = y.unsqueeze(0)
    loss = (u * u).sum()
    y[1:2].mul_(3.0)
    return x, loss


def element_saved_then_base_setitem(lib):
    x = _x(lib)
    y = x * 1.0
    a = y[1]
    loss = a * a
    y[3] = 5.0
    return x, loss


def element_of_a_row_saved_then_matrix_written(lib):
    x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=lib.float64, requires_grad=True)
    y = x * 1.0
    e = y[0][1]
    loss = e * e
    y.mul_(2.0)
    return x, loss


PROGRAMS = {
    sibling_slice_saved_then_other_slice_written: STALE,
    transpose_of_a_view_saved_then_base_written: STALE,
    unsqueezed_saved_then_a_slice_of_the_base_written: STALE,
    element_saved_then_base_setitem: STALE,
    element_of_a_row_saved_then_matrix_written: STALE,
    element_saved_then_base_written: STALE,
    dead_elements_then_optimizer_step_before_backward: STALE,
    element_written_in_place_stales_its_sibling: STALE,
    slice_saved_then_base_written_under_no_grad: STALE,
    view_of_a_view_saved_then_base_written: STALE,
    element_not_saved_by_its_consumer: [1.0, 0.0, 0.0, 0.0],
    element_made_after_the_write: [8.0, 4.0, 0.0, 0.0],
    optimizer_step_after_backward_then_a_new_graph: [3.0, 0.0, 0.8, 0.0],
    copy_of_the_old_value_is_not_stale: [2.0, 0.0, 0.0, 0.0],
}


def _outcome(prog, lib):
    x, loss = prog(lib)
    try:
        loss.backward()
    except RuntimeError as e:
        assert str(e).startswith(VERSION_ERROR), str(e)
        return STALE
    return x.grad.detach().numpy().tolist()


@pytest.mark.parametrize("prog", list(PROGRAMS), ids=[p.__name__ for p in PROGRAMS])
def test_view_versions_as_pytorch(prog):
    got = _outcome(prog, tapegrad)
    want = PROGRAMS[prog] if real_torch is None else _outcome(prog, real_torch)
    if want == STALE or got == STALE:
        assert got == want
    else:
        np.testing.assert_allclose(got, want, rtol=1e-15)
    if real_torch is not None:  # the written-out outcome is PyTorch's too
        if want == STALE:
            assert PROGRAMS[prog] == STALE
        else:
            np.testing.assert_allclose(PROGRAMS[prog], want, rtol=1e-15)
