"""Linear algebra: the ``torch.linalg`` functions (re-exported by ``tapegrad.linalg``) and the
torch-level ones (``det inverse cholesky svd kron addmv cdist cov``...).

The factorizations and solvers compute with NumPy's LAPACK and are ``autograd.Function``s
whose backward is written with tapegrad ops on the saved inputs and outputs (PyTorch's
formulas from FunctionsManual.cpp), so that ``create_graph=True`` differentiates them
again.  Everything else composes recorded ops (norms, products, cross, cov, cdist...), so
its gradient is theirs.
"""
from __future__ import annotations

import builtins
import math
import re
import warnings
from collections import namedtuple

import numpy as np

from . import _dtype as D
from . import _engine as E
from ._assemble import nan_to_num
from ._library import amax, amin, composite, where
from ._library import diagonal as _diagonal
from ._tensor import (
    _SHORT,
    Tensor,
    _inplace,
    _out,
    _result,
    _val,
    _wrap_dim,
    cat,
    eye,
    matmul,
    stack,
    tensor,
    zeros,
)
from .autograd.function import Function
from .autograd.grad_mode import is_grad_enabled

__all__ = [
    "addbmm", "addmv", "addr", "cdist", "chain_matmul", "cholesky", "cholesky_inverse",
    "cholesky_solve", "corrcoef", "cov", "cross", "det", "dist", "ger", "inner", "inverse",
    "kron", "logdet", "matrix_exp", "matrix_power", "pinverse", "qr", "renorm", "slogdet", "svd",
    "tensordot", "triangular_solve", "vdot",
]


class LinAlgError(RuntimeError):
    """Raised for a singular matrix (inv, solve) or one that is not positive-definite
    (cholesky), as PyTorch's ``torch.linalg.LinAlgError``."""


def _return_type(name, fields):
    """A namedtuple printed as PyTorch prints its ``torch.return_types``."""
    base = namedtuple(name, fields)

    def __repr__(self):
        items = ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
        return f"torch.return_types.{name}(\n{items})"

    return type(name, (base,), {"__slots__": (), "__repr__": __repr__})


slogdet_result = _return_type("linalg_slogdet", ["sign", "logabsdet"])
torch_slogdet_result = _return_type("slogdet", ["sign", "logabsdet"])
inv_ex_result = _return_type("linalg_inv_ex", ["inverse", "info"])
solve_ex_result = _return_type("linalg_solve_ex", ["result", "info"])
cholesky_ex_result = _return_type("linalg_cholesky_ex", ["L", "info"])
qr_result = _return_type("linalg_qr", ["Q", "R"])
torch_qr_result = _return_type("qr", ["Q", "R"])
svd_result = _return_type("linalg_svd", ["U", "S", "Vh"])
torch_svd_result = _return_type("svd", ["U", "S", "V"])
eigh_result = _return_type("linalg_eigh", ["eigenvalues", "eigenvectors"])
triangular_solve_result = _return_type("triangular_solve", ["solution", "cloned_coefficient"])


# ---------------------------------------------------------------- checks and small helpers

def _check_float(name, A):
    if not A.dtype.is_floating_point:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got "
                           f"{_SHORT[A.dtype.name]}")


def _check_matrix(name, A, arg="A"):
    if A.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor {arg} must have at least 2 dimensions.")
    _check_float(name, A)


def _check_square(name, A, arg="A"):
    _check_matrix(name, A, arg)
    if A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"{name}: {arg} must be batches of square matrices, but they are "
                           f"{A.shape[-2]} by {A.shape[-1]} matrices")


def _mT(x):
    return x.transpose(-2, -1)


def _diag_embed(v):
    """Vectors (..., n) as diagonal matrices (..., n, n): a product with the identity."""
    n = v.shape[-1]
    return v.unsqueeze(-1) * eye(n, dtype=v.dtype)


def _zero_pivot(a):
    """The first zero pivot (1-based) of LAPACK's LU with partial pivoting of each matrix of
    ``a`` (..., n, n), 0 for none: PyTorch's error names it."""
    lu = np.array(a, dtype=np.float64).reshape((-1,) + a.shape[-2:])
    n = lu.shape[-1]
    first = np.zeros(lu.shape[0], dtype=np.int64)
    rows = np.arange(lu.shape[0])
    for k in range(n):
        p = k + np.argmax(np.abs(lu[:, k:, k]), axis=1)
        lu[rows, k], lu[rows, p] = lu[rows, p].copy(), lu[rows, k].copy()
        pivot = lu[:, k, k]
        zero = pivot == 0
        first[(first == 0) & zero] = k + 1
        safe = np.where(zero, 1.0, pivot)
        factors = np.where(zero[:, None], 0.0, lu[:, k + 1:, k] / safe[:, None])
        lu[:, k + 1:, k:] -= factors[:, :, None] * lu[:, k, None, k:]
    return first


def _batch_prefix(a, k):
    return f"(Batch element {k}): " if a.ndim > 2 else ""


def _raise_singular(name, a):
    pivots = _zero_pivot(a)
    k = int(np.argmax(pivots > 0)) if (pivots > 0).any() else 0
    pivot = int(pivots[k]) or a.shape[-1]
    raise LinAlgError(f"{name}: {_batch_prefix(a, k)}The diagonal element {pivot} is zero, the "
                      "inversion could not be completed because the input matrix is singular.")


def _partial_cholesky(m):
    """LAPACK potf2's lower factor of one matrix, column by column: (L, 0), or where a leading
    minor of order j is not positive-definite, (the columns before, the non-positive pivot
    at (j, j) and A's own values after, j), as PyTorch's cholesky_ex returns them."""
    n = m.shape[-1]
    L = np.tril(np.array(m, dtype=np.float64))
    for j in range(n):
        pivot = L[j, j] - L[j, :j] @ L[j, :j]
        if not pivot > 0:
            L[j, j] = pivot
            return L, j + 1
        L[j, j] = math.sqrt(pivot)
        L[j + 1:, j] = (L[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L, 0


def _cholesky_info(a):
    """(lower factors, info) of each matrix of a, without raising."""
    try:
        return np.linalg.cholesky(a), np.zeros(a.shape[:-2], dtype=np.int32)
    except np.linalg.LinAlgError:
        flat = a.reshape((-1,) + a.shape[-2:])
        parts = [_partial_cholesky(m) for m in flat]
        low = np.stack([p[0] for p in parts]).reshape(a.shape)
        return low, np.array([p[1] for p in parts], dtype=np.int32).reshape(a.shape[:-2])


def _raise_not_pd(name, a, info):
    k = int(np.argmax(info.reshape(-1) > 0))
    raise LinAlgError(f"{name}: {_batch_prefix(a, k)}The factorization could not be completed "
                      "because the input is not positive-definite (the leading minor of order "
                      f"{int(info.reshape(-1)[k])} is not positive-definite).")


_warned: set = set()


_BACKWARD_SUFFIX = re.compile(r"Backward[0-9]*$")


def _keep(ctx, node, inputs=(), outputs=()):
    """Save tensors for backward with their versions; PyTorch's error names an output as
    output j of the op's node, an input by its node at the time of the error."""
    ctx.kept = [(t, t._version, None) for t in inputs] + \
        [(t, 0, f"output {j} of {node}") for j, t in outputs]


def _node_label(t):
    fn = t.grad_fn
    return None if fn is None or type(fn).__name__ == "AccumulateGrad" else \
        f"output 0 of {_BACKWARD_SUFFIX.sub('', type(fn).__name__)}"


def _check_kept(ctx):
    """PyTorch's error for a saved tensor written in place between forward and backward."""
    for t, version, label in ctx.kept:
        if t._version != version:
            raise RuntimeError(E.modified_message(t.dtype, t.shape, None, t._version, version,
                                                  label or _node_label(t) or ""))


def _warn_once(message):
    """PyTorch's TORCH_WARN_ONCE: a UserWarning the first time only."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def _new(value, like):
    return _result(_out(np.asarray(value), like.dtype), like.dtype)


def _int_info(values):
    return _result(_out(np.asarray(values, dtype=np.int32), D.int32), D.int32)


# ---------------------------------------------------------------- inverse and solve

class _Inv(Function):
    """inv(A); backward -X^T g X^T with X = inv(A) (LinalgInvExBackward0)."""

    _node_name = "LinalgInvExBackward0"

    @staticmethod
    def forward(ctx, A):
        a = _val(A)
        try:
            x = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            _raise_singular("linalg.inv", a)
        ctx.out = _new(x, A)
        _keep(ctx, "LinalgInvEx", outputs=[(0, ctx.out)])
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        _check_kept(ctx)
        xt = _mT(ctx.out)
        return -(xt @ g @ xt)


def _is_vector_rhs(A, B):
    return B.ndim == 1 or (B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))


class _Solve(Function):
    """X = A^-1 B; backward gB = solve(A^T, g), gA = -gB X^T (LinalgSolveExBackward0)."""

    _node_name = "LinalgSolveExBackward0"

    @staticmethod
    def forward(ctx, A, B, vector):
        a, b = _val(A), _val(B)
        try:
            x = np.linalg.solve(a, b[..., None] if vector else b)
        except np.linalg.LinAlgError:
            _raise_unsolvable("torch.linalg.solve", a, b, vector)
        ctx.A, ctx.vector = A, vector
        ctx.out = _new(x[..., 0] if vector else x, A)
        _keep(ctx, "LinalgSolveEx", [A], [(0, ctx.out)])
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        _check_kept(ctx)
        gB = _Solve.apply(_mT(ctx.A), g, ctx.vector)
        if ctx.vector:
            gA = -(gB.unsqueeze(-1) * ctx.out.unsqueeze(-2))
        else:
            gA = -(gB @ _mT(ctx.out))
        return gA, gB, None


def _solve_batch(a, b, vector):
    """A broadcast to the batch shape of the solve."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-1] if vector else b.shape[:-2])
    return np.broadcast_to(a, batch + a.shape[-2:])


def _raise_unsolvable(name, a, b, vector):
    a = _solve_batch(a, b, vector)
    pivots = _zero_pivot(a)
    k = int(np.argmax(pivots > 0))
    raise LinAlgError(f"{name}: {_batch_prefix(a, k)}The solver failed because the input matrix "
                      "is singular.")


def _check_solve(name, A, B):
    _check_square(name, A)
    if A.dtype is not B.dtype:
        raise RuntimeError(f"{name}: Expected A and B to have the same dtype, but found A of "
                           f"type {_SHORT[A.dtype.name]} and B of type {_SHORT[B.dtype.name]} "
                           "instead")
    vector = _is_vector_rhs(A, B)
    rows = B.shape[-1] if vector else B.shape[-2]
    if rows != A.shape[-1]:
        cols = 1 if vector else B.shape[-1]
        raise RuntimeError(f"{name}: Incompatible shapes of A and B for the equation AX = B "
                           f"({A.shape[-2]}x{A.shape[-1]} and {rows}x{cols})")
    return vector


def linalg_inv(A, *, out=None):
    """The inverse of each square matrix (LinalgInvExBackward0); a singular one raises
    LinAlgError with PyTorch's message."""
    _check_square("linalg.inv", A)
    return _Inv.apply(A)


def linalg_inv_ex(A, *, check_errors=False, out=None):
    """(inverse, info): info is 0, or the first zero pivot of a singular matrix (then the
    inverse is nan), or raises as inv with check_errors."""
    _check_square("linalg.inv_ex", A)
    pivots = _zero_pivot(_val(A)).reshape(A.shape[:-2])
    if (pivots > 0).any():
        if check_errors:
            _raise_singular("linalg.inv_ex", _val(A))
        singular = pivots > 0  # nan there (LAPACK leaves unspecified values), the rest as inv
        inverse = where(tensor(singular).unsqueeze(-1).unsqueeze(-1), math.nan,
                        _Inv.apply(_masked_identity(A, singular)))
        return inv_ex_result(inverse, _int_info(pivots))
    return inv_ex_result(_Inv.apply(A), _int_info(pivots))


def linalg_solve(A, B, *, left=True, out=None):
    """X with AX = B (or XA = B with left=False), batch dims broadcast; B is a batch of
    vectors when it is 1-d or has A's batch shape and one dim fewer (LinalgSolveExBackward0)."""
    if not left:
        with composite("LinalgSolveExBackward0", (A, B)) as comp:
            return comp.output(_mT(linalg_solve(_mT(A), _mT(B))))
    vector = _check_solve("linalg.solve", A, B)
    return _Solve.apply(A, B, vector)


def linalg_solve_ex(A, B, *, left=True, check_errors=False, out=None):
    """(result, info): info 0, or the first zero pivot of a singular matrix (then its result
    is nan, not differentiable)."""
    if not left:
        X, info = linalg_solve_ex(_mT(A), _mT(B), check_errors=check_errors)
        return solve_ex_result(_mT(X), info)
    vector = _check_solve("linalg.solve_ex", A, B)
    a, b = _val(A), _val(B)
    batch_a = _solve_batch(a, b, vector)
    pivots = _zero_pivot(batch_a).reshape(batch_a.shape[:-2])
    if not pivots.any():
        return solve_ex_result(_Solve.apply(A, B, vector), _int_info(pivots))
    if check_errors:
        _raise_unsolvable("torch.linalg.solve_ex", a, b, vector)
    singular = pivots > 0
    safe = np.where(singular[..., None, None], np.eye(a.shape[-1]), batch_a)
    x = np.linalg.solve(safe, b[..., None] if vector else b)
    x = np.where(singular[..., None, None], np.nan, x)
    return solve_ex_result(_new(x[..., 0] if vector else x, A), _int_info(pivots))


def _triangle(A, upper, unitriangular):
    """The triangle of A that a triangular solve reads (its diagonal 1 if unitriangular)."""
    t = A.triu(1 if unitriangular else 0) if upper else A.tril(-1 if unitriangular else 0)
    return t + eye(A.shape[-1], dtype=A.dtype) if unitriangular else t


def _substitute(t, b, upper):
    """Forward or back substitution of the triangular t (..., n, n) into b (..., n, k): no
    error for a zero on the diagonal (inf and nan, as LAPACK's trtrs-free solve of PyTorch)."""
    shape = np.broadcast_shapes(t.shape[:-2], b.shape[:-2])
    t = np.broadcast_to(t, shape + t.shape[-2:])
    x = np.array(np.broadcast_to(b, shape + b.shape[-2:]), dtype=np.result_type(t, b))
    n = t.shape[-1]
    order = range(n - 1, -1, -1) if upper else range(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in order:
            done = slice(i + 1, n) if upper else slice(0, i)
            acc = np.einsum("...j,...jk->...k", t[..., i, done], x[..., done, :])
            x[..., i, :] = (x[..., i, :] - acc) / t[..., i, i, None]
    return x


class _SolveTriangular(Function):
    """X = T^-1 B for a triangular T (the triangle of A, taken before the call, so that the
    gradient reaches only it): backward as linalg.solve's."""

    _node_name = "LinalgSolveTriangularBackward0"

    @staticmethod
    def forward(ctx, T, B, upper):
        x = _substitute(_val(T), _val(B), upper)
        ctx.T, ctx.upper = T, upper
        ctx.out = _new(x, T)
        _keep(ctx, "LinalgSolveTriangular", [T], [(0, ctx.out)])
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        _check_kept(ctx)
        gB = _SolveTriangular.apply(_mT(ctx.T), g, not ctx.upper)
        return -(gB @ _mT(ctx.out)), gB, None


def linalg_solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    """X with AX = B (XA = B with left=False) for a triangular A: only its upper (or lower)
    triangle is read, its diagonal taken as ones with unitriangular."""
    _check_matrix("linalg.solve_triangular", A)
    if A.dtype is not B.dtype:
        raise RuntimeError(f"linalg.solve_triangular: Expected A and B to have the same dtype, "
                           f"but found A of type {_SHORT[A.dtype.name]} and B of type "
                           f"{_SHORT[B.dtype.name]} instead")
    if B.ndim < 2:
        raise RuntimeError("linalg.solve_triangular: The input tensor B must have at least 2 "
                           "dimensions.")
    _check_square("linalg.solve_triangular", A)
    if not left:
        with composite("LinalgSolveTriangularBackward0", (A, B)) as comp:
            return comp.output(_mT(linalg_solve_triangular(_mT(A), _mT(B), upper=not upper,
                                                           unitriangular=unitriangular)))
    if B.shape[-2] != A.shape[-1]:
        raise RuntimeError(f"linalg.solve_triangular: Incompatible shapes of A and B for the "
                           f"equation AX = B ({A.shape[-2]}x{A.shape[-1]} and "
                           f"{B.shape[-2]}x{B.shape[-1]})")
    return _SolveTriangular.apply(_triangle(A, upper, unitriangular), B, upper)


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """(solution, cloned_coefficient) of A X = b (A^T X = b with transpose)."""
    _warn_once("torch.triangular_solve is deprecated in favor of torch.linalg.solve_triangular"
               "and will be removed in a future PyTorch release.\ntorch.linalg.solve_triangular "
               "has its arguments reversed and does not return a copy of one of the inputs.\n"
               "X = torch.triangular_solve(B, A).solution\nshould be replaced with\n"
               "X = torch.linalg.solve_triangular(A, B).")
    M = _mT(A) if transpose else A
    with composite("TriangularSolveBackward0", (b, A)) as comp:
        x = comp.output(linalg_solve_triangular(M, b, upper=upper != transpose,
                                                unitriangular=unitriangular))
    return triangular_solve_result(x, A.clone())


# ---------------------------------------------------------------- determinants

class _Det(Function):
    """det(A); backward g det A^-T (LinalgDetBackward0), 0 where det(A) is 0, as PyTorch's
    (not the adjugate)."""

    _node_name = "LinalgDetBackward0"

    @staticmethod
    def forward(ctx, A):
        ctx.A = A
        ctx.out = _new(np.linalg.det(_val(A)), A)
        _keep(ctx, "LinalgDet", [A], [(0, ctx.out)])
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        _check_kept(ctx)
        scale = (g * ctx.out).unsqueeze(-1).unsqueeze(-1)
        singular = _val(ctx.out) == 0
        if not singular.any():
            return scale * _mT(_Inv.apply(ctx.A))
        if is_grad_enabled():
            raise RuntimeError("tapegrad: the second derivative of det at a singular matrix is "
                               "not supported")
        ident = np.broadcast_to(np.eye(ctx.A.shape[-1]), ctx.A.shape)
        safe = np.where(singular[..., None, None], ident, _val(ctx.A))
        return scale * _mT(_new(np.linalg.inv(safe), ctx.A))


def linalg_det(A, *, out=None):
    _check_square("linalg.det", A)
    return _Det.apply(A)


class _Slogdet(Function):
    """(sign, log|det A|); backward of the log: g A^-T (LinalgSlogdetBackward0)."""

    _node_name = "LinalgSlogdetBackward0"

    @staticmethod
    def forward(ctx, A):
        sign, logabs = np.linalg.slogdet(_val(A))
        ctx.A = A
        s = _new(sign, A)  # (its gradient is ignored: sign is locally constant)
        _keep(ctx, "LinalgSlogdet", [A])
        return s, _new(logabs, A)

    @staticmethod
    def backward(ctx, g_sign, g):
        _check_kept(ctx)
        return g.unsqueeze(-1).unsqueeze(-1) * _mT(_Inv.apply(ctx.A))


def linalg_slogdet(A, *, out=None):
    _check_square("linalg.slogdet", A)
    return slogdet_result(*_Slogdet.apply(A))


def det(input):
    return linalg_det(input)


def slogdet(input):
    return torch_slogdet_result(*linalg_slogdet(input))


def logdet(input):
    """log det: nan for a negative determinant, -inf for a zero one (WhereBackward0)."""
    sign, logabs = linalg_slogdet(input)
    return where(sign == -1, math.nan, logabs)


def inverse(input, *, out=None):
    return linalg_inv(input)


# ---------------------------------------------------------------- cholesky

def _phi(P):
    """The lower triangle of P with its diagonal halved."""
    return P.tril() - 0.5 * _diag_embed(_diagonal(P, 0, -2, -1))


class _Cholesky(Function):
    """A = L L^T; backward sym(L^-T phi(L^T gL) L^-1) (LinalgCholeskyExBackward0)."""

    _node_name = "LinalgCholeskyExBackward0"

    @staticmethod
    def forward(ctx, A, upper):
        a = _val(A)
        low, info = _cholesky_info(a)
        if info.any():
            _raise_not_pd("linalg.cholesky", a, info)
        ctx.upper = upper
        ctx.out = _new(np.swapaxes(low, -1, -2) if upper else low, A)
        _keep(ctx, "LinalgCholeskyEx", outputs=[(0, ctx.out)])
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        _check_kept(ctx)
        L, gL = (_mT(ctx.out), _mT(g)) if ctx.upper else (ctx.out, g)
        Linv = _Inv.apply(L)
        gA = _mT(Linv) @ _phi(_mT(L) @ gL) @ Linv
        return 0.5 * (gA + _mT(gA)), None


def linalg_cholesky(A, *, upper=False, out=None):
    """The lower (upper) Cholesky factor, read from A's lower triangle; a matrix that is not
    positive-definite raises LinAlgError with PyTorch's message."""
    _check_square("linalg.cholesky", A)
    return _Cholesky.apply(A, upper)


def linalg_cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    """(L, info): info 0, or the order of the first leading minor that is not
    positive-definite (then L is LAPACK's partial factor, not differentiable)."""
    _check_square("linalg.cholesky_ex", A)
    low, info = _cholesky_info(_val(A))
    if info.any():
        if check_errors:
            _raise_not_pd("linalg.cholesky_ex", _val(A), info)
        return cholesky_ex_result(_new(np.swapaxes(low, -1, -2) if upper else low, A),
                                  _int_info(info))
    return cholesky_ex_result(_Cholesky.apply(A, upper), _int_info(info))


def cholesky(input, upper=False, *, out=None):
    _warn_once("torch.cholesky is deprecated in favor of torch.linalg.cholesky and will be "
               "removed in a future PyTorch release.\nL = torch.cholesky(A)\nshould be replaced "
               "with\nL = torch.linalg.cholesky(A)\nand\nU = torch.cholesky(A, upper=True)\n"
               "should be replaced with\nU = torch.linalg.cholesky(A).mH\nThis transform will "
               "produce equivalent results for all valid (symmetric positive definite) inputs.")
    with composite("CholeskyBackward0", (input,)) as comp:
        return comp.output(linalg_cholesky(input, upper=upper))


def _factor_product(L, upper):
    """L L^T (U^T U with upper) from the factor's triangle; the gradient reaches the whole
    factor, as PyTorch's cholesky_solve and cholesky_inverse formulas (which treat it as a
    full matrix)."""
    tri = L.triu() if upper else L.tril()
    F = L + (tri - L).detach()  # the triangle's values, the identity's gradient
    return _mT(F) @ F if upper else F @ _mT(F)


def cholesky_solve(B, L, upper=False, *, out=None):
    """X with (L L^T) X = B (U^T U with upper) for the Cholesky factor L (U)."""
    with composite("CholeskySolveBackward0", (B, L)) as comp:
        return comp.output(linalg_solve(_factor_product(L, upper), B))


def cholesky_inverse(L, upper=False, *, out=None):
    """(L L^T)^-1 (U^T U with upper) from the Cholesky factor."""
    with composite("CholeskyInverseBackward0", (L,)) as comp:
        return comp.output(linalg_inv(_factor_product(L, upper)))


# ---------------------------------------------------------------- qr

def _copy_upper_to_lower(M):
    return M.triu() + _mT(M.triu(1))


class _Qr(Function):
    """A = QR: backward (gQ - Q copyutl(M)) R^-T with M = Q^T gQ - gR R^T for m >= n and a
    reduced (or square) Q; a wide A through its leading square block (LinalgQrBackward0)."""

    _node_name = "LinalgQrBackward0"

    @staticmethod
    def forward(ctx, A, mode):
        q, r = np.linalg.qr(_val(A), mode="complete" if mode == "complete" else "reduced")
        ctx.mode = mode
        ctx.set_materialize_grads(False)
        ctx.Q, ctx.R = _new(q, A), _new(r, A)
        _keep(ctx, "LinalgQr", outputs=[(0, ctx.Q), (1, ctx.R)])
        return ctx.Q, ctx.R

    @staticmethod
    def backward(ctx, gQ, gR):
        _check_kept(ctx)
        Q, R = ctx.Q, ctx.R
        m, n = Q.shape[-2], R.shape[-1]
        if ctx.mode == "complete" and m > n:
            raise RuntimeError("The QR decomposition is not differentiable when mode='complete' "
                               "and nrows > ncols.")
        if m >= n:
            return _qr_square_backward(Q, R, gQ, gR), None
        # wide: A = [X | Y] with X = QU a square QR and R = [U | V], V = Q^T Y; V's gradient
        # reaches Y (Q gV) and Q (Y gV^T = Q V gV^T)
        U = R[..., :, :m]
        gY = None if gR is None else Q @ gR[..., :, m:]
        gQ_all = gQ
        if gR is not None:
            through_V = (Q @ R[..., :, m:]) @ _mT(gR[..., :, m:])
            gQ_all = through_V if gQ is None else gQ + through_V
        gX = _qr_square_backward(Q, U, gQ_all, None if gR is None else gR[..., :, :m])
        if gY is None:
            gY = zeros(tuple(R.shape[:-1]) + (n - m,), dtype=R.dtype)
        return cat([gX, gY], -1), None


def _qr_square_backward(Q, R, gQ, gR):
    """The gradient of A = QR (m >= n) from gQ and gR (either may be None)."""
    M = None
    if gQ is not None:
        M = _mT(Q) @ gQ
    if gR is not None:
        M = -(gR @ _mT(R)) if M is None else M - gR @ _mT(R)
    b = -(Q @ _copy_upper_to_lower(M))
    if gQ is not None:
        b = b + gQ
    # b R^-T = (R^-1 b^T)^T, a triangular solve
    return _mT(_SolveTriangular.apply(R.triu(), _mT(b), True))


def linalg_qr(A, mode="reduced", *, out=None):
    """(Q, R) with mode 'reduced' or 'complete'; mode 'r' gives an empty Q."""
    _check_matrix("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of "
                           "'reduced' (default), 'r', or 'complete'")
    if mode == "r":
        r = np.linalg.qr(_val(A), mode="r")
        return qr_result(_new(np.zeros((0,)), A), _Rfactor.apply(A, _new(r, A)))
    return qr_result(*_Qr.apply(A, mode))


class _Rfactor(Function):
    _node_name = "LinalgQrBackward0"

    @staticmethod
    def forward(ctx, A, r):
        return r

    @staticmethod
    def backward(ctx, g):
        raise RuntimeError("The derivative of linalg.qr depends on Q, which is not computed when "
                           "mode='r'. Please use linalg.qr(A, mode='reduced') if you are going "
                           "to differentiate through linalg.qr.")


def qr(input, some=True, *, out=None):
    _warn_once("torch.qr is deprecated in favor of torch.linalg.qr and will be removed in a "
               "future PyTorch release.\nThe boolean parameter 'some' has been replaced with a "
               "string parameter 'mode'.\nQ, R = torch.qr(A, some)\nshould be replaced with\n"
               "Q, R = torch.linalg.qr(A, 'reduced' if some else 'complete')")
    return torch_qr_result(*linalg_qr(input, "reduced" if some else "complete"))


# ---------------------------------------------------------------- eigh and svd

class _Eigh(Function):
    """A = V diag(w) V^T: backward V (skew(V^T gV) / E + diag(gw)) V^T with
    E_ij = w_j - w_i (LinalgEighBackward0)."""

    _node_name = "LinalgEighBackward0"

    @staticmethod
    def forward(ctx, A, uplo):
        w, v = np.linalg.eigh(_val(A), UPLO=uplo)
        ctx.set_materialize_grads(False)
        ctx.w, ctx.V = _new(w, A), _new(v, A)
        _keep(ctx, "LinalgEigh", outputs=[(0, ctx.w), (1, ctx.V)])
        return ctx.w, ctx.V

    @staticmethod
    def backward(ctx, gw, gV):
        _check_kept(ctx)
        w, V = ctx.w, ctx.V
        inner_ = None
        if gV is not None:
            K = _mT(V) @ gV
            E = w.unsqueeze(-2) - w.unsqueeze(-1) + eye(w.shape[-1], dtype=w.dtype)
            inner_ = 0.5 * (K - _mT(K)) / E
        if gw is not None:
            inner_ = _diag_embed(gw) if inner_ is None else inner_ + _diag_embed(gw)
        return V @ inner_ @ _mT(V), None


def linalg_eigh(A, UPLO="L", *, out=None):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices, read from the lower
    (UPLO='L') or upper triangle."""
    _check_square("linalg.eigh", A)
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return eigh_result(*_Eigh.apply(A, UPLO))


def linalg_eigvalsh(A, UPLO="L", *, out=None):
    _check_square("linalg.eigvalsh", A)
    return linalg_eigh(A, UPLO)[0]


class _Svd(Function):
    """A = U diag(S) Vh: PyTorch's svd_backward (LinalgSvdBackward0)."""

    _node_name = "LinalgSvdBackward0"

    @staticmethod
    def forward(ctx, A, full_matrices):
        u, s, vh = np.linalg.svd(_val(A), full_matrices=full_matrices)
        ctx.set_materialize_grads(False)
        ctx.U, ctx.S, ctx.Vh = _new(u, A), _new(s, A), _new(vh, A)
        _keep(ctx, "LinalgSvd", outputs=[(0, ctx.U), (1, ctx.S), (2, ctx.Vh)])
        return ctx.U, ctx.S, ctx.Vh

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        _check_kept(ctx)
        S = ctx.S
        k = S.shape[-1]
        U, Vh = ctx.U[..., :, :k], ctx.Vh[..., :k, :]
        gU = None if gU is None else gU[..., :, :k]
        gVh = None if gVh is None else gVh[..., :k, :]
        m, n = U.shape[-2], Vh.shape[-1]
        if gU is None and gVh is None:
            return U @ _diag_embed(gS) @ Vh, None
        S2 = S * S
        E = S2.unsqueeze(-2) - S2.unsqueeze(-1) + eye(k, dtype=S.dtype)
        inner_ = None
        if gU is not None:
            K = _mT(U) @ gU
            inner_ = (K - _mT(K)) / E * S.unsqueeze(-2)
        if gVh is not None:
            gV, V = _mT(gVh), _mT(Vh)
            K = _mT(V) @ gV
            term = S.unsqueeze(-1) * ((K - _mT(K)) / E)
            inner_ = term if inner_ is None else inner_ + term
        if gS is not None:
            inner_ = inner_ + _diag_embed(gS)
        gA = U @ inner_ @ Vh
        if m > k and gU is not None:
            gA = gA + ((gU - U @ (_mT(U) @ gU)) / S.unsqueeze(-2)) @ Vh
        if n > k and gVh is not None:
            gV, V = _mT(gVh), _mT(Vh)
            gA = gA + U @ _mT((gV - V @ (_mT(V) @ gV)) / S.unsqueeze(-2))
        return gA, None


def linalg_svd(A, full_matrices=True, *, driver=None, out=None):
    _check_matrix("linalg.svd", A)
    return svd_result(*_Svd.apply(A, full_matrices))


def linalg_svdvals(A, *, driver=None, out=None):
    _check_matrix("linalg.svdvals", A)
    return _Svd.apply(A, False)[1]


def svd(input, some=True, compute_uv=True, *, out=None):
    """torch.svd: (U, S, V) with V, not Vh (reduced unless some=False)."""
    if not compute_uv:
        S = linalg_svdvals(input)
        m, n = input.shape[-2], input.shape[-1]
        return torch_svd_result(zeros(input.shape[:-2] + (m, m), dtype=input.dtype), S,
                                zeros(input.shape[:-2] + (n, n), dtype=input.dtype))
    U, S, Vh = linalg_svd(input, full_matrices=not some)
    return torch_svd_result(U, S, _mT(Vh))


# ---------------------------------------------------------------- pinv, rank, lstsq

def _cutoff(s_max, atol, rtol, m, n, dtype):
    """The tolerance on singular values: max(atol, rtol * s_max), PyTorch's defaults."""
    if rtol is None:
        rtol = np.finfo(dtype.np).eps * builtins.max(m, n) if atol is None or atol == 0 else 0.0
    atol = 0.0 if atol is None else atol
    return np.maximum(atol, rtol * s_max)


class _Pinv(Function):
    """The pseudo-inverse; backward PyTorch's pinv_backward (LinalgPinvBackward0)."""

    _node_name = "LinalgPinvBackward0"

    @staticmethod
    def forward(ctx, A, atol, rtol, hermitian):
        a = _val(A)
        m, n = a.shape[-2:]
        if hermitian:
            w, v = np.linalg.eigh(a)
            tol = _cutoff(np.abs(w).max(-1, initial=0), atol, rtol, m, n, A.dtype)
            with np.errstate(divide="ignore"):
                winv = np.where(np.abs(w) > tol[..., None], 1 / w, 0)
            p = (v * winv[..., None, :]) @ np.swapaxes(v, -1, -2)
        else:
            u, s, vh = np.linalg.svd(a, full_matrices=False)
            tol = _cutoff(s.max(-1, initial=0), atol, rtol, m, n, A.dtype)
            with np.errstate(divide="ignore"):
                sinv = np.where(s > tol[..., None], 1 / s, 0)
            p = (np.swapaxes(vh, -1, -2) * sinv[..., None, :]) @ np.swapaxes(u, -1, -2)
        ctx.A = A
        ctx.out = _new(p, A)
        _keep(ctx, "LinalgPinv", [A], [(0, ctx.out)])
        return ctx.out

    @staticmethod
    def backward(ctx, g):
        _check_kept(ctx)
        A, P = ctx.A, ctx.out
        m, n = A.shape[-2], A.shape[-1]
        gPh, Ph = _mT(g), _mT(P)
        if m <= n:
            K = gPh @ P
            KPh = K @ Ph
            gA = -_mT(P @ K) + KPh - (A @ P) @ KPh + (Ph @ P) @ (gPh - K @ A)
        else:
            K = P @ gPh
            PhK = Ph @ K
            gA = -_mT(K @ P) + (gPh - A @ K) @ P @ Ph + PhK - PhK @ P @ A
        return gA, None, None, None


def linalg_pinv(A, *, atol=None, rtol=None, hermitian=False, out=None):
    """The pseudo-inverse: singular values (eigenvalues with hermitian) at most
    max(atol, rtol * the largest) are dropped."""
    if A.ndim < 2 or not A.dtype.is_floating_point:
        raise RuntimeError(f"linalg.pinv({_SHORT[A.dtype.name]}{{{list(A.shape)}}}): expected a "
                           "tensor with 2 or more dimensions of float, double, cfloat or cdouble "
                           "types")
    return _Pinv.apply(A, atol, rtol, hermitian)


def pinverse(input, rcond=1e-15):
    return linalg_pinv(input, rtol=rcond)


def linalg_matrix_rank(A, *, atol=None, rtol=None, hermitian=False, out=None):
    """The number of singular values above max(atol, rtol * the largest) (int64)."""
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.matrix_rank: The input tensor input must have at least 2 "
                           "dimensions.")
    if not A.dtype.is_floating_point:
        raise RuntimeError("This function doesn't handle types other than float and double")
    a = _val(A)
    s = np.abs(np.linalg.eigvalsh(a)) if hermitian else np.linalg.svd(a, compute_uv=False)
    tol = _cutoff(s.max(-1, initial=0), atol, rtol, a.shape[-2], a.shape[-1], A.dtype)
    rank = (s > tol[..., None]).sum(-1)
    return _result(_out(np.asarray(rank, dtype=np.int64), D.int64), D.int64)


lstsq_result = _return_type("linalg_lstsq", ["solution", "residuals", "rank",
                                             "singular_values"])


def linalg_lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares (minimum-norm) solution of AX = B, as pinv(A) @ B (PyTorch's
    gradient is pinv's); residuals, rank and singular values as the CPU driver gives them
    (gelsy, the default: rank only)."""
    if A.ndim < 2:
        raise RuntimeError("torch.linalg.lstsq: input must have at least 2 dimensions.")
    if B.ndim < 1:
        raise RuntimeError("torch.linalg.lstsq: other must have at least 1 dimension.")
    _check_float("torch.linalg.lstsq", A)
    if driver not in (None, "gelsy", "gelsd", "gelss", "gels"):
        raise RuntimeError("torch.linalg.lstsq: parameter `driver` should be one of (gels, "
                           "gelsy, gelsd, gelss)")
    if A.dtype is not B.dtype:
        raise RuntimeError("torch.linalg.lstsq: Expected input and other to have the same "
                           f"dtype, but got input's dtype {_SHORT[A.dtype.name]} and other's "
                           f"dtype {_SHORT[B.dtype.name]}")
    vector = B.ndim == A.ndim - 1
    rhs = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2], A.shape[-1]
    if rhs.shape[-2] != m:
        raise RuntimeError("torch.linalg.lstsq: input.size(-2) should match other.size("
                           f"{-1 if vector else -2})")
    rtol = np.finfo(A.dtype.np).eps * builtins.max(m, n) if rcond is None or rcond < 0 else rcond
    X = linalg_pinv(A, rtol=rtol) @ rhs
    empty = _new(np.zeros((0,)), A)
    s = np.linalg.svd(_val(A), compute_uv=False)
    rank_values = (s > rtol * s.max(-1, initial=0)[..., None]).sum(-1)
    rank = _result(_out(np.asarray(rank_values, dtype=np.int64), D.int64), D.int64)
    residuals = empty
    # gelsy never computes residuals; the others when m > n and (gelsd, gelss) A has full rank
    if driver in ("gels", "gelsd", "gelss") and m > n and \
            (driver == "gels" or (rank_values == n).all()):
        residuals = ((A @ X - rhs) ** 2).sum(-2)
        with composite("LinalgLstsqBackward0", (A, B)) as comp:
            residuals = comp.output(residuals.squeeze(-1) if vector else residuals + 0)
    sv = _new(s, A) if driver in ("gelsd", "gelss") else empty
    if driver == "gels":
        rank = _result(_out(np.zeros((0,), dtype=np.int64), D.int64), D.int64)
    with composite("LinalgLstsqBackward0", (A, B)) as comp:
        X = comp.output(X.squeeze(-1) if vector else X)
    return lstsq_result(X, residuals, rank, sv)


# ---------------------------------------------------------------- matrix_exp

_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)


def _expm(a):
    """exp of each matrix: scaling and squaring with the [13/13] Pade approximant (Higham
    2005), in float64."""
    a = np.asarray(a, dtype=np.float64)
    b = _PADE13
    norm = np.abs(a).sum(-2).max(-1) if a.shape[-1] else np.zeros(a.shape[:-2])
    with np.errstate(divide="ignore"):
        squarings = np.maximum(0, np.ceil(np.log2(norm / 5.371920351148152))).astype(np.int64)
    a = a / (2.0 ** squarings)[..., None, None]
    ident = np.broadcast_to(np.eye(a.shape[-1]), a.shape)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2
             + b[1] * ident)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + \
        b[0] * ident
    r = np.linalg.solve(v - u, v + u)
    for k in range(int(squarings.max(initial=0))):
        r = np.where((squarings > k)[..., None, None], r @ r, r)
    return r


class _MatrixExp(Function):
    """exp(A); backward the upper-right block of exp([[A^T, g], [0, A^T]])
    (LinalgMatrixExpBackward0), itself a matrix_exp, so differentiable again."""

    _node_name = "LinalgMatrixExpBackward0"

    @staticmethod
    def forward(ctx, A):
        ctx.A = A
        _keep(ctx, "LinalgMatrixExp", [A])
        return _new(_expm(_val(A)), A)

    @staticmethod
    def backward(ctx, g):
        _check_kept(ctx)
        At = _mT(ctx.A)
        n = At.shape[-1]
        shape = tuple(g.shape[:-2])
        At = At.expand(shape + (n, n))
        top = cat([At, g], -1)
        bottom = cat([zeros(shape + (n, n), dtype=g.dtype), At], -1)
        return _MatrixExp.apply(cat([top, bottom], -2))[..., :n, n:]


def linalg_matrix_exp(A):
    _check_square("linalg.matrix_exp", A)
    return _MatrixExp.apply(A)


def matrix_exp(A):
    return linalg_matrix_exp(A)


# ---------------------------------------------------------------- norms

def linalg_vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    """The ord-norm of x's elements over dim (all of them when None)
    (LinalgVectorNormBackward0)."""
    _check_float("linalg.vector_norm", x)
    if dtype is not None:
        x = x.to(dtype)
    if dim is None and keepdim and x.ndim:
        return linalg_vector_norm(x, ord, tuple(range(x.ndim)), True)
    if dim is None and x.ndim > 1:
        return linalg_vector_norm(x.reshape(-1), ord, None, False)
    if ord == 2:
        return x.norm(2, dim, keepdim)
    return x.norm(ord, dim, keepdim)


def _matrix_dims(name, A, dim):
    _check_matrix(name, A)
    d0, d1 = (_wrap_dim(d, A.ndim) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"{name}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def linalg_matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
    """'fro', 'nuc', inf, -inf, 1, -1, 2, -2 norms of the matrices in dims ``dim``."""
    d0, d1 = _matrix_dims("linalg.matrix_norm", A, dim)
    if dtype is not None:
        A = A.to(dtype)
    if ord == "fro":
        return linalg_vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        moved = A.movedim((d0, d1), (-2, -1))
        s = linalg_svdvals(moved)
        out_ = s.sum(-1) if ord == "nuc" else amax(s, -1) if ord == 2 else amin(s, -1)
        if keepdim:
            out_ = out_.unsqueeze(builtins.min(d0, d1)).unsqueeze(builtins.max(d0, d1))
        return out_
    if ord in (1, -1, math.inf, -math.inf):
        summed, reduced = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = A.abs().sum(summed, keepdim=keepdim)
        if not keepdim and reduced > summed:
            reduced -= 1
        return amax(sums, reduced, keepdim) if ord > 0 else amin(sums, reduced, keepdim)
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None):
    """vector_norm or matrix_norm, as PyTorch picks: by ord (a string: a matrix norm), by dim
    (one dim or two), by A's dims."""
    if dim is not None and not isinstance(dim, (list, tuple)):
        dim = (dim,)
    if isinstance(ord, str) or (dim is not None and len(dim) == 2) or \
            (dim is None and ord is not None and A.ndim == 2):
        if dim is None:
            dim = (-2, -1)
        return linalg_matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if ord is not None and dim is None and A.ndim != 1:
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be "
                           f"1D or 2D. Got {A.ndim}D.")
    return linalg_vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def linalg_cond(A, p=None):
    """The condition number: the ratio of the extreme singular values (p None, 2, -2), or
    norm(A, p) * norm(A^-1, p), inf for a singular A (NanToNumBackward0, as PyTorch's)."""
    _check_matrix("linalg.cond", A)
    if p in (None, 2, -2):
        s = linalg_svdvals(A)
        hi, lo = amax(s, -1), amin(s, -1)
        return hi / lo if p != -2 else lo / hi
    label = (p if isinstance(p, (str, int)) else f"{p:.6f}" if math.isfinite(p)
             else "inf" if p > 0 else "-inf")  # (an int as given, a float as C++ prints it)
    _check_square(f"linalg.cond(ord={label})", A)
    inverse, info = linalg_inv_ex(A)
    singular = _val(info) > 0
    norm_inverse = linalg_matrix_norm(inverse if not singular.any() else
                                      _masked_identity(inverse, singular), p)
    if singular.any():
        norm_inverse = where(tensor(singular), math.inf, norm_inverse)
    return nan_to_num(linalg_matrix_norm(A, p) * norm_inverse, math.inf, math.inf, -math.inf)


def _masked_identity(A, mask):
    """A with the matrices at ``mask`` (its batch shape) replaced by the identity."""
    ident = eye(A.shape[-1], dtype=A.dtype)
    return where(tensor(mask).unsqueeze(-1).unsqueeze(-1), ident, A)


def dist(input, other, p=2):
    """The p-norm of input - other (broadcast) (DistBackward0)."""
    if not input.dtype.is_floating_point:
        raise RuntimeError("norm(): input dtype should be either floating point or complex. Got "
                           f"{_SHORT[input.dtype.name]} instead.")
    with composite("DistBackward0", (input, other)) as comp:
        return comp.output(linalg_vector_norm(input - other, p))


def renorm(input, p, dim, maxnorm):
    """Each slice along dim whose p-norm exceeds maxnorm scaled to norm maxnorm."""
    if not p > 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm:g}")
    if input.ndim < 2:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {input.ndim} "
                           "dimensions")
    d = _wrap_dim(dim, input.ndim)
    others = tuple(k for k in range(input.ndim) if k != d)
    with composite("RenormBackward0", (input,)) as comp:
        norms = linalg_vector_norm(input, p, others, True)
        factor = where(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0)
        return comp.output(input * factor)


def renorm_(self, p, dim, maxnorm):
    return _inplace(self, lambda: renorm(self, p, dim, maxnorm), None)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distances between the rows of x1 (..., P, M) and x2 (..., R, M)
    (CdistBackward0)."""
    if x1.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D")
    if x2.ndim < 2:
        raise RuntimeError(f"cdist only supports at least 2D tensors, X2 got: {x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    with composite("CdistBackward0", (x1, x2)) as comp:
        diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
        return comp.output(linalg_vector_norm(diff, p, -1))


# ---------------------------------------------------------------- products

def linalg_matrix_power(A, n):
    """A^n by repeated squaring; a negative n powers the inverse."""
    _check_square("linalg.matrix_power", A)
    if n == 0:
        ident = eye(A.shape[-1], dtype=A.dtype).expand(A.shape)
        return where(tensor(True).expand(A.shape), ident, A)
    if n < 0:
        A, n = linalg_inv(A), -n
    if n == 1:
        return A.clone()
    result, power = None, A
    while n:
        if n & 1:
            result = power if result is None else result @ power
        n >>= 1
        if n:
            power = power @ power
    return result


def matrix_power(input, n):
    return linalg_matrix_power(input, n)


def linalg_multi_dot(tensors, *, out=None):
    """The product of the matrices in order (the first may be 1-d: a row, the last: a
    column)."""
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    ts = list(tensors)
    first_vec, last_vec = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vec:
        ts[0] = ts[0].unsqueeze(0)
    if last_vec:
        ts[-1] = ts[-1].unsqueeze(-1)
    for i, t in enumerate(ts):
        if t.ndim != 2:
            pos = "first" if i == 0 else "last" if i == len(ts) - 1 else None
            if pos:
                raise RuntimeError(f"multi_dot(): the {pos} tensor must be 1D or 2D but got "
                                   f"{tensors[i].ndim}D")
            raise RuntimeError(f"multi_dot(): tensor {i} must be 2D but got {t.ndim}D")
    out_ = ts[0]
    for t in ts[1:]:
        out_ = out_ @ t
    if first_vec:
        out_ = out_.squeeze(0)
    if last_vec:
        out_ = out_.squeeze(-1)
    return out_


def chain_matmul(*matrices, out=None):
    _warn_once("torch.chain_matmul is deprecated and will be removed in a future PyTorch "
               "release. Use torch.linalg.multi_dot instead, which accepts a list of two or more "
               "tensors rather than multiple parameters.")
    if len(matrices) == 1:
        return matrices[0].clone()
    return linalg_multi_dot(matrices)


def _cross_dim(name, input, other, dim):
    d = _wrap_dim(dim, builtins.max(input.ndim, other.ndim))
    if input.ndim != other.ndim:
        raise RuntimeError(f"{name}: inputs must have the same number of dimensions.")
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise RuntimeError(f"{name}: inputs dimension {dim} must have length 3. Got "
                           f"{input.shape[d]} and {other.shape[d]}")
    return d


def linalg_cross(input, other, *, dim=-1, out=None):
    """The cross product of 3-vectors along dim, batch dims broadcast (LinalgCrossBackward0)."""
    d = _cross_dim("linalg.cross", input, other, dim)
    with composite("LinalgCrossBackward0", (input, other)) as comp:
        a = [input.select(d, i) for i in range(3)]
        b = [other.select(d, i) for i in range(3)]
        parts = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
        return comp.output(stack(parts, d))


def cross(input, other, dim=None, *, out=None):
    """torch.cross: dim defaults to the first dim of size 3 (with PyTorch's warning)."""
    if dim is None:
        _warn_once("Using torch.cross without specifying the dim arg is deprecated.\nPlease "
                   "either pass the dim explicitly or simply use torch.linalg.cross.\nThe "
                   "default value of dim will change to agree with that of linalg.cross in a "
                   "future release.")
        shape = np.broadcast_shapes(tuple(input.shape), tuple(other.shape))
        dim = next((k for k, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return linalg_cross(input, other, dim=dim)


def linalg_vecdot(x, y, *, dim=-1, out=None):
    return (x * y).sum(dim)


def linalg_diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    return _diagonal(A, offset, dim1, dim2)


def linalg_vander(x, *, N=None):
    """Columns x^0 .. x^(N-1) (N = x's last size by default), by a cumulative product."""
    n = (x.shape[-1] if x.ndim else 0) if N is None else N
    if n <= 1:
        if n < 1:
            raise RuntimeError("N must be greater than 1.")
        return x.unsqueeze(-1) ** 0
    powers = x.unsqueeze(-1).expand(tuple(x.shape) + (n - 1,)).cumprod(-1)
    return cat([x.unsqueeze(-1) ** 0, powers], -1)


def trace(input):
    """The sum of a 2-d tensor's diagonal (TraceBackward0)."""
    if input.ndim != 2:
        raise RuntimeError("trace: expected a matrix, but got tensor with dim "
                           f"{input.ndim}")
    with composite("TraceBackward0", (input,)) as comp:
        return comp.output(_diagonal(input, 0, 0, 1).sum())


def inner(input, other, *, out=None):
    """Sums of products over the last dims: shape input[:-1] + other[:-1] (0-d: a product)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but "
                           f"got shapes {list(input.shape)} and {list(other.shape)}")
    k = input.shape[-1]
    flat = input.reshape(-1, k) @ other.reshape(-1, k).transpose(0, 1)
    return flat.reshape(tuple(input.shape[:-1]) + tuple(other.shape[:-1]))


def vdot(input, other, *, out=None):
    """The dot product of two 1-d tensors (real: no conjugate) (VdotBackward0)."""
    with composite("VdotBackward0", (input, other)) as comp:
        return comp.output(matmul(input, other) if input.ndim == other.ndim == 1
                           else _dot_error(input, other))


def _dot_error(input, other):
    raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")


def ger(input, vec2):
    """The outer product of two 1-d tensors."""
    for name, t in (("self", input), ("vec2", vec2)):
        if t.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t.ndim}-D")
    return input.outer(vec2)


def kron(input, other):
    """The Kronecker product: each element of input times the whole of other."""
    nd = builtins.max(input.ndim, other.ndim)
    a = input.reshape((1,) * (nd - input.ndim) + tuple(input.shape))
    b = other.reshape((1,) * (nd - other.ndim) + tuple(other.shape))
    a_view = [s for pair in zip(a.shape, (1,) * nd) for s in pair]
    b_view = [s for pair in zip((1,) * nd, b.shape) for s in pair]
    out_shape = tuple(p * q for p, q in zip(a.shape, b.shape))
    return (a.reshape(a_view) * b.reshape(b_view)).reshape(out_shape)


def tensordot(a, b, dims=2, out=None):
    """Sums of products over dims of a and b: ``dims`` an int (a's last and b's first dims) or
    two lists."""
    if isinstance(dims, int):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        da, db = list(range(-dims, 0)), list(range(dims))
    elif isinstance(dims, Tensor):
        return tensordot(a, b, dims.tolist())
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    for p, q in zip(da, db):
        if a.shape[p] != b.shape[q]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size "
                               f"{a.shape[p]} in dim {p} and second has size {b.shape[q]} in "
                               f"dim {q}")
    da = [_wrap_dim(d, a.ndim) for d in da]
    db = [_wrap_dim(d, b.ndim) for d in db]
    ra = [d for d in range(a.ndim) if d not in da]
    rb = [d for d in range(b.ndim) if d not in db]
    k = math.prod(a.shape[d] for d in da)
    am = a.permute(ra + da).reshape(math.prod(a.shape[d] for d in ra), k)
    bm = b.permute(db + rb).reshape(k, math.prod(b.shape[d] for d in rb))
    return (am @ bm).reshape([a.shape[d] for d in ra] + [b.shape[d] for d in rb])


def _scaled_sum(name, input, product, beta, alpha, operands):
    """beta * input + alpha * product, input ignored when beta is 0 (its nan too)."""
    with composite(name, operands) as comp:
        scaled = product if alpha == 1 else product * alpha
        if beta == 0:  # input only broadcasts, its gradient 0
            return comp.output(where(tensor(False), input, 0.0) + scaled)
        base = input if beta == 1 else input * beta
        return comp.output(base + scaled)


def addmv(input, mat, vec, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * (mat @ vec) (AddmvBackward0)."""
    if mat.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got {input.ndim}, {mat.ndim}, "
                           f"{vec.ndim}")
    return _scaled_sum("AddmvBackward0", input, mat @ vec, beta, alpha, (input, mat, vec))


def addr(input, vec1, vec2, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * outer(vec1, vec2) (AddrBackward0)."""
    if vec1.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"addr: Expected 1-D argument vec1, but got {vec1.ndim}-D"
                           if vec1.ndim != 1 else
                           f"addr: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    return _scaled_sum("AddrBackward0", input, vec1.outer(vec2), beta, alpha,
                       (input, vec1, vec2))


def addbmm(input, batch1, batch2, *, beta=1, alpha=1, out=None):
    """beta * input + alpha * the sum over the batch of batch1[i] @ batch2[i]
    (AddbmmBackward0)."""
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor" if batch1.ndim != 3
                           else "batch2 must be a 3D tensor")
    return _scaled_sum("AddbmmBackward0", input, (batch1 @ batch2).sum(0), beta, alpha,
                       (input, batch1, batch2))


def addmv_(self, mat, vec, *, beta=1, alpha=1):
    return _inplace(self, lambda: addmv(self, mat, vec, beta=beta, alpha=alpha),
                    (mat, vec))


def addr_(self, vec1, vec2, *, beta=1, alpha=1):
    return _inplace(self, lambda: addr(self, vec1, vec2, beta=beta, alpha=alpha),
                    (vec1, vec2))


def addbmm_(self, batch1, batch2, *, beta=1, alpha=1):
    return _inplace(self, lambda: addbmm(self, batch1, batch2, beta=beta, alpha=alpha),
                    (batch1, batch2))


# ---------------------------------------------------------------- statistics

def cov(input, *, correction=1, fweights=None, aweights=None):
    """The covariance of the variables in input's rows (observations in columns; a 1-d input
    is one variable), weighted by fweights and aweights as PyTorch's."""
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an "
                           f"input with {input.ndim} dimensions")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    if not x.dtype.is_floating_point:
        x = x.to(D.get_default_dtype())
    n = x.shape[1]
    for name, weights, integral in (("fweights", fweights, True),
                                    ("aweights", aweights, False)):
        if weights is not None:
            _check_weights(name, weights, integral, n)
    w = None
    if fweights is not None:
        w = fweights
    if aweights is not None:
        w = aweights if w is None else w * aweights
    if w is None:
        avg = x.mean(1)
        w_sum = n
        norm = n - correction
    else:
        w_sum = w.sum()
        avg = (x * w).sum(1) / w_sum
        if correction == 0:
            norm = w_sum
        elif aweights is None:
            norm = w_sum - correction
        else:
            norm = w_sum - correction * (w * aweights).sum() / w_sum
    if isinstance(norm, Tensor):
        norm = where(norm > 0, norm, 0.0)
    else:
        if norm <= 0:
            warnings.warn("cov(): degrees of freedom is <= 0. Correction should be strictly "
                          "less than the number of observations.", UserWarning, stacklevel=2)
        norm = builtins.max(norm, 0)
    centred = x - avg.unsqueeze(1)
    weighted = centred if w is None else centred * w
    c = (weighted @ _mT(centred)) / norm
    return c.squeeze()


def _check_weights(name, weights, integral, n):
    if integral and weights.dtype.is_floating_point:
        raise RuntimeError(f"cov(): expected {name} to have integral dtype but got {name} with "
                           f"{_SHORT[weights.dtype.name]} dtype")
    if not integral and not weights.dtype.is_floating_point:
        raise RuntimeError(f"cov(): expected {name} to have floating point dtype but got {name} "
                           f"with {_SHORT[weights.dtype.name]} dtype")
    if weights.ndim > 1:
        raise RuntimeError(f"cov(): expected {name} to have one or fewer dimensions but got "
                           f"{name} with {weights.ndim} dimensions")
    if weights.numel() != n:
        raise RuntimeError(f"cov(): expected {name} to have the same numel as there are "
                           f"observations in the input but got {weights.numel()} != {n}")
    if (_val(weights) < 0).any():
        raise RuntimeError(f"cov(): {name} cannot be negative")


def corrcoef(input):
    """Pearson correlation coefficients: cov scaled by the standard deviations, clipped to
    [-1, 1]."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = _diagonal(c, 0, 0, 1)
    std = d.sqrt()
    c = c / std.unsqueeze(1)
    c = c / std.unsqueeze(0)
    return c.clamp(-1, 1)


# ---- Tensor methods: the function forms above, the tensor as ``self``
Tensor.addbmm = addbmm
Tensor.addbmm_ = addbmm_
Tensor.addmv = addmv
Tensor.addmv_ = addmv_
Tensor.addr = addr
Tensor.addr_ = addr_
Tensor.cholesky = cholesky
Tensor.cholesky_inverse = cholesky_inverse
Tensor.cholesky_solve = cholesky_solve
Tensor.cross = cross
Tensor.det = det
Tensor.dist = dist
Tensor.ger = ger
Tensor.inner = inner
Tensor.inverse = inverse
Tensor.kron = kron
Tensor.logdet = logdet
Tensor.matrix_exp = matrix_exp
Tensor.matrix_power = matrix_power
Tensor.pinverse = pinverse
Tensor.qr = qr
Tensor.renorm = renorm
Tensor.renorm_ = renorm_
Tensor.slogdet = slogdet
Tensor.svd = svd
Tensor.trace = trace
Tensor.triangular_solve = triangular_solve
Tensor.vdot = vdot
Tensor.corrcoef = corrcoef
Tensor.cov = cov
