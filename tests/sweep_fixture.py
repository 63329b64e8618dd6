"""A tiny experiment module for the sweep-framework tests: each cell runs
MAML for a few seeds and logs that it was computed (to count recomputation)."""
import os

import numpy as np

from mamlcheck.algorithms.hyper import Hyper
from mamlcheck.algorithms.runner import run
from mamlcheck.problems import make_family

NAME = "sweep_fixture"
TITLE = "sweep fixture"
LOG = os.environ.get("SWEEP_FIXTURE_LOG", "")


def cells(scale):
    return [{"alpha": a, "seed_block": s} for a in (0.01, 0.02, 0.03) for s in (0, 1)]


def compute(params):
    if LOG:
        with open(LOG, "a") as f:
            f.write(f"{params['alpha']},{params['seed_block']}\n")
    fam = make_family("cosine-quadratic", d=3, M=4)
    seeds = [4 * params["seed_block"] + r for r in range(4)]
    res = run(fam, Hyper(alpha=params["alpha"], B=5), [0.5], seeds=seeds, budget=30, w0=np.ones(3))
    return res.table.assign(**params)


def plot(table, outdir):
    return []


def claims(table):
    return []
