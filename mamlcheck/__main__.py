"""``python -m mamlcheck COMMAND ...``: the suite's command line (``mamlcheck --help``)."""
import sys

try:                                    # Ctrl-C while the package loads: no traceback
    from mamlcheck.experiments.cli import main
except KeyboardInterrupt:
    sys.stderr.write("interrupted\n")
    sys.exit(130)

sys.exit(main())
