"""One experiment's table at ``tiny`` scale, computed cell by cell in-process."""
import pandas as pd


def tiny_table(module) -> pd.DataFrame:
    return pd.concat([module.compute(p) for p in module.cells("tiny")], ignore_index=True)
