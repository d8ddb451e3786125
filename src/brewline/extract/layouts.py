"""Read a branch export's bytes into a frame of raw string fields, one row per line.

Two layouts exist in the wild, told apart by content, never by file name:

- ``standard``: ``timestamp(dd/mm/yyyy HH:MM), branch, customer, basket, total, payment, card``
  with basket items ``<Size> <Product>[ - <Variant>] - <Price>`` joined by ``", "``.
- ``legacy``: ``timestamp(yyyy-mm-dd HH:MM:SS), branch, customer, basket, payment, total, card``
  with the basket a flat ``size,name,price,...`` list and the card ``"network,number"`` or ``None``.

The reader tolerates what people and Excel do to files (BOM, CRLF, header rows,
blank lines, padded fields, bytes that are not UTF-8 in the columns Brewline drops)
and rejects a file it cannot understand with
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

__all__ = [
    "DROPPED_FIELDS",
    "FIELDS",
    "LAYOUTS",
    "Layout",
    "RawExport",
    "read_export",
    "read_exports",
]

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

DROPPED_FIELDS = ("customer_name", "card_number")
"""Personal data no table keeps (a card becomes at most a token of its digits), so how
their text is encoded does not matter: bytes there that are not UTF-8 cost nothing."""

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
    foreign: set[int] = set()  # positions of files that were not UTF-8
    for position, (raw, source) in enumerate(files):
        data = raw.removeprefix(BOM)
        try:
            _require_text(data, source)
        except FileRejected as refusal:
            results.append(refusal)
            continue
        data, was_utf8 = _as_utf8(data)
        if not was_utf8:
            foreign.add(position)
        results.append(None)
        texts.append((position, data, _line_count(data)))
    fields = _split_many([data for _, data, _ in texts], [lines for _, _, lines in texts])
    sources = [files[position][1] for position, _, _ in texts]
    for (position, data, _), result in zip(
        texts, _raw_exports(fields, [n for _, _, n in texts], sources), strict=True
    ):
        said = _said_delimiter(result, data)
        # Another delimiter is the more telling news: its message asks for CSV UTF-8 too.
        told = said is not result
        results[position] = _undecodable_kept(said) if position in foreign and not told else said
    return [r for r in results if r is not None]


def _raw_exports(
    fields: pl.DataFrame, lines: list[int], sources: list[str]
) -> list[RawExport | FileRejected]:
    """Headers, layout and rows of every file of a batch, in a few vectorised passes.

    ``fields`` holds every file's lines, tagged ``file`` (its position). Working
    on all files at once keeps the per-file cost to a partition: real exports
    are small (~300 lines), so a handful of frame operations per file cost more
    than reading them.
    """
    if fields["c1"].null_count() == 0:  # no line lacks a second field, so none is blank
        table = fields.with_columns(position=pl.col("line_no") - 1)
    else:
        table = fields.filter(~_blank()).with_columns(
            position=pl.int_range(pl.len(), dtype=pl.Int32).over("file")
        )
    table = table.join(_first_data_rows(table), on="file", how="left", maintain_order="left")
    rows = table.filter(pl.col("position") >= pl.col("first_data"))  # padding kept
    sample = _stripped(rows.filter(pl.col("position") < pl.col("first_data") + SAMPLE_ROWS))
    scores = sample.group_by("file").agg(
        *[_hits(layout).sum().alias(layout.name) for layout in LAYOUTS],
        line_no=pl.col("line_no").first(),
        filled=pl.sum_horizontal(pl.col(_POSITIONAL).is_not_null()).first(),
    )
    firsts = table.filter(pl.col("position") == 0).select(
        "file", "line_no", filled=pl.sum_horizontal(pl.col(_POSITIONAL).is_not_null())
    )
    chosen = _choose_layouts(scores)
    # Rows stay in file order, so each file's rows are one zero-copy slice of the
    # batch: thousands of small files cost no frame operation each.
    canonical = _canonical(rows.join(chosen, on="file", maintain_order="left"))
    by_file = _slices(canonical["file"])
    layouts = dict(chosen.iter_rows())
    canonical = canonical.drop("file", "layout")
    results: list[RawExport | FileRejected] = []
    described = {f: (n, k) for f, n, k in firsts.iter_rows()}
    failed = {f: (n, k) for f, *_, n, k in scores.iter_rows()}
    for index, (source, total) in enumerate(zip(sources, lines, strict=True)):
        if index in by_file:
            raw = canonical.slice(*by_file[index])
            layout = LAYOUTS[layouts[index]]
            results.append(RawExport(layout, raw, total - raw.height, source=source))
        elif index not in described:
            results.append(
                FileRejected("empty_file", "the file has only blank lines", source=source)
            )
        else:
            line_no, filled = failed.get(index, described[index])
            results.append(
                FileRejected("unrecognised_layout", _describe(line_no, filled), source=source)
            )
    return results


def _said_delimiter(result: RawExport | FileRejected, data: bytes) -> RawExport | FileRejected:
    """An unrecognised file that is separated by another delimiter is told so."""
    if not isinstance(result, FileRejected) or result.reason != "unrecognised_layout":
        return result
    delimiter = _other_delimiter(data)
    if delimiter is None:
        return result
    shown = "tab" if delimiter == "\t" else repr(delimiter)
    return FileRejected(
        "unrecognised_layout",
        f"unrecognised layout: its fields are separated by {shown}, not ','; re-export it "
        "as CSV (comma-separated), e.g. 'CSV UTF-8 (Comma delimited)' in Excel, and drop it "
        "into the landing folder again",
        source=result.source,
    )


def _slices(files: pl.Series) -> dict[int, tuple[int, int]]:
    """``file -> (offset, length)`` of each file's rows in a column sorted by file."""
    values = files.to_numpy()
    starts = np.flatnonzero(np.diff(values, prepend=-1))
    lengths = np.diff(starts, append=len(values))
    return {
        int(f): (int(s), int(n)) for f, s, n in zip(values[starts], starts, lengths, strict=True)
    }


def _first_data_rows(table: pl.DataFrame) -> pl.DataFrame:
    """``file, first_data``: where each file's data starts (files with no data row are absent).

    Headers stand at the top, so each file's first row is looked at first (most
    files have no header), then the first :data:`SAMPLE_ROWS` rows of the files
    that had one; only a file whose head is all headers is searched further (a
    stack of any height is skipped). Looking at all rows at once would strip and
    match every line of a batch to find a handful of headers.
    """
    data_like = (
        _timestamp_like() | _value_like() | _figures() | pl.col("line_problem").is_not_null()
    )
    found: list[pl.DataFrame] = []
    unsettled = table
    for limit in (1, SAMPLE_ROWS, None):
        head = unsettled if limit is None else unsettled.filter(pl.col("position") < limit)
        hits = _stripped(head).filter(data_like)
        found.append(hits.group_by("file").agg(first_data=pl.col("position").min()))
        if limit is None:
            break
        taller = unsettled.filter(pl.col("position") == limit)["file"]
        pending = taller.filter(~taller.is_in(found[-1]["file"].implode()))
        if pending.is_empty():
            break
        unsettled = unsettled.filter(pl.col("file").is_in(pending.implode()))
    return pl.concat(found)


def _choose_layouts(scores: pl.DataFrame) -> pl.DataFrame:
    """``file, layout`` (index into LAYOUTS) for files some layout matches; ties: the first."""
    names = [layout.name for layout in LAYOUTS]
    best = pl.max_horizontal(names)
    choice = pl.lit(None, dtype=pl.Int8)
    for index in reversed(range(len(LAYOUTS))):
        choice = (
            pl.when(pl.col(names[index]) == best).then(pl.lit(index, pl.Int8)).otherwise(choice)
        )
    return scores.filter(best > 0).select("file", layout=choice)


def _canonical(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows renamed to the canonical fields, each file by its own ``layout`` (an index)."""
    fields = []
    for field in FIELDS:
        usual = _POSITIONAL[LAYOUTS[0].order.index(field)]
        expr: pl.Expr = pl.col(usual)
        for index, layout in enumerate(LAYOUTS[1:], start=1):
            here = _POSITIONAL[layout.order.index(field)]
            if here != usual:  # only payment and total move between the layouts
                expr = pl.when(pl.col("layout") == index).then(pl.col(here)).otherwise(expr)
        fields.append(expr.alias(field))
    return rows.select("file", "layout", "line_no", *fields, "line_problem")


def _blank() -> pl.Expr:
    """Blank (or whitespace-only) lines are not rows."""
    return (
        pl.all_horizontal(pl.col(_POSITIONAL[1:]).is_null())
        & (pl.col("c0").str.strip_chars().fill_null("") == "")
        & pl.col("line_problem").is_null()
    )


def _require_text(data: bytes, source: str) -> None:
    if not data or data.isspace():  # unlike strip(), copies nothing
        raise FileRejected("empty_file", "the file is empty", source=source)
    workbook = _workbook(data)
    if workbook is not None:
        raise FileRejected(
            "excel_workbook",
            f"the file is an Excel workbook ({workbook}), not a CSV: open it and save it as "
            "'CSV UTF-8 (Comma delimited)', then drop that into the landing folder",
            source=source,
        )
    if b"\x00" in data:
        raise FileRejected(
            "binary_content",
            "the file contains NUL bytes, so it is not a text export (corrupted or binary); "
            "re-export it as CSV and drop it into the landing folder again",
            source=source,
        )


def _as_utf8(data: bytes) -> tuple[bytes, bool]:
    """``data`` as UTF-8, and whether it already was: bytes that are not become U+FFFD.

    Excel's plain "CSV" is saved in the Windows code page (Windows-1252 in the
    UK), so one accented customer name makes a file invalid UTF-8. Replacing
    the bad bytes is one C-speed pass over the file, never a row loop; commas,
    quotes and newlines are ASCII and never part of a bad sequence, so every
    field keeps its place. :func:`_undecodable_kept` then decides whether the
    replaced bytes matter.
    """
    if data.isascii():
        return data, True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace").encode("utf-8"), False
    return data, True


_UNDECODABLE = "\ufffd"
_KEPT_FIELDS = [field for field in FIELDS if field not in DROPPED_FIELDS]


def _undecodable_kept(result: RawExport | FileRejected) -> RawExport | FileRejected:
    """A file that was not UTF-8 loads when its bad bytes sit only in dropped columns.

    Bytes that are not UTF-8 in a kept column (a branch or a menu item) are
    refused, not decoded as Windows-1252: the bytes cannot tell Windows-1252 from
    Latin-1, the DOS code page 850 or Mac Roman (``0xE9`` is ``é`` in one and
    ``Ú`` in another), and a wrong guess becomes a branch or product of its own
    that splits the figures and never meets the same name in UTF-8 exports.
    Re-exporting as UTF-8 is one step for the person; a silent guess is not
    undone so easily. Header rows are not rows, so their bytes do not count.
    """
    if isinstance(result, FileRejected):
        if result.reason != "unrecognised_layout":
            return result
        return FileRejected("not_utf8", _NOT_UTF8 + _REEXPORT, source=result.source)
    marked = pl.col(_KEPT_FIELDS).str.contains(_UNDECODABLE, literal=True).fill_null(False)
    if not result.rows.select(pl.any_horizontal(marked.any())).item():
        return result  # the usual case, in one pass: only the line is looked for below
    first = result.rows.filter(pl.any_horizontal(marked)).row(0, named=True)
    field = next(f for f in _KEPT_FIELDS if _UNDECODABLE in (first[f] or ""))
    where = f" (line {first['line_no']}: its {field.replace('_', ' ')} holds bytes that are not"
    where += " UTF-8, e.g. an accented letter saved as Windows-1252)"
    return FileRejected("not_utf8", _NOT_UTF8 + where + _REEXPORT, source=result.source)


_NOT_UTF8 = "not UTF-8: re-export as UTF-8"
_REEXPORT = (
    "; in Excel save it as 'CSV UTF-8 (Comma delimited)', then drop it into the landing "
    "folder again"
)


def _workbook(data: bytes) -> str | None:
    """``.xlsx`` or ``.xls`` when ``data`` is an Excel workbook (renamed ``.csv``), else None.

    An ``.xlsx`` is a zip whose members live under ``xl/``; an ``.xls`` is an OLE2
    compound file. Told by their magic bytes, never by the name.
    """
    if data.startswith(b"PK\x03\x04") and b"xl/" in data[:_ZIP_NAMES]:
        return ".xlsx"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return ".xls"
    return None


_ZIP_NAMES = 64_000
"""An .xlsx names its xl/ members in its first local headers (xl/workbook.xml is early)."""


def _other_delimiter(data: bytes) -> str | None:
    """The delimiter of a file whose first lines split into 7 fields on ``;``, tab or ``|``
    (Excel's "CSV" in locales with a decimal comma), not on ``,``."""
    head = [line for line in data[:_SNIFF_BYTES].split(b"\n")[:_SNIFF_LINES] if line.strip()]
    for delimiter in (b";", b"\t", b"|"):
        if head and all(line.count(delimiter) >= len(FIELDS) - 1 for line in head):
            return delimiter.decode()
    return None


_SNIFF_LINES = 5
_SNIFF_BYTES = 8_192


def _line_count(data: bytes) -> int:
    newlines = int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == _NEWLINE))
    return newlines + (0 if data.endswith(b"\n") else 1)  # vectorised: 3x bytes.count


_NEWLINE = ord("\n")


def _split_many(texts: list[bytes], lines: list[int]) -> pl.DataFrame:
    """Fields of several files, tagged ``file``: at once when every file reads cleanly.

    A batch with a damaged file is read file by file, where the careful path
    names the damaged lines.
    """
    files = pl.Series("file", np.repeat(np.arange(len(texts), dtype=np.int32), lines))
    together = _read_csv(_joined(texts)) if len(texts) > 1 else None
    if together is None or together.height != sum(lines):
        parts = [_split_fields(data, n) for data, n in zip(texts, lines, strict=True)]
        counts = [part.height for part in parts]
        files = pl.Series("file", np.repeat(np.arange(len(texts), dtype=np.int32), counts))
        if not parts:
            empty = pl.DataFrame(schema=dict.fromkeys(_POSITIONAL, pl.String))
            return _with_line_numbers(empty, pl.Series([], dtype=pl.Int32)).with_columns(file=files)
        return pl.concat(parts).with_columns(file=files)
    # Fewer records than lines in one file cannot be made up by another: equal totals
    # mean every file read one record per physical line.
    starts = np.cumsum([0, *lines[:-1]])
    first_line = pl.Series(np.repeat(starts, lines) - 1, dtype=pl.Int64)
    line_no = (pl.int_range(0, together.height, dtype=pl.Int64) - first_line).cast(pl.Int32)
    return _with_line_numbers(together, line_no).with_columns(file=files)


def _joined(texts: list[bytes]) -> bytes | list[bytes]:
    """Small files as one buffer (Polars' fixed cost per source outweighs the copy), each
    ending in a newline so no two lines run together; big ones stay apart, read in parallel.

    A quote left open at the end of one file swallows lines of the next, so the
    batch reads fewer records than lines and falls back to file by file, as it
    does for a damaged file read alone.
    """
    if sum(map(len, texts)) > _JOIN_BELOW * len(texts):
        return texts
    return b"".join(text if text.endswith(b"\n") else text + b"\n" for text in texts)


_JOIN_BELOW = 256_000
"""Files averaging fewer bytes than this are parsed as one buffer (till exports: ~45 kB)."""


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


def _timestamp_like() -> pl.Expr:
    """A data row has a timestamp-like first field, or an amount or a payment word where the
    total and payment go (columns 5-6 in either layout); a header row, whatever its column
    names (``Column1``, ``custumer``...), has none of these. The data rows decide the layout,
    so any number of headers, agreeing or not, are skipped."""
    return pl.any_horizontal(
        pl.col("c0").str.contains(layout.timestamp_shape) for layout in LAYOUTS
    ).fill_null(False)


def _figures() -> pl.Expr:
    """A line holding figures no column name has: a price or amount (``2.45``, ``5.49E+15``),
    a clock time (``9:00``), or four digits in a row (a year, a card number).

    So a sale whose time, total and payment are all damaged is still a row, rejected with
    its reason, rather than skipped as a header; ``Column1``, ``(16 digits)`` or
    ``(day/month/year hour:minute)`` have no such figures. Only the head of each file is
    looked at, so the regex costs nothing per row.
    """
    return pl.any_horizontal(
        pl.col(c).str.contains(r"[0-9][.:][0-9]|[0-9]{4}") for c in _POSITIONAL
    ).fill_null(False)


def _value_like() -> pl.Expr:
    return pl.any_horizontal(
        pl.col(c).str.contains(r"^-?[0-9]+(\.[0-9]+)?$")
        | pl.col(c).str.to_uppercase().is_in(list(PAYMENT_WORDS))
        for c in ("c4", "c5")
    ).fill_null(False)


def _stripped(table: pl.DataFrame) -> pl.DataFrame:
    """The fields that tell data from headers and one layout from another, unpadded."""
    return table.with_columns(pl.col(_TELLING).str.strip_chars())


_TELLING = sorted({"c0", "c4", "c5"} | {_POSITIONAL[lay.payment_position] for lay in LAYOUTS})


def _hits(layout: Layout) -> pl.Expr:
    """Rows that read as ``layout``: its timestamp shape first and a payment word in place."""
    payment = pl.col(_POSITIONAL[layout.payment_position]).str.to_uppercase()
    hits = pl.col("c0").str.contains(layout.timestamp_shape) & payment.is_in(list(PAYMENT_WORDS))
    return hits.fill_null(False)


def _describe(line_no: int, filled: int) -> str:
    """Say what the first data line looks like without quoting its content (it holds PII)."""
    return (
        f"unrecognised layout: line {line_no} has {filled} non-empty fields and no "
        "layout matches it. Expected a branch export: 7 columns "
        "(timestamp dd/mm/yyyy HH:MM, branch, customer, basket, total, CASH/CARD, card) or the "
        "legacy layout (timestamp yyyy-mm-dd HH:MM:SS, branch, customer, basket, CASH/CARD, "
        "total, card). Fix or re-export the file, then drop it into the landing folder again"
    )
