"""A self-contained HTML report of a run, with a trajectory viewer behind every number.

``propensity report RUN_DIR --html`` calls :func:`write_html_report`. The page needs no network
(inline CSS, script and SVG), so it can be archived with the run and opened anywhere.
"""

from sandbox.results.html_report.compare_page import write_compare_page as write_compare_page
from sandbox.results.html_report.data import ReportData, collect
from sandbox.results.html_report.render import render_html_report, write_html_report

__all__ = ["ReportData", "collect", "render_html_report", "write_html_report"]
