"""The HTML report of an output: `write_report(output)` (`scalecap-ray report`)."""

from scalecap_ray.report.html import write_report

__all__ = ["write_report"]
