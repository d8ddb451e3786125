"""Build Brewline's AWS Lambda artifact: ``dist/brewline-lambda.zip`` (``make lambda``).

The tree holds the ``brewline`` package (copied from ``src/``, package data
included) and the runtime dependencies that the Lambda code paths need, installed
from manylinux wheels for the ``python3.11`` x86_64 runtime. That runtime runs on
Amazon Linux 2, whose glibc is 2.26, so only wheels tagged manylinux 2.17 to 2.26
are accepted: a wheel for a newer glibc would install here and fail to load there.

Left out of the tree (see ``LEFT_OUT``): boto3 (already in the runtime), the
dashboard's packages (plotly, starlette, uvicorn, jinja2) and duckdb (DuckDB
warehouses only). Trimmed from it (see ``trim``): byte code, test suites, type
stubs, C headers and sources, console scripts, and pyarrow's Flight libraries,
which nothing in the tree imports or links to (checked by ``check_links``).

The sizes are printed against Lambda's limits for a zip: 250 MB unzipped
(function and layers together) and 50 MB zipped for a direct upload. Whether it
fits or not, the zip is written; when it does not fit, the tree is deployed as a
container image (``deploy/aws/Dockerfile`` runs this script with ``--stage``).

Standard library only; run it with a Python that has pip::

    python scripts/build_lambda.py [--out dist/brewline-lambda.zip] [--verbose]
    python scripts/build_lambda.py --stage /var/task --no-zip   # the image's tree
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Lambda's limits for a .zip deployment (bytes).
UNZIPPED_LIMIT = 262_144_000  # 250 MB: function code and all its layers, unzipped
ZIPPED_DIRECT_LIMIT = 50 * 1024 * 1024  # 50 MB: a zip uploaded directly (larger: via S3)
#: Lambda's limit for a container image (uncompressed, all layers).
IMAGE_LIMIT = 10 * 1024**3

PYTHON_VERSION = "3.11"
#: The python3.11 runtime is Amazon Linux 2: glibc 2.26. pip does not widen a
#: ``manylinux_2_26`` platform to the older tags by itself, so all are listed.
PLATFORMS = [
    "manylinux2014_x86_64",
    *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 27)),
]

#: Dependencies of the project (or its ``aws`` extra) that the zip leaves out, and why.
LEFT_OUT = {
    "boto3": "part of the Lambda Python runtime (and so is botocore)",
    "duckdb": (
        "DuckDB warehouses only (imported lazily by brewline.load.open); the Lambda "
        "loads PostgreSQL, and duckdb>=2.0 has no wheel for the runtime's glibc 2.26"
    ),
    "plotly": "the dashboard (brewline serve) only",
    "watchfiles": "brewline watch only (a Lambda is invoked per event)",
    "starlette": "the dashboard (brewline serve) only",
    "uvicorn": "the dashboard (brewline serve) only",
    "jinja2": "the dashboard (brewline serve) only",
}
#: Top-level names that must never be in the tree (the runtime provides them).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")

#: Libraries that the runtime's OS provides (the manylinux policy's list, and zlib,
#: which the runtime's own Python needs); everything else must be in the tree.
SYSTEM_LIBRARIES = re.compile(
    r"^(libc|libm|libdl|librt|libpthread|libutil|libresolv|libnsl|libcrypt|libz"
    r"|libstdc\+\+|libgcc_s|ld-linux-x86-64)\.so(\.\d+)*$"
)

MARKER = ".brewline-lambda-build"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def requirement_name(requirement: str) -> str:
    """``'psycopg[binary]>=3.2'`` -> ``'psycopg'`` (normalised as in PEP 503)."""
    name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def lambda_requirements(pyproject: Path) -> list[str]:
    """The project's dependencies and its ``aws`` extra, less ``LEFT_OUT``."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["aws"]]
    return [req for req in wanted if requirement_name(req) not in LEFT_OUT]


def install_dependencies(requirements: list[str], target: Path) -> None:
    """Install the manylinux wheels for the Lambda runtime into ``target``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--target",
        str(target),
        *requirements,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"pip install failed ({done.returncode})")


def copy_package(source: Path, target: Path) -> None:
    """Copy ``src/brewline`` (code and package data) into the tree, no byte code."""
    shutil.copytree(
        source / "src" / "brewline",
        target / "brewline",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
    )


def _remove(path: Path) -> int:
    """Delete a file or a folder; return the bytes it held."""
    if path.is_dir() and not path.is_symlink():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return size
    size = path.lstat().st_size
    path.unlink()
    return size


class Trimmer:
    """Removes from the tree what the Lambda never loads, counting bytes per reason."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.removed: dict[str, int] = {}

    def drop(self, path: Path, reason: str) -> None:
        if path.exists() or path.is_symlink():
            self.removed[reason] = self.removed.get(reason, 0) + _remove(path)

    def everywhere(self) -> None:
        tree = self.tree
        # Console scripts and data files (bin/, share/jupyter) that pip --target adds.
        for name in ("bin", "share"):
            self.drop(tree / name, "console scripts and shared data")
        for name in RUNTIME_PROVIDED:
            self.drop(tree / name, "boto3/botocore (in the runtime)")
            for info in tree.glob(f"{name}-*.dist-info"):
                self.drop(info, "boto3/botocore (in the runtime)")
        by_suffix = {
            ".pyc": "__pycache__",
            ".pyo": "__pycache__",
            ".pyi": "type stubs (*.pyi)",
            ".a": "static libraries (*.a)",
        }
        # Bottom-up, so that removed folders are not visited.
        for folder, dirnames, filenames in os.walk(tree, topdown=False):
            here = Path(folder)
            for dirname in dirnames:
                if dirname == "__pycache__":
                    self.drop(here / dirname, "__pycache__")
                elif here != tree and dirname in ("tests", "test"):
                    self.drop(here / dirname, "test suites")
            for filename in filenames:
                reason = by_suffix.get(Path(filename).suffix)
                if reason:
                    self.drop(here / filename, reason)

    def pyarrow(self) -> None:
        pyarrow = self.tree / "pyarrow"
        # C++ headers and Cython sources: only for compiling against pyarrow.
        self.drop(pyarrow / "include", "pyarrow headers and Cython sources")
        self.drop(pyarrow / "src", "pyarrow headers and Cython sources")
        for pattern in ("*.pyx", "*.pxd", "*.pxi", "*.h"):
            for path in pyarrow.rglob(pattern):
                self.drop(path, "pyarrow headers and Cython sources")
        # Arrow Flight (RPC): loaded only by `import pyarrow.flight`, which nothing
        # in the tree does; check_links proves that no remaining library links to it.
        for pattern in ("libarrow_flight.so*", "libarrow_python_flight.so*", "_flight.*.so"):
            for path in pyarrow.glob(pattern):
                self.drop(path, "pyarrow Flight")
        self.drop(pyarrow / "flight.py", "pyarrow Flight")
        for path in pyarrow.glob("_pyarrow_cpp_tests.*.so"):
            self.drop(path, "test suites")
        # Wheels cannot hold symlinks, so libarrow_python ships three identical
        # copies: the loader only opens the one named by its soname.
        for path in pyarrow.glob("libarrow_python.so*"):
            if elf_soname(path) != path.name:
                self.drop(path, "duplicate pyarrow libraries")

    def numpy(self) -> None:
        # C headers, static and pkg-config files: only for compiling against numpy.
        self.drop(self.tree / "numpy" / "_core" / "include", "numpy headers")
        self.drop(self.tree / "numpy" / "_core" / "lib", "numpy headers")


def trim(tree: Path) -> dict[str, int]:
    """Remove what the Lambda never loads; return the bytes removed per reason."""
    trimmer = Trimmer(tree)
    trimmer.everywhere()
    trimmer.pyarrow()
    trimmer.numpy()
    return trimmer.removed


def _elf_dynamic(path: Path) -> tuple[list[str], str | None] | None:
    """(DT_NEEDED names, DT_SONAME) of a 64-bit little-endian ELF file, else None."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]
    dynamic = next((s for s in sections if s[1] == 6), None)  # SHT_DYNAMIC
    if dynamic is None:
        return [], None
    strtab = sections[dynamic[6]]  # sh_link: the string table of .dynamic
    offset, size = dynamic[4], dynamic[5]

    def string(at: int) -> str:
        start = strtab[4] + at
        return data[start : data.index(b"\0", start)].decode()

    needed: list[str] = []
    soname = None
    for tag, value in struct.iter_unpack("<qQ", data[offset : offset + size]):
        if tag == 0:
            break
        if tag == 1:  # DT_NEEDED
            needed.append(string(value))
        elif tag == 14:  # DT_SONAME
            soname = string(value)
    return needed, soname


def elf_soname(path: Path) -> str | None:
    dynamic = _elf_dynamic(path)
    return dynamic[1] if dynamic else None


def check_links(tree: Path) -> None:
    """Every library that a shared object in the tree needs is in the tree or the OS."""
    present: set[str] = set()
    needs: dict[Path, list[str]] = {}
    for path in tree.rglob("*.so*"):
        if not path.is_file():
            continue
        present.add(path.name)
        dynamic = _elf_dynamic(path)
        if dynamic:
            needs[path] = dynamic[0]
    missing = [
        f"{path.relative_to(tree)} needs {lib}"
        for path, libraries in sorted(needs.items())
        for lib in libraries
        if lib not in present and not SYSTEM_LIBRARIES.match(lib)
    ]
    if missing:
        raise SystemExit("trimming removed a library still linked to:\n  " + "\n  ".join(missing))


def write_zip(tree: Path, out: Path) -> None:
    """A reproducible zip: sorted entries, fixed times and modes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(
        p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and p.name != MARKER
    )
    partial = out.with_name(out.name + ".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in files:
            path = tree / name
            info = zipfile.ZipInfo(name, ZIP_DATE)
            executable = path.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    partial.replace(out)


def distribution_sizes(tree: Path) -> list[tuple[str, int]]:
    """Bytes per installed distribution (from its RECORD, files still present)."""
    sizes = [
        ("brewline", sum(p.stat().st_size for p in (tree / "brewline").rglob("*") if p.is_file()))
    ]
    for info in tree.glob("*.dist-info"):
        total = 0
        with (info / "RECORD").open(encoding="utf-8", newline="") as record:
            for row in csv.reader(record):
                if row and (tree / row[0]).is_file():
                    total += (tree / row[0]).stat().st_size
        sizes.append((info.name.removesuffix(".dist-info"), total))
    return sorted(sizes, key=lambda item: (-item[1], item[0]))


def prepare_stage(stage: Path) -> None:
    """An empty folder to build in: created, or one this script made before."""
    if stage.exists() and any(stage.iterdir()):
        if not (stage / MARKER).exists():
            raise SystemExit(f"{stage} is not empty and was not made by this script")
        shutil.rmtree(stage)
    stage.mkdir(parents=True, exist_ok=True)
    (stage / MARKER).write_text("built by scripts/build_lambda.py\n", encoding="utf-8")


def mb(size: int) -> str:
    """Sizes in MiB, the unit of Lambda's limits (250 MB there is 262,144,000 bytes)."""
    return f"{size / 1024**2:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="project root (pyproject.toml, src/)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "brewline-lambda.zip")
    parser.add_argument(
        "--stage", type=Path, help="build the tree here and keep it (default: a temporary folder)"
    )
    parser.add_argument("--no-zip", action="store_true", help="only build the tree (--stage)")
    parser.add_argument("--verbose", action="store_true", help="print sizes per distribution")
    args = parser.parse_args(argv)
    if args.no_zip and args.stage is None:
        parser.error("--no-zip needs --stage")

    with tempfile.TemporaryDirectory(prefix="brewline-lambda-") as scratch:
        tree = args.stage if args.stage is not None else Path(scratch) / "tree"
        prepare_stage(tree)
        install_dependencies(lambda_requirements(args.source / "pyproject.toml"), tree)
        copy_package(args.source, tree)
        removed = trim(tree)
        check_links(tree)
        unzipped = sum(
            p.stat().st_size for p in tree.rglob("*") if p.is_file() and p.name != MARKER
        )

        if args.verbose:
            for name, size in distribution_sizes(tree):
                print(f"{mb(size):>11}  {name}")
            for reason, size in sorted(removed.items(), key=lambda item: -item[1]):
                print(f"trimmed {mb(size):>11}  {reason}")
        if args.no_zip:
            print(f"{tree}: {mb(unzipped)} ({unzipped:,} bytes); image limit {mb(IMAGE_LIMIT)}")
            return 0
        write_zip(tree, args.out)

    zipped = args.out.stat().st_size
    fits = unzipped <= UNZIPPED_LIMIT
    print(f"{args.out}: {mb(zipped)} zipped, {mb(unzipped)} unzipped ({unzipped:,} bytes)")
    print(
        f"Lambda zip limits: {mb(UNZIPPED_LIMIT)} unzipped ({UNZIPPED_LIMIT:,} bytes, "
        f"with layers), {mb(ZIPPED_DIRECT_LIMIT)} zipped for a direct upload"
    )
    if not fits:
        print(
            f"does NOT fit: {mb(unzipped - UNZIPPED_LIMIT)} over the unzipped limit; deploy the "
            "container image instead (deploy/aws/Dockerfile; an image may hold 10 GiB)"
        )
    elif zipped > ZIPPED_DIRECT_LIMIT:
        print("fits; too big for a direct upload: upload it to S3 and point the function at it")
    else:
        print("fits; small enough for a direct upload")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
