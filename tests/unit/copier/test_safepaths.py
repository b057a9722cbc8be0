"""Mapping S3 keys to file names: hostile keys stay inside the run directory."""

from __future__ import annotations

import posixpath
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pinpoint_export_operator.copier.exitcodes import UnmappableKeys
from pinpoint_export_operator.copier.safepaths import (
    MAX_NAME,
    MAX_STEM,
    PART,
    LocalNames,
    is_gz_key,
    plan_names,
)

SAFE_NAME = re.compile(r"^[A-Za-z0-9_=+-][A-Za-z0-9._=+~-]*$")


def names(*keys: str) -> dict[str, tuple[str, str]]:
    return {key: n.both for key, n in plan_names(keys).items()}


@pytest.mark.parametrize(
    ("key", "gz"),
    [
        ("part-00000.gz", "part-00000.gz"),
        ("2026/11/28/piece.gz", "2026_11_28_piece.gz"),
        ("../x.gz", "x.gz"),
        ("/abs.gz", "abs.gz"),
        ("a/../../b.gz", "a_b.gz"),
        ("a//./b.gz", "a_b.gz"),
        ("..\\..\\evil.gz", "_.._.._evil.gz"),
        ("new\nline\x00\x1b.gz", "new_line__.gz"),
        (".hidden.gz", "_.hidden.gz"),
        (".gz", "_.gz"),
        ("\u2025/\u2215etc.gz", "___etc.gz"),  # two-dot leader, division slash: look-alikes
        ("dt=2026-11-28/a+b.gz", "dt=2026-11-28_a+b.gz"),
        ("tilde~x.gz", "tilde_x.gz"),  # `~` is reserved for hashes
    ],
)
def test_hostile_and_ordinary_keys(key: str, gz: str) -> None:
    assert plan_names([key])[key].gz == gz


def test_decompressed_name_is_beside_the_gz() -> None:
    assert plan_names(["a.gz"])["a.gz"] == LocalNames("a.gz", "a.jsonl")
    assert plan_names(["a.jsonl.gz"])["a.jsonl.gz"] == LocalNames("a.jsonl.gz", "a.jsonl")


def test_colliding_keys_all_get_a_hash() -> None:
    plan = names("a/b.gz", "a_b.gz", "a b.gz", "other.gz")
    assert plan["other.gz"] == ("other.gz", "other.jsonl")
    hashed = [plan[k][0] for k in ("a/b.gz", "a_b.gz", "a b.gz")]
    assert all(re.fullmatch(r"a_b~[0-9a-f]{16}\.gz", n) for n in hashed)
    assert len(set(hashed)) == 3


def test_a_plain_name_collision_counts_too() -> None:
    plan = names("a.gz", "a.jsonl.gz")
    assert "~" in plan["a.gz"][0] and "~" in plan["a.jsonl.gz"][0]
    assert plan["a.gz"][1] != plan["a.jsonl.gz"][1]


def test_long_names_are_cut_and_marked() -> None:
    key = "x" * 300 + ".gz"
    gz, plain = names(key)[key]
    assert len(gz) - len(".gz") == MAX_STEM and re.search(r"~[0-9a-f]{16}\.gz$", gz)
    assert len((plain + PART).encode()) <= MAX_NAME


def test_a_full_hash_collision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from pinpoint_export_operator.copier import safepaths

    monkeypatch.setattr(safepaths, "_key_hash", lambda key: "0" * 16)
    with pytest.raises(UnmappableKeys):
        plan_names(["a/b.gz", "a_b.gz"])


def test_only_gz_objects_are_copied() -> None:
    assert is_gz_key("x.gz") and is_gz_key("a/b.gz")
    assert not any(map(is_gz_key, ["_SUCCESS", "x.gz/", "x.gz.tmp", "x.GZ.txt", ""]))


TRICKY = st.sampled_from(
    ["/", "\\", ".", "..", "../", "~", " ", "\x00", "\n", "\u2025", "\u2215", "a", "b", "_"]
)
KEYS = st.lists(
    st.lists(TRICKY | st.characters(), max_size=120).map("".join).map(lambda k: k + ".gz")
    | st.text(min_size=250, max_size=400).map(lambda k: k + ".gz"),
    max_size=12,
)


@given(KEYS)
def test_every_name_is_one_safe_component_and_distinct(keys: list[str]) -> None:
    plan = plan_names(keys)
    assert set(plan) == set(keys)
    every = [name for n in plan.values() for name in n.both]
    assert len(every) == len(set(every)), "two keys share a file"
    for n in plan.values():
        assert n.gz.endswith(".gz") and n.plain.endswith(".jsonl")
        for name in n.both:
            assert SAFE_NAME.match(name), name
            assert len((name + PART).encode()) <= MAX_NAME
            assert posixpath.dirname(posixpath.normpath(posixpath.join("/run", name))) == "/run"


@settings(max_examples=50)
@given(KEYS, st.randoms())
def test_names_do_not_depend_on_listing_order(keys: list[str], rnd: random.Random) -> None:
    shuffled = list(keys)
    rnd.shuffle(shuffled)
    assert plan_names(shuffled) == plan_names(keys)


@settings(max_examples=50)
@given(st.lists(st.from_regex(r"[a-z0-9][a-z0-9-]{0,40}\.gz", fullmatch=True), unique=True))
def test_ordinary_names_are_kept(keys: list[str]) -> None:
    assert {k: n.gz for k, n in plan_names(keys).items()} == {k: k for k in keys}
