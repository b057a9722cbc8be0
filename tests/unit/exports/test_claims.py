"""The claim on a run's create, and where the search for its job stops."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pinpoint_export_operator.exports import claims
from pinpoint_export_operator.runtime import timestamps

from .test_state import STARTER, T0, T1, make_export

LEFT = int(claims.CLAIM_SECONDS) - 40  # the age at which a claim still outlives a 40 s call


@pytest.mark.parametrize(("age", "holds"), [(0, True), (LEFT, True), (LEFT + 1, False)])
def test_a_create_starts_only_on_a_claim_that_outlives_the_call(age: int, holds: bool) -> None:
    claimed = claims.claim({}, STARTER)  # at T0
    at = timestamps.format(timestamps.parse(T0) + timedelta(seconds=age))
    assert claims.claim_holds(claimed, at, 40) is holds
    assert not claims.claim_holds({}, T0, 40)  # no claim at all


def test_the_search_cutoff_is_the_runs_start_else_the_exports_creation() -> None:
    skew = claims.CLOCK_SKEW
    started = {"startTime": T1}
    assert claims.search_cutoff(make_export(), started) == timestamps.parse(T1) - skew
    # A run recorded by an earlier version has no startTime: not "now", which would stop
    # the search before a job created minutes ago.
    assert claims.search_cutoff(make_export(), {}) == timestamps.parse(T0) - skew
