"""Hypothesis profiles, set once for the whole suite (DESIGN.md style note 7).

* ``ci`` (the default, used by ``make test``): deterministic (``derandomize``),
  no deadline (CI machines vary), few examples so the suite stays fast.
* ``thorough`` (``make test-thorough``): many more examples.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", derandomize=False, deadline=None, print_blob=True, max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
