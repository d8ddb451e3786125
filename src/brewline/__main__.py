"""``python -m brewline``: the same command line as the ``brewline`` script."""

from brewline.cli import app

if __name__ == "__main__":
    app(prog_name="brewline")
