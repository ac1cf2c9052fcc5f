"""Measured cost on a real device (``costmodel bench``, ``calibrate``, ``guidelines --measure``).

The modules here import torch: nothing on the analytic path imports them. This ``__init__``
does not, so that the command line can read the constants below without torch.
"""

DEVICES = ("cpu", "cuda")
"""Where a model can be measured."""
DEFAULT_THREADS = 1
"""CPU threads unless told (``--threads``): one thread is reproducible, comparable between
machines with different core counts, and what the issue's measurements used; pass the core
count to measure what a multi-threaded deployment gets."""
MAX_THREADS = 1024
MAX_MIN_TIME = 60.0
"""The longest ``min_time`` (seconds of runs per measurement) accepted: beyond a minute it is
a typo."""
