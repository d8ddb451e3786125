"""Deterministic surrogate keys: stable across processes, distinct for distinct natural keys."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from brewline.keys import (
    LINE_BITS,
    LINE_SPACE,
    file_id,
    sale_key_base,
    stable_key,
)

FAST = settings(deadline=None, max_examples=200)
INT64_MAX = 2**63 - 1
# Text a UTF-8 file can hold. NUL stands for None and 0x1F joins parts inside stable_key:
# those two are tested apart below.
plain_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00\x1f"), max_size=12
)
parts = st.lists(st.none() | plain_text, max_size=4).map(tuple)


@FAST
@given(plain_text, parts)
def test_stable_key_is_deterministic_and_fits_int64(
    namespace: str, key: tuple[str | None, ...]
) -> None:
    first = stable_key(namespace, *key)
    assert first == stable_key(namespace, *key)
    assert 0 <= first <= INT64_MAX


@FAST
@given(parts, parts)
def test_distinct_tuples_get_distinct_keys(
    a: tuple[str | None, ...], b: tuple[str | None, ...]
) -> None:
    if a != b:
        assert stable_key("product", *a) != stable_key("product", *b)


@FAST
@given(parts)
def test_namespaces_separate_keys(key: tuple[str | None, ...]) -> None:
    assert stable_key("product", *key) != stable_key("branch", *key)


def test_none_and_empty_string_are_distinct() -> None:
    assert stable_key("product", None) != stable_key("product", "")
    assert stable_key("product", "Latte", None, None) != stable_key("product", "Latte", "", "")
    assert stable_key("product", "Latte", None) != stable_key("product", "Latte")


def test_part_boundaries_cannot_be_forged_by_content() -> None:
    """Distinct tuples stay distinct even when a part holds the characters used to join parts."""
    assert stable_key("product", "a\x1fb") != stable_key("product", "a", "b")
    assert stable_key("product", "A\x1fL", "x", None) != stable_key("product", "A", "L\x1fx", None)
    assert stable_key("product", "\x00") != stable_key("product", None)


def test_stable_key_is_the_same_in_another_process() -> None:
    """Not Python's salted hash(): a worker with another hash seed computes the same keys."""
    cases = [("product", "Latte", "Large", None), ("branch", "Leeds"), ("file", "a/b.csv")]
    here = [stable_key(*case) for case in cases]
    code = f"from brewline.keys import stable_key\nprint([stable_key(*c) for c in {cases!r}])"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == str(here)


def test_stable_key_is_a_keyed_blake2b_of_its_parts() -> None:
    """Pinned value: changing the hash would silently re-key a loaded warehouse."""
    digest = hashlib.blake2b(b"7:product|5:Latte|5:Large|-", digest_size=8).digest()
    assert (
        stable_key("product", "Latte", "Large", None) == int.from_bytes(digest, "big") & INT64_MAX
    )


names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)
lines = st.integers(min_value=1, max_value=LINE_SPACE - 1)


@FAST
@given(names, st.lists(lines, min_size=1, max_size=50, unique=True))
def test_sale_keys_never_collide_within_a_file(name: str, line_nos: list[int]) -> None:
    base = sale_key_base(name)
    keys = [base + line for line in line_nos]
    assert len(set(keys)) == len(keys)
    assert all(0 < key <= INT64_MAX for key in keys)
    assert base % LINE_SPACE == 0
    assert {key >> LINE_BITS for key in keys} == {base >> LINE_BITS}  # lines never carry over
    assert [key - base for key in keys] == line_nos


@FAST
@given(names, names)
def test_sale_key_base_depends_on_the_name_only(a: str, b: str) -> None:
    assert sale_key_base(a) == sale_key_base(a)
    if a != b:
        assert sale_key_base(a) != sale_key_base(b)
        # so whole files' key ranges are disjoint
        assert abs(sale_key_base(a) - sale_key_base(b)) >= LINE_SPACE


def test_file_id_is_per_version() -> None:
    assert file_id("leeds.csv", "a" * 64) == file_id("leeds.csv", "a" * 64)
    assert file_id("leeds.csv", "a" * 64) != file_id("leeds.csv", "b" * 64)
    assert file_id("leeds.csv", "a" * 64) != file_id("york.csv", "a" * 64)
    # a corrected file keeps its sales' keys, but is a new version
    assert sale_key_base("leeds.csv") == sale_key_base("leeds.csv")


def test_product_keys_of_the_parsed_menu_match_stable_key() -> None:
    from brewline.extract.converters import basket_items
    from brewline.extract.layouts import STANDARD

    rows = pl.DataFrame(
        {"row": [0, 1], "basket": ["Large Latte - 2.45, Regular Latte - 2.15", "Tea - 1.00"]}
    )
    menu = basket_items(rows, STANDARD).menu
    for product, size, variant, key in menu.select(
        "product", "size", "variant", "product_key"
    ).iter_rows():
        assert key == stable_key("product", product, size, variant)
    assert menu["product_key"].n_unique() == 3
