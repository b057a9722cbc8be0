"""metav1.Condition lists, as kstatus, Flux, Argo CD and `kubectl wait` read them."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class Condition(TypedDict):
    """metav1.Condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    lastTransitionTime: str
    observedGeneration: NotRequired[int]


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime moves only when the status flips."""
    value: Literal["True", "False"] = "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == type_), None)
    changed = previous is None or previous.get("status") != value
    condition: Condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": previous["lastTransitionTime"] if previous and not changed else now,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    if previous is None:
        return [*conditions, condition]
    return [condition if c is previous else c for c in conditions]


def summary(
    conditions: list[Condition],
    *,
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[Condition]:
    """Set the three kstatus conditions at once, with one reason and message."""
    for type_, value in (("Ready", ready), ("Reconciling", reconciling), ("Stalled", stalled)):
        conditions = set_condition(conditions, type_, value, reason, message, now, generation)
    return conditions
