"""``python -m pycnn.bench``: the same as ``python -m pycnn bench``."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
