"""potrack's benchmark suite: every performance target the issues name, measured and printed.

Run ``python -m benchmarks`` (full) or ``python -m benchmarks --smoke`` (a short run that CI uses so
the suite never rots).  Each benchmark runs in a fresh child process so its peak memory is its own.
"""
