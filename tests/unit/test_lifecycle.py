"""Kopf's settings as the startup handler applies them, without a cluster."""

from __future__ import annotations

import logging
import socket

import kopf
import pytest

from pinpoint_export_operator import api
from pinpoint_export_operator.config import OperatorConfig
from pinpoint_export_operator.handlers.lifecycle import apply_settings
from pinpoint_export_operator.runtime.objects import KOPF_STATUS_KEY


def applied(cfg: OperatorConfig, monkeypatch: pytest.MonkeyPatch) -> kopf.OperatorSettings:
    # A pod's hostname is its name.
    monkeypatch.setattr(socket, "gethostname", lambda: "ppe-pinpoint-export-operator-7d9f-x2k4q")
    settings = kopf.OperatorSettings()
    apply_settings(settings, cfg)
    return settings


def test_events_name_the_operator_and_the_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    posting = applied(OperatorConfig(), monkeypatch).posting
    assert posting.reporting_component == "pinpoint-export-operator" == api.MANAGER
    assert posting.reporting_instance == "ppe-pinpoint-export-operator-7d9f-x2k4q"
    assert posting.event_name_prefix == "pinpoint-export-operator-"
    assert posting.level == logging.ERROR  # Kopf's log lines do not become Events


def test_kopfs_records_stay_out_of_metadata_and_nothing_is_scanned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = applied(OperatorConfig(), monkeypatch)
    assert settings.persistence.finalizer == api.FINALIZER
    assert isinstance(settings.persistence.progress_storage, kopf.StatusProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf.StatusDiffBaseStorage)
    assert settings.persistence.progress_storage.field == ("status", KOPF_STATUS_KEY, "progress")
    assert settings.scanning.disabled
    assert settings.peering.name == kopf.OperatorSettings().peering.name  # untouched


def test_peering_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = applied(OperatorConfig(peering="ppe", peering_priority=-5), monkeypatch)
    assert (settings.peering.name, settings.peering.standalone) == ("ppe", False)
    assert settings.peering.priority == -5
