"""Thread count of NumPy's BLAS, set at run time.

tapegrad and HIPS autograd compute matrix products with NumPy, whose OpenBLAS starts one thread
per core. Compared with PyTorch single-threaded that is not like for like, and on a shared
2-core machine a multi-threaded BLAS call whose second thread is descheduled by another process
can take 20x longer than on one thread (measured while writing this suite). The runner therefore
pins NumPy's BLAS to one thread unless told otherwise; ``torch-mt`` is the multi-threaded peer.

``threadpoolctl`` does this when installed; otherwise the OpenBLAS libraries mapped into the
process (Linux ``/proc/self/maps``) are called through ``ctypes``.
"""
from __future__ import annotations

import ctypes
import os
from typing import Any

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")
_defaults: dict[str, int] = {}


def _openblas_libs() -> list[tuple[str, Any, Any]]:
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f
                            if "openblas" in line.rsplit("/", 1)[-1].lower()
                            and ".so" in line})
    except OSError:
        return []
    libs = []
    for path in paths:
        if not os.path.exists(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
        getter = next((getattr(lib, s) for s in _GETTERS if hasattr(lib, s)), None)
        if setter is not None and getter is not None:
            getter.restype = ctypes.c_int
            libs.append((path, setter, getter))
    return libs


def set_blas_threads(n: int | None) -> str:
    """Set NumPy's BLAS to ``n`` threads (``None``: back to its default); describe the result.

    Returns a short text for the report, saying when the thread count could not be set.
    """
    import numpy  # noqa: F401  (loads NumPy's BLAS before looking for it)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        if n is not None:
            threadpool_limits(limits=n, user_api="blas")
            return f"{n} (threadpoolctl)"
        threadpool_limits(limits=None, user_api="blas")
        return "library default"
    libs = _openblas_libs()
    if not libs:
        return "unknown (no OpenBLAS found and no threadpoolctl: not set)"
    for path, setter, getter in libs:
        _defaults.setdefault(path, int(getter()))
        setter(ctypes.c_int(n if n is not None else _defaults[path]))
    counts = sorted({int(getter()) for _, _, getter in libs})
    return "/".join(map(str, counts)) + ("" if n is not None else " (library default)")
