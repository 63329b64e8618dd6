"""Helpers of the experiment tests: one experiment's table at ``tiny`` scale,
computed cell by cell in-process, and claims picked by their statement."""
import pandas as pd

#: the columns of a claim's report row
KEYS = {"claim", "measured", "bound", "verdict"}


def tiny_table(module) -> pd.DataFrame:
    return pd.concat([module.compute(p) for p in module.cells("tiny")], ignore_index=True)


def claims_with(checks, text: str) -> list:
    """The claims whose statement contains ``text`` (at least one)."""
    found = [c for c in checks if text in c.statement]
    assert found, [c.statement for c in checks]
    return found
