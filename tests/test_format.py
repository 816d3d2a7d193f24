"""tapegrad._format must print tensors exactly like PyTorch's repr."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

from tapegrad import _format
from tapegrad._format import (
    format_tensor,
    get_printoptions,
    set_printoptions,
)

NUMPY_DTYPES = {
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


@pytest.fixture(autouse=True)
def default_printoptions():
    """Every test starts and ends with default options in both libraries."""
    set_printoptions(profile="default")
    torch.set_printoptions(profile="default")
    yield
    set_printoptions(profile="default")
    torch.set_printoptions(profile="default")


def set_both(**options) -> None:
    set_printoptions(**options)
    torch.set_printoptions(**options)


def expected_repr(tensor) -> str:
    return repr(tensor).replace("dtype=torch.", "dtype=tapegrad.")


def assert_same(arr: np.ndarray, dtype_name: str | None = None) -> None:
    """format_tensor(arr) == repr of the torch tensor with the same values."""
    dtype_name = dtype_name or arr.dtype.name
    arr = np.ascontiguousarray(arr, dtype=NUMPY_DTYPES[dtype_name])
    expected = expected_repr(torch.from_numpy(arr))
    assert format_tensor(arr, dtype_name) == expected


# --------------------------------------------------------------------------
# hand-picked cases

f32, f64 = np.float32, np.float64
NAN, INF = math.nan, math.inf

HAND_PICKED = {
    "int_valued_floats": np.array([0, 4, 8, 12], f32),
    "sci_by_ratio": np.array([51.2, 512, 0.0512], f32),
    "bool": np.array([True, False]),
    "bool_2d": np.array([[True], [False]]),
    "ints": np.array([1, -20, 300], np.int64),
    "int32": np.array([1, -20, 300], np.int32),
    "int8_extremes": np.array([-128, 0, 127], np.int8),
    "uint8": np.array([0, 7, 255], np.uint8),
    "int16": np.array([[-32768, 1], [2, 32767]], np.int16),
    "fixed": np.array([1.5, -2.25, 3.125], f32),
    "float32_digits": np.array([0.1, 0.2, 1 / 3, 2 / 3, 12.34565], f32),
    "float32_rounding": np.array([1.00005, 2.00015, 0.00015, 9.99995], f32),
    "float64_rounding": np.array([1.00005, 2.00015, 0.00015, 9.99995], f64),
    "float16": np.array([0.1, 1000.5, -3.0], np.float16),
    "float16_int": np.array([1, 2048, -7], np.float16),
    "nan_inf": np.array([NAN, INF, -INF, 1.5], f32),
    "nan_inf_int": np.array([NAN, INF, -INF, 2.0], f32),
    "only_nonfinite": np.array([NAN, INF, -INF], f32),
    "zeros": np.zeros(4, f32),
    "negative_zero": np.array([0.0, -0.0], f32),
    "negative_zero_fixed": np.array([0.0, -0.0, 1.5], f32),
    "negative_zero_sci": np.array([-0.0, 1e-7, 1.0], f32),
    "huge": np.array([1e30, -3e38], f32),
    "huge_f64": np.array([1e300, 2e-300], f64),
    "tiny": np.array([1e-20, 3e-30], f32),
    "subnormal": np.array([1e-45, 1.0], f32),
    "above_1e8": np.array([2e8, 3e8], f32),
    "small_below_1e-4": np.array([5e-5, 1e-4], f64),
    "scalar_float": np.array(3.5, f32),
    "scalar_int_valued": np.array(-2.0, f32),
    "scalar_int": np.array(7, np.int64),
    "scalar_int8": np.array(-7, np.int8),
    "scalar_bool": np.array(True),
    "scalar_nan": np.array(NAN, f64),
    "scalar_tiny": np.array(1e-9, f32),
    "long_row_wraps": np.linspace(-1, 1, 40).astype(f32),
    "matrix": np.arange(12, dtype=f32).reshape(3, 4) / 7,
    "3d_blank_lines": np.arange(24, dtype=np.int64).reshape(2, 3, 4),
    "4d_blank_lines": np.arange(48, dtype=f64).reshape(2, 2, 3, 4) - 20,
    "summarised_1d": np.arange(2000, dtype=np.int64),
    "summarised_2d": np.arange(2000, dtype=f32).reshape(40, 50) / 3,
    "summarised_3d": np.arange(1500, dtype=f64).reshape(10, 15, 10),
    "threshold_exact": np.arange(1000, dtype=f32),
    "threshold_plus_one": np.arange(1001, dtype=f32),
    "wide_rows": np.arange(1200, dtype=f64).reshape(2, 600) * 1e5,
    "empty_1d": np.zeros((0,), f32),
    "empty_1d_f64": np.zeros((0,), f64),
    "empty_1d_int": np.zeros((0,), np.int64),
    "empty_1d_bool": np.zeros((0,), bool),
    "empty_2x0": np.zeros((2, 0), f32),
    "empty_0x3x1": np.zeros((0, 3, 1), np.int64),
    "empty_0x3": np.zeros((0, 3), f64),
}


@pytest.mark.parametrize("arr", HAND_PICKED.values(), ids=HAND_PICKED.keys())
def test_hand_picked(arr):
    assert_same(arr)


def test_quoted_examples_literally():
    assert format_tensor(np.array([0, 4, 8, 12], f32), "float32") == (
        "tensor([ 0.,  4.,  8., 12.])"
    )
    assert format_tensor(np.array([51.2, 512, 0.0512], f32), "float32") == (
        "tensor([5.1200e+01, 5.1200e+02, 5.1200e-02])"
    )
    assert format_tensor(np.array([True, False]), "bool") == "tensor([ True, False])"
    assert format_tensor(np.zeros((0, 3)), "float64") == (
        "tensor([], size=(0, 3), dtype=tapegrad.float64)"
    )
    assert format_tensor(np.arange(3.0), "float64") == (
        "tensor([0., 1., 2.], dtype=tapegrad.float64)"
    )


def test_values_are_rounded_to_the_named_dtype():
    # float64 input printed as float32 must show float32 digits, as torch does.
    values = np.array([0.1, 1 / 3, 123456.789])
    expected = expected_repr(torch.tensor(values, dtype=torch.float32))
    assert format_tensor(values, "float32") == expected


def test_dtype_suffix_breaks_where_torch_does():
    # "dtype=tapegrad.float64" is 3 characters longer than torch's spelling;
    # the line break is still decided on torch's length (line is 81 wide).
    arr = np.array([1.00005, 2.00015, 1.5e-4, 9.99995])
    assert format_tensor(arr, "float64") == (
        "tensor([1.0001e+00, 2.0002e+00, 1.5000e-04, 1.0000e+01],"
        " dtype=tapegrad.float64)"
    )


def test_unknown_dtype_rejected():
    with pytest.raises(ValueError):
        format_tensor(np.zeros(2), "complex64")


def test_does_not_import_torch():
    # Run _format.py in a fresh interpreter where importing torch fails.
    source = Path(_format.__file__)
    code = (
        "import sys, runpy; sys.modules['torch'] = None; "
        f"ns = runpy.run_path({str(source)!r}); "
        "import numpy as np; print(ns['format_tensor'](np.arange(3), 'int64'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "tensor([0, 1, 2])"


# --------------------------------------------------------------------------
# requires_grad / grad_fn suffixes


SUFFIX_CASES = {
    "scalar": np.array(1.5, f32),
    "short": np.array([1.0, 2.0], f32),
    "float64": np.array([1.0, 2.5], f64),
    "float16": np.array([1.0, 2.5], np.float16),
    "matrix": np.arange(6, dtype=f32).reshape(2, 3) / 3,
    "3d": np.arange(24, dtype=f64).reshape(2, 3, 4) / 7,
    "summarised": np.arange(2000, dtype=f32) / 9,
    "empty": np.zeros((0,), f32),
    "empty_2d_f64": np.zeros((2, 0), f64),
    "negative_zero": np.array([-0.0, NAN, INF], f32),
}
# Rows whose last line ends near the 80-column limit, so the suffix moves to
# its own line for some lengths and not for others.
for _n in range(4, 16):
    SUFFIX_CASES[f"row_len_{_n}"] = np.linspace(-1, 1, _n).astype(f32)
    SUFFIX_CASES[f"row_len_{_n}_f64"] = np.arange(_n, dtype=f64) * 1.5


@pytest.mark.parametrize("arr", SUFFIX_CASES.values(), ids=SUFFIX_CASES.keys())
def test_requires_grad_suffix(arr):
    tensor = torch.from_numpy(arr).requires_grad_()
    got = format_tensor(arr, arr.dtype.name, ["requires_grad=True"])
    assert got == expected_repr(tensor)


@pytest.mark.parametrize("arr", SUFFIX_CASES.values(), ids=SUFFIX_CASES.keys())
def test_grad_fn_suffix(arr):
    tensor = torch.from_numpy(arr).requires_grad_().clone()  # same values
    got = format_tensor(arr, arr.dtype.name, ["grad_fn=<CloneBackward0>"])
    assert got == expected_repr(tensor)


@pytest.mark.parametrize("linewidth", [10, 30, 40, 45, 50, 60])
def test_suffix_wrapping_with_small_linewidth(linewidth):
    set_both(linewidth=linewidth)
    for arr in SUFFIX_CASES.values():
        tensor = torch.from_numpy(arr).requires_grad_()
        got = format_tensor(arr, arr.dtype.name, ["requires_grad=True"])
        assert got == expected_repr(tensor)


# --------------------------------------------------------------------------
# seeded random table: shapes x magnitudes x dtypes

TABLE_DTYPES = ["float32", "float64", "int64", "bool"]
OTHER_DTYPES = ["float16", "int32", "int16", "int8", "uint8"]


def random_shape(rng: np.random.Generator) -> tuple[int, ...]:
    ndim = int(rng.integers(0, 5))
    if ndim == 0:
        return ()
    # Mostly small tensors, sometimes large enough (>1000) to be summarised;
    # the budget is split unevenly between axes to get long rows and columns.
    budget = rng.choice([8, 60, 400, 2000])
    sides = np.floor(budget ** rng.dirichlet(np.ones(ndim))).astype(int)
    if rng.random() < 0.03:
        sides[rng.integers(ndim)] = 0
    return tuple(int(n) for n in sides)


def random_floats(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    lo, hi = sorted(rng.uniform(-10, 10, size=2))
    if rng.random() < 0.3:  # narrow range: fixed-point output is likely
        hi = lo + rng.uniform(0, 3)
    values = 10.0 ** rng.uniform(lo, hi, size=shape)
    if rng.random() < 0.6:
        values *= rng.choice([-1.0, 1.0], size=shape)
    if rng.random() < 0.3:
        values = np.round(values)
    if rng.random() < 0.3:
        specials = np.array([0.0, -0.0, NAN, INF, -INF])
        mask = rng.random(size=shape) < 0.2
        values = np.where(mask, rng.choice(specials, size=shape), values)
    with np.errstate(over="ignore"):
        return np.asarray(values).astype(dtype)


def random_array(seed: int, dtype_name: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = random_shape(rng)
    dtype = NUMPY_DTYPES[dtype_name]
    if dtype.kind == "f":
        return random_floats(rng, shape, dtype)
    if dtype.kind == "b":
        return np.asarray(rng.random(size=shape) < 0.5)
    info = np.iinfo(dtype)
    magnitude = 10 ** rng.uniform(0, 10)
    low = max(info.min, -magnitude if rng.random() < 0.6 else 0)
    high = min(info.max, magnitude)
    values = rng.integers(int(low), int(high), size=shape, endpoint=True, dtype=dtype)
    return np.asarray(values)


@pytest.mark.parametrize("dtype_name", TABLE_DTYPES)
@pytest.mark.parametrize("seed", range(150))
def test_random_table(seed, dtype_name):
    assert_same(random_array(seed, dtype_name), dtype_name)


@pytest.mark.parametrize("dtype_name", OTHER_DTYPES)
@pytest.mark.parametrize("seed", range(30))
def test_random_table_other_dtypes(seed, dtype_name):
    assert_same(random_array(1000 + seed, dtype_name), dtype_name)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
        elements={"allow_nan": True, "allow_infinity": True},
    )
)
def test_hypothesis_floats(arr):
    assert_same(arr)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.int64, np.int8, np.uint8, np.bool_]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    )
)
def test_hypothesis_ints_and_bools(arr):
    assert_same(arr)


# --------------------------------------------------------------------------
# print options

OPTIONS = {
    "precision_2": {"precision": 2},
    "precision_0": {"precision": 0},
    "precision_8": {"precision": 8},
    "sci_on": {"sci_mode": True},
    "sci_off": {"sci_mode": False},
    "threshold_5": {"threshold": 5},
    "threshold_0": {"threshold": 0},
    "edgeitems_1": {"threshold": 10, "edgeitems": 1},
    "edgeitems_0": {"edgeitems": 0},
    "edgeitems_0_summarised": {"threshold": 10, "edgeitems": 0},
    "linewidth_20": {"linewidth": 20},
    "linewidth_1": {"linewidth": 1},
    "linewidth_200": {"linewidth": 200},
    "profile_full": {"profile": "full"},
    "profile_short": {"profile": "short"},
    "profile_full_precision_2": {"profile": "full", "precision": 2},
    "combo": {"precision": 3, "threshold": 20, "linewidth": 40, "sci_mode": True},
}

OPTION_ARRAYS = [
    np.array(3.14159, f32),
    np.array([0.0, 0.0], f32),
    np.array([1.23456789, -9.87654321, 1e-3], f64),
    np.array([0, 4, 8, 12], f32),
    np.array([51.2, 512, 0.0512], f32),
    np.array([NAN, -0.0, INF, 2.5], f32),
    np.array([True, False, True]),
    np.arange(30, dtype=np.int64).reshape(5, 6) - 10,
    np.linspace(-5, 5, 60).astype(f32).reshape(3, 4, 5),
    np.arange(2000, dtype=f64).reshape(4, 500) ** 1.5,
    np.zeros((0, 3), f32),
]


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_printoptions(options):
    set_both(**options)
    assert get_printoptions() == torch._tensor_str.get_printoptions()
    for arr in OPTION_ARRAYS:
        assert_same(arr)
    for seed in range(40):
        assert_same(random_array(seed, TABLE_DTYPES[seed % 4]), TABLE_DTYPES[seed % 4])


def test_default_options_and_sci_mode_reset():
    assert get_printoptions() == {
        "precision": 4,
        "threshold": 1000,
        "edgeitems": 3,
        "linewidth": 80,
        "sci_mode": None,
    }
    set_printoptions(sci_mode=True)
    set_printoptions(precision=2)  # like torch, this resets sci_mode to None
    assert get_printoptions()["sci_mode"] is None
    set_printoptions(profile="full")
    assert get_printoptions()["threshold"] == math.inf
