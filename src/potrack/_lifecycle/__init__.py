"""The lifecycle's implementation, behind :mod:`potrack.lifecycle` (private)."""
