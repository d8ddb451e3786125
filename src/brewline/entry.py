"""The ``brewline`` console script and ``python -m brewline``.

Loading the command line (Typer, Rich, Pydantic) takes about half a second on a
laptop, more on a busy server. A Ctrl+C in that time would otherwise print a
traceback from deep inside an import. Until the command line is loaded, SIGINT
ends the process at once with 130 and nothing on stderr; then Python's own
handling is back, for the commands that set their own (``run``, ``watch``) and
for ``serve``, whose uvicorn stops on it and raises it again.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def main() -> None:
    signal.signal(signal.SIGINT, _exit_quietly)
    from brewline.cli import app

    signal.signal(signal.SIGINT, signal.default_int_handler)
    app(prog_name="brewline")


def _exit_quietly(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)
