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
# ... and past this many values (64 MiB) in its arena.
ROTATE_VALUES = 1 << 23
# Lazily computed results (see _tensor._lazy_record): at most this many elements for
# + - * / and negation, and for tanh (computed by libm's tanh, ~8 ns per element, where NumPy's
# vectorized one is faster on larger arrays).  TAPEGRAD_LAZY=0 computes every result at once.
LAZY = os.environ.get("TAPEGRAD_LAZY") != "0"
LAZY_ARITH = 1 << 16
LAZY_TANH = 256
# Results of at least this many elements whose own backward does not read them (a product, a
# sum: _tape.READS) are not copied into the arena when recorded; a record that reads them
# copies them when it is flushed (Segment.defer).  TAPEGRAD_DEFER_MIN=2 defers every array
# result; TAPEGRAD_DEFER_POISON=1 fills the places of deferred values with nan until they are
# copied, so that reading one before fails loudly (the test suite runs so in .ci/run).
DEFER_MIN = int(os.environ.get("TAPEGRAD_DEFER_MIN", "16384"))
DEFER_POISON = os.environ.get("TAPEGRAD_DEFER_POISON") == "1"


def pin_blas_threads() -> None:
    """Limit the BLAS pool Numba's ``np.dot`` uses inside the sweep (SciPy's OpenBLAS).

    Its threads fought other pools on a 2-core machine: one backward was measured
    10-70x slower until this was pinned.  Only SciPy's OpenBLAS is touched, not
    NumPy's, which the user's own forward code uses.  ``TAPEGRAD_BLAS_THREADS``
    sets the count (default 1).
    """
    import ctypes

    n = int(os.environ.get("TAPEGRAD_BLAS_THREADS", "1"))
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line and "/scipy" in line}
    except OSError:  # not Linux: leave the pool alone
        return
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                break
