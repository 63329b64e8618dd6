"""``python -m experiments``, from the repository's root: an alias of ``python -m mamlcheck``."""
import sys

from mamlcheck.experiments.cli import main

sys.exit(main())
