"""What the benchmarks share: naming the machine they ran on, writing the results."""

from __future__ import annotations

import json
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what platform knows, else "?"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def write_results(out: Path, name: str, results: dict, report: str) -> str:
    """``out/<name>.json`` (the raw results) and ``out/<name>.md`` (the report); returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    (out / f"{name}.md").write_text(report, encoding="utf-8")
    return report
