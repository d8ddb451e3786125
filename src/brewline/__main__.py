"""``python -m brewline``: the same command line as the ``brewline`` script."""

from brewline.entry import main

if __name__ == "__main__":
    main()
