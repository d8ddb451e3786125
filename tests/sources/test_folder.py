"""The folder source: what counts as a delivery, in which order, and its quarantine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from brewline.errors import ConfigError
from brewline.sources import Delivery, open_source
from brewline.sources.folder import FolderQuarantine, FolderSource


def put(folder: Path, name: str, data: bytes, mtime: float) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def test_deliveries_are_the_csv_files_in_delivery_order_named_relative_to_the_root(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    put(landing, "leeds (1).csv", b"b", 100)
    put(landing, "leeds.csv", b"a", 100)
    put(landing, "york/york.csv", b"c", 50)
    put(landing, "notes.txt", b"not an export", 10)
    put(landing, ".hidden.csv", b"x", 10)
    put(landing, "_quarantine/leeds.csv.abc.rejected.csv", b"x", 10)
    put(landing, "old.rejected.csv", b"x", 10)
    source = FolderSource([landing])
    found = source.deliveries()
    assert [(d.name, d.size, d.arrived) for d in found] == [
        ("york/york.csv", 1, 50),
        ("leeds.csv", 1, 100),
        ("leeds (1).csv", 1, 100),  # a browser's copy comes after the original when times tie
    ]
    assert [source.read(d) for d in found] == [b"c", b"a", b"b"]


def test_the_configured_quarantine_folder_inside_the_landing_area_is_not_read(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    put(landing, "leeds.csv", b"a", 1)
    put(landing, "rejects/old.csv", b"x", 1)
    source = FolderSource([landing], quarantine=landing / "rejects")
    assert [d.name for d in source.deliveries()] == ["leeds.csv"]


def test_a_single_file_is_a_source_named_by_its_file_name(tmp_path: Path) -> None:
    path = put(tmp_path / "deep" / "er", "leeds.csv", b"abc", 5)
    source = open_source([path], quarantine=None)
    assert [d.name for d in source.deliveries()] == ["leeds.csv"]
    assert isinstance(source.quarantine, FolderQuarantine)
    assert source.quarantine.folder == path.parent / "_quarantine"


def test_the_same_file_through_two_paths_is_one_delivery(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    path = put(landing, "leeds.csv", b"a", 1)
    assert len(FolderSource([landing, path]).deliveries()) == 1


def test_a_linked_file_is_read_once_and_a_linked_folder_is_not_entered(tmp_path: Path) -> None:
    elsewhere = put(tmp_path / "elsewhere", "york.csv", b"y", 2)
    landing = tmp_path / "landing"
    put(landing, "sub/leeds.csv", b"a", 1)
    (landing / "york.csv").symlink_to(elsewhere)
    (landing / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (landing / "broken.csv").symlink_to(tmp_path / "nowhere.csv")
    listed = {d.name: d.problem for d in FolderSource([landing]).deliveries()}
    assert listed.keys() == {"broken.csv", "sub/leeds.csv", "york.csv"}
    assert listed["broken.csv"] is not None
    assert listed["broken.csv"][0] == "dangling_symlink"
    # Reached through the link and directly, it is still one file.
    assert len(FolderSource([landing, elsewhere]).deliveries()) == 3
    only = FolderSource([landing], only=[elsewhere, landing / "sub" / "leeds.csv"])
    assert [d.name for d in only.deliveries()] == ["sub/leeds.csv", "york.csv"]


def test_a_missing_landing_path_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does-not-exist does not exist"):
        FolderSource([tmp_path / "does-not-exist"]).deliveries()


def test_a_vanished_delivery_raises_oserror_for_the_pipeline_to_report(tmp_path: Path) -> None:
    path = put(tmp_path, "leeds.csv", b"a", 1)
    source = FolderSource([tmp_path])
    (delivery,) = source.deliveries()
    path.unlink()
    with pytest.raises(FileNotFoundError):
        source.read(delivery)


def test_the_identity_is_a_name_not_a_path(tmp_path: Path) -> None:
    """Keys hash the name, so a landing area moved to another machine keeps its keys."""
    for root in (tmp_path / "a", tmp_path / "b" / "c"):
        put(root, "york/york.csv", b"a", 1)
    names = {d.name for root in ("a", "b/c") for d in FolderSource([tmp_path / root]).deliveries()}
    assert names == {"york/york.csv"}
    assert set(Delivery.__dataclass_fields__) == {"name", "size", "arrived", "ref", "problem"}


def test_quarantine_put_is_atomic_and_replaces(tmp_path: Path) -> None:
    store = FolderQuarantine(tmp_path / "q")
    first = store.put("x.rejected.csv", b"one")
    second = store.put("x.rejected.csv", b"two")
    assert first == second == tmp_path / "q" / "x.rejected.csv"
    assert second.read_bytes() == b"two"
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["x.rejected.csv"]
    assert str(store) == f"folder {tmp_path / 'q'}"
