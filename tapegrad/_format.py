"""Tensor ``repr`` formatting.

Reproduces the output of PyTorch 2.13's ``torch/_tensor_str.py`` character for
character (for dense CPU tensors of the dtypes tapegrad supports), so that a
tapegrad tensor prints exactly like the equivalent torch tensor, apart from the
module name in the dtype suffix (``dtype=tapegrad.float64``).

The overall scheme, as in PyTorch:

1. One ``_Formatter`` looks at the values that will be shown and picks a single
   notation (integer-like, fixed point or scientific) and a single column width
   for every element.
2. ``_render`` walks the array recursively, eliding the middle of long
   dimensions with ``...`` when the tensor has more than ``threshold`` elements,
   and wraps long rows at ``linewidth``.
3. ``_add_suffixes`` appends ``size=``, ``dtype=`` and the caller's suffixes
   (``requires_grad=True``, ``grad_fn=<...>``), moving one onto a new line when
   it would not fit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["format_tensor", "get_printoptions", "set_printoptions"]

_PREFIX = "tensor("

# dtype name -> NumPy dtype used to hold (and therefore to round) the values.
_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name)
    for name in (
        "float32",
        "float64",
        "float16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint8",
        "bool",
    )
}
_FLOAT_DTYPES = frozenset({"float32", "float64", "float16"})

# The default float dtype is always float32 in tapegrad.
_DEFAULT_FLOAT = "float32"
# Dtypes a non-empty tensor can be recreated from without a dtype= argument.
_IMPLIED_DTYPES = frozenset({_DEFAULT_FLOAT, "int64", "bool"})


@dataclasses.dataclass
class _PrintOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


_OPTS = _PrintOptions()

_PROFILES: dict[str, dict[str, Any]] = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set the options used when printing tensors (same semantics as torch).

    ``profile`` ('default', 'short' or 'full') is applied first and the other
    arguments override it. As in torch, an unknown profile is ignored and
    ``sci_mode`` is always assigned, so omitting it restores automatic choice.
    """
    if profile is not None:
        for name, value in _PROFILES.get(profile, {}).items():
            setattr(_OPTS, name, value)
    overrides = {
        "precision": precision,
        "threshold": threshold,
        "edgeitems": edgeitems,
        "linewidth": linewidth,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(_OPTS, name, value)
    _OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """Current print options, as keyword arguments for ``set_printoptions``."""
    return dataclasses.asdict(_OPTS)


class _Formatter:
    """Common notation and column width for all elements of one tensor."""

    def __init__(self, sample: np.ndarray, is_float: bool) -> None:
        self.is_float = is_float
        self.precision = _OPTS.precision
        self.int_mode = True
        self.sci_mode = False
        self.width = 1

        if not is_float:
            for value in sample.ravel().tolist():
                self.width = max(self.width, len(str(value)))
            return

        flat = sample.ravel()
        shown = flat[np.isfinite(flat) & (flat != 0)]
        if shown.size == 0:
            # Only zeros / nan / inf: torch keeps the integer-like notation and
            # ignores a forced sci_mode here.
            return

        self.int_mode = bool(np.all(shown == np.ceil(shown)))

        # Compare magnitudes in Python floats (binary64, like torch's double
        # conversion); an overflowing ratio becomes inf without a warning.
        magnitudes = np.abs(shown.astype(np.float64))
        smallest, largest = float(magnitudes.min()), float(magnitudes.max())
        if _OPTS.sci_mode is None:
            self.sci_mode = (
                largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
            )
        else:
            self.sci_mode = _OPTS.sci_mode

        # Zeros and non-finite values do not take part in the width; they are
        # padded to it (or overflow it) when printed.
        for value in shown.tolist():
            text = self._digits(value)
            if self.int_mode and not self.sci_mode:
                text += "."
            self.width = max(self.width, len(text))

    def _digits(self, value: float) -> str:
        if self.sci_mode:
            return f"{value:.{self.precision}e}"
        if self.int_mode:
            return f"{value:.0f}"
        return f"{value:.{self.precision}f}"

    def format(self, value: float | bool) -> str:
        """One element, right-aligned to the common width."""
        if not self.is_float:
            text = str(value)
        else:
            text = self._digits(value)
            # The trailing '.' marks integer-valued floats as floats.
            if self.int_mode and not self.sci_mode and math.isfinite(value):
                text += "."
        return text.rjust(self.width)


def _kept_indices(size: int, edgeitems: int) -> list[int]:
    """Indices of one dimension that survive summarisation."""
    if size > 2 * edgeitems:
        return [*range(edgeitems), *range(size - edgeitems, size)]
    return list(range(size))


def _formatter_sample(values: np.ndarray, summarize: bool) -> np.ndarray:
    """The elements the formatter must accommodate (only the visible ones)."""
    edgeitems = _OPTS.edgeitems
    if not summarize or values.ndim == 0:
        return values
    if values.ndim == 1:
        # Sliced as torch does; note that with edgeitems == 0, a[-0:] is the
        # whole row although only "..." gets printed.
        if len(values) > 2 * edgeitems:
            return np.concatenate((values[:edgeitems], values[-edgeitems:]))
        return values
    if not edgeitems:
        return values[(slice(0, 0),) * values.ndim]
    return values[np.ix_(*(_kept_indices(n, edgeitems) for n in values.shape))]


def _render_row(row: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    edgeitems = _OPTS.edgeitems
    if summarize and not edgeitems:
        items = ["..."]
    elif summarize and len(row) > 2 * edgeitems:
        head = [fmt.format(v) for v in row[:edgeitems].tolist()]
        tail = [fmt.format(v) for v in row[-edgeitems:].tolist()]
        items = [*head, " ...", *tail]
    else:
        items = [fmt.format(v) for v in row.tolist()]

    # Each element takes its width plus ", "; the elision marker counts as one.
    per_line = max(1, math.floor((_OPTS.linewidth - indent) / (fmt.width + 2)))
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _render(values: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    """Bracketed text of `values`; continuation lines start at column indent + 1."""
    if values.ndim == 0:
        return fmt.format(values.item())
    if values.ndim == 1:
        return _render_row(values, indent, summarize, fmt)

    size, edgeitems = values.shape[0], _OPTS.edgeitems
    if summarize and size > 2 * edgeitems:
        head = [
            _render(values[i], indent + 1, summarize, fmt) for i in range(edgeitems)
        ]
        tail = [
            _render(values[i], indent + 1, summarize, fmt)
            for i in range(size - edgeitems, size)
        ]
        parts = [*head, "...", *tail]
    else:
        parts = [_render(sub, indent + 1, summarize, fmt) for sub in values]

    # Sub-blocks of a k-d tensor are separated by k-2 blank lines.
    separator = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def _add_suffixes(text: str, suffixes: Sequence[tuple[str, int]], indent: int) -> str:
    """Close the repr, appending (suffix, layout length) items."""
    # torch's arithmetic counts the last line as two characters longer than it
    # really is; the same quirk is kept so that lines break at the same places.
    line_len = len(text) - text.rfind("\n") + 1
    pieces = [text]
    for suffix, length in suffixes:
        if line_len + length + 2 > _OPTS.linewidth:
            pieces.append(",\n" + " " * indent + suffix)
            line_len = indent + length
        else:
            pieces.append(", " + suffix)
            line_len += length + 2
    pieces.append(")")
    return "".join(pieces)


def format_tensor(
    values: np.ndarray, dtype_name: str, suffixes: Sequence[str] = ()
) -> str:
    """repr of a tensor holding `values` (any shape, incl. 0-d and size-0 dims).

    `dtype_name` is one of 'float32', 'float64', 'float16', 'int64', 'int32',
    'int16', 'int8', 'uint8', 'bool'; the values are converted to it first so
    that the printed digits are those of the tensor's own precision.
    `suffixes` are already-formatted items (e.g. 'requires_grad=True',
    'grad_fn=<AddBackward0>') placed after the size= and dtype= ones.
    """
    if dtype_name not in _DTYPES:
        raise ValueError(f"unsupported dtype for printing: {dtype_name!r}")
    array = np.asarray(values).astype(_DTYPES[dtype_name], copy=False)
    # Line breaking measures the dtype suffix as torch spells it
    # ("dtype=torch.<name>"), so the output differs from torch's only by the
    # module name, even where the longer name would cross `linewidth`.
    dtype_suffix = (f"dtype=tapegrad.{dtype_name}", len(f"dtype=torch.{dtype_name}"))
    indent = len(_PREFIX)

    def sized(text: str) -> tuple[str, int]:
        return text, len(text)

    own: list[tuple[str, int]] = []
    if array.size == 0:
        # Like NumPy, the shape is shown unless it is plain (0,); with no
        # element to infer it from, every non-default dtype is spelled out.
        if array.ndim != 1:
            own.append(sized(f"size={tuple(array.shape)}"))
        if dtype_name != _DEFAULT_FLOAT:
            own.append(dtype_suffix)
        body = "[]"
    else:
        if not _OPTS.edgeitems:
            own.append(sized(f"size={tuple(array.shape)}"))
        if dtype_name not in _IMPLIED_DTYPES:
            own.append(dtype_suffix)
        summarize = array.size > _OPTS.threshold
        fmt = _Formatter(
            _formatter_sample(array, summarize), dtype_name in _FLOAT_DTYPES
        )
        body = _render(array, indent, summarize, fmt)

    return _add_suffixes(_PREFIX + body, [*own, *map(sized, suffixes)], indent)
