"""Tape sizes and thread settings.

The Numba options live in ``_tape.NJIT``, beside the kernels: Numba's on-disk
cache only notices edits to the module that holds the compiled functions.
"""
from __future__ import annotations

import os

# Capacity of a fresh segment (records) and of its value arena (elements).
SEGMENT_RECORDS = 1 << 12
SEGMENT_VALUES = 1 << 14
# Records staged in a Python list before they are flushed into the columns.
STAGE_RECORDS = 1 << 11
# A segment that is still referenced is grown up to this many records; past
# it a new segment is started, so garbage graphs never hold unbounded memory.
ROTATE_RECORDS = 1 << 16
# ... and past this many values (8 MiB) in its arena.
ROTATE_VALUES = 1 << 20


def pin_blas_threads(n: int = 1) -> None:
    """Limit the BLAS pool Numba's ``np.dot`` uses (SciPy's OpenBLAS).

    Its threads fight other pools on small machines: one backward was measured
    70x slower until this was pinned.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, str(n))
        return
    threadpool_limits(n, user_api="blas")
