"""Measured cost on a real device (``costmodel bench``, ``calibrate``, ``guidelines --measure``).

Everything here imports torch: nothing on the analytic path imports this package.
"""
