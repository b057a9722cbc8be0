"""The node agent binds no more pods than the node's `pods` allocatable, like the scheduler."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pinpoint_export_sandbox.nodeagent import agent as agent_module
from pinpoint_export_sandbox.nodeagent.agent import Agent

Json = dict[str, Any]


class RecordingKube:
    """Accepts every request; remembers the pods it was asked to bind."""

    host, port = "127.0.0.1", 6443

    def __init__(self) -> None:
        self.bound: list[str] = []

    def request(self, method: str, path: str, **_: Any) -> Json:
        if path.endswith("/binding"):
            self.bound.append(path.split("/")[-2])
        return {}


class InlineExecutor:
    def submit(self, task: Callable[..., object], *args: object) -> None:
        task(*args)


class IdleWorker:
    def __init__(self, context: object, pod: Json) -> None:
        pass

    def start(self) -> None:
        pass

    def update(self, pod: Json) -> None:
        pass

    def vanish(self) -> None:
        pass


def pod(name: str, node: str = "", phase: str = "Pending") -> Json:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
        "spec": {"nodeName": node},
        "status": {"phase": phase},
    }


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Agent, RecordingKube]:
    monkeypatch.setattr(agent_module, "MAX_PODS", 2)
    monkeypatch.setattr(agent_module, "PodWorker", IdleWorker)
    kube = RecordingKube()
    agent = Agent(kube, "sandbox", tmp_path)  # type: ignore[arg-type]
    agent.executor = InlineExecutor()  # type: ignore[assignment]
    return agent, kube


def test_pods_beyond_capacity_wait_for_one_to_end(node: tuple[Agent, RecordingKube]) -> None:
    agent, kube = node
    agent.on_pending_list([pod("a"), pod("b"), pod("c"), pod("d")])
    assert kube.bound == ["a", "b"]

    agent.on_pod("MODIFIED", pod("a", "sandbox", "Running"))
    assert kube.bound == ["a", "b"]
    agent.on_pod("MODIFIED", pod("a", "sandbox", "Succeeded"))
    assert kube.bound == ["a", "b", "c"]
    agent.on_pod("DELETED", pod("b", "sandbox", "Running"))
    assert kube.bound == ["a", "b", "c", "d"]


def test_a_waiting_pod_that_is_deleted_is_never_bound(node: tuple[Agent, RecordingKube]) -> None:
    agent, kube = node
    agent.on_pending_list([pod("a"), pod("b"), pod("c"), pod("d")])
    agent.on_pending("DELETED", pod("c"))
    agent.on_pod("MODIFIED", pod("a", "sandbox", "Failed"))
    assert kube.bound == ["a", "b", "d"]


def test_a_relist_frees_the_room_of_pods_that_left(node: tuple[Agent, RecordingKube]) -> None:
    agent, kube = node
    agent.on_pending_list([pod("a"), pod("b"), pod("c")])
    agent.on_pod_list([pod("b", "sandbox", "Running")])  # a left while the watch was down
    assert kube.bound == ["a", "b", "c"]
