"""Shared test setup."""
from __future__ import annotations

import pytest

from tapegrad import _tensor as TT


@pytest.fixture(autouse=True)
def _fresh_element_marks():
    """Every test starts with the scan budget of a fresh process (``_tensor._MARKS``): roots
    that an earlier test's writes found with live elements would otherwise switch the whole
    process to weak-reference tracking, and later tests would not exercise the marks."""
    TT._MARKS[0] = TT._MARK_SCANS
    yield
