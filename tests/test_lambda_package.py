"""``make lambda``: the AWS Lambda artifact, its contents and its size limits.

Builds ``brewline-lambda.zip`` once per run with ``scripts/build_lambda.py`` (pip
downloads the manylinux wheels from PyPI; its cache makes later runs quick), even
under pytest-xdist: the first worker builds, the others wait for it and reuse it.

The zip does not fit Lambda's 250 MB unzipped limit (polars, pyarrow and numpy
alone are over it, see README "AWS Lambda packaging"), so the deployment is the
container image of ``deploy/aws/Dockerfile``, which installs the same tree: these
tests check that tree, the limit of an image, and that the script reports the zip
limits truthfully.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "build_lambda.py"

UNZIPPED_LIMIT = 262_144_000  # Lambda: zip code and layers, unzipped
ZIPPED_DIRECT_LIMIT = 52_428_800  # Lambda: a zip uploaded directly (larger ones go via S3)
IMAGE_LIMIT = 10 * 1024**3  # Lambda: a container image, uncompressed

#: What the handlers (brewline.aws) import, and what those need at run time.
LAMBDA_MODULES = (
    "brewline.pipeline",
    "brewline.load.postgres",
    "brewline.ops.checks",
    "brewline.sources.s3",
    "polars",
    "pyarrow",
    "psycopg",
    "pgpq",
    "numpy",
    "aws_lambda_powertools",
    "obstore",
)


@dataclass(frozen=True)
class Build:
    zip_path: Path
    tree: Path  # the zip, extracted
    output: str  # what the script printed


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    # Shared by the xdist workers of one run: the base temp's parent is common to them.
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "lambda-build"
    shared.mkdir(exist_ok=True)
    zip_path, tree, log = shared / "brewline-lambda.zip", shared / "tree", shared / "output.txt"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not log.exists():
            done = subprocess.run(
                [sys.executable, str(SCRIPT), "--out", str(zip_path)],
                capture_output=True,
                text=True,
                check=False,
                timeout=1200,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(tree)
            log.write_text(done.stdout, encoding="utf-8")
    return Build(zip_path, tree, log.read_text(encoding="utf-8"))


def sizes(zip_path: Path) -> tuple[int, int]:
    """(unzipped, zipped) bytes, as Lambda counts them."""
    with zipfile.ZipFile(zip_path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    return unzipped, zip_path.stat().st_size


def names(build: Build) -> list[str]:
    with zipfile.ZipFile(build.zip_path) as archive:
        return archive.namelist()


def test_sizes_are_reported_against_the_lambda_limits(build: Build) -> None:
    unzipped, zipped = sizes(build.zip_path)
    output = build.output
    assert f"({unzipped:,} bytes)" in output
    assert f"{zipped / 1024**2:.1f} MiB zipped" in output
    assert "262,144,000 bytes" in output
    assert "50.0 MiB zipped for a direct upload" in output
    if unzipped > UNZIPPED_LIMIT:
        # What the README says: the zip cannot be deployed, the image is the artifact.
        assert "does NOT fit" in output
        assert "deploy/aws/Dockerfile" in output
    elif zipped > ZIPPED_DIRECT_LIMIT:
        assert "upload it to S3" in output
    else:
        assert "direct upload" in output


def test_the_tree_fits_a_lambda_container_image(build: Build) -> None:
    unzipped, _ = sizes(build.zip_path)
    # The image adds the base image (~0.6 GB) to this; far below the limit either way.
    assert unzipped < IMAGE_LIMIT // 4


def test_contains_the_package_and_its_data(build: Build) -> None:
    contents = set(names(build))
    package = ROOT / "src" / "brewline"
    modules = {f"brewline/{p.relative_to(package).as_posix()}" for p in package.rglob("*.py")}
    assert modules <= contents
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["brewline"]
    data = {
        f"brewline/{p.relative_to(package).as_posix()}"
        for pat in patterns
        for p in package.glob(pat)
    }
    assert {"brewline/py.typed", "brewline/serve/templates/base.html"} <= data
    assert any(name.startswith("brewline/serve/static/") for name in data)
    assert data <= contents


def test_contains_the_handler(build: Build) -> None:
    if not (ROOT / "src" / "brewline" / "aws.py").exists():
        pytest.skip("src/brewline/aws.py (the Lambda handlers) is not written yet")
    assert "brewline/aws.py" in names(build)


def test_leaves_out_the_runtime_sdk_tests_and_byte_code(build: Build) -> None:
    contents = names(build)
    tops = {name.split("/", 1)[0] for name in contents}
    assert not {t for t in tops if re.match(r"(boto3|botocore|s3transfer)\b", t)}
    assert not {t for t in tops if re.match(r"(duckdb|plotly|starlette|uvicorn|jinja2)\b", t)}
    parts = [name.split("/") for name in contents]
    assert not [n for n, p in zip(contents, parts, strict=True) if "__pycache__" in p]
    assert not [n for n in contents if n.endswith((".pyc", ".pyo"))]
    assert not [n for n, p in zip(contents, parts, strict=True) if {"tests", "test"} & set(p[1:-1])]


def test_is_reproducible(build: Build) -> None:
    with zipfile.ZipFile(build.zip_path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the wheels in the zip are for CPython 3.11"
)
def test_an_isolated_interpreter_imports_and_runs_from_the_unzipped_tree(build: Build) -> None:
    # -I -S: no environment, no site-packages, so everything comes from the tree.
    has_handlers = (build.tree / "brewline" / "aws.py").exists()
    code = textwrap.dedent(
        f"""
        import importlib, sys
        sys.path.insert(0, {str(build.tree)!r})
        handlers = ("brewline.aws",) if {has_handlers!r} else ()  # boto3: lazily, in the runtime
        for name in {LAMBDA_MODULES!r} + handlers:
            module = importlib.import_module(name)
            assert module.__file__.startswith({str(build.tree)!r}), module.__file__
        from aws_lambda_powertools import Logger, Metrics
        import pgpq, polars as pl, psycopg

        frame = pl.DataFrame({{"branch": ["B01", "B02", None], "total": [1.5, 2.25, 3.0]}})
        arrow = frame.to_arrow()
        assert pl.from_arrow(arrow).equals(frame)
        encoder = pgpq.ArrowToPostgresBinaryEncoder(arrow.schema)
        copy = encoder.write_header()
        for batch in arrow.to_batches():
            copy += encoder.write_batch(batch)
        copy += encoder.finish()
        assert copy.startswith(b"PGCOPY")
        assert psycopg.pq.__impl__ == "binary"
        for absent in ("boto3", "duckdb", "plotly"):
            try:
                importlib.import_module(absent)
            except ImportError:
                pass
            else:
                raise AssertionError(absent + " is in the tree")
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok"
