"""The closed-loop report: one self-contained HTML file a network or customer-experience manager can read offline."""

from .html import render_report, report_data_schema

__all__ = ["render_report", "report_data_schema"]
