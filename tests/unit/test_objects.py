"""Kubernetes objects as plain data."""

from __future__ import annotations

from pinpoint_export_operator.runtime.objects import own_status


def test_own_status_leaves_kopfs_records_out_and_copies() -> None:
    obj = {"status": {"phase": "Exporting", "output": {"files": 1}, "kopf": {"dummy": "x"}}}
    status = own_status(obj)
    assert status == {"phase": "Exporting", "output": {"files": 1}}
    status["output"]["files"] = 2
    assert obj["status"]["output"] == {"files": 1}
    assert own_status({}) == {} and own_status({"status": None}) == {}
