"""Design analyses over evaluated models. Each returns data first; ``*_table`` functions turn
it into ``costmodel.render.Table`` for the shared renderers.

- ``dataflow``: EffNet's Table 1 — ``dataflow(result, per_block=False, level=None)`` rows,
  ``dataflow_table(results, per_block=False, level=None)``.
- ``explain``: closed-form derivations checked against the engine —
  ``explain_formula(name, **sizes)``, ``derivation_table``; ``explain_layer``: the same for
  a layer of a model — ``explain_layer(result, path)``.
- ``rules``: ShuffleNet V2's G1–G4 and EffNet's E1 as findings — ``check_rules(result)``,
  ``fails(findings, "warning")``, ``rules_tables``; thresholds in ``thresholds.Thresholds``.
- ``swap``: EffNet's block swap — ``swap_blocks(spec, "effnet")`` → a new spec and its YAML.

The submodules are not imported here, so that the command line can read the rules'
thresholds for its help without loading the analyses.
"""
