"""potrack: purchase-order tracking without the walls.

The engine a host application imports to track purchase orders from requisition to payment:
the PO lifecycle (:mod:`potrack.lifecycle`), approval routing (:mod:`potrack.approval`), document
numbering (:mod:`potrack.numbering`), tolerance-aware matching (:mod:`potrack.matching`) and
procurement KPIs (:mod:`potrack.metrics`), over storage the host chooses (:mod:`potrack.typing`).

Money is exact (Decimal and py-moneyed ``Money``); floats are refused.
"""

from potrack.exceptions import (
    ConflictError,
    CurrencyMismatchError,
    InvalidNumberError,
    NotFoundError,
    NotPermittedError,
    PotrackError,
    TransitionRefusedError,
    UnknownCurrencyError,
    ValidationError,
)
from potrack.memory import InMemoryStore
from potrack.money import Money, Rounding, money, round_money
from potrack.serialization import dumps, loads, make_converter

__version__ = "0.1.0"

__all__ = [
    "ConflictError",
    "CurrencyMismatchError",
    "InMemoryStore",
    "InvalidNumberError",
    "Money",
    "NotFoundError",
    "NotPermittedError",
    "PotrackError",
    "Rounding",
    "TransitionRefusedError",
    "UnknownCurrencyError",
    "ValidationError",
    "__version__",
    "dumps",
    "loads",
    "make_converter",
    "money",
    "round_money",
]
