"""Closed-form identities from the papers, exact on the engine's own numbers."""

from __future__ import annotations

from fractions import Fraction

import pytest
from conftest import run_layers


@pytest.mark.parametrize("dk,m,n,df", [(3, 512, 512, 14), (3, 32, 64, 112), (5, 16, 24, 7),
                                        (3, 1024, 1024, 7)])
def test_depthwise_separable_ratio(dk, m, n, df):
    """MobileNet eq. 5: (Dk²·M·Df² + M·N·Df²) / (Dk²·M·N·Df²) = 1/N + 1/Dk²."""
    standard = run_layers([{"type": "conv", "out": n, "kernel": dk}], input=(df, df),
                          in_channels=m).totals.flops
    separable = run_layers([{"type": "dwsep", "out": n, "kernel": dk}], input=(df, df),
                           in_channels=m).totals.flops
    assert standard == dk * dk * m * n * df * df
    assert Fraction(separable, standard) == Fraction(1, n) + Fraction(1, dk * dk)


@pytest.mark.parametrize("m,df", [(32, 32), (64, 16), (128, 8), (7, 10)])
def test_effnet_separable_pooling(m, df):
    """1×3 dw → 2×1 max pool → 3×1 dw costs 3·Df²·M + 3·(Df²/2)·M = 1.5·(3·Df²·M), half of a
    3×3 depthwise conv (9·Df²·M)."""
    layers = [{"type": "dwconv", "kernel": [1, 3]}, {"type": "max_pool", "kernel": [2, 1]},
              {"type": "dwconv", "kernel": [3, 1]}]
    cost = run_layers(layers, input=(df, df), in_channels=m).totals.flops
    dw3x3 = run_layers([{"type": "dwconv", "kernel": 3}], input=(df, df),
                       in_channels=m).totals.flops
    assert Fraction(cost) == Fraction(3, 2) * (3 * df * df * m)
    assert dw3x3 == 9 * df * df * m
    assert Fraction(cost, dw3x3) == Fraction(1, 2)


def test_effnet_block_depthwise_part_in_the_block():
    """The same identity inside the effnet_block expansion (32×32×64 → bottleneck 32)."""
    rows = run_layers([{"type": "effnet_block", "out": 64}], input=(32, 32),
                      in_channels=3).rows
    dw = sum(r.flops for r in rows if r.category == "depthwise")
    assert Fraction(dw) == Fraction(3, 2) * (3 * 32 * 32 * 32)


@pytest.mark.parametrize("g", [1, 2, 3, 4, 8, 24])
def test_group_conv_costs_one_over_g(g):
    dense = run_layers([{"type": "conv", "out": 48, "kernel": 3}], input=(14, 14),
                       in_channels=24).rows[0]
    grouped = run_layers([{"type": "conv", "out": 48, "kernel": 3, "groups": g}],
                         input=(14, 14), in_channels=24).rows[0]
    assert Fraction(grouped.flops, dense.flops) == Fraction(1, g)
    assert Fraction(grouped.params, dense.params) == Fraction(1, g)


@pytest.mark.parametrize("c1,c2,hw,g", [(64, 64, 56, 1), (128, 256, 28, 1), (240, 60, 28, 3),
                                         (96, 384, 14, 8), (3, 16, 7, 1)])
def test_shufflenet_v2_mac_of_1x1_conv(c1, c2, hw, g):
    """ShuffleNet V2 §2: MAC = hw(c1 + c2) + c1·c2/g for a 1×1 (group) conv."""
    row = run_layers([{"type": "conv", "out": c2, "kernel": 1, "groups": g}], input=(hw, hw),
                     in_channels=c1).rows[0]
    assert row.mac == hw * hw * (c1 + c2) + c1 * c2 // g
    assert row.flops == hw * hw * c1 * c2 // g  # B = hw·c1·c2/g


def test_shufflenet_unit_cost_formula():
    """ShuffleNet V1 §3.2: a unit on c×h×w with bottleneck m costs hw(2cm/g + 9m) (stride 1)."""
    c, h, g = 240, 28, 3
    m = c // 4
    rows = run_layers([{"type": "shufflenet_unit", "out": c, "groups": g}], input=(h, h),
                      in_channels=c).rows
    assert sum(r.flops for r in rows) == h * h * (2 * c * m // g + 9 * m)
