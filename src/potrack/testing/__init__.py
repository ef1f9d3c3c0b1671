"""Helpers potrack ships for the tests of host applications.

* :class:`StoreContract` / :func:`run_conformance`: the storage conformance kit — run it against
  your own :class:`~potrack.typing.Store` adapter.
* :mod:`potrack.testing.samples`: small valid records to build tests from.
* :class:`ManualClock`: a clock tests set by hand, for :class:`~potrack.service.Purchasing`.
"""

from potrack.testing.clock import ManualClock
from potrack.testing.conformance import ContractFailure, StoreContract, run_conformance

__all__ = ["ContractFailure", "ManualClock", "StoreContract", "run_conformance"]
