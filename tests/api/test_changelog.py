"""The contract is versioned (semantic versioning) and each version is in the changelog:
the newest entry is the documents' version, and a breaking entry raises the major."""

import itertools
import re
from datetime import date
from pathlib import Path

import yaml

from tests.contract import served_schema

ROOT = Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^## (\d+)\.(\d+)\.(\d+) \((\d{4}-\d{2}-\d{2})\): \S", re.MULTILINE)


def _entries() -> list[tuple[tuple[int, int, int], date, str]]:
    text = (ROOT / "docs" / "api-changelog.md").read_text()
    headings = list(ENTRY.finditer(text))
    assert len(headings) == text.count("\n## "), "every entry is `## x.y.z (yyyy-mm-dd): what`"
    entries = []
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        body = text[heading.end() : following.start() if following else len(text)]
        version = tuple(int(part) for part in heading.groups()[:3])
        entries.append((version, date.fromisoformat(heading.group(4)), body))
    return entries


def test_the_newest_entry_is_the_documents_version():
    newest = ".".join(str(part) for part in _entries()[0][0])
    assert served_schema()["info"]["version"] == newest
    committed = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    assert committed["info"]["version"] == newest
    asyncapi = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    assert asyncapi["info"]["version"] == newest


def test_versions_and_dates_go_back_in_order():
    entries = _entries()
    for (newer, newer_date, _), (older, older_date, _) in itertools.pairwise(entries):
        assert newer > older and newer_date >= older_date, (newer, older)


def test_a_breaking_change_takes_a_new_major_version():
    entries = _entries()
    for (newer, _, body), (older, _, _) in itertools.pairwise(entries):
        breaking = "**Breaking" in body
        if breaking:
            assert newer == (older[0] + 1, 0, 0), f"{newer}: breaking, but not {older[0] + 1}.0.0"
        else:
            assert newer[0] == older[0], f"{newer}: no breaking change, so no new major"
