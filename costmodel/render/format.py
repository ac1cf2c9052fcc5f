"""Number formatting for people: SI suffixes, ratios, percentages."""

from __future__ import annotations

_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k"))


def si(n: int | float | None, digits: int = 3) -> str:
    """568740352 → '568.7M'; 4231976 → '4.232M'; 950 → '950' (``digits`` significant digits,
    at least one decimal)."""
    if n is None:
        return ""
    for scale, suffix in _SI:
        if abs(n) >= scale:
            v = n / scale
            decimals = max(1, digits - len(str(int(abs(v)))))
            return f"{v:.{decimals}f}{suffix}"
    return f"{n:g}" if isinstance(n, float) else str(n)


def ratio(v: float | None) -> str:
    return "" if v is None else f"{v:.3g}×"


def pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.2f}%"


def parse_si(text: str) -> float:
    """'150M' → 150e6, '2.5M' → 2.5e6, '300k' → 3e5, '1.2G' → 1.2e9, '1e6' → 1e6."""
    t = text.strip()
    scale = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12}.get(t[-1:])
    return float(t[:-1]) * scale if scale else float(t)
