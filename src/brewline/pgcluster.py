"""A throwaway PostgreSQL cluster in a temp dir: for ``brewline demo --source totesys``
when no server is given, the tests and the benchmarks.

Runs the server binaries as the ``postgres`` user when we are root (the server
refuses to run as root), on a free loopback port, with fsync off unless durable.
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from brewline.errors import ConfigError

__all__ = ["PostgresServer"]


class PostgresServer:
    """A real PostgreSQL cluster in a temp dir (run as ``postgres`` when we are root)."""

    def __init__(self, *, durable: bool = False, root: Path | None = None) -> None:
        """``durable`` keeps PostgreSQL's default fsync (benchmarks); tests run without it.

        ``root`` keeps the cluster in that folder instead of a new temp dir, and
        starts the cluster already there if any (a benchmark's cached warehouse):
        :meth:`stop` it to keep it, :meth:`remove` it to delete it.
        """
        self.durable = durable
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            raise ConfigError(
                "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): install "
                "the 'postgresql' package, or give a server's URL"
            )
        self.bin = Path(binaries[-1]).parent
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.root = root or Path(tempfile.mkdtemp(prefix="brewline-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            subprocess.run(["chown", "-R", "postgres:postgres", str(self.root)], check=True)
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _initdb(self) -> None:
        self.tool(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def tool(self, tool: str, *args: str) -> None:
        """Run one of the server's programs (``pg_ctl``, ``pg_resetwal``, ...) as its user."""
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = [_runuser(), "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> None:
        # Prepared transactions (two-phase commit) are allowed, as on sources that use
        # them: the totesys tests commit one after an extract.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c max_prepared_transactions=8"
        )
        if not self.durable:
            options += " -c fsync=off"
        self.tool(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self.tool("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        subprocess.run(["rm", "-rf", str(self.root)], check=False)


def _runuser() -> str:
    """``runuser`` lives in an sbin folder that a user's PATH may not list."""
    import shutil

    found = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).exists()), None
    )
    if found is None:
        raise ConfigError("running as root needs runuser (util-linux) to start PostgreSQL")
    return found


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
