"""The thresholds of ``costmodel rules`` (kept apart from the rules so that the command's
help can state them without importing the analyses at start-up)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    """Where each rule's severities start (the rules: ``costmodel.analysis.rules``)."""

    g1: tuple[float, float, float] = (0.10, 0.20, 1.00)   # MAC over the bound: info, warn, err
    g2: tuple[float, float, float] = (0.10, 0.50, 1.00)   # MAC increase over dense: info, …
    g3_operators: tuple[int, int] = (5, 8)                # info, warning
    g3_parallel: tuple[int, int] = (3, 4)                 # info, warning
    g3_small_run: int = 3                                 # info
    g3_small_share: float = 0.10                          # "small": < 10% of the block's FLOPs
    g4: tuple[float, float] = (0.25, 0.50)                # element-wise MAC share: info, warning
    e1_factor: int = 4
    e1_narrow_channels: int = 256
    e1_early_share: float = 0.5                           # first half of the stages


def describe_thresholds(t: Thresholds = Thresholds()) -> list[str]:
    """One sentence per rule with its thresholds (the command's help)."""
    def p(v: float) -> str:
        return f"{100 * v:g}%"

    return [
        f"G1, every 1×1 conv: MAC against the lower bound 2·√(hw·g·B) + B/hw for its FLOPs B "
        f"(info ≥ {p(t.g1[0])} over, warning ≥ {p(t.g1[1])}, error ≥ {p(t.g1[2])}; a conv "
        f"that reads the image: at most info).",
        f"G2, every grouped conv: MAC against a dense conv with the same FLOPs (info ≥ "
        f"+{p(t.g2[0])}, warning ≥ +{p(t.g2[1])}, error ≥ +{p(t.g2[2])}).",
        f"G3, every block: conv/pool/linear operators, parallel branches, and runs of small "
        f"operators (< {p(t.g3_small_share)} of the block's FLOPs) in series (warning: "
        f"≥ {t.g3_operators[1]} operators or ≥ {t.g3_parallel[1]} branches; info: "
        f"≥ {t.g3_operators[0]} operators, ≥ {t.g3_parallel[0]} branches or "
        f"≥ {t.g3_small_run} small ones in a row).",
        f"G4, the model: the share of MAC in element-wise ops — activations, adds, shuffles, "
        f"depthwise convs; batch norm is shown apart (info ≥ {p(t.g4[0])}, warning ≥ "
        f"{p(t.g4[1])}).",
        f"E1 (EffNet), every layer that compresses the data by {t.e1_factor}× or more: warning "
        f"in the first {p(t.e1_early_share)} of the stages of a network at most "
        f"{t.e1_narrow_channels} channels wide, info otherwise.",
    ]
