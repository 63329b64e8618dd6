"""Conformance: check a PyTorch or JAX MAML implementation against the exact
meta-gradients of the certified families (``check``), with a diagnosis of
what is wrong when it fails.

    from mamlcheck.conformance import Implementation, check
    report = check(Implementation("mine", "torch", my_meta_gradient), steps=(1, 3))

``adapters`` holds the libraries' implementations (torch.func, JAX,
learn2learn, higher), ``broken`` the deliberately broken ones, ``oracle`` the
exact quantities and wrong variants, ``frameworks`` the array frameworks.
"""
from .checker import DIAGNOSIS_TOL, FAMILIES, TOL, Implementation, Report, check

__all__ = ["Implementation", "Report", "check", "FAMILIES", "TOL", "DIAGNOSIS_TOL"]
