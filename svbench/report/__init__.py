"""Reports from the run store: one tidy frame, one aggregation, renderers (csv, md, tex, figures, html)."""
