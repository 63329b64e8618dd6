"""Central finite differences with a tolerance set by the scheme's order.

The helpers live in ``mamlcheck.testing`` (with ``check_family``, the contract
every family must pass); this module keeps the families' tests importing them
from here.
"""
from mamlcheck.testing import H, fd_jacobian, fd_tolerance

__all__ = ["H", "fd_jacobian", "fd_tolerance"]
