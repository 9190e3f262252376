"""JUnit XML report of a set of runs, for CI systems (`journeyman run --once --junit F`).

One testcase per journey, named by its id, classed by its business process; its time
is the run's duration; a failed run carries a <failure> naming the reason and step.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from agent.run.results import RunResult

__all__ = ["write_junit"]


def write_junit(results: Sequence[RunResult], path: Path) -> None:
    failures = sum(1 for result in results if not result.ok)
    suite = ET.Element(
        "testsuite",
        name="journeyman",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{sum(result.duration for result in results):.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=result.business_process,
            name=result.journey,
            time=f"{result.duration:.3f}",
        )
        if not result.ok:
            failure = ET.SubElement(
                case,
                "failure",
                type=str(result.reason),
                message=f"{result.reason} at step {result.failed_step!r}: {result.message}",
            )
            failure.text = "\n".join(
                f"{'ok  ' if step.ok else 'FAIL'} {step.name} ({step.duration:.3f}s)"
                + ("" if step.ok else f": {step.reason}: {step.message}")
                for step in result.steps
            )
        out = ET.SubElement(case, "system-out")
        out.text = f"run_id={result.run_id} trace_id={result.trace_id}"
    tree = ET.ElementTree(suite)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
