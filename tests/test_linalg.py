"""Linear algebra (``tapegrad.linalg`` and the torch-level ops of ``_ops_linalg``), one row per
op form and shape:

* against PyTorch: forward values, shapes and dtypes (float64, float32), the gradients of
  ``sum(out * r)`` over the outputs, the grad_fn name;
* against central differences (float64, no PyTorch needed): the gradient, and for det, inv,
  solve, cholesky and others the gradient of the gradient (create_graph);
* error messages against PyTorch 2.13's.

Matrices are well conditioned (random plus a multiple of the identity; symmetric ones with
distinct eigenvalues), and the functions of svd/eigh vectors are sign-invariant.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import tapegrad
from tapegrad.testing import gradcheck

pytestmark = [
    pytest.mark.filterwarnings("ignore:torch.*is deprecated:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using torch.cross without:UserWarning"),
]


def _general(rng, *shape):
    n = shape[-1]
    return rng.standard_normal(shape) + n * np.eye(n)


def _spd(rng, *shape):
    x = rng.standard_normal(shape)
    return x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])


def _sym(rng, *shape):
    x = rng.standard_normal(shape)
    return x + np.swapaxes(x, -1, -2)


def _upper(rng, *shape):
    return np.triu(rng.standard_normal(shape)) + 2 * shape[-1] * np.eye(shape[-1])


def _randn(rng, *shape):
    return rng.standard_normal(shape)


@dataclass
class Row:
    name: str
    fn: Callable  # fn(lib, *tensors) -> tensor or tuple of tensors
    makers: tuple  # (maker, shape) per input
    grad_fn: str | None = None  # PyTorch's node name of the (first) output
    differentiable: tuple = field(default=(True,))
    double: bool = False  # also check the gradient of the gradient
    fd: bool = True  # False: the op reads one triangle, PyTorch's gradient does not
    torch_grad: bool = True  # False: PyTorch 2.13's backward raises
    rtol32: float = 1e-4


def _row(name, fn, *makers, **kw):
    return Row(name, fn, makers, **kw)


def _sign_free_svd(lib, A, full=False):
    U, S, Vh = lib.linalg.svd(A, full_matrices=full)
    k = S.shape[-1]
    return S, U[..., :, :k] * U[..., :, :k], Vh[..., :k, :] * Vh[..., :k, :], \
        (U[..., :, :k] @ Vh[..., :k, :])


def _sign_free_eigh(lib, A, uplo="L"):
    w, V = lib.linalg.eigh(A, UPLO=uplo)
    return w, V * V


def _symmetric(A):
    """(A + A^T) / 2: finite differences of an op that reads one triangle then move both."""
    return (A + A.mT) / 2


ROWS = [
    _row("inv-2d", lambda lib, A: lib.linalg.inv(A), (_general, (3, 3)),
         grad_fn="LinalgInvExBackward0", double=True),
    _row("inv-1x1", lambda lib, A: lib.linalg.inv(A), (_general, (1, 1))),
    _row("inv-batched", lambda lib, A: lib.linalg.inv(A), (_general, (2, 1, 3, 3)),
         double=True),
    _row("inverse", lambda lib, A: lib.inverse(A), (_general, (4, 4))),
    _row("inv_ex", lambda lib, A: lib.linalg.inv_ex(A)[0], (_general, (2, 3, 3))),
    _row("det-2d", lambda lib, A: lib.linalg.det(A), (_general, (3, 3)),
         grad_fn="LinalgDetBackward0", double=True),
    _row("det-batched", lambda lib, A: lib.det(A), (_general, (2, 4, 4)), double=True),
    _row("det-method", lambda lib, A: A.det(), (_general, (1, 1))),
    _row("slogdet", lambda lib, A: lib.linalg.slogdet(A)[1], (_general, (2, 3, 3)),
         grad_fn="LinalgSlogdetBackward0", double=True),
    _row("slogdet-torch", lambda lib, A: lib.slogdet(-A), (_general, (3, 3))),
    _row("logdet", lambda lib, A: lib.logdet(A), (_spd, (2, 3, 3)), grad_fn="WhereBackward0"),
    _row("solve-matrix", lambda lib, A, B: lib.linalg.solve(A, B),
         (_general, (3, 3)), (_randn, (3, 2)), grad_fn="LinalgSolveExBackward0",
         differentiable=(True, True), double=True),
    _row("solve-vector", lambda lib, A, B: lib.linalg.solve(A, B),
         (_general, (3, 3)), (_randn, (3,)), differentiable=(True, True), double=True),
    _row("solve-batched-vector", lambda lib, A, B: lib.linalg.solve(A, B),
         (_general, (2, 3, 3)), (_randn, (2, 3)), differentiable=(True, True)),
    _row("solve-broadcast", lambda lib, A, B: lib.linalg.solve(A, B),
         (_general, (2, 1, 3, 3)), (_randn, (4, 3, 2)), differentiable=(True, True)),
    _row("solve-right", lambda lib, A, B: lib.linalg.solve(A, B, left=False),
         (_general, (3, 3)), (_randn, (2, 3)), differentiable=(True, True)),
    _row("solve_ex", lambda lib, A, B: lib.linalg.solve_ex(A, B)[0],
         (_general, (3, 3)), (_randn, (3, 2)), differentiable=(True, True)),
    _row("solve_triangular-upper", lambda lib, A, B:
         lib.linalg.solve_triangular(A, B, upper=True),
         (_general, (3, 3)), (_randn, (3, 2)), grad_fn="LinalgSolveTriangularBackward0",
         differentiable=(True, True), double=True),
    _row("solve_triangular-lower-unit", lambda lib, A, B:
         lib.linalg.solve_triangular(A, B, upper=False, unitriangular=True),
         (_general, (2, 3, 3)), (_randn, (2, 3, 4)), differentiable=(True, True)),
    _row("solve_triangular-right", lambda lib, A, B:
         lib.linalg.solve_triangular(A, B, upper=True, left=False),
         (_general, (3, 3)), (_randn, (2, 3)), differentiable=(True, True)),
    _row("triangular_solve", lambda lib, B, A: lib.triangular_solve(B, A)[0],
         (_randn, (3, 2)), (_upper, (3, 3)), differentiable=(True, True)),
    _row("triangular_solve-transpose", lambda lib, B, A:
         lib.triangular_solve(B, A, upper=False, transpose=True)[0],
         (_randn, (3, 2)), (_general, (3, 3)), differentiable=(True, True)),
    _row("cholesky", lambda lib, A: lib.linalg.cholesky(_symmetric(A)), (_spd, (3, 3)),
         grad_fn="LinalgCholeskyExBackward0", double=True),
    _row("cholesky-upper-batched", lambda lib, A: lib.linalg.cholesky(_symmetric(A), upper=True),
         (_spd, (2, 3, 3)), double=True),
    _row("cholesky-torch", lambda lib, A: lib.cholesky(A), (_spd, (4, 4)), fd=False),
    _row("cholesky_ex", lambda lib, A: lib.linalg.cholesky_ex(A)[0], (_spd, (3, 3)), fd=False),
    _row("cholesky_solve", lambda lib, B, U: lib.cholesky_solve(B, U.mT),
         (_randn, (3, 2)), (_upper, (3, 3)), differentiable=(True, True), fd=False),
    _row("cholesky_solve-upper", lambda lib, B, U: lib.cholesky_solve(B, U, upper=True),
         (_randn, (2, 3, 2)), (_upper, (3, 3)), differentiable=(True, True), fd=False),
    _row("cholesky_inverse", lambda lib, U: lib.cholesky_inverse(U.mT), (_upper, (3, 3)),
         fd=False),
    _row("qr-square", lambda lib, A: lib.linalg.qr(A), (_general, (3, 3)),
         grad_fn="LinalgQrBackward0", double=True),
    _row("qr-tall", lambda lib, A: lib.linalg.qr(A), (_randn, (2, 4, 3))),
    _row("qr-wide", lambda lib, A: lib.linalg.qr(A), (_randn, (3, 5)), double=True),
    _row("qr-R-only", lambda lib, A: lib.linalg.qr(A)[1], (_randn, (4, 3))),
    _row("qr-complete-square", lambda lib, A: lib.linalg.qr(A, mode="complete"),
         (_randn, (3, 3))),
    _row("qr-torch", lambda lib, A: lib.qr(A), (_randn, (4, 2))),
    _row("eigh", lambda lib, A: _sign_free_eigh(lib, _symmetric(A)), (_sym, (3, 3)),
         grad_fn="LinalgEighBackward0", double=True),
    _row("eigh-upper-batched", lambda lib, A: _sign_free_eigh(lib, A, "U"), (_sym, (2, 4, 4)),
         fd=False),
    _row("eigh-upper-symmetric", lambda lib, A: _sign_free_eigh(lib, _symmetric(A), "U"),
         (_sym, (2, 3, 3))),
    _row("eigvalsh", lambda lib, A: lib.linalg.eigvalsh(A), (_sym, (2, 3, 3)), fd=False),
    _row("svd-square", _sign_free_svd, (_randn, (3, 3)), grad_fn="LinalgSvdBackward0",
         double=True),
    _row("svd-tall", _sign_free_svd, (_randn, (2, 4, 3)), double=True),
    _row("svd-wide", _sign_free_svd, (_randn, (3, 5))),
    _row("svd-full", lambda lib, A: _sign_free_svd(lib, A, True), (_randn, (4, 3))),
    _row("svdvals", lambda lib, A: lib.linalg.svdvals(A), (_randn, (2, 3, 4)),
         grad_fn="LinalgSvdBackward0"),
    _row("torch.svd", lambda lib, A: (lib.svd(A)[1], lib.svd(A)[0] @ lib.svd(A)[2].mT),
         (_randn, (4, 3))),
    _row("pinv-tall", lambda lib, A: lib.linalg.pinv(A), (_randn, (4, 3)),
         grad_fn="LinalgPinvBackward0", double=True),
    _row("pinv-wide-batched", lambda lib, A: lib.linalg.pinv(A), (_randn, (2, 2, 4)),
         double=True),
    _row("pinv-hermitian", lambda lib, A: lib.linalg.pinv(_symmetric(A), hermitian=True),
         (_spd, (3, 3))),
    _row("pinverse", lambda lib, A: lib.pinverse(A), (_randn, (3, 3))),
    _row("lstsq-tall", lambda lib, A, B: lib.linalg.lstsq(A, B).solution,
         (_randn, (5, 3)), (_randn, (5, 2)), grad_fn="LinalgLstsqBackward0",
         differentiable=(True, True)),
    _row("lstsq-wide-vector", lambda lib, A, B: lib.linalg.lstsq(A, B).solution,
         (_randn, (2, 4)), (_randn, (2,)), differentiable=(True, True)),
    _row("lstsq-gelsd-residuals", lambda lib, A, B: lib.linalg.lstsq(A, B, driver="gelsd")[:2],
         (_randn, (2, 5, 3)), (_randn, (2, 5, 2)), differentiable=(True, True)),
    _row("lstsq-gels-residuals", lambda lib, A, B: lib.linalg.lstsq(A, B, driver="gels")[:2],
         (_randn, (5, 3)), (_randn, (5, 1)), differentiable=(True, True)),
    _row("matrix_exp", lambda lib, A: lib.linalg.matrix_exp(A), (_randn, (3, 3)),
         grad_fn="LinalgMatrixExpBackward0", double=True),
    _row("matrix_exp-batched-large", lambda lib, A: lib.matrix_exp(3 * A), (_randn, (2, 4, 4))),
    _row("matrix_exp-1x1", lambda lib, A: A.matrix_exp(), (_randn, (1, 1))),
    _row("vector_norm", lambda lib, x: lib.linalg.vector_norm(x), (_randn, (2, 3)),
         grad_fn="LinalgVectorNormBackward0"),
    _row("vector_norm-ord1-dim", lambda lib, x: lib.linalg.vector_norm(x, 1, -1, True),
         (_randn, (2, 3))),
    _row("vector_norm-ord3-dims", lambda lib, x: lib.linalg.vector_norm(x, 3, (0, 2)),
         (_randn, (2, 3, 2))),
    _row("vector_norm-inf", lambda lib, x: lib.linalg.vector_norm(x, math.inf, 0),
         (_randn, (4, 3))),
    _row("vector_norm-0d", lambda lib, x: lib.linalg.vector_norm(x), (_randn, ())),
    _row("vector_norm-keepdim-all", lambda lib, x: lib.linalg.vector_norm(x, keepdim=True),
         (_randn, (2, 3))),
    _row("matrix_norm-fro", lambda lib, A: lib.linalg.matrix_norm(A), (_randn, (2, 3, 4))),
    _row("matrix_norm-nuc", lambda lib, A: lib.linalg.matrix_norm(A, "nuc"), (_randn, (3, 4))),
    _row("matrix_norm-2", lambda lib, A: lib.linalg.matrix_norm(A, 2, keepdim=True),
         (_randn, (2, 3, 3))),
    _row("matrix_norm--2-dims", lambda lib, A: lib.linalg.matrix_norm(A, -2, dim=(0, 2)),
         (_randn, (3, 2, 4))),
    _row("matrix_norm-1", lambda lib, A: lib.linalg.matrix_norm(A, 1), (_randn, (3, 4))),
    _row("matrix_norm--1", lambda lib, A: lib.linalg.matrix_norm(A, -1, keepdim=True),
         (_randn, (2, 3, 4))),
    _row("matrix_norm-inf", lambda lib, A: lib.linalg.matrix_norm(A, math.inf, dim=(-1, 0)),
         (_randn, (3, 4))),
    _row("matrix_norm--inf", lambda lib, A: lib.linalg.matrix_norm(A, -math.inf),
         (_randn, (3, 4))),
    _row("norm-default", lambda lib, A: lib.linalg.norm(A), (_randn, (2, 3, 4))),
    _row("norm-matrix-ord", lambda lib, A: lib.linalg.norm(A, "fro"), (_randn, (3, 4))),
    _row("norm-2d-ord1", lambda lib, A: lib.linalg.norm(A, 1), (_randn, (3, 4))),
    _row("norm-vector-dim", lambda lib, A: lib.linalg.norm(A, 3, dim=1), (_randn, (3, 4))),
    _row("norm-matrix-dims", lambda lib, A: lib.linalg.norm(A, 2, dim=(0, 1)),
         (_randn, (3, 4))),
    _row("cond", lambda lib, A: lib.linalg.cond(A), (_general, (3, 3))),
    # PyTorch 2.13's cond backward for p not in (None, 2, -2) raises (an inverse written in
    # place): the gradient is checked against finite differences only
    _row("cond-fro", lambda lib, A: lib.linalg.cond(A, "fro"), (_general, (3, 3)),
         torch_grad=False),
    _row("cond-1-batched", lambda lib, A: lib.linalg.cond(A, 1), (_general, (2, 3, 3)),
         torch_grad=False),
    _row("matrix_power-3", lambda lib, A: lib.linalg.matrix_power(A, 3), (_randn, (3, 3))),
    _row("matrix_power-5-batched", lambda lib, A: lib.matrix_power(A, 5),
         (_general, (2, 3, 3))),
    _row("matrix_power--2", lambda lib, A: lib.linalg.matrix_power(A, -2), (_general, (3, 3))),
    _row("matrix_power-1", lambda lib, A: A.matrix_power(1), (_randn, (3, 3))),
    _row("matrix_power-0", lambda lib, A: lib.linalg.matrix_power(A, 0), (_randn, (2, 3, 3))),
    _row("multi_dot", lambda lib, a, B, C: lib.linalg.multi_dot([a, B, C]),
         (_randn, (3,)), (_randn, (3, 4)), (_randn, (4, 2)), differentiable=(True,) * 3),
    _row("chain_matmul", lambda lib, A, B: lib.chain_matmul(A, B),
         (_randn, (2, 3)), (_randn, (3, 4)), differentiable=(True, True)),
    _row("linalg.cross", lambda lib, a, b: lib.linalg.cross(a, b),
         (_randn, (2, 3)), (_randn, (1, 3)), grad_fn="LinalgCrossBackward0",
         differentiable=(True, True)),
    _row("cross-dim0", lambda lib, a, b: lib.cross(a, b, dim=0),
         (_randn, (3, 2)), (_randn, (3, 2)), differentiable=(True, True)),
    _row("cross-method-dim-neg", lambda lib, a, b: a.cross(b, dim=-2),
         (_randn, (2, 3, 2)), (_randn, (2, 3, 2)), differentiable=(True, True)),
    _row("vecdot", lambda lib, a, b: lib.linalg.vecdot(a, b, dim=0),
         (_randn, (3, 2)), (_randn, (3, 1)), differentiable=(True, True)),
    _row("linalg.diagonal", lambda lib, A: lib.linalg.diagonal(A, offset=1),
         (_randn, (2, 3, 4))),
    _row("linalg.matmul", lambda lib, A, B: lib.linalg.matmul(A, B),
         (_randn, (2, 3)), (_randn, (3,)), differentiable=(True, True)),
    _row("vander", lambda lib, x: lib.linalg.vander(x), (_randn, (4,))),
    _row("vander-N-batched", lambda lib, x: lib.linalg.vander(x, N=3), (_randn, (2, 3))),
    _row("trace", lambda lib, A: A.trace(), (_randn, (3, 4)), grad_fn="TraceBackward0"),
    # torch.trace(A): tapegrad.trace of one tensor is the matrix trace, not the tracer
    _row("trace.fn", lambda lib, A: lib.trace(A), (_randn, (4, 3)), grad_fn="TraceBackward0"),
    _row("inner-1d", lambda lib, a, b: lib.inner(a, b),
         (_randn, (3,)), (_randn, (3,)), differentiable=(True, True)),
    _row("inner-nd", lambda lib, a, b: lib.inner(a, b),
         (_randn, (2, 3)), (_randn, (4, 1, 3)), differentiable=(True, True)),
    _row("inner-0d", lambda lib, a, b: a.inner(b),
         (_randn, ()), (_randn, (2, 3)), differentiable=(True, True)),
    _row("vdot", lambda lib, a, b: lib.vdot(a, b), (_randn, (3,)), (_randn, (3,)),
         grad_fn="VdotBackward0", differentiable=(True, True)),
    _row("ger", lambda lib, a, b: lib.ger(a, b), (_randn, (3,)), (_randn, (2,)),
         differentiable=(True, True)),
    _row("kron-2d", lambda lib, a, b: lib.kron(a, b), (_randn, (2, 3)), (_randn, (2, 2)),
         differentiable=(True, True)),
    _row("kron-mixed", lambda lib, a, b: a.kron(b), (_randn, (3,)), (_randn, (2, 1, 2)),
         differentiable=(True, True)),
    _row("tensordot-int", lambda lib, a, b: lib.tensordot(a, b, 2),
         (_randn, (2, 3, 4)), (_randn, (3, 4, 2)), differentiable=(True, True)),
    _row("tensordot-lists", lambda lib, a, b: lib.tensordot(a, b, ([0, 2], [1, 0])),
         (_randn, (2, 3, 4)), (_randn, (4, 2, 5)), differentiable=(True, True)),
    _row("addmv", lambda lib, x, M, v: lib.addmv(x, M, v, beta=0.5, alpha=2),
         (_randn, (3,)), (_randn, (3, 4)), (_randn, (4,)), grad_fn="AddmvBackward0",
         differentiable=(True,) * 3),
    _row("addmv-broadcast", lambda lib, x, M, v: x.addmv(M, v),
         (_randn, (1,)), (_randn, (3, 4)), (_randn, (4,)), differentiable=(True,) * 3),
    _row("addmv-beta0", lambda lib, x, M, v: lib.addmv(x, M, v, beta=0),
         (_randn, (3,)), (_randn, (3, 4)), (_randn, (4,)), differentiable=(True,) * 3),
    _row("addr", lambda lib, x, a, b: lib.addr(x, a, b, alpha=3),
         (_randn, (3, 2)), (_randn, (3,)), (_randn, (2,)), grad_fn="AddrBackward0",
         differentiable=(True,) * 3),
    _row("addbmm", lambda lib, x, a, b: lib.addbmm(x, a, b, beta=2),
         (_randn, (3, 2)), (_randn, (4, 3, 5)), (_randn, (4, 5, 2)), grad_fn="AddbmmBackward0",
         differentiable=(True,) * 3),
    _row("dist", lambda lib, a, b: lib.dist(a, b), (_randn, (2, 3)), (_randn, (3,)),
         grad_fn="DistBackward0", differentiable=(True, True)),
    _row("dist-p1", lambda lib, a, b: a.dist(b, 1), (_randn, (2, 3)), (_randn, (2, 3)),
         differentiable=(True, True)),
    _row("dist-p3", lambda lib, a, b: a.dist(b, 3), (_randn, (4,)), (_randn, (4,)),
         differentiable=(True, True)),
    _row("cdist", lambda lib, a, b: lib.cdist(a, b), (_randn, (3, 2)), (_randn, (4, 2)),
         grad_fn="CdistBackward0", differentiable=(True, True)),
    _row("cdist-p1-batched", lambda lib, a, b: lib.cdist(a, b, p=1),
         (_randn, (2, 3, 2)), (_randn, (2, 4, 2)), differentiable=(True, True)),
    _row("renorm", lambda lib, x: lib.renorm(x, 2, 0, 1.0), (_randn, (3, 4))),
    _row("renorm-p1-dim-neg", lambda lib, x: x.renorm(1, -1, 2.0), (_randn, (2, 3, 4))),
    _row("cov", lambda lib, x: lib.cov(x), (_randn, (3, 5))),
    _row("cov-1d", lambda lib, x: lib.cov(x, correction=0), (_randn, (5,))),
    _row("cov-aweights", lambda lib, x, w: lib.cov(x, aweights=w),
         (_randn, (2, 4)), (lambda rng, *s: rng.random(s) + 0.5, (4,)),
         differentiable=(True, True)),
    _row("corrcoef", lambda lib, x: lib.corrcoef(x), (_randn, (3, 5))),
]


def _inputs(row, seed=0):
    rng = np.random.default_rng(seed)
    return [maker(rng, *shape) for maker, shape in row.makers]


def _outputs(out):
    return tuple(out) if isinstance(out, tuple) else (out,)


def _loss(outs, weights):
    total = None
    for o, w in zip(outs, weights):
        if not o.dtype.is_floating_point or not o.requires_grad:
            continue
        term = (o * w).sum()
        total = term if total is None else total + term
    return total


def _weights(lib, outs, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return [lib.tensor(rng.standard_normal(tuple(o.shape)), dtype=dtype) for o in outs]


def _run(lib, row, arrays, dtype_name, backward=True):
    dtype = getattr(lib, dtype_name)
    ts = [lib.tensor(a, dtype=dtype, requires_grad=d)
          for a, d in zip(arrays, row.differentiable)]
    outs = _outputs(row.fn(lib, *ts))
    if not backward:
        return outs, ()
    loss = _loss(outs, _weights(lib, outs, dtype))
    grads = lib.autograd.grad(loss, [t for t in ts if t.requires_grad], allow_unused=True)
    return outs, grads


IDS = [r.name for r in ROWS]


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_against_torch(row, dtype_name):
    torch = pytest.importorskip("torch")
    arrays = _inputs(row)
    ours, our_grads = _run(tapegrad, row, arrays, dtype_name, row.torch_grad)
    theirs, their_grads = _run(torch, row, arrays, dtype_name, row.torch_grad)
    rtol, atol = (1e-9, 1e-10) if dtype_name == "float64" else (row.rtol32, 1e-4)
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert tuple(o.shape) == tuple(t.shape)
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=atol)
    for g, h in zip(our_grads, their_grads):
        assert (g is None) == (h is None)
        if g is not None:
            np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=rtol * 10, atol=atol * 10)
    if row.grad_fn and dtype_name == "float64":
        assert type(ours[0].grad_fn).__name__ == row.grad_fn == type(theirs[0].grad_fn).__name__


def _scalar_fn(row, weights_for):
    def fn(*ts):
        outs = _outputs(row.fn(tapegrad, *ts))
        return _loss(outs, weights_for(outs))
    return fn


def _fixed_weights():
    cache = {}

    def weights_for(outs):
        if "w" not in cache:
            cache["w"] = _weights(tapegrad, outs, tapegrad.float64)
        return cache["w"]
    return weights_for


FD = [r for r in ROWS if r.fd]


@pytest.mark.parametrize("row", FD, ids=[r.name for r in FD])
def test_finite_differences(row):
    ts = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=d)
          for a, d in zip(_inputs(row), row.differentiable)]
    assert gradcheck(_scalar_fn(row, _fixed_weights()), ts, atol=1e-6, rtol=1e-5)


DOUBLE = [r for r in ROWS if r.double]


@pytest.mark.parametrize("row", DOUBLE, ids=[r.name for r in DOUBLE])
def test_second_derivatives(row):
    """The gradient (create_graph=True) differentiated again, against central differences of
    the gradient, and against PyTorch."""
    loss = _scalar_fn(row, _fixed_weights())
    rng = np.random.default_rng(5)

    def grad_dot(*ts):
        gs = tapegrad.autograd.grad(loss(*ts), ts, create_graph=True)
        return sum((g * tapegrad.tensor(rng_w, dtype=tapegrad.float64)).sum()
                   for g, rng_w in zip(gs, probes))

    arrays = _inputs(row)
    probes = [rng.standard_normal(a.shape) for a in arrays]
    ts = [tapegrad.tensor(a, dtype=tapegrad.float64, requires_grad=True) for a in arrays]
    assert gradcheck(grad_dot, ts, atol=1e-6, rtol=1e-5)
    torch = pytest.importorskip("torch")
    ours = tapegrad.autograd.grad(grad_dot(*ts), ts)
    tts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    touts = _outputs(row.fn(torch, *tts))
    w = _weights(torch, touts, torch.float64)
    tgs = torch.autograd.grad(_loss(touts, w), tts, create_graph=True)
    tdot = sum((g * torch.tensor(p)).sum() for g, p in zip(tgs, probes))
    theirs = torch.autograd.grad(tdot, tts)
    for g, h in zip(ours, theirs):
        np.testing.assert_allclose(g.numpy(), h.numpy(), rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- values without gradients

def _same(lib_fn, *arrays, dtype="float64"):
    torch = pytest.importorskip("torch")
    def dtype_of(lib, a):  # (integer arrays stay int64)
        return lib.int64 if np.asarray(a).dtype.kind in "iu" else getattr(lib, dtype)

    ours = lib_fn(tapegrad, *[tapegrad.tensor(a, dtype=dtype_of(tapegrad, a)) for a in arrays])
    theirs = lib_fn(torch, *[torch.tensor(a, dtype=dtype_of(torch, a)) for a in arrays])
    for o, t in zip(_outputs(ours), _outputs(theirs)):
        assert tuple(o.shape) == tuple(t.shape)
        assert str(o.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
        rtol = 1e-9 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=rtol, atol=1e-12)


def test_values_without_gradients():
    rng = np.random.default_rng(3)
    low_rank = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 5))
    _same(lambda lib, A: lib.linalg.matrix_rank(A), low_rank)
    _same(lambda lib, A: lib.linalg.matrix_rank(A, hermitian=True), low_rank @ low_rank.T)
    _same(lambda lib, A: lib.linalg.matrix_rank(A, atol=1.0, rtol=0.0), low_rank)
    _same(lambda lib, A: lib.linalg.pinv(A), low_rank)
    _same(lambda lib, A: lib.linalg.slogdet(A), np.zeros((2, 2)))
    _same(lambda lib, A: lib.linalg.det(A), np.ones((2, 3, 3)))
    _same(lambda lib, A: lib.logdet(A), -np.eye(3))
    _same(lambda lib, A: lib.linalg.inv_ex(A), np.array([[1.0, 2.0], [3.0, 4.0]]))
    _same(lambda lib, A: lib.linalg.inv_ex(A).info, np.array([[1.0, 2.0], [2.0, 4.0]]))
    singular = np.stack([np.array([[1.0, 2.0], [2.0, 4.0]]), 2 * np.eye(2)])
    for p in ("fro", 1, -1, math.inf, -math.inf):
        _same(lambda lib, A, p=p: lib.linalg.cond(A, p), singular)
    _same(lambda lib, A: lib.linalg.cholesky_ex(A), np.eye(3) * 2)
    _same(lambda lib, A: lib.linalg.cholesky_ex(A), np.array([[4.0, 2, 1], [2, 1, 0], [1, 0, 3]]))
    _same(lambda lib, A: lib.linalg.cholesky_ex(A, upper=True),
          np.array([[[4.0, 2, 1], [2, 5, 0], [1, 0, -3]], np.eye(3)]))
    _same(lambda lib, A, B: lib.linalg.solve_ex(A, B),
          np.stack([np.eye(2), np.ones((2, 2))]), np.ones((2, 1)))
    _same(lambda lib, A, B: lib.linalg.solve_ex(A, B), np.ones((3, 3)), np.ones(3))
    _same(lambda lib, A, B: lib.linalg.solve_triangular(A, B, upper=True),
          np.triu(rng.standard_normal((3, 3))) + 3 * np.eye(3), rng.standard_normal((3, 2)),
          dtype="float32")
    _same(lambda lib, A: lib.linalg.qr(A, mode="complete"), rng.standard_normal((4, 2)))
    _same(lambda lib, A: lib.linalg.qr(A, mode="r")[1], rng.standard_normal((4, 2)))
    _same(lambda lib, A: lib.linalg.svd(A)[1], rng.standard_normal((3, 5)))
    for driver in ("gels", "gelsy", "gelsd", "gelss"):
        _same(lambda lib, A, B, d=driver: lib.linalg.lstsq(A, B, driver=d),
              rng.standard_normal((4, 3)), rng.standard_normal((4, 2)))
        _same(lambda lib, A, B, d=driver: lib.linalg.lstsq(A, B, driver=d)[1:3], low_rank,
              rng.standard_normal((4, 2)))
    _same(lambda lib, A: lib.linalg.matrix_exp(A), rng.standard_normal((3, 5, 5)) * 4)
    _same(lambda lib, A: lib.linalg.matrix_exp(A), np.zeros((0, 0)))
    _same(lambda lib, x: lib.cov(x), np.arange(6).reshape(2, 3) ** 2)
    _same(lambda lib, x: lib.corrcoef(x), np.arange(6).reshape(2, 3) ** 2)
    _same(lambda lib, x, f: lib.cov(x, fweights=f, correction=2), rng.standard_normal((2, 5)),
          np.array([1, 2, 1, 3, 1]))
    _same(lambda lib, x, f, a: lib.cov(x, fweights=f, aweights=a), rng.standard_normal((2, 5)),
          np.array([1, 2, 1, 3, 1]), rng.random(5))
    _same(lambda lib, a, b: lib.cross(a, b), rng.standard_normal((3, 3, 2)),
          rng.standard_normal((3, 3, 2)))


def test_det_gradient_at_a_singular_matrix():
    """0 where det(A) is 0, as PyTorch 2.13 (not the adjugate); the other matrices of the
    batch as usual."""
    a = np.array([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]], np.diag([1.0, 2.0, 4.0])])
    A = tapegrad.tensor(a, requires_grad=True)
    tapegrad.linalg.det(A).sum().backward()
    np.testing.assert_allclose(A.grad.numpy(), [np.zeros((3, 3)), np.diag([8.0, 4.0, 2.0])],
                               rtol=1e-14)
    torch = pytest.importorskip("torch")
    T = torch.tensor(a, requires_grad=True)
    torch.linalg.det(T).sum().backward()
    np.testing.assert_allclose(A.grad.numpy(), T.grad.numpy(), atol=1e-12)


def test_cdist_gradient_at_zero_distance():
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    for p in (1.0, 2.0, 3.0):
        a = tapegrad.tensor(x, requires_grad=True)
        b = tapegrad.tensor(x[:1], requires_grad=True)
        tapegrad.cdist(a, b, p=p).sum().backward()
        assert np.isfinite(a.grad.numpy()).all()
        torch = pytest.importorskip("torch")
        ta = torch.tensor(x, requires_grad=True)
        tb = torch.tensor(x[:1], requires_grad=True)
        torch.cdist(ta, tb, p=p).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), atol=1e-12)
        np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), atol=1e-12)


def test_in_place_forms():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in ((3,), (3, 4), (4,), (3, 4), (3,), (4,),
                                               (3, 4), (2, 3, 5), (2, 5, 4))]
    for lib in (tapegrad, torch):
        x, M, v, y, a, b, z, b1, b2 = [lib.tensor(t) for t in arrays]
        assert x.addmv_(M, v, beta=2) is x
        assert y.addr_(a, b, alpha=0.5) is y
        assert z.addbmm_(b1, b2) is z
        w = lib.tensor(arrays[3]).renorm_(2, 0, 1.0)
        if lib is tapegrad:
            ours = [x, y, z, w]
        else:
            for o, t in zip(ours, [x, y, z, w]):
                np.testing.assert_allclose(o.numpy(), t.numpy(), rtol=1e-12)
    leaf = tapegrad.tensor(arrays[0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        leaf.addmv_(tapegrad.tensor(arrays[1]), tapegrad.tensor(arrays[2]))
    base = tapegrad.tensor(arrays[0], requires_grad=True)
    mat = tapegrad.tensor(arrays[1], requires_grad=True)
    h = base * 1
    h.addmv_(mat, tapegrad.tensor(arrays[2]))
    h.sum().backward()
    np.testing.assert_allclose(base.grad.numpy(), np.ones(3))
    np.testing.assert_allclose(mat.grad.numpy(), np.broadcast_to(arrays[2], (3, 4)))


# ---------------------------------------------------------------- errors

ERRORS = [
    ("inv-not-square", lambda lib: lib.linalg.inv(lib.ones(2, 3))),
    ("inv-1d", lambda lib: lib.linalg.inv(lib.ones(3))),
    ("inv-int", lambda lib: lib.linalg.inv(lib.ones(3, 3, dtype=lib.int64))),
    ("inv-singular", lambda lib: lib.linalg.inv(lib.zeros(3, 3))),
    ("inv-singular-batched", lambda lib: lib.linalg.inv(
        lib.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 4.0]]]))),
    ("inverse-singular", lambda lib: lib.inverse(lib.ones(3, 3))),
    ("det-not-square", lambda lib: lib.linalg.det(lib.ones(2, 3))),
    ("slogdet-not-square", lambda lib: lib.linalg.slogdet(lib.ones(2, 3))),
    ("solve-shapes", lambda lib: lib.linalg.solve(lib.eye(3), lib.ones(4))),
    ("solve-shapes-matrix", lambda lib: lib.linalg.solve(lib.eye(2), lib.ones(3, 2))),
    ("solve-dtypes", lambda lib: lib.linalg.solve(lib.eye(3, dtype=lib.float64), lib.ones(3))),
    ("solve-not-square", lambda lib: lib.linalg.solve(lib.ones(2, 3), lib.ones(2))),
    ("solve-singular", lambda lib: lib.linalg.solve(lib.ones(3, 3), lib.ones(3))),
    ("cholesky-not-pd", lambda lib: lib.linalg.cholesky(-lib.eye(3))),
    ("cholesky-not-pd-order2", lambda lib: lib.linalg.cholesky(
        lib.tensor([[1.0, 2.0], [2.0, 1.0]]))),
    ("cholesky-not-pd-batched", lambda lib: lib.linalg.cholesky(
        lib.stack([lib.eye(2), -lib.eye(2)]))),
    ("cholesky_ex-check", lambda lib: lib.linalg.cholesky_ex(-lib.eye(2).expand(2, 2, 2),
                                                             check_errors=True)),
    ("inv_ex-check", lambda lib: lib.linalg.inv_ex(lib.ones(2, 2), check_errors=True)),
    ("solve-singular-batched", lambda lib: lib.linalg.solve(lib.ones(2, 2, 2), lib.ones(2))),
    ("solve_ex-check", lambda lib: lib.linalg.solve_ex(lib.ones(2, 2, 2), lib.ones(2),
                                                       check_errors=True)),
    ("cholesky-not-square", lambda lib: lib.linalg.cholesky(lib.ones(2, 3))),
    ("eigh-not-square", lambda lib: lib.linalg.eigh(lib.ones(2, 3))),
    ("matrix_power-not-square", lambda lib: lib.linalg.matrix_power(lib.ones(2, 3), 2)),
    ("cross-length", lambda lib: lib.linalg.cross(lib.ones(2, 2), lib.ones(2, 2))),
    ("matrix_norm-1d", lambda lib: lib.linalg.matrix_norm(lib.ones(3))),
    ("vector_norm-int", lambda lib: lib.linalg.vector_norm(lib.ones(3, dtype=lib.int64))),
    ("dot-2d-vdot", lambda lib: lib.vdot(lib.ones(2, 2), lib.ones(2, 2))),
    ("inner-mismatch", lambda lib: lib.inner(lib.ones(2, 3), lib.ones(2))),
    ("trace-3d", lambda lib: lib.ones(2, 2, 2).trace()),
    ("cdist-cols", lambda lib: lib.cdist(lib.ones(2, 3), lib.ones(2, 2))),
    ("cond-not-square", lambda lib: lib.linalg.cond(lib.ones(2, 3), 1)),
    ("cond-not-square-fro", lambda lib: lib.linalg.cond(lib.ones(2, 3), "fro")),
    ("cond-not-square-inf", lambda lib: lib.linalg.cond(lib.ones(2, 3), -math.inf)),
    ("cond-not-square-float", lambda lib: lib.linalg.cond(lib.ones(2, 3), 1.0)),
    ("multi_dot-one", lambda lib: lib.linalg.multi_dot([lib.ones(2, 2)])),
    ("qr-mode", lambda lib: lib.linalg.qr(lib.ones(2, 2), mode="bad")),
    ("cov-3d", lambda lib: lib.cov(lib.ones(2, 2, 2))),
    ("lstsq-rows", lambda lib: lib.linalg.lstsq(lib.ones(4, 3), lib.ones(3, 2))),
    ("lstsq-vector-rows", lambda lib: lib.linalg.lstsq(lib.ones(4, 3), lib.ones(3))),
    ("lstsq-driver", lambda lib: lib.linalg.lstsq(lib.ones(4, 3), lib.ones(4, 2), driver="x")),
    ("lstsq-dtypes", lambda lib: lib.linalg.lstsq(lib.ones(4, 3, dtype=lib.float64),
                                                  lib.ones(4, 2))),
    ("matrix_exp-not-square", lambda lib: lib.linalg.matrix_exp(lib.ones(2, 3))),
    ("norm-3d-ord", lambda lib: lib.linalg.norm(lib.ones(2, 2, 2), 2)),
    ("matrix_norm-bad-ord", lambda lib: lib.linalg.matrix_norm(lib.ones(2, 2), 3)),
    ("matrix_norm-same-dims", lambda lib: lib.linalg.matrix_norm(lib.ones(2, 2), dim=(0, 0))),
    ("eigh-uplo", lambda lib: lib.linalg.eigh(lib.eye(2), UPLO="X")),
    ("vander-0d", lambda lib: lib.linalg.vander(lib.tensor(1.0))),
    ("cross-ndim", lambda lib: lib.linalg.cross(lib.ones(2, 3), lib.ones(3))),
    ("cross-no-dim-3", lambda lib: lib.cross(lib.ones(2, 2), lib.ones(2, 2))),
    ("multi_dot-3d", lambda lib: lib.linalg.multi_dot([lib.ones(2, 2), lib.ones(2, 2, 2),
                                                       lib.ones(2, 2)])),
    ("multi_dot-first-3d", lambda lib: lib.linalg.multi_dot([lib.ones(2, 2, 2), lib.ones(2, 2)])),
    ("addmv-2d-vec", lambda lib: lib.addmv(lib.ones(3), lib.ones(3, 4), lib.ones(4, 1))),
    ("addmv-size", lambda lib: lib.addmv(lib.ones(3), lib.ones(3, 4), lib.ones(5))),
    ("addr-2d", lambda lib: lib.addr(lib.ones(3, 2), lib.ones(3, 1), lib.ones(2))),
    ("addr-2d-vec2", lambda lib: lib.addr(lib.ones(3, 2), lib.ones(3), lib.ones(2, 1))),
    ("cdist-1d", lambda lib: lib.cdist(lib.ones(3), lib.ones(2, 3))),
    ("cdist-1d-x2", lambda lib: lib.cdist(lib.ones(2, 3), lib.ones(3))),
    ("vdot-size", lambda lib: lib.vdot(lib.ones(2), lib.ones(3))),
    ("solve_triangular-1d", lambda lib: lib.linalg.solve_triangular(lib.eye(2), lib.ones(2),
                                                                    upper=True)),
    ("ger-2d", lambda lib: lib.ger(lib.ones(2, 2), lib.ones(2))),
    ("matrix_power-1d", lambda lib: lib.linalg.matrix_power(lib.ones(2), 2)),
    ("trace-1d", lambda lib: lib.ones(3).trace()),
    ("svd-1d", lambda lib: lib.linalg.svd(lib.ones(3))),
    ("pinv-int", lambda lib: lib.linalg.pinv(lib.ones(2, 2, dtype=lib.int64))),
    ("dist-int", lambda lib: lib.dist(lib.ones(2, dtype=lib.int64), lib.ones(2, dtype=lib.int64))),
    ("renorm-p0", lambda lib: lib.renorm(lib.ones(2, 2), 0, 0, 1.0)),
    ("renorm-negative-maxnorm", lambda lib: lib.renorm(lib.ones(2, 2), 2, 0, -1.0)),
    ("renorm-1d", lambda lib: lib.renorm(lib.ones(2), 2, 0, 1.0)),
    ("qr-1d", lambda lib: lib.linalg.qr(lib.ones(3))),
    ("lstsq-1d", lambda lib: lib.linalg.lstsq(lib.ones(3), lib.ones(3))),
    ("lstsq-0d-rhs", lambda lib: lib.linalg.lstsq(lib.ones(3, 3), lib.ones(()))),
    ("det-int", lambda lib: lib.linalg.det(lib.ones(2, 2, dtype=lib.int64))),
    ("matrix_rank-1d", lambda lib: lib.linalg.matrix_rank(lib.ones(2))),
    ("matrix_rank-int", lambda lib: lib.linalg.matrix_rank(lib.ones(2, 2, dtype=lib.int64))),
    ("cov-fweights-float", lambda lib: lib.cov(lib.ones(2, 3), fweights=lib.ones(3))),
    ("cov-fweights-2d", lambda lib: lib.cov(lib.ones(2, 3),
                                            fweights=lib.ones(2, 3, dtype=lib.int64))),
    ("cov-fweights-numel", lambda lib: lib.cov(lib.ones(2, 3),
                                               fweights=lib.ones(4, dtype=lib.int64))),
    ("cov-fweights-negative", lambda lib: lib.cov(lib.ones(2, 3),
                                                  fweights=-lib.ones(3, dtype=lib.int64))),
    ("cov-aweights-int", lambda lib: lib.cov(lib.ones(2, 3),
                                             aweights=lib.ones(3, dtype=lib.int64))),
    ("cov-aweights-negative", lambda lib: lib.cov(lib.ones(2, 3), aweights=-lib.ones(3))),
    ("tensordot-mismatch", lambda lib: lib.tensordot(lib.ones(2, 3), lib.ones(2, 3), 1)),
]


def _error(fn, lib):
    with pytest.raises(Exception) as info:
        fn(lib)
    return info.value


@pytest.mark.parametrize("fn", [e[1] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_as_pytorch(fn):
    ours = _error(fn, tapegrad)
    torch = pytest.importorskip("torch")
    theirs = _error(fn, torch)
    assert isinstance(ours, RuntimeError) == isinstance(theirs, RuntimeError)
    assert isinstance(ours, tapegrad.linalg.LinAlgError) == \
        isinstance(theirs, torch.linalg.LinAlgError)
    assert str(ours) == str(theirs)


def test_qr_backward_refusals():
    """mode='r' (no Q) and mode='complete' of a tall matrix: PyTorch's errors at backward."""
    A = tapegrad.tensor(np.arange(6.0).reshape(3, 2) ** 2, requires_grad=True)
    R = tapegrad.linalg.qr(A * 1, mode="r")[1]
    with pytest.raises(RuntimeError, match="The derivative of linalg.qr depends on Q, which is "
                       "not computed when mode='r'. Please use linalg.qr"):
        R.sum().backward()
    Q, R = tapegrad.linalg.qr(A, mode="complete")
    with pytest.raises(RuntimeError, match="The QR decomposition is not differentiable when "
                       "mode='complete' and nrows > ncols."):
        (Q.sum() + R.sum()).backward()


@pytest.mark.parametrize("which", [0, 1])
def test_in_place_products_record_either_operand(which):
    """addmv_/addr_/addbmm_ on a tensor that does not require grad, with only one of the two
    product operands requiring grad: the write is recorded, the gradient reaches it."""
    rng = np.random.default_rng(7)
    for op, shapes in (("addmv_", ((3,), (3, 4), (4,))), ("addr_", ((3, 2), (3,), (2,))),
                       ("addbmm_", ((3, 2), (4, 3, 5), (4, 5, 2)))):
        arrays = [rng.standard_normal(s) for s in shapes]
        grads = []
        for lib in (tapegrad, pytest.importorskip("torch")):
            x, a, b = [lib.tensor(v, requires_grad=(k == which + 1)) for k, v in enumerate(arrays)]
            getattr(x, op)(a, b)
            (x * x).sum().backward()
            grads.append((a if which == 0 else b).grad.numpy())
        np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def _inv_then_scale_output(lib, x):
    X = lib.linalg.inv(x)
    X.mul_(2)
    return X


def _det_then_write_input(lib, x):
    A = x * 1
    d = lib.linalg.det(A)
    A.add_(1)
    return d


def _eigh_then_write_vectors(lib, x):
    w, V = lib.linalg.eigh(x)
    V.zero_()
    return w


def _solve_then_write_both(lib, x):
    A = x * 1
    X = lib.linalg.solve(A, lib.ones(3, 2, dtype=x.dtype))
    A.add_(1)
    return X


@pytest.mark.parametrize("program", [_inv_then_scale_output, _det_then_write_input,
                                     _eigh_then_write_vectors, _solve_then_write_both])
def test_saved_tensors_written_in_place(program):
    """A tensor the backward needs, written in place after the op: PyTorch's error."""
    a = _spd(np.random.default_rng(6), 3, 3)

    def message(lib):
        out = program(lib, lib.tensor(a, requires_grad=True))
        with pytest.raises(RuntimeError) as info:
            out.sum().backward()
        return str(info.value)

    ours = message(tapegrad)
    assert "modified by an inplace operation" in ours
    torch = pytest.importorskip("torch")
    assert ours == message(torch)


def test_return_types_print_as_pytorch():
    torch = pytest.importorskip("torch")
    a = [[2.0, 1.0], [1.0, 3.0]]

    def shown(lib):
        A = lib.tensor(a, dtype=lib.float64, requires_grad=True)
        text = "\n".join(repr(r) for r in (lib.linalg.slogdet(A), lib.slogdet(A),
                                          lib.linalg.eigh(A.detach()), lib.linalg.inv_ex(A)))
        return text.replace("tapegrad.", "torch.")

    assert shown(tapegrad) == shown(torch)
