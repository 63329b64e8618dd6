"""MAML, FO-MAML and HF-MAML over task families; the exact objective; the trajectory engine.

Importing the package registers the fast samplers of ``algorithms.fast``.
"""
from . import fast_cosine_quadratic  # noqa: F401  (registers the cosine-quadratic sampler)
from . import fast_robust_regression  # noqa: F401  (registers the robust-regression kernels)
