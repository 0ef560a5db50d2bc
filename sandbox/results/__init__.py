"""Results: what a run leaves and how it is read.

- ``store``: the run directory (manifest, journal, trajectories, scores; locked, redacted,
  validated on read); ``manifest``: the environment facts a manifest records;
  ``redaction``: what the run directory must never hold (secrets);
- ``summary``: summary.json, rebuilt from the records; ``report``: its tables and CSV;
- ``compare``: runs side by side; ``exports``: JSONL/CSV/Parquet; ``inspect_export``: Inspect
  AI eval logs (``export_inspect``; needs the optional ``inspect`` extra, imported only when
  used); ``merge``: shards and resumed parts into one run; ``html_report``: the
  self-contained HTML page.

The public names are re-exported from ``sandbox``.
"""
