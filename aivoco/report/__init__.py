"""`aivoco report`: a call's transcript and recording drawn as one self-contained HTML page.

The public entry point is `write_report` (see its docstring); matplotlib, the optional
extra `aivoco[report]`, is imported only when a figure is drawn.
"""

from aivoco.report.api import (
    ReportError,
    ReportResult,
    default_output,
    render_report,
    write_report,
    write_report_from_records,
)
from aivoco.report.figures import INSTALL_HINT, ReportDependencyError, require_matplotlib

__all__ = [
    "INSTALL_HINT",
    "ReportDependencyError",
    "ReportError",
    "ReportResult",
    "default_output",
    "render_report",
    "require_matplotlib",
    "write_report",
    "write_report_from_records",
]
