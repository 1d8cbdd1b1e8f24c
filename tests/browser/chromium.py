"""Debian's Chromium for the browser tests (never a downloaded browser), and where
their screenshots go."""

import os
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


# axe-core (npm `axe-core`, MPL-2.0), vendored at a pinned version: the accessibility
# rules run inside Chromium, with no download at test time.
AXE = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"
BLOCKING_IMPACTS = ("serious", "critical")
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
  }));
}"""


# One line per page checked, written at the end of the run (tests/conftest.py), so
# the results show in the test output whether the tests pass or not.
AXE_REPORT: list[str] = []


def axe_violations(page, name: str) -> list[dict]:
    """Run axe-core on the page; report what it found (a line per page, and each
    serious or critical violation with where) and return those."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(RUN_AXE)
    summary = ", ".join(f"{v['id']} ({v['impact']})" for v in violations) or "none"
    AXE_REPORT.append(f"axe-core {name}: {len(violations)} violation(s): {summary}")
    AXE_REPORT.extend(
        f"  {v['id']}: {v['help']} at {v['targets']}"
        for v in violations
        if v["impact"] in BLOCKING_IMPACTS
    )
    return [v for v in violations if v["impact"] in BLOCKING_IMPACTS]


def scrolls_sideways(page, width: int) -> bool:
    """At this viewport width, is the document wider than the window?"""
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(100)  # a layout pass after the resize
    return page.evaluate("document.scrollingElement.scrollWidth > window.innerWidth")
