"""``python -m mamlcheck COMMAND ...``: the suite's command line (``mamlcheck --help``)."""
import sys

from mamlcheck.experiments.cli import main

sys.exit(main())
