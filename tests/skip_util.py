"""Skip a test whose machine lacks an optional piece (Chromium, WordNet), unless everything is required.

`.ci/run` sets ROBUSTLAB_REQUIRE_ALL=1: there a missing piece fails the test with the same reason, so a CI
machine without Chromium goes red instead of quietly reporting "3 skipped".

Import it as `skip_util`, not `tests.skip_util` (see browser_util for why).
"""
from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ALL = "ROBUSTLAB_REQUIRE_ALL"


def everything_required() -> bool:
    return os.environ.get(REQUIRE_ALL, "").strip() not in ("", "0")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with `reason`; fail with it instead when ROBUSTLAB_REQUIRE_ALL is set."""
    if everything_required():
        pytest.fail(f"{reason} ({REQUIRE_ALL} is set: a missing piece is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)
