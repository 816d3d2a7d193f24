"""Shared test setup."""
from __future__ import annotations

import pytest

from tapegrad import _engine as E
from tapegrad import _tensor as TT


@pytest.fixture(autouse=True)
def _fresh_element_marks():
    """Every test starts with the scan budget of a fresh process (``_tensor._MARKS``): roots
    that an earlier test's writes found with live elements would otherwise switch the whole
    process to weak-reference tracking, and later tests would not exercise the marks."""
    TT._MARKS[0] = TT._MARK_SCANS
    yield


@pytest.fixture(autouse=True)
def _recording_segment_in_sync():
    """After every test, ``state.rec`` (what the hot paths record into) is the current segment
    while grad mode is on and None otherwise: a write of ``state.seg`` or ``grad_enabled``
    without ``_engine.sync`` would make ops record into a stale segment."""
    yield
    st = E.state
    assert st.rec is (st.seg if st.grad_enabled else None)
