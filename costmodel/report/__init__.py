"""Markdown cost reports with plots.

``costmodel.report.markdown`` evaluates the models and assembles the report's text;
``costmodel.report.plots`` turns plain plot data into PNGs. matplotlib is imported inside the
drawing functions only, so importing this package (and the CLI) stays free of it.
"""
