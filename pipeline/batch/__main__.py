"""Entry point for ``python -m pipeline.batch`` (the same as ``vpipe batch``)."""

import sys

from pipeline.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
