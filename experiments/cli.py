"""mamlcheck: the convergence theory of MAML, made runnable (also ``python -m mamlcheck``).

Each command lives in its own module exposing ``configure(parser)`` and
``main(args) -> int``; this file only wires them.  Bad input exits with status
2 and a one-line message on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from .cells import Terminated

# command -> (module, one-line help)
COMMANDS = {
    "run": ("mamlcheck.experiments.run_cmd", "run one configuration over many seeds and summarise it"),
    "bench": ("mamlcheck.experiments.bench", "measure seed-iterations per second on fixed configurations"),
    "list": ("mamlcheck.experiments.registry", "list the experiments"),
    "run-all": ("mamlcheck.experiments.run_all", "run every experiment (what `make reproduce` calls)"),
    "plot": ("mamlcheck.experiments.run_all", "redraw one experiment's figure from its table"),
    "proof": ("mamlcheck.experiments.proof_cmd", "walk the convergence proof on a real run (the proof ledger)"),
    "slack": ("mamlcheck.experiments.slack", "measure how loose each constant of the bounds is"),
    "conformance": ("mamlcheck.conformance.cli",
                    "check PyTorch/JAX MAML implementations against the exact meta-gradients"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):          # one line, status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mamlcheck", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module, help_) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue                     # a command whose module is not present is not offered
        p = sub.add_parser(name, help=help_, description=help_,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        configurer = getattr(mod, f"configure_{name.replace('-', '_')}", None) or mod.configure
        runner = getattr(mod, f"main_{name.replace('-', '_')}", None) or mod.main
        configurer(p)
        p.set_defaults(_main=runner)
    return parser


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
            signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _terminate)
    command = ""                         # known once the command line is parsed
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return int(args._main(args) or 0)
    except ValueError as e:              # invalid parameters: a clear message, status 2
        print(f"mamlcheck {command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:              # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, OverflowError, MemoryError) as e:   # unwritable path, absurd sizes
        print(f"mamlcheck {command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
