"""Design analyses over evaluated models: data flow (EffNet Table 1), closed-form
derivations (explain), ShuffleNet V2's guidelines as checks (rules), and EffNet's block swap.

Each returns data (rows, derivations, findings) first; ``*_table`` functions turn them into
``costmodel.render.Table`` for the shared renderers.
"""
