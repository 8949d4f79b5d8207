"""The published test suite of wcdfa 0.1.0 (tests/test_wcdfa.py of its sdist, verbatim).

0.1.0 is our compatibility contract: its 37 behavioural tests must pass against this
version. Two tests check the 0.1.0 package metadata (``__version__ == "0.1.0"`` and
``__author__``), which a later release cannot satisfy; they are skipped, and only
they. The suite feeds signed values (``randn``) as norms on purpose, so the one
NotANormWarning per monitor is expected here.
"""

from __future__ import annotations

import pytest

METADATA_TESTS = {"test_version", "test_author"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "compat_010" not in str(item.path):
            continue
        item.add_marker(pytest.mark.filterwarnings("ignore::wcdfa.errors.NotANormWarning"))
        if item.name in METADATA_TESTS:
            item.add_marker(pytest.mark.skip(reason="0.1.0 package metadata, not behaviour"))
