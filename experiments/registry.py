"""The experiments, in report order; ``python -m mamlcheck list`` prints them."""
from __future__ import annotations

import importlib
from types import ModuleType

# module names under experiments/, in the order of the report
NAMES = ("rate_hard_chain", "rate_benign", "noise_floor", "bias_din", "maml_variants",
         "step_sizes", "local_smoothness", "multistep_alpha", "multistep_rate", "multistep_cost", "mlp_sinusoid",
         "proof_ledger", "slack_report")


def experiments() -> list[ModuleType]:
    """The experiment modules, in report order (imported plainly: a broken module raises)."""
    return [importlib.import_module(f"mamlcheck.experiments.{n}") for n in NAMES]


def get(name: str) -> ModuleType:
    for m in experiments():
        if m.NAME == name:
            return m
    raise ValueError(f"unknown experiment {name!r}; known: {', '.join(m.NAME for m in experiments())}")


def configure(p) -> None:
    pass


def main(args) -> int:
    for m in experiments():
        print(f"{m.NAME:18s} {m.TITLE}")
        for scale in ("quick", "default", "full"):
            print(f"{'':18s}   {scale}: {len(m.cells(scale))} cells")
    return 0
