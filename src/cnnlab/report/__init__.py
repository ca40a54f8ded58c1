"""The HTML run report (``cnnlab report RUN``): one self-contained page per training run, and a
headless-Chromium check that it renders (no console errors, every image loads) with a screenshot.
"""

from cnnlab.report.run_report import N_EXAMPLES, Report, build_report, write_report

__all__ = ["N_EXAMPLES", "Report", "build_report", "write_report"]
