"""``torch.linalg``: norms, determinants, inverses and solvers, factorizations (cholesky, qr,
eigh, svd), products; the implementations are in ``tapegrad._ops_linalg``."""
from __future__ import annotations

from ._ops_linalg import LinAlgError
from ._ops_linalg import linalg_cholesky as cholesky
from ._ops_linalg import linalg_cholesky_ex as cholesky_ex
from ._ops_linalg import linalg_cond as cond
from ._ops_linalg import linalg_cross as cross
from ._ops_linalg import linalg_det as det
from ._ops_linalg import linalg_diagonal as diagonal
from ._ops_linalg import linalg_eigh as eigh
from ._ops_linalg import linalg_eigvalsh as eigvalsh
from ._ops_linalg import linalg_inv as inv
from ._ops_linalg import linalg_inv_ex as inv_ex
from ._ops_linalg import linalg_lstsq as lstsq
from ._ops_linalg import linalg_matrix_exp as matrix_exp
from ._ops_linalg import linalg_matrix_norm as matrix_norm
from ._ops_linalg import linalg_matrix_power as matrix_power
from ._ops_linalg import linalg_matrix_rank as matrix_rank
from ._ops_linalg import linalg_multi_dot as multi_dot
from ._ops_linalg import linalg_norm as norm
from ._ops_linalg import linalg_pinv as pinv
from ._ops_linalg import linalg_qr as qr
from ._ops_linalg import linalg_slogdet as slogdet
from ._ops_linalg import linalg_solve as solve
from ._ops_linalg import linalg_solve_ex as solve_ex
from ._ops_linalg import linalg_solve_triangular as solve_triangular
from ._ops_linalg import linalg_svd as svd
from ._ops_linalg import linalg_svdvals as svdvals
from ._ops_linalg import linalg_vander as vander
from ._ops_linalg import linalg_vecdot as vecdot
from ._ops_linalg import linalg_vector_norm as vector_norm
from ._tensor import matmul

__all__ = [
    "LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eigh",
    "eigvalsh", "inv", "inv_ex", "lstsq", "matmul", "matrix_exp", "matrix_norm", "matrix_power",
    "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve", "solve_ex",
    "solve_triangular", "svd", "svdvals", "vander", "vecdot", "vector_norm",
]
