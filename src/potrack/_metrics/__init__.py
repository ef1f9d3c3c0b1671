"""The implementation of :mod:`potrack.metrics` (private: import from there)."""
