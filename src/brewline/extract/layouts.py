"""Read a branch export's bytes into a frame of raw string fields, one row per line.

Two layouts exist in the wild, told apart by content, never by file name:

- ``standard``: ``timestamp(dd/mm/yyyy HH:MM), branch, customer, basket, total, payment, card``
  with basket items ``<Size> <Product>[ - <Variant>] - <Price>`` joined by ``", "``.
- ``legacy``: ``timestamp(yyyy-mm-dd HH:MM:SS), branch, customer, basket, payment, total, card``
  with the basket a flat ``size,name,price,...`` list and the card ``"network,number"`` or ``None``.

The reader tolerates what people and Excel do to files (BOM, CRLF, header rows,
blank lines, padded fields) and rejects a file it cannot understand with
:class:`~brewline.errors.FileRejected`. Row-level damage (too many fields,
unbalanced quotes) is not fatal: such lines carry a reason and are quarantined
later, so every line is accounted for.

    >>> raw = read_export(b"25/08/2021 09:00,Leeds,A B,Large Latte - 2.45,2.45,CASH,\\n", "x.csv")
    >>> raw.layout.name, raw.rows.height
    ('standard', 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from brewline.errors import FileRejected

__all__ = ["FIELDS", "LAYOUTS", "Layout", "RawExport", "read_export", "read_exports"]

FIELDS = (
    "timestamp",
    "branch",
    "customer_name",
    "basket",
    "total",
    "payment_method",
    "card_number",
)
"""Canonical field names; every layout is renamed to these."""

BOM = b"\xef\xbb\xbf"
PAYMENT_WORDS = ("CASH", "CARD")
SAMPLE_ROWS = 200


@dataclass(frozen=True)
class Layout:
    """How one export layout orders its fields and writes timestamps and baskets."""

    name: str
    order: tuple[str, ...]  # canonical field names in file order
    timestamp_format: str
    timestamp_shape: str  # regex a timestamp in this layout starts with
    basket: Literal["items", "triples"]

    @property
    def payment_position(self) -> int:
        return self.order.index("payment_method")


STANDARD = Layout(
    name="standard",
    order=FIELDS,
    timestamp_format="%d/%m/%Y %H:%M",
    timestamp_shape=r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4} [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$",
    basket="items",
)
LEGACY = Layout(
    name="legacy",
    order=(
        "timestamp",
        "branch",
        "customer_name",
        "basket",
        "payment_method",
        "total",
        "card_number",
    ),
    timestamp_format="%Y-%m-%d %H:%M:%S",
    timestamp_shape=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}$",
    basket="triples",
)
LAYOUTS = (STANDARD, LEGACY)

_POSITIONAL = [f"c{i}" for i in range(len(FIELDS))]
_QUOTED = r'"(?:[^"]|"")*"'


@dataclass(frozen=True)
class RawExport:
    """A file's rows as raw strings (padding kept), before any row rule has run.

    ``rows`` has ``line_no`` (1-based physical line), the canonical fields and
    ``line_problem`` (a reason code when the line itself is unreadable, else null).
    Header and blank lines are not rows; ``skipped_lines`` counts them.
    """

    layout: Layout
    rows: pl.DataFrame
    skipped_lines: int
    source: str = ""
    """The delivery's name, for rules that use it as a hint (never as the truth)."""


def read_export(data: bytes, source: str) -> RawExport:
    """Parse a whole export; raise :class:`FileRejected` if it cannot be understood."""
    (result,) = read_exports([(data, source)])
    if isinstance(result, FileRejected):
        raise result
    return result


def read_exports(files: Sequence[tuple[bytes, str]]) -> list[RawExport | FileRejected]:
    """Parse several exports (``(bytes, source name)``); a FileRejected stands for each refusal.

    Clean files are read by one Polars call, which parses them in parallel and
    pays the reader's fixed cost once; a batch with a damaged file falls back to
    reading file by file, where the careful path names the damaged lines.
    """
    results: list[RawExport | FileRejected | None] = []
    texts: list[tuple[int, bytes, int]] = []  # (position, data, physical lines)
    for position, (raw, source) in enumerate(files):
        data = raw.removeprefix(BOM)
        try:
            _require_text(data, source)
        except FileRejected as refusal:
            results.append(refusal)
            continue
        results.append(None)
        texts.append((position, data, _line_count(data)))
    tables = _split_many([data for _, data, _ in texts], [lines for _, _, lines in texts])
    for (position, _, lines), table in zip(texts, tables, strict=True):
        try:
            results[position] = _raw_export(table, lines, files[position][1])
        except FileRejected as refusal:
            results[position] = refusal
    return [r for r in results if r is not None]


def _raw_export(table: pl.DataFrame, lines: int, source: str) -> RawExport:
    table = _drop_blank_lines(table)
    if table.height == 0:
        raise FileRejected("empty_file", "the file has only blank lines", source=source)
    headers = _leading_headers(table)
    if headers == table.height:
        raise FileRejected("unrecognised_layout", _describe(table), source=source)
    table = table.slice(headers)
    layout = _detect_layout(table, source)
    rows = table.rename(dict(zip(_POSITIONAL, layout.order, strict=True))).select(
        "line_no", *FIELDS, "line_problem"
    )
    return RawExport(layout=layout, rows=rows, skipped_lines=lines - rows.height, source=source)


def _drop_blank_lines(table: pl.DataFrame) -> pl.DataFrame:
    """Blank (or whitespace-only) lines are not rows; most files have none to look at."""
    if table["c1"].null_count() == 0:  # a blank line has no second field: O(1) check
        return table
    blank = (
        pl.all_horizontal(pl.col(_POSITIONAL[1:]).is_null())
        & (pl.col("c0").str.strip_chars().fill_null("") == "")
        & pl.col("line_problem").is_null()
    )
    return table.filter(~blank)


def _require_text(data: bytes, source: str) -> None:
    if not data.strip():
        raise FileRejected("empty_file", "the file is empty", source=source)
    if b"\x00" in data:
        raise FileRejected(
            "binary_content",
            "the file contains NUL bytes, so it is not a text export (corrupted or binary); "
            "re-export it as CSV and drop it into the landing folder again",
            source=source,
        )
    if data.isascii():
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            "not_utf8",
            f"the file is not UTF-8 text (bad byte at offset {exc.start}); "
            "save it as 'CSV UTF-8' and drop it into the landing folder again",
            source=source,
        ) from None


def _line_count(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def _split_many(texts: list[bytes], lines: list[int]) -> list[pl.DataFrame]:
    """Fields of several files at once when every file reads cleanly, else file by file."""
    if not texts:
        return []
    together = _read_csv(texts) if len(texts) > 1 else None
    if together is None or together.height != sum(lines):
        return [_split_fields(data, n) for data, n in zip(texts, lines, strict=True)]
    # Fewer records than lines in one file cannot be made up by another: equal totals
    # mean every file read one record per physical line.
    starts = np.cumsum([0, *lines[:-1]])
    first_line = pl.Series(np.repeat(starts, lines) - 1, dtype=pl.Int64)
    numbered = _with_line_numbers(
        together, (pl.int_range(0, together.height, dtype=pl.Int64) - first_line).cast(pl.Int32)
    )
    return [numbered.slice(int(start), n) for start, n in zip(starts, lines, strict=True)]


def _split_fields(data: bytes, lines: int) -> pl.DataFrame:
    """Fields of every line, via Polars' CSV reader; damaged files go line by line.

    The fast path is right when the reader yields exactly one record per physical
    line. Otherwise (a line with too many fields, an unbalanced quote, a quoted
    newline) the careful path marks the damaged lines and reads the rest.
    """
    fast = _read_csv(data)
    if fast is not None and fast.height == lines:
        return _with_line_numbers(fast, pl.int_range(1, fast.height + 1, dtype=pl.Int32))
    return _split_fields_carefully(data)


def _read_csv(data: bytes | list[bytes]) -> pl.DataFrame | None:
    try:
        frame = pl.read_csv(
            data,
            has_header=False,
            schema=dict.fromkeys(_POSITIONAL, pl.String),
            missing_columns="insert",
        )
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        return None  # the careful path finds and names the damaged lines
    return frame


def _with_line_numbers(frame: pl.DataFrame, line_no: pl.Expr | pl.Series) -> pl.DataFrame:
    return frame.with_columns(line_no=line_no, line_problem=pl.lit(None, dtype=pl.String))


def _split_fields_carefully(data: bytes) -> pl.DataFrame:
    lines = pl.DataFrame({"text": data.decode("utf-8").split("\n")}).with_row_index(
        "line_no", offset=1
    )
    if data.endswith(b"\n"):
        lines = lines.slice(0, lines.height - 1)
    lines = lines.with_columns(
        line_no=pl.col("line_no").cast(pl.Int32),
        text=_unpad_quotes(pl.col("text").str.strip_suffix("\r")),
    ).with_columns(line_problem=_line_problem(pl.col("text")))
    parsed, unreadable = _read_lines(lines.filter(pl.col("line_problem").is_null()))
    lines = lines.with_columns(
        line_problem=pl.when(pl.col("line_no").is_in(unreadable.implode()))
        .then(pl.lit("unreadable_line"))
        .otherwise("line_problem")
    )
    bad = lines.filter(pl.col("line_problem").is_not_null()).select(
        "line_no",
        *[pl.lit(None, dtype=pl.String).alias(c) for c in _POSITIONAL],
        "line_problem",
    )
    return pl.concat([parsed, bad.select(parsed.columns)]).sort("line_no")


def _read_lines(lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """Read ``lines`` (``line_no, text``) with Polars; bisect to find the lines it cannot read.

    Returns the fields of the readable lines and the numbers of the others;
    k bad lines cost O(k log n) reads, and no readable line is lost with them.
    """
    fields = _read_csv("\n".join(lines["text"]).encode() + b"\n") if lines.height else None
    if fields is not None and fields.height == lines.height:
        return _with_line_numbers(fields, lines["line_no"]), lines["line_no"].clear()
    if lines.height <= 1:
        empty = pl.DataFrame(schema=dict.fromkeys(_POSITIONAL, pl.String))
        return _with_line_numbers(empty, lines["line_no"].clear()), lines["line_no"]
    half = lines.height // 2
    first, bad_first = _read_lines(lines.slice(0, half))
    second, bad_second = _read_lines(lines.slice(half))
    return pl.concat([first, second]), pl.concat([bad_first, bad_second])


def _unpad_quotes(text: pl.Expr) -> pl.Expr:
    """``a, "b, c", d`` (padding before a quoted field) -> ``a,"b, c", d``.

    CSV only treats a quote as a field delimiter at the very start of a field;
    Excel-padded exports put a space before it.
    """
    return text.str.replace_all(r'(^|,)[ \t]+"', '${1}"').str.replace_all(r'"[ \t]+(,|$)', '"${1}')


def _line_problem(text: pl.Expr) -> pl.Expr:
    """Name what makes a line unreadable as one CSV record, or null if nothing does."""
    unquoted = text.str.replace_all(_QUOTED, "")
    return (
        pl.when(text.str.count_matches('"', literal=True) % 2 == 1)
        .then(pl.lit("unbalanced_quotes"))
        .when(unquoted.str.count_matches(",", literal=True) >= len(FIELDS))
        .then(pl.lit("too_many_fields"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def _leading_headers(table: pl.DataFrame) -> int:
    """Count header rows at the top, however many there are.

    A data row has a timestamp-like first field, or an amount or a payment word
    where the total and payment go (columns 5-6 in either layout); a header row,
    whatever its column names (``Column1``, ``custumer``...), has none of these.
    The data rows decide the layout, so headers need not agree with each other.
    """
    headers = _header_rows(table.head(SAMPLE_ROWS))
    if headers == min(SAMPLE_ROWS, table.height) < table.height:  # a tall stack: look further
        headers = _header_rows(table)
    return headers


def _header_rows(table: pl.DataFrame) -> int:
    head = _stripped(table)
    timestamp_like = pl.any_horizontal(
        pl.col("c0").str.contains(layout.timestamp_shape) for layout in LAYOUTS
    )
    value_like = pl.any_horizontal(
        pl.col(c).str.contains(r"^-?[0-9]+(\.[0-9]+)?$")
        | pl.col(c).str.to_uppercase().is_in(list(PAYMENT_WORDS))
        for c in ("c4", "c5")
    )
    is_header = (
        ~(timestamp_like.fill_null(False) | value_like.fill_null(False))
        & pl.col("line_problem").is_null()
    )
    data_rows = head.select((~is_header).arg_true().alias("i"))["i"]
    return int(data_rows[0]) if data_rows.len() else head.height


def _detect_layout(table: pl.DataFrame, source: str) -> Layout:
    sample = _stripped(table.head(SAMPLE_ROWS))
    scores = [(_matches(sample, layout), layout) for layout in LAYOUTS]
    best_score, best = max(scores, key=lambda pair: pair[0])
    if best_score == 0:
        raise FileRejected("unrecognised_layout", _describe(sample), source=source)
    return best


def _stripped(sample: pl.DataFrame) -> pl.DataFrame:
    return sample.with_columns(pl.col(_POSITIONAL).str.strip_chars())


def _matches(sample: pl.DataFrame, layout: Layout) -> int:
    payment = pl.col(_POSITIONAL[layout.payment_position]).str.to_uppercase()
    hits = pl.col("c0").str.contains(layout.timestamp_shape) & payment.is_in(list(PAYMENT_WORDS))
    return int(sample.select(hits.fill_null(False).sum()).item())


def _describe(sample: pl.DataFrame) -> str:
    """Say what the first data line looks like without quoting its content (it holds PII)."""
    first = sample.row(0, named=True)
    filled = sum(first[c] is not None for c in _POSITIONAL)
    return (
        f"unrecognised layout: line {first['line_no']} has {filled} non-empty fields and no "
        "layout matches it. Expected a branch export: 7 columns "
        "(timestamp dd/mm/yyyy HH:MM, branch, customer, basket, total, CASH/CARD, card) or the "
        "legacy layout (timestamp yyyy-mm-dd HH:MM:SS, branch, customer, basket, CASH/CARD, "
        "total, card). Fix or re-export the file, then drop it into the landing folder again"
    )
