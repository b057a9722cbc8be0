"""Kopf's event handlers of exports and schedules run on the event loop: the wakeups they set
are asyncio.Events, which a sync handler (run in Kopf's thread pool) must not touch."""

from __future__ import annotations

import inspect

import kopf

from pinpoint_export_operator.handlers import exports, schedules


def test_the_event_handlers_are_coroutine_functions() -> None:
    modules = {exports.__name__, schedules.__name__}
    handlers = [
        handler.fn
        for handler in kopf.get_default_registry()._watching.get_all_handlers()
        if handler.fn.__module__ in modules
    ]
    names = {fn.__name__ for fn in handlers}
    assert {"copy_job_changed", "export_seen", "schedule_changed"} <= names
    assert {fn.__module__ for fn in handlers} == modules
    assert [fn.__name__ for fn in handlers if not inspect.iscoroutinefunction(fn)] == []
