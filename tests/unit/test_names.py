from __future__ import annotations

from pinpoint_export_operator import api


def test_run_prefix_appends_namespace_name_and_run() -> None:
    assert api.run_prefix("s3://b/p/", "ns", "n", "r") == "s3://b/p/ns/n/r/"
    assert api.run_prefix("s3://b", "ns", "n", "r") == "s3://b/ns/n/r/"


def test_copy_job_name_is_stable_and_fits_a_label() -> None:
    assert api.copy_job_name("nightly") == "nightly-copy"
    long = "x" * 63
    name = api.copy_job_name(long)
    assert len(name) <= 63
    assert name == api.copy_job_name(long)
    assert name != api.copy_job_name("y" * 63)
