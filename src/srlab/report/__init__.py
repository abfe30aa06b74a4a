"""Reports: tables (Markdown/CSV/JSON, :mod:`srlab.eval.results`), figures (:mod:`srlab.report.figures`,
matplotlib imported lazily) and the Markdown + self-contained HTML rendering (:mod:`srlab.report.html`).

Nothing is imported here, so ``import srlab.report`` stays free of optional dependencies.
"""
