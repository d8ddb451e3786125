"""Privacy under fuzz (issue 19): names and cards put in every column of a corpus of exports
(swapped columns, names and cards typed into baskets, rows that get rejected, files refused
whole) are loaded into both engines; then every text column of the warehouse, the
quarantine's index, the CLI's output and logs, ``/metrics``, every dashboard page and
``report --json`` are searched for every name and card of the input.

The corpus is seeded: a failure names the secret and where it was found, and the same
corpus comes back on the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from tests.conftest import PII_KEY
from tests.semantics._util import report_json, rows, text_values, write
from tests.serve.conftest import dashboard
from typer.testing import CliRunner

from brewline.cli import app

FIRST = ["Amy", "Zelda", "Quentin", "Ottoline", "Barnaby", "Imelda", "Cosmo", "Perpetua"]
LAST = ["Kader", "Quillfeather", "Mortlake", "Vexworth", "Blackmere", "Oddington", "Wexcombe"]
BRANCHES = ["Leeds", "York", "London Camden", "Chesterfield", "Bath"]
MENU = [("Large Latte", "2.45"), ("Regular Flavoured latte - Hazelnut", "2.55"), ("Tea", "1.20")]
FIRST_DAY = dt.date(2024, 1, 1)
FILES = 60


@dataclass(frozen=True)
class Person:
    name: str
    card: str

    @property
    def spaced_card(self) -> str:
        return " ".join(self.card[i : i + 4] for i in range(0, len(self.card), 4))


@dataclass
class Corpus:
    """The files written and what a correct load of them must show."""

    people: list[Person]
    branches: set[str] = field(default_factory=set)
    """The branches of files that must load (some of their rows may be rejected)."""
    reasons: set[str] = field(default_factory=set)
    """File-level reasons the corpus provokes."""

    @property
    def secrets(self) -> list[str]:
        out = []
        for person in self.people:
            out += [person.name, person.name.split()[1], person.card, person.spaced_card]
        return out


class Writer:
    """Builds export lines for one seeded corpus."""

    def __init__(self, rng: random.Random, people: list[Person]):
        self.rng = rng
        self.people = people

    def basket(self) -> tuple[str, str]:
        items = self.rng.choices(MENU, k=self.rng.randint(1, 3))
        total = sum((Decimal(price) for _, price in items), Decimal(0))
        return ", ".join(f"{name} - {price}" for name, price in items), str(total)

    def row(self, when: dt.datetime, branch: str, name: str, card: str, mutation: str = "") -> str:
        """One export line of a sale at ``branch`` by ``name``, with ``mutation`` applied."""
        basket, total = self.basket()
        paid = ("CARD", card) if card and self.rng.random() < 0.6 else ("CASH", "")
        fields = {"ts": f"{when:%d/%m/%Y %H:%M}", "branch": branch, "name": name}
        fields |= {"basket": basket, "total": total, "pay": paid[0], "card": paid[1]}
        if mutation:
            fields |= MUTATIONS[mutation](self.rng.choice(self.people), name)
        basket = fields["basket"]
        fields["basket"] = f'"{basket}"' if "," in basket else basket
        return ",".join(fields.values()) + "\n"


def _a_card(person: Person) -> str:
    return random.Random(person.name).choice([person.card, person.spaced_card])


MUTATIONS: dict[str, Callable[[Person, str], dict[str, str]]] = {
    # In the basket: rejected as personal_data_in_basket (same file) or as total_mismatch.
    "card_in_basket": lambda other, name: {
        "basket": f"Large {_a_card(other)} - 2.60",
        "total": "2.6",
    },
    "name_in_basket": lambda other, name: {"basket": f"Regular {name} - 1.00", "total": "1.0"},
    "name_in_variant": lambda other, name: {
        "basket": f"Large Latte - {name} - 2.45",
        "total": "2.45",
    },
    "other_name_rejected": lambda other, name: {
        "basket": f"Large {other.name} - 2.45",
        "total": "9.99",
    },
    # In every other column.
    "card_in_branch": lambda other, name: {"branch": _a_card(other)},
    "name_in_branch": lambda other, name: {"branch": other.name},
    "card_in_name": lambda other, name: {"name": _a_card(other)},
    "name_in_timestamp": lambda other, name: {"ts": other.name},
    "card_in_timestamp": lambda other, name: {"ts": other.card},
    "name_in_total": lambda other, name: {"total": other.name},
    "card_in_total": lambda other, name: {"total": other.card},
    "name_in_payment": lambda other, name: {"pay": other.name},
    "name_in_card": lambda other, name: {"pay": "CARD", "card": other.name},
    "extra_field": lambda other, name: {"card": f"{other.card},{other.name}"},
}
BASKET_MUTATIONS = list(MUTATIONS)[:4]


def till_name(branch: str, day: dt.date) -> str:
    return f"{branch.lower().replace(' ', '_')}_{day:%d-%m-%Y}_09-00-00.csv"


def build_corpus(landing: Path, seed: int = 19) -> Corpus:
    """Write :data:`FILES` exports of seven kinds into ``landing``."""
    rng = random.Random(seed)
    names = rng.sample([f"{f} {last}" for f in FIRST for last in LAST], 24)
    people = [
        Person(n, str(rng.choice([4, 5])) + "".join(rng.choices("0123456789", k=15))) for n in names
    ]
    corpus = Corpus(people)
    writer = Writer(rng, people)

    def pick(customers: list[Person]) -> tuple[str, str]:
        person = rng.choice(customers)
        return person.name, person.card

    for index in range(FILES):
        day = FIRST_DAY + dt.timedelta(days=index)
        start = dt.datetime.combine(day, dt.time(9))
        branch = BRANCHES[index % len(BRANCHES)]
        customers = rng.sample(people, 6)
        minutes = [start + dt.timedelta(minutes=m) for m in range(12)]
        kind = index % 7
        if kind in (0, 1, 2):  # one branch's export, every fourth row mutated
            # Distinct mutations: at most one row names another branch, so the file stays
            # one branch's export (90% of its rows) and loads.
            mutations = iter(rng.sample(list(MUTATIONS), 3))
            lines = [
                writer.row(t, branch, *pick(customers), next(mutations) if m % 4 == 0 else "")
                for m, t in enumerate(minutes)
            ]
            if kind == 2:  # a header row holding a name, and columns given names
                lines.insert(0, f"Prepared by {customers[0].name},for,Head Office,,,,\n")
                lines.insert(1, "timestamp,branch,customer,basket,total,payment,card\n")
            corpus.branches.add(branch)
            name = till_name(branch, day)
        elif kind == 3:  # branch and customer swapped, many customers: several_branches
            lines = [writer.row(t, rng.choice(customers).name, branch, "") for t in minutes]
            name, reason = till_name(branch, day), "several_branches"
            corpus.reasons.add(reason)
        elif kind == 4:  # a one-customer file swapped, named after nothing: unknown_branch
            person = customers[0]
            lines = [writer.row(t, person.name, branch, person.card) for t in minutes]
            name = f"export_{index}.csv"
            corpus.reasons.add("unknown_branch")
        elif kind == 5:  # several branches, names and cards in their baskets
            lines = [
                writer.row(t, BRANCHES[m % 3], *pick(customers), rng.choice(BASKET_MUTATIONS))
                for m, t in enumerate(minutes)
            ]
            name = f"mixed_{index}.csv"
            corpus.reasons.add("several_branches")
        else:  # every row rejected, another file's customers in its baskets: no_valid_rows
            lines = [
                writer.row(t, branch, *pick(customers), "other_name_rejected") for t in minutes
            ]
            name = till_name(branch, day)
            corpus.reasons.add("no_valid_rows")
        write(landing, name, "".join(lines), index + 1)
    return corpus


def test_no_name_or_card_of_a_fuzzed_corpus_reaches_any_output(
    warehouse_url: str,
    tmp_path: Path,
    landing: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    corpus = build_corpus(landing)
    quarantine = tmp_path / "quarantine"
    env = {"BREWLINE_CONFIG": os.devnull, "BREWLINE_PII_KEY": PII_KEY, "COLUMNS": "200"}
    command = ["run", str(landing), "-w", warehouse_url, "--quarantine", str(quarantine)]
    loaded = CliRunner().invoke(app, [*command, "--no-alert"], env=env)
    assert loaded.exit_code == 1, loaded.output  # some files are rejected, none fails
    again = CliRunner().invoke(app, [*command, "--no-alert", "--json"], env=env)
    outputs: dict[str, str] = {
        "warehouse": "\n".join(text_values(warehouse_url)),
        "quarantine index": "\n".join(sorted(p.name for p in quarantine.iterdir())),
        "run output": loaded.output + again.output,
        "logs": caplog.text,
        "report --json": report_json(warehouse_url, "--limit", "1000", "--days", "400"),
    }
    with dashboard(warehouse_url, tmp_path / "serve") as served:
        pages = ["/", "/?start=2024-01-01&end=2024-12-31", "/operations", "/totesys", "/metrics"]
        pages += [f"/?branch={urllib.parse.quote(b)}" for b in sorted(corpus.branches)]
        for page in pages:
            answer = served.get(page)
            assert answer.status == 200, page
            outputs[page] = answer.text
        outputs["dashboard log"] = served.log()
    assert "London Camden" in outputs["report --json"]
    leaks = [
        (secret, where)
        for secret in corpus.secrets
        for where, text in outputs.items()
        if secret in text
    ]
    assert not leaks, f"{len(leaks)} leaks, e.g. {sorted({w for _, w in leaks})}: {leaks[:5]}"
    # What a correct load shows: the search above looked where a leak would be.
    assert "London Camden" in outputs["/?start=2024-01-01&end=2024-12-31"]
    branches = {r[0] for r in rows(warehouse_url, "SELECT branch_name FROM dim_branch")}
    assert branches == corpus.branches
    reasons = {r[0] for r in rows(warehouse_url, "SELECT DISTINCT reason FROM etl_file")}
    assert corpus.reasons <= reasons
    rejected = {r[0] for r in rows(warehouse_url, "SELECT DISTINCT reason FROM etl_rejected_row")}
    assert "personal_data_in_basket" in rejected
    assert any(p.name in path.read_text() for path in quarantine.iterdir() for p in corpus.people)
