"""Predicted latency from a calibrated profile (``costmodel calibrate``), analytically: no
torch. ``profile`` is the data (read, validated, written), ``roofline`` the per-layer model
(``predict``, re-exported here; the module is not named after the function, which would hide
it as this package's attribute).
Imported only when a profile is given (``--profile``, ``COSTMODEL_PROFILE``, a budgets file's
``profile``): without one, nothing here is loaded."""

from __future__ import annotations

from costmodel.latency.roofline import op_class, predict
from costmodel.latency.profile import Profile, ProfileError, load_profile


def latency_ms(result, profile: Profile) -> tuple[list[float], float]:
    """(milliseconds per row, total milliseconds) of an evaluated network."""
    per_row, total = predict(result, profile)
    return [s * 1e3 for s in per_row], total * 1e3


__all__ = ["Profile", "ProfileError", "latency_ms", "load_profile", "op_class", "predict"]
