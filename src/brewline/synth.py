"""Synthetic branch till exports, generated fast and realistically.

Everything is vectorised with numpy and polars: there is no Python loop over sales or
items, only over small things (menu lines, branches, files when drawing their random
numbers and when writing).  A million sales in 200 files take a couple of seconds.

Stable by construction: each branch's profile and regulars come from a generator
seeded by (seed, branch), each file's sales from one seeded by (seed, branch, day).
So the same branch-day is the same file, byte for byte, whatever ``days``, ``start``
or ``branches`` the spec asks for: a longer demo only adds files.

The output matches the real till export byte for byte: headerless, comma-separated,
LF line endings, minimal quoting, one file per (branch, trading day)::

    25/08/2021 09:00,Leeds,Amy Hall,"Regular Latte - 2.15, Large Mocha - 2.70",4.85,CARD,54941...
    25/08/2021 09:08,Leeds,Jack Reid,Regular Speciality Tea - Green - 1.30,1.3,CASH,

Usage::

    >>> from pathlib import Path
    >>> from brewline.synth import SynthSpec, generate_sales, generate_landing
    >>> sales = generate_sales(SynthSpec(branches=2, days=1, sales_per_branch_day=5))
    >>> sales.height
    10
    >>> paths = generate_landing(Path("landing"), SynthSpec())  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from brewline.extract.layouts import FIELDS

__all__ = [
    "BRANCH_NAMES",
    "MENU",
    "BranchProfile",
    "MenuItem",
    "SynthSpec",
    "branch_profiles",
    "file_name_for",
    "format_total",
    "format_totals",
    "generate_landing",
    "generate_sales",
    "write_branch_exports",
]

EXPORT_COLUMNS: tuple[str, ...] = FIELDS
"""The till's column order: the standard layout the extract stage reads."""

# --------------------------------------------------------------------------------------
# Spec
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SynthSpec:
    """What to generate.

    ``sales_per_branch_day=None`` gives realistic volumes (roughly 150-500 sales per
    branch and day, varying with the branch, the weekday and the season); an int gives
    exactly that many sales in every file.

    >>> bench = SynthSpec(branches=200, days=1, sales_per_branch_day=5000)  # 1M sales
    >>> bench.branches * bench.days * bench.sales_per_branch_day
    1000000
    """

    branches: int = 12
    start: dt.date = dt.date(2024, 11, 1)
    days: int = 30
    sales_per_branch_day: int | None = None
    seed: int = 7

    def __post_init__(self) -> None:
        if self.branches < 1:
            raise ValueError("branches must be >= 1")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.sales_per_branch_day is not None and self.sales_per_branch_day < 0:
            raise ValueError("sales_per_branch_day must be >= 0")


# --------------------------------------------------------------------------------------
# Menu
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MenuItem:
    """One sellable line of the menu, e.g. ``Large Flavoured latte - Vanilla - 2.85``."""

    size: str
    product: str
    variant: str | None
    pence: int

    @property
    def label(self) -> str:
        """The item exactly as the till writes it in a basket."""
        name = f"{self.size} {self.product}"
        if self.variant is not None:
            name += f" - {self.variant}"
        return f"{name} - {self.pence // 100}.{self.pence % 100:02d}"


_FLAVOURS3 = ("Caramel", "Hazelnut", "Vanilla")
_FLAVOURS4 = ("Caramel", "Gingerbread", "Hazelnut", "Vanilla")
_FRAPPES = ("Chocolate Cookie", "Coffee", "Strawberries & Cream")
_SMOOTHIES = ("Berry Beautiful", "Carrot Kick", "Glowing Greens")
_TEAS = (
    "Camomile",
    "Darjeeling",
    "Earl Grey",
    "English breakfast",
    "Fruit",
    "Green",
    "Peppermint",
)

# product -> (variants, large pence, regular pence, popularity, season)
# season: "summer" sells more from May to September, "winter" from November to February.
_PRODUCTS: dict[str, tuple[tuple[str, ...], int, int, float, str]] = {
    "Americano": ((), 225, 195, 9.0, ""),
    "Cappuccino": ((), 245, 215, 10.0, ""),
    "Chai latte": ((), 260, 230, 3.0, ""),
    "Cortado": ((), 235, 205, 3.0, ""),
    "Espresso": ((), 180, 150, 2.5, ""),
    "Filter coffee": ((), 180, 150, 5.0, ""),
    "Flat white": ((), 245, 215, 8.0, ""),
    "Flavoured hot chocolate": (_FLAVOURS3, 290, 260, 1.5, "winter"),
    "Flavoured iced latte": (_FLAVOURS3, 325, 275, 2.5, "summer"),
    "Flavoured latte": (_FLAVOURS4, 285, 255, 5.0, ""),
    "Frappes": (_FRAPPES, 325, 275, 2.0, "summer"),
    "Glass of milk": ((), 110, 70, 0.7, ""),
    "Hot Chocolate": ((), 170, 140, 2.5, "winter"),
    "Hot chocolate": ((), 290, 220, 2.0, "winter"),
    "Iced americano": ((), 250, 215, 1.8, "summer"),
    "Iced latte": ((), 285, 235, 2.8, "summer"),
    "Latte": ((), 245, 215, 14.0, ""),
    "Luxury hot chocolate": ((), 270, 240, 1.6, "winter"),
    "Mocha": ((), 270, 230, 4.0, ""),
    "Red Label tea": ((), 180, 120, 4.0, ""),
    "Smoothies": (_SMOOTHIES, 250, 200, 1.8, "summer"),
    "Speciality Tea": (_TEAS, 160, 130, 5.5, ""),
}
# Uneven variant popularity (in the order of the variant tuples).
_VARIANT_WEIGHTS: dict[str, tuple[float, ...]] = {
    "Flavoured hot chocolate": (1.0, 0.8, 1.2),
    "Flavoured iced latte": (1.2, 0.9, 1.4),
    "Flavoured latte": (1.0, 0.6, 1.3, 1.6),
    "Frappes": (1.1, 1.5, 0.9),
    "Smoothies": (1.4, 0.7, 0.9),
    "Speciality Tea": (0.5, 0.6, 1.6, 1.9, 0.7, 1.0, 1.2),
}
_REGULAR_SHARE = 0.56


# Month (Jan..Dec) multipliers for seasonal products.
_SUMMER = np.array([0.55, 0.6, 0.8, 1.2, 1.8, 2.6, 3.0, 3.0, 2.0, 1.1, 0.7, 0.55])
_WINTER = np.array([2.0, 1.8, 1.3, 1.0, 0.7, 0.5, 0.45, 0.45, 0.6, 1.0, 1.6, 2.3])
_GINGERBREAD = np.array([1.5, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4, 3.0, 5.0])


def _build_menu() -> tuple[tuple[MenuItem, ...], np.ndarray]:
    """All menu lines and their popularity by month, shape ``(12, len(menu))``."""
    items: list[MenuItem] = []
    weights: list[np.ndarray] = []
    season_curve = {"": np.ones(12), "summer": _SUMMER, "winter": _WINTER}
    for size in ("Large", "Regular"):
        size_share = _REGULAR_SHARE if size == "Regular" else 1 - _REGULAR_SHARE
        for product, (variants, large, regular, popularity, season) in _PRODUCTS.items():
            pence = regular if size == "Regular" else large
            base = popularity * size_share * season_curve[season]
            if not variants:
                items.append(MenuItem(size, product, None, pence))
                weights.append(base)
                continue
            shares = np.asarray(_VARIANT_WEIGHTS[product])
            shares = shares / shares.sum()
            for variant, share in zip(variants, shares, strict=True):
                w = base * share * (_GINGERBREAD if variant == "Gingerbread" else 1.0)
                items.append(MenuItem(size, product, variant, pence))
                weights.append(w)
    return tuple(items), np.stack(weights, axis=1)


MENU: tuple[MenuItem, ...]
_MONTH_WEIGHTS: np.ndarray
MENU, _MONTH_WEIGHTS = _build_menu()
_MENU_PENCE = np.array([m.pence for m in MENU], dtype=np.int64)

# --------------------------------------------------------------------------------------
# Branches
# --------------------------------------------------------------------------------------

# (name, kind): kind drives weekend effect and daily rhythm.
_BRANCHES: tuple[tuple[str, str], ...] = (
    ("Chesterfield", "town"),
    ("Leeds", "city"),
    ("London Camden", "city"),
    ("Newcastle upon Tyne", "city"),
    ("Southend-on-Sea", "seaside"),
    ("Sutton on Hull", "town"),
    ("Uppingham", "town"),
    ("Belfast", "city"),
    ("Bristol", "city"),
    ("Brighton", "seaside"),
    ("Manchester", "city"),
    ("Birmingham", "city"),
    ("Scarborough", "seaside"),
    ("Harrogate", "town"),
    ("York", "town"),
    ("Edinburgh", "city"),
    ("Glasgow", "city"),
    ("Cardiff", "city"),
    ("Liverpool", "city"),
    ("Sheffield", "city"),
    ("Nottingham", "city"),
    ("Bournemouth", "seaside"),
    ("Whitby", "seaside"),
    ("Stratford-upon-Avon", "town"),
    ("Kendal", "town"),
    ("Keswick", "town"),
    ("Margate", "seaside"),
    ("Blackpool", "seaside"),
    ("St Ives", "seaside"),
    ("Kingston upon Thames", "town"),
    ("London Soho", "city"),
    ("London Islington", "city"),
    ("Oxford", "town"),
    ("Cambridge", "town"),
    ("Bath", "town"),
    ("Norwich", "town"),
    ("Exeter", "town"),
    ("Lincoln", "town"),
    ("Durham", "town"),
    ("Swansea", "seaside"),
    ("Aberdeen", "city"),
    ("Inverness", "town"),
    ("Torquay", "seaside"),
    ("Skegness", "seaside"),
    ("Milton Keynes", "town"),
    ("Bury St Edmunds", "town"),
    ("Hebden Bridge", "town"),
    ("Llandudno", "seaside"),
)
BRANCH_NAMES: tuple[str, ...] = tuple(name for name, _ in _BRANCHES)
_KINDS = ("city", "town", "seaside")
# Saturday and Sunday traffic relative to a weekday.
_WEEKEND_FACTOR = {"city": (0.8, 0.6), "town": (1.15, 0.75), "seaside": (1.45, 1.25)}


@dataclass(frozen=True)
class BranchProfile:
    """A branch's character: name, kind, size, card share and opening hours.

    ``hours[weekday]`` is ``(open_minute, close_minute)`` counted from midnight, Monday
    first.  Sales happen at minutes ``open <= m < close``.

    >>> p = branch_profiles(SynthSpec(branches=1))[0]
    >>> p.name, p.opening(dt.date(2024, 11, 3)) < p.closing(dt.date(2024, 11, 3))
    ('Chesterfield', True)
    """

    name: str
    kind: str
    traffic: float  # mean weekday sales in a "normal" month
    card_share: float
    hours: tuple[tuple[int, int], ...]

    def opening(self, day: dt.date) -> dt.time:
        """Opening time on ``day``."""
        m = self.hours[day.weekday()][0]
        return dt.time(m // 60, m % 60)

    def closing(self, day: dt.date) -> dt.time:
        """Closing time on ``day`` (no sale at or after it)."""
        m = self.hours[day.weekday()][1]
        return dt.time(m // 60, m % 60)


def _branch_name(i: int) -> str:
    n = len(_BRANCHES)
    base = _BRANCHES[i % n][0]
    return base if i < n else f"{base} {i // n + 1}"


def branch_profiles(spec: SynthSpec) -> list[BranchProfile]:
    """The branches of ``spec``, deterministic for its seed.

    Each branch's profile depends only on the seed and its position, so adding
    branches never changes the earlier ones. More branches than built-in town
    names get numbered copies: "Leeds 2", "Leeds 3"...
    """
    return [_profile(spec.seed, i) for i in range(spec.branches)]


def _profile(seed: int, i: int) -> BranchProfile:
    """Branch ``i``'s profile, drawn from its own generator (a loop over branches, not sales)."""
    rng = np.random.default_rng([seed, 1, i])
    kind = _BRANCHES[i % len(_BRANCHES)][1]
    k = _KINDS.index(kind)
    size = rng.lognormal(0.0, 0.28) * (1.15, 0.9, 1.0)[k]
    card_share = np.clip((0.70, 0.62, 0.64)[k] + rng.normal(0, 0.025), 0.55, 0.75)
    open_minute = 60 * int(rng.choice([7, 7, 8] if kind == "city" else [7, 8, 8, 9]))
    close_minute = int(rng.choice([17 * 60, 17 * 60 + 30, 18 * 60, 18 * 60 + 30, 19 * 60]))
    saturday_shift = int(rng.choice([0, 0, 60]))  # some open an hour later on Saturday
    sunday_open = min(open_minute + int(rng.choice([60, 60, 120])), 10 * 60)
    sunday_close = int(rng.choice([16 * 60, 16 * 60 + 30, 17 * 60]))
    week = (open_minute, close_minute)
    return BranchProfile(
        name=_branch_name(i),
        kind=kind,
        traffic=float(np.clip(290 * size, 150, 470)),
        card_share=float(card_share),
        hours=(
            *([week] * 5),
            (open_minute + saturday_shift, close_minute),
            (sunday_open, sunday_close),
        ),
    )


def file_name_for(branch: str, day: dt.date, opening: dt.time) -> str:
    """``london_camden_18-12-2024_09-00-00.csv`` for London Camden opening at 09:00."""
    return f"{branch.lower().replace(' ', '_')}_{day:%d-%m-%Y}_{opening:%H-%M-%S}.csv"


# --------------------------------------------------------------------------------------
# Money
# --------------------------------------------------------------------------------------


def format_total(pence: int) -> str:
    """Write a total the way the till does (like Python's ``str(float)``).

    >>> [format_total(p) for p in (520, 1345, 500, 1730, 5)]
    ['5.2', '13.45', '5.0', '17.3', '0.05']
    """
    if pence < 0:
        return "-" + format_total(-pence)
    pounds, rest = divmod(pence, 100)
    return f"{pounds}.{rest // 10}" if rest % 10 == 0 else f"{pounds}.{rest:02d}"


def format_totals(pence: pl.Series | np.ndarray) -> pl.Series:
    """Vectorised :func:`format_total` for non-negative integer pence."""
    s = pl.Series("total", pence, dtype=pl.Int64)
    rest = s % 100
    frac = (
        pl.select(
            pl.when(rest % 10 == 0)
            .then((rest // 10).cast(pl.String))
            .otherwise(rest.cast(pl.String).str.zfill(2))
        )
        .to_series()
        .alias("frac")
    )
    return (
        pl.DataFrame({"p": (s // 100).cast(pl.String), "f": frac})
        .select(pl.concat_str(["p", "f"], separator=".").alias("total"))
        .to_series()
    )


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------

_FIRST_TEXT = (
    "Oliver George Harry Jack Jacob Noah Charlie Muhammad Thomas Oscar William James Henry "
    "Leo Alfie Joshua Freddie Archie Ethan Isaac Alexander Joseph Edward Samuel Max Daniel "
    "Arthur Lucas Mohammed Logan Theo Harrison Benjamin Mason Sebastian Finley Adam Dylan "
    "Zachary Riley Teddy Theodore David Elijah Jake Toby Louie Reuben Arlo Hugo Michael "
    "Richard Paul Mark Stephen Andrew Christopher Peter Gareth Ian Simon Kevin Ravi Sanjay "
    "Olivia Amelia Isla Ava Emily Isabella Mia Poppy Ella Lily Evie Grace Sophia Sophie "
    "Charlotte Freya Daisy Alice Florence Ruby Sienna Chloe Matilda Phoebe Jessica Scarlett "
    "Elsie Imogen Esme Harper Willow Layla Rosie Erin Eliza Niamh Aoife Angela Sarah Emma "
    "Rebecca Laura Claire Helen Rachel Hannah Lucy Katie Joanne Nicola Priya Aisha Fatima "
    "Zara Megan Bethany Siobhan Gemma Kirsty Deborah Margaret Susan Patricia Janet"
)
_LAST_TEXT = (
    "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans "
    "Walker White Roberts Green Hall Wood Jackson Clarke Patel Khan Lewis James Phillips "
    "Mason Mitchell Rose Davis Rodriguez Cox Alexander Morgan Moore Mills King Harris "
    "Edwards Allen Baker Scott Turner Hill Cooper Ward Morris Moore Clark Lee Watson Young "
    "Harrison Martin Anderson Bell Carter Parker Kelly Murphy Campbell Stewart Murray "
    "Hughes Price Griffiths Owen Lloyd Rees Thomas Marshall Bailey Kaur Singh Ali Ahmed "
    "Begum Hussain Shah Chapman Webb Simpson Ellis Collins Dixon Fletcher Gray Hunt "
    "Palmer Knight Holmes Lloyd Grant Sparrow Copeland Tran Nguyen Chen Wong Kowalski "
    "Nowak Fraser Reid MacDonald Henderson Ross Paterson Sutherland Gallagher Doherty "
    "O'Brien O'Neill O'Connor McCarthy Byrne Quinn Sullivan Jenkins Powell Barker Foster "
    "Pearson Booth Holland Spencer Lawrence Russell Hart Reynolds Fox Lamb Chambers "
    "Cartwright Ashworth Whitehead Brennan Horton Sharma Gupta Okafor Adeyemi Mensah "
    "Santos Silva Costa Rossi Bianchi Muller Jensen Smith-Jones Lloyd-Williams"
)
_FIRST: tuple[str, ...] = tuple(dict.fromkeys(_FIRST_TEXT.split()))
_LAST: tuple[str, ...] = tuple(dict.fromkeys(_LAST_TEXT.split()))

# --------------------------------------------------------------------------------------
# Sampling helpers
# --------------------------------------------------------------------------------------

_DAY_MINUTES = 24 * 60


def _gauss(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def _intraday_weights() -> np.ndarray:
    """Minute-of-day traffic intensity, one row per (kind, weekday/weekend) profile."""
    m = np.arange(_DAY_MINUTES, dtype=np.float64) + 0.5
    h = 60.0
    rows = []
    for weekend in (False, True):
        for kind in _KINDS:
            w = np.full(_DAY_MINUTES, 0.30)
            if not weekend:
                morning = {"city": 0.95, "town": 0.55, "seaside": 0.35}[kind]
                w += morning * _gauss(m, 8.25 * h, 40)
                w += 1.15 * _gauss(m, 12.75 * h, 50)
                w += {"city": 0.2, "town": 0.35, "seaside": 0.45}[kind] * _gauss(m, 15.5 * h, 60)
            else:
                w += 0.45 * _gauss(m, 10.75 * h, 55)  # brunch
                w += 1.0 * _gauss(m, 13.0 * h, 65)
                w += {"city": 0.25, "town": 0.35, "seaside": 0.7}[kind] * _gauss(m, 15.25 * h, 70)
            rows.append(w)
    return np.stack(rows)


def _stacked_cdf(weights: np.ndarray) -> np.ndarray:
    """Row-wise CDFs (with leading 0) flattened, row ``k`` shifted to ``[2k, 2k+1]``.

    Sampling from row ``k`` restricted to the bins ``[lo, hi)`` is then
    ``searchsorted(flat, 2k + cdf[lo] + u * (cdf[hi] - cdf[lo]))`` for all draws at once.
    """
    cdf = np.cumsum(weights, axis=1)
    cdf = cdf / cdf[:, -1:]
    cdf = np.concatenate([np.zeros((weights.shape[0], 1)), cdf], axis=1)
    flat: np.ndarray = (cdf + 2.0 * np.arange(weights.shape[0])[:, None]).ravel()
    return flat


def _sample_rows(
    flat_cdf: np.ndarray,
    row: np.ndarray,
    *,
    lo: np.ndarray,
    hi: np.ndarray,
    n_bins: int,
    u: np.ndarray,
) -> np.ndarray:
    """Draw bin indices in ``[lo, hi)`` from per-draw distribution ``row`` (see above)."""
    base = row.astype(np.int64) * (n_bins + 1)
    c_lo = flat_cdf[base + lo]
    c_hi = flat_cdf[base + hi]
    pos = np.searchsorted(flat_cdf, c_lo + u * (c_hi - c_lo), side="right") - 1 - base
    drawn: np.ndarray = np.clip(pos, lo, hi - 1)
    return drawn


_INTRADAY_CDF = _stacked_cdf(_intraday_weights())
_MENU_CDF = _stacked_cdf(_MONTH_WEIGHTS)
_BASKET_SIZE_P = np.array([0.24, 0.28, 0.21, 0.13, 0.08, 0.06])  # 1..6 items, mean ~2.7
_MAX_ITEMS = len(_BASKET_SIZE_P)
_REPEAT_P = 0.09  # next item is the same as the previous one
_FAVOURITE_P = 0.45  # a card customer starts with their usual
_VISITOR_P = 0.04  # a card sale by a regular of another branch
_VISITOR_SPAN = 4  # ... one of the next four branches (which may lie beyond the spec's)
_POOL_DAYS = 30  # a branch has about one regular per two card sales in this many days
_MAX_POOL = 3_000  # ... at most (a benchmark's 5,000-sale days)
_MONTH_TRAFFIC = np.array([0.88, 0.9, 0.95, 1.0, 1.02, 1.0, 1.05, 1.05, 1.0, 1.0, 1.02, 1.12])
_SEASIDE_MONTH = np.array([0.8, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.4, 1.15, 1.0, 0.85, 0.9])


def _gather(labels: list[str] | tuple[str, ...], idx: np.ndarray) -> pl.Series:
    return pl.Series(values=list(labels), dtype=pl.String).gather(idx)


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Files:
    """One entry per output file (branch, day), in file-name order."""

    names: list[str]
    branch: np.ndarray  # branch index
    date: list[dt.date]
    weekday: np.ndarray
    month: np.ndarray  # 0-based
    open: np.ndarray  # minute of day
    close: np.ndarray


def _plan_files(spec: SynthSpec, profiles: list[BranchProfile]) -> _Files:
    days = [spec.start + dt.timedelta(days=d) for d in range(spec.days)]
    branch = np.repeat(np.arange(spec.branches), spec.days)
    day = np.tile(np.arange(spec.days), spec.branches)
    names = np.array([file_name_for(p.name, d, p.opening(d)) for p in profiles for d in days])
    order = np.argsort(names, kind="stable")
    branch, day = branch[order], day[order]
    weekday = np.array([d.weekday() for d in days])[day]
    hours = np.array([p.hours for p in profiles])  # (branches, 7 weekdays, open/close)
    return _Files(
        names=names[order].tolist(),
        branch=branch,
        date=[days[d] for d in day],
        weekday=weekday,
        month=np.array([d.month - 1 for d in days])[day],
        open=hours[branch, weekday, 0],
        close=hours[branch, weekday, 1],
    )


# Uniform draws per sale, one column each: every random choice about a sale reads
# its own column of its file's draws (see _file_draws).
_U_MINUTE, _U_CARD, _U_VISITOR, _U_NEIGHBOUR, _U_REGULAR, _U_FIRST, _U_LAST, _U_SIZE = range(8)
_U_USUAL = 8
_U_ITEM = 9  # 9..14: the item at each basket position
_U_REPEAT = _U_ITEM + _MAX_ITEMS  # 15..19: "the same again" at positions 1..5
_DRAWS = _U_REPEAT + _MAX_ITEMS - 1
_BASKET_CDF = np.cumsum(_BASKET_SIZE_P)[:-1]


def _mean_sales(files: _Files, profiles: list[BranchProfile]) -> np.ndarray:
    """Expected sales of each file: the branch's traffic by weekday and season."""
    kind = np.array([_KINDS.index(p.kind) for p in profiles])[files.branch]
    traffic = np.array([p.traffic for p in profiles])[files.branch]
    sat = np.array([_WEEKEND_FACTOR[k][0] for k in _KINDS])[kind]
    sun = np.array([_WEEKEND_FACTOR[k][1] for k in _KINDS])[kind]
    wd = files.weekday
    dow = np.where(wd == 5, sat, np.where(wd == 6, sun, np.where(wd == 4, 1.06, 1.0)))
    season = np.where(kind == 2, _SEASIDE_MONTH[files.month], _MONTH_TRAFFIC[files.month])
    mean: np.ndarray = traffic * dow * season
    return mean


def _file_generators(spec: SynthSpec, files: _Files) -> list[np.random.Generator]:
    """One generator per file, seeded by (seed, branch, day): a branch-day's export is
    the same file whatever else the spec asks for (more days, more branches)."""
    return [
        np.random.default_rng([spec.seed, 2, int(branch), day.toordinal()])
        for branch, day in zip(files.branch, files.date, strict=True)
    ]


def _file_counts(
    spec: SynthSpec,
    files: _Files,
    profiles: list[BranchProfile],
    generators: list[np.random.Generator],
) -> np.ndarray:
    """Sales in each file: exactly ``sales_per_branch_day``, or drawn around the mean."""
    if spec.sales_per_branch_day is not None:
        return np.full(len(generators), spec.sales_per_branch_day, dtype=np.int64)
    means = _mean_sales(files, profiles).tolist()
    counts = [
        min(max(int(g.poisson(mean * g.lognormal(0.0, 0.08))), 60), 700)
        for g, mean in zip(generators, means, strict=True)
    ]
    return np.array(counts, dtype=np.int64)


def _draws(generators: list[np.random.Generator], counts: np.ndarray) -> np.ndarray:
    """Every sale's uniform draws, shape ``(_DRAWS, sales)``, each file's from its generator.

    The loop is over files and only draws; what is made of the draws is
    vectorised over all sales.
    """
    draws = np.empty((_DRAWS, int(counts.sum())))
    start = 0
    for g, n in zip(generators, counts.tolist(), strict=True):
        draws[:, start : start + n] = g.random((_DRAWS, n))
        start += n
    return draws


def _sale_minutes(s_file: np.ndarray, files: _Files, kind: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Minute of day of each sale, within opening hours, ascending within each file."""
    weekend = files.weekday[s_file] >= 5
    minute = _sample_rows(
        _INTRADAY_CDF,
        kind[files.branch[s_file]] + len(_KINDS) * weekend,
        lo=files.open[s_file],
        hi=files.close[s_file],
        n_bins=_DAY_MINUTES,
        u=u,
    )
    # s_file is non-decreasing, so sorting the combined key sorts within each file.
    return np.sort(s_file.astype(np.int64) * _DAY_MINUTES + minute) % _DAY_MINUTES


def _pool_sizes(spec: SynthSpec, branches: int) -> np.ndarray:
    """How many regulars (card holders) each of branches ``0..branches-1`` has."""
    sizes = []
    for i in range(branches):  # loop over branches, not sales
        profile = _profile(spec.seed, i)
        per_day = spec.sales_per_branch_day
        expected = profile.traffic if per_day is None else per_day
        sizes.append(np.clip(expected * profile.card_share * _POOL_DAYS * 0.5, 20, _MAX_POOL))
    return np.array(sizes, dtype=np.int64)


_MIX_A, _MIX_B = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_CARD, _NAME, _USUAL = (np.uint64(k) for k in (1, 2, 3))
_ANNUAL_CDF = np.cumsum(_MONTH_WEIGHTS.mean(axis=0))[:-1] / _MONTH_WEIGHTS.mean(axis=0).sum()
_DOUBLED = np.array([2 * d - 9 * (d >= 5) for d in range(10)])  # a doubled digit, Luhn's way
_LUHN_PAIRS = np.array([p // 10 + _DOUBLED[p % 10] for p in range(100)])  # "ab": a + 2b


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a well-spread 64-bit hash of each ``uint64`` (wrapping)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX_A
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX_B
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


@dataclass(frozen=True)
class _Customers:
    is_card: np.ndarray
    card: np.ndarray  # card number (meaningless for cash sales)
    first: np.ndarray  # index into _FIRST
    last: np.ndarray  # index into _LAST
    favourite: np.ndarray  # usual menu item (-1 for cash sales)


def _regulars(seed: int, branch: np.ndarray, number: np.ndarray) -> _Customers:
    """Card, name and usual item of regular ``number`` of ``branch``, for each sale.

    A regular is a hash of (seed, branch, number): nothing is stored per regular,
    and a branch's regulars are the same whatever else is generated.
    """
    salt = _mix(np.array([seed % 2**64], dtype=np.uint64))
    who = _mix(((branch.astype(np.uint64) << np.uint64(32)) + number.astype(np.uint64)) ^ salt)
    card, name, usual = (_mix(who ^ field) for field in (_CARD, _NAME, _USUAL))
    return _Customers(
        is_card=np.ones(branch.size, dtype=bool),
        card=_card_number(card),
        first=(name % np.uint64(len(_FIRST))).astype(np.int64),
        last=((name >> np.uint64(32)) % np.uint64(len(_LAST))).astype(np.int64),
        favourite=np.searchsorted(_ANNUAL_CDF, (usual >> np.uint64(11)) * 2.0**-53, "right"),
    )


def _card_number(h: np.ndarray) -> np.ndarray:
    """A Luhn-valid 16-digit card number starting with 4 or 5 from each 64-bit hash."""
    lead = 4 + (h & np.uint64(1)).astype(np.int64)
    rest = ((h >> np.uint64(1)) % np.uint64(10**14)).astype(np.int64)  # digits 2..15
    # Luhn: from the right, every second digit left of the check digit is doubled,
    # i.e. the lead and then every other digit, read here two digits at a time.
    luhn = _DOUBLED[lead]
    left = rest
    for _ in range(7):  # loop over digit pairs, not sales
        luhn = luhn + _LUHN_PAIRS[left % 100]
        left = left // 100
    card: np.ndarray = (lead * 10**14 + rest) * 10 + (10 - luhn % 10) % 10
    return card


def _customers(
    seed: int,
    s_branch: np.ndarray,
    profiles: list[BranchProfile],
    pools: np.ndarray,
    draws: np.ndarray,
) -> _Customers:
    """Card customers are regulars of a branch (see :func:`_regulars`); cash ones anonymous.

    ``pools`` is the number of regulars per branch (:func:`_pool_sizes`).
    """
    card_share = np.array([p.card_share for p in profiles])
    is_card = draws[_U_CARD] < card_share[s_branch]
    # A few card sales are by regulars of one of the next branches.
    visitor = is_card & (draws[_U_VISITOR] < _VISITOR_P)
    neighbour = 1 + (draws[_U_NEIGHBOUR] * _VISITOR_SPAN).astype(np.int64)
    home = np.where(visitor, s_branch + neighbour, s_branch)
    # Zipf-Mandelbrot p(rank) ~ 1 / (rank + q), sampled by its continuous inverse CDF.
    # q grows with the pool so the best regular comes once or twice a day, not 50 times.
    size = pools[home]
    q = np.maximum(2.0, size / 100.0)
    u = draws[_U_REGULAR]
    rank = np.floor((size + q) ** u * q ** (1 - u) - q).astype(np.int64)
    regular = _regulars(seed, home, np.clip(rank, 0, size - 1))
    anyone_first = (draws[_U_FIRST] * len(_FIRST)).astype(np.int64)
    anyone_last = (draws[_U_LAST] * len(_LAST)).astype(np.int64)
    return _Customers(
        is_card=is_card,
        card=regular.card,
        first=np.where(is_card, regular.first, anyone_first),
        last=np.where(is_card, regular.last, anyone_last),
        favourite=np.where(is_card, regular.favourite, -1),
    )


def _baskets(
    s_month: np.ndarray, customers: _Customers, draws: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Menu indices, shape ``(6, n)`` with ``len(MENU)`` for "no item", and pence totals."""
    n, n_menu = s_month.size, len(MENU)
    size = 1 + np.searchsorted(_BASKET_CDF, draws[_U_SIZE], side="right")
    items = np.empty((_MAX_ITEMS, n), dtype=np.int64)
    lo, hi = np.zeros(n, dtype=np.int64), np.full(n, n_menu, dtype=np.int64)
    for j in range(_MAX_ITEMS):  # loop over basket positions (6), not sales
        u = draws[_U_ITEM + j]
        items[j] = _sample_rows(_MENU_CDF, s_month, lo=lo, hi=hi, n_bins=n_menu, u=u)
        if j == 0:  # regulars often start with their usual
            usual = customers.is_card & (draws[_U_USUAL] < _FAVOURITE_P)
            items[0] = np.where(usual, customers.favourite, items[0])
        else:  # "two lattes please"
            again = draws[_U_REPEAT + j - 1] < _REPEAT_P
            items[j] = np.where(again, items[j - 1], items[j])
    present = np.arange(_MAX_ITEMS)[:, None] < size[None, :]
    total_pence = np.where(present, _MENU_PENCE[items], 0).sum(axis=0)
    return np.where(present, items, n_menu), total_pence


_CHUNK_SALES = 250_000
"""Sales made at a time (whole files), which bounds the memory the draws take."""
_LABELS = pl.Series(values=[m.label for m in MENU] + [None], dtype=pl.String)
_HHMM = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]


@dataclass(frozen=True)
class _Plan:
    """Everything about ``spec`` but its sales: branches, files, regulars, generators."""

    seed: int
    profiles: list[BranchProfile]
    files: _Files
    pools: np.ndarray  # regulars per branch
    generators: list[np.random.Generator]
    counts: np.ndarray  # sales per file

    @classmethod
    def of(cls, spec: SynthSpec) -> _Plan:
        profiles = branch_profiles(spec)
        files = _plan_files(spec, profiles)
        generators = _file_generators(spec, files)
        counts = _file_counts(spec, files, profiles, generators)
        pools = _pool_sizes(spec, spec.branches + _VISITOR_SPAN)
        return cls(spec.seed, profiles, files, pools, generators, counts)

    def chunks(self) -> Iterator[slice]:
        """Runs of consecutive files holding about :data:`_CHUNK_SALES` sales (at least one)."""
        ends = np.cumsum(self.counts)
        start = 0
        while True:
            done = int(ends[start - 1]) if start else 0
            stop = max(int(np.searchsorted(ends, done + _CHUNK_SALES, side="right")), start + 1)
            yield slice(start, stop)
            if stop >= len(self.counts):
                return
            start = stop


def generate_sales(spec: SynthSpec) -> pl.DataFrame:
    """Generate all sales of ``spec`` as already-formatted strings.

    Columns (all String): ``timestamp, branch, customer_name, basket, total,
    payment_method, card_number`` ("" for cash) and the helper ``file_name``.  Rows
    are sorted by ``file_name`` then ``timestamp``. A branch-day's sales depend on
    the seed, the branch, the day and ``sales_per_branch_day`` only: the same
    branch-day gives the same rows whatever ``days``, ``start`` or ``branches``.

    >>> df = generate_sales(SynthSpec(branches=3, days=2, sales_per_branch_day=10, seed=1))
    >>> df.shape, df["file_name"].n_unique()
    ((60, 8), 6)
    """
    plan = _Plan.of(spec)
    return pl.concat([_sales(plan, files) for files in plan.chunks()])


def _sales(plan: _Plan, chunk: slice) -> pl.DataFrame:
    """The sales of the files in ``chunk``, formatted (see :func:`generate_sales`)."""
    files, profiles = plan.files, plan.profiles
    draws = _draws(plan.generators[chunk], plan.counts[chunk])
    s_file = np.repeat(np.arange(len(plan.counts))[chunk], plan.counts[chunk])
    kind = np.array([_KINDS.index(p.kind) for p in profiles])
    minute = _sale_minutes(s_file, files, kind, draws[_U_MINUTE])
    customers = _customers(plan.seed, files.branch[s_file], profiles, plan.pools, draws)
    items, total_pence = _baskets(files.month[s_file], customers, draws)
    frame = pl.DataFrame(
        {
            **{f"i{j}": _LABELS.gather(items[j]) for j in range(_MAX_ITEMS)},
            "date": _gather([f"{d:%d/%m/%Y}" for d in files.date], s_file),
            "hhmm": _gather(_HHMM, minute),
            "branch": _gather([profiles[b].name for b in files.branch], s_file),
            "first": _gather(_FIRST, customers.first),
            "last": _gather(_LAST, customers.last),
            "total": format_totals(total_pence),
            "is_card": customers.is_card,
            "card": customers.card,
            "file_name": _gather(files.names, s_file),
        }
    )
    is_card = pl.col("is_card")
    return frame.select(
        pl.concat_str(["date", "hhmm"], separator=" ").alias("timestamp"),
        "branch",
        pl.concat_str(["first", "last"], separator=" ").alias("customer_name"),
        pl.concat_str(
            [f"i{j}" for j in range(_MAX_ITEMS)], separator=", ", ignore_nulls=True
        ).alias("basket"),
        "total",
        pl.when(is_card).then(pl.lit("CARD")).otherwise(pl.lit("CASH")).alias("payment_method"),
        pl.when(is_card)
        .then(pl.col("card").cast(pl.String))
        .otherwise(pl.lit(""))
        .alias("card_number"),
        "file_name",
    )


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def write_branch_exports(sales: pl.DataFrame, folder: Path) -> list[Path]:
    """Write one headerless till CSV per ``file_name`` into ``folder``; return sorted paths.

    Empty strings are written as nothing (polars would otherwise write ``""``), fields
    are quoted only when they contain a comma or quote, lines end with LF.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_branch_exports(
    ...         generate_sales(SynthSpec(branches=1, days=1, sales_per_branch_day=3)), Path(tmp)
    ...     )
    ...     [p.name for p in paths]
    ['chesterfield_01-11-2024_08-00-00.csv']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = sales.select(
        *[
            pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c)
            for c in EXPORT_COLUMNS
        ],
        "file_name",
    )
    paths = []
    for (name,), part in out.partition_by("file_name", as_dict=True, maintain_order=True).items():
        path = folder / str(name)
        part.drop("file_name").write_csv(
            path,
            include_header=False,
            separator=",",
            line_terminator="\n",
            quote_style="necessary",
            null_value="",
        )
        paths.append(path)
    return sorted(paths)


def generate_landing(folder: Path, spec: SynthSpec) -> list[Path]:
    """Generate ``spec`` and write its branch exports into ``folder``.

    >>> generate_landing(Path("landing"), SynthSpec(branches=12, days=30))  # doctest: +SKIP
    """
    return write_branch_exports(generate_sales(spec), folder)
