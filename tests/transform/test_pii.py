"""Customer keys: keyed HMAC of the card, nothing without a key, nothing from destroyed cards."""

from __future__ import annotations

import hmac
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from brewline.extract import read_export
from brewline.transform.pii import customer_keys, key_fingerprint
from brewline.validate.rules import validate_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "layouts"
FAST = settings(deadline=None, max_examples=150)

card_numbers = st.text(alphabet="0123456789", min_size=12, max_size=19)
secret_keys = st.binary(min_size=1, max_size=64)


def independent(key: bytes, card: str) -> int:
    return int.from_bytes(hmac.digest(key, card.encode(), "sha256")[:8], "big") & (2**63 - 1)


@FAST
@given(st.lists(st.none() | card_numbers, max_size=20), secret_keys)
def test_customer_keys_are_the_documented_hmac(cards: list[str | None], key: bytes) -> None:
    keys = customer_keys(pl.Series(cards, dtype=pl.String), key)
    assert keys.dtype == pl.Int64
    assert keys.len() == len(cards)
    assert keys.to_list() == [None if c is None else independent(key, c) for c in cards]


@FAST
@given(card_numbers, secret_keys)
def test_same_card_and_key_give_the_same_customer(card: str, key: bytes) -> None:
    once = customer_keys(pl.Series([card, "4000123412340001", card]), key).to_list()
    assert once[0] == once[2]
    again = customer_keys(pl.Series([card]), key).to_list()
    assert again == [once[0]]


@FAST
@given(card_numbers, secret_keys, secret_keys)
def test_different_keys_give_different_tokens(card: str, key_a: bytes, key_b: bytes) -> None:
    if key_a != key_b:
        a = customer_keys(pl.Series([card]), key_a)[0]
        b = customer_keys(pl.Series([card]), key_b)[0]
        assert a != b


@FAST
@given(card_numbers, card_numbers, secret_keys)
def test_different_cards_give_different_customers(a: str, b: str, key: bytes) -> None:
    if a != b:
        assert len(set(customer_keys(pl.Series([a, b]), key).to_list())) == 2


@FAST
@given(st.lists(st.none() | card_numbers, max_size=20))
def test_no_key_means_no_tokens(cards: list[str | None]) -> None:
    keys = customer_keys(pl.Series(cards, dtype=pl.String), None)
    assert keys.dtype == pl.Int64
    assert keys.to_list() == [None] * len(cards)


def test_token_is_not_the_card() -> None:
    card = "4000123412340001"
    token = customer_keys(pl.Series([card]), b"k" * 32)[0]
    assert str(token) != card
    assert card not in str(token)
    assert token >= 0


def test_destroyed_cards_give_no_token() -> None:
    """Excel's 5.49E+15 never becomes a card, so it never becomes a customer."""
    checked = validate_rows(read_export((FIXTURES / "excel.csv").read_bytes(), "excel.csv"))
    paid_by_card = checked.sales.filter(pl.col("payment_method") == "CARD")
    assert paid_by_card.height == 2
    assert customer_keys(paid_by_card["card"], b"k" * 32).to_list() == [None, None]


def test_cash_sales_give_no_token_and_repeat_cards_one_token() -> None:
    checked = validate_rows(read_export((FIXTURES / "standard.csv").read_bytes(), "standard.csv"))
    keys = customer_keys(checked.sales["card"], b"k" * 32).to_list()
    assert keys[2] is None  # cash
    assert keys[4] is None
    assert keys[0] == keys[3] == independent(b"k" * 32, "4000123412340001")
    assert keys[1] not in (None, keys[0])


def test_key_fingerprint() -> None:
    assert key_fingerprint(None) is None
    key = b"0123456789abcdef"
    assert key_fingerprint(key) == key_fingerprint(key)
    assert key_fingerprint(key) != key_fingerprint(b"0123456789abcdeg")
    printed = key_fingerprint(key)
    assert printed is not None
    assert key.decode() not in printed
    assert len(printed) == 16


@given(
    key=st.binary(min_size=16, max_size=200),
    card=st.text(alphabet="0123456789", min_size=12, max_size=19),
)
def test_precomputed_hmac_states_give_the_standard_hmac(key: bytes, card: str) -> None:
    """Customer keys are RFC 2104 HMAC-SHA256, whatever the key length (keys past 64 bytes
    are hashed first): a warehouse loaded before the speed-up keeps its customer keys."""
    from brewline.transform.pii import _hmac_sha256

    expected = hmac.digest(key, card.encode(), "sha256")
    (token,) = _hmac_sha256(key)([card.encode()])
    assert token == int.from_bytes(expected[:8], "big") & ((1 << 63) - 1)
