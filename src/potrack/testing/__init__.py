"""Helpers potrack ships for the tests of host applications.

* :class:`StoreContract` / :func:`run_conformance`: the storage conformance kit — run it against
  your own :class:`~potrack.typing.Store` adapter.
* :mod:`potrack.testing.samples`: small valid records to build tests from.
"""

from potrack.testing.conformance import ContractFailure, StoreContract, run_conformance

__all__ = ["ContractFailure", "StoreContract", "run_conformance"]
