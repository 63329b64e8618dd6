"""Hypothesis profiles, set once for the whole suite (DESIGN.md style note 7).

* ``ci`` (the default, used by ``make test``): deterministic (``derandomize``),
  no deadline (CI machines vary), few examples so the suite stays fast.
* ``thorough`` (``make test-thorough``): many more examples.
* ``random`` (``make test-random``): fresh hypothesis draws, with a fresh
  stream root (``MAMLCHECK_TEST_ROOT``, below).
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "thorough", derandomize=False, deadline=None, print_blob=True, max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "random", derandomize=False, deadline=None, print_blob=True, max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ``MAMLCHECK_TEST_ROOT=n`` shifts the root of every per-seed random stream
# (``SeedStreams``, hence every run, trajectory and sweep cell) by ``n``: the
# suite must pass for any root, since its assertions are about laws, not
# particular draws (``make test-random`` runs it with a fresh root).  Data that
# defines a family (its seed) is not shifted: it is part of the problem.
TEST_ROOT = int(os.environ.get("MAMLCHECK_TEST_ROOT", "0"))


def shift_stream_root(shift: int, dask_worker=None) -> None:
    """Shift every ``SeedStreams`` root by ``shift`` in this process (once); the
    cluster tests run it on their workers too (``client.run``)."""
    from mamlcheck.algorithms import streams
    init = streams.SeedStreams.__init__
    if shift and not getattr(init, "shifted", False):
        def shifted(self, seeds, root=0, *args, **kwargs):
            init(self, seeds, int(root) + shift, *args, **kwargs)
        shifted.shifted = True
        streams.SeedStreams.__init__ = shifted


shift_stream_root(TEST_ROOT)


def pytest_report_header(config):
    """The stream root in force, so a failing ``make test-random`` can be rerun."""
    return f"MAMLCHECK_TEST_ROOT={TEST_ROOT} HYPOTHESIS_PROFILE={os.environ.get('HYPOTHESIS_PROFILE', 'ci')}"
