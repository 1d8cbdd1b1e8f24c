"""Hostile spreadsheets in the console's shift import and export.

Every resource a caller can hold has a cap: the uncompressed bytes of an archive, the
rows of an import, the characters of a cell. An XLSX is refused from its archive's
directory before any parser reads it; rows are refused as they are read. An export
never hands a spreadsheet program a formula, and what it writes imports back as it was.
"""

import csv
import io
import time
import tracemalloc
import zipfile
from datetime import UTC, datetime

import openpyxl
import pytest
from django.urls import reverse

from paramedics.models import Shift, Station
from tests.factories import ParamedicFactory, StationFactory, shift_for

IMPORT = reverse("admin:paramedics_shift_import")
PROCESS_IMPORT = reverse("admin:paramedics_shift_process_import")
EXPORT = reverse("admin:paramedics_shift_export")
HEADERS = ["id", "station", "starts_at", "ends_at", "paramedics", "notes"]
ROW = ["", "MITTE", "2026-12-07 06:00", "2026-12-07 18:00", "A-1", "day"]
MIB = 1024 * 1024


@pytest.fixture
def roster(db):
    StationFactory(code="MITTE")
    return ParamedicFactory(badge_number="A-1")


def post_import(client, content: bytes, name: str):
    handle = io.BytesIO(content)
    handle.name = name
    fmt = "1" if name.endswith(".xlsx") else "0"
    return client.post(IMPORT, {"import_file": handle, "format": fmt, "resource": "0"})


def import_errors(response) -> str:
    assert response.status_code == 200
    return " ".join(response.context["form"].errors.get("import_file", []))


def xlsx(rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def with_member(content: bytes, name: str, write) -> bytes:
    """The XLSX `content` with member `name` replaced (or added), written by `write(handle)`
    in pieces, so a huge member never sits in this process's memory."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            if member.filename != name:
                target.writestr(member, source.read(member))
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with target.open(info, "w", force_zip64=True) as handle:
            write(handle)
    return out.getvalue()


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOCUMENT_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SPREADSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def shared_strings_xlsx(rows) -> bytes:
    """An XLSX as Excel writes text: every string in xl/sharedStrings.xml, cells by index
    (openpyxl writes inline strings, so the shared strings are written here by hand)."""
    strings = list(dict.fromkeys(value for row in rows for value in row))
    cells = "".join(
        f'<row r="{r}">'
        + "".join(
            f'<c r="{chr(65 + c)}{r}" t="s"><v>{strings.index(value)}</v></c>'
            for c, value in enumerate(row)
        )
        + "</row>"
        for r, row in enumerate(rows, start=1)
    )
    members = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            f'ContentType="{SPREADSHEET_TYPE}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SPREADSHEET_TYPE}.'
            'worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" '
            f'ContentType="{SPREADSHEET_TYPE}.sharedStrings+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<Relationships xmlns="{PACKAGE_RELS}"><Relationship Id="rId1" '
            f'Type="{DOCUMENT_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN}" xmlns:r="{DOCUMENT_RELS}"><sheets>'
            '<sheet name="Shifts" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PACKAGE_RELS}">'
            f'<Relationship Id="rId1" Type="{DOCUMENT_RELS}/worksheet" '
            'Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{DOCUMENT_RELS}/sharedStrings" '
            'Target="sharedStrings.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{MAIN}"><sheetData>{cells}</sheetData></worksheet>'
        ),
        "xl/sharedStrings.xml": (
            f'<sst xmlns="{MAIN}" count="{len(strings)}" uniqueCount="{len(strings)}">'
            + "".join(f"<si><t>{value}</t></si>" for value in strings)
            + "</sst>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for name, text in members.items():
            book.writestr(name, text)
    return out.getvalue()


def shared_string_bomb(unpacked_bytes: int) -> bytes:
    """A real XLSX whose one shared string (the note) is `unpacked_bytes` long."""
    base = shared_strings_xlsx([HEADERS, [*ROW[:5], "PLACEHOLDER"]])
    with zipfile.ZipFile(io.BytesIO(base)) as book:
        shared = book.read("xl/sharedStrings.xml").decode()
    head, tail = shared.split("PLACEHOLDER")

    def write(handle):
        handle.write(head.encode())
        chunk = b"A" * MIB
        for _ in range(unpacked_bytes // MIB):
            handle.write(chunk)
        handle.write(tail.encode())

    bomb = with_member(base, "xl/sharedStrings.xml", write)
    with zipfile.ZipFile(io.BytesIO(bomb)) as check:
        assert check.getinfo("xl/sharedStrings.xml").file_size > unpacked_bytes
    return bomb


def test_the_shared_strings_file_is_a_spreadsheet_the_import_reads(console_client, roster):
    """The bomb below is this file with a longer note: refused for its size alone."""
    content = shared_strings_xlsx([HEADERS, ROW])
    response = post_import(console_client, content, "shifts.xlsx")
    assert not response.context["form"].errors
    assert not response.context["result"].has_validation_errors()
    assert "confirm_form" in response.context


def test_a_shared_string_bomb_is_refused_before_it_is_unpacked(console_client, roster):
    bomb = shared_string_bomb(200 * MIB)
    # Deflate packs 200 MiB of one letter into about 200 KB: the 205 KB file.
    assert len(bomb) < 400 * 1024

    tracemalloc.start()
    started = time.perf_counter()
    try:
        response = post_import(console_client, bomb, "shifts.xlsx")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert "'xl/sharedStrings.xml' in the XLSX unpacks to" in import_errors(response)
    assert peak < 16 * MIB, f"peak {peak / MIB:.0f} MiB"  # the 200 MiB string never existed
    assert time.perf_counter() - started < 5
    assert not Shift.objects.exists()


def zeros(size):
    def write(handle):
        for _ in range(size // MIB):
            handle.write(b"\0" * MIB)

    return write


def junk_members(content: bytes, count: int) -> bytes:
    out = io.BytesIO(content)
    with zipfile.ZipFile(out, "a") as book:
        for i in range(count):
            book.writestr(f"junk/{i}.txt", "x")
    return out.getvalue()


def csv_text(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


VALID = [HEADERS, ROW]
# (file name, content, settings, the reason the form shows)
HOSTILE_FILES = {
    "xlsx unpacks past the total": (
        "s.xlsx",
        lambda: with_member(xlsx(VALID), "xl/media/a.bin", zeros(2 * MIB)),
        {"IMPORT_MAX_UNPACKED_BYTES": 2 * MIB, "IMPORT_MAX_COMPRESSION_RATIO": 10**6},
        "The XLSX unpacks to",
    ),
    "xlsx member compressed far too well": (
        "s.xlsx",
        lambda: with_member(xlsx(VALID), "xl/media/a.bin", zeros(2 * MIB)),
        {},
        "'xl/media/a.bin' in the XLSX is compressed",
    ),
    "xlsx with thousands of members": (
        "s.xlsx",
        lambda: junk_members(xlsx(VALID), 500),
        {},
        "The XLSX archive holds",
    ),
    "xlsx that is no archive": ("s.xlsx", lambda: b"PK\x03\x04" + b"\0" * 64, {}, "not an XLSX"),
    "xlsx past the rows": (
        "s.xlsx",
        lambda: xlsx([HEADERS] + [ROW] * 6),
        {"IMPORT_MAX_ROWS": 5},
        "more than 5 rows",
    ),
    "xlsx with a cell too long": (
        "s.xlsx",
        lambda: xlsx([HEADERS, [*ROW[:5], "x" * 2001]]),
        {},
        "Row 2 has a cell of 2001 characters",
    ),
    "xlsx a row wider than any roster": (
        "s.xlsx",
        lambda: xlsx([HEADERS, [*ROW, *([None] * 16000), "far right"]]),
        {},
        "Row 2 has 16007 cells",
    ),
    "csv over the file size": (
        "s.csv",
        lambda: csv_text([HEADERS] + [ROW] * 100),
        {"IMPORT_MAX_FILE_BYTES": 1000},
        "at most 1000 are imported",
    ),
    "csv past the rows": (
        "s.csv",
        lambda: csv_text([HEADERS] + [ROW] * 6),
        {"IMPORT_MAX_ROWS": 5},
        "more than 5 rows",
    ),
    "csv past the rows in blank lines": (
        "s.csv",
        lambda: csv_text([HEADERS]) + b"\n" * 100_000,
        {"IMPORT_MAX_ROWS": 5000},
        "more than 5000 rows",
    ),
    "csv with a cell too long": (
        "s.csv",
        lambda: csv_text([HEADERS, [*ROW[:5], "x" * 2001]]),
        {},
        "Row 2 has a cell of 2001 characters",
    ),
    "csv with a cell past the csv module's limit": (
        "s.csv",
        lambda: csv_text([HEADERS, [*ROW[:5], "x" * 200_000]]),
        {"IMPORT_MAX_CELL_CHARS": 10**6},
        "The CSV cannot be read",
    ),
    "csv row wider than its header": (
        "s.csv",
        lambda: csv_text([HEADERS, [*ROW, "extra"]]),
        {},
        "Row 2 has more cells than the header row",
    ),
}


@pytest.mark.parametrize("case", HOSTILE_FILES, ids=str)
def test_hostile_spreadsheets_are_refused_with_the_reason(console_client, roster, settings, case):
    name, content, limits, reason = HOSTILE_FILES[case]
    for setting, value in limits.items():
        setattr(settings, setting, value)
    response = post_import(console_client, content(), name)
    assert reason in import_errors(response)
    assert "confirm_form" not in response.context
    assert not Shift.objects.exists()


def test_a_sheet_claiming_the_largest_dimension_is_read_as_it_is(console_client, roster):
    """`<dimension ref="A1:XFD1048576"/>` costs nothing: rows are not padded to it."""
    content = xlsx(VALID)
    with zipfile.ZipFile(io.BytesIO(content)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    start = sheet.index("<dimension ")
    end = sheet.index("/>", start) + 2
    claimed = sheet[:start] + '<dimension ref="A1:XFD1048576"/>' + sheet[end:]
    content = with_member(content, "xl/worksheets/sheet1.xml", lambda h: h.write(claimed.encode()))
    response = post_import(console_client, content, "shifts.xlsx")
    assert response.status_code == 200
    assert not response.context["form"].errors
    assert not response.context["result"].has_validation_errors()


# --- Export: formulae -------------------------------------------------------------------

FORMULAE = [
    '=HYPERLINK("http://example.invalid","click")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\tindented",
    "'quoted",
    "'=already escaped by hand",
    "plain note",
]


def export(client, fmt: str, **filters) -> bytes:
    response = client.post(
        EXPORT + ("?" + "&".join(f"{k}={v}" for k, v in filters.items()) if filters else ""),
        {"format": fmt, "resource": "0", **{f"shiftresource_{f}": "on" for f in HEADERS}},
    )
    assert response.status_code == 200, response.content[:500]
    return response.content


def exported_cells(content: bytes, fmt: str) -> list[list]:
    if fmt == "0":
        return list(csv.reader(io.StringIO(content.decode(), newline="")))
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    # No formula cell at all ('f'), only values.
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize("fmt", ["0", "1"], ids=["csv", "xlsx"])
def test_exports_escape_formulae_and_import_back_unchanged(console_client, roster, fmt):
    """Every text cell a spreadsheet program would run is written with a leading `'`;
    importing the exported file restores each value exactly."""
    station = Station.objects.get(code="MITTE")
    shifts = {}
    for day, note in enumerate(FORMULAE, start=1):
        shift = shift_for(
            roster,
            station=station,
            starts_at=datetime(2026, 12, day, 6, tzinfo=UTC),
            ends_at=datetime(2026, 12, day, 18, tzinfo=UTC),
            notes=note,
        )
        shifts[str(shift.pk)] = note

    content = export(console_client, fmt)

    rows = exported_cells(content, fmt)
    notes = {row[0]: row[5] for row in rows[1:]}
    for shift_id, note in shifts.items():
        dangerous = note[:1] in ("=", "+", "-", "@", "\t", "\r", "'")
        assert notes[shift_id] == ("'" + note if dangerous else note)
    assert not any(str(cell)[:1] in "=+-@" for row in rows for cell in row if cell)

    Shift.objects.update(notes="changed since")
    name = "shifts.xlsx" if fmt == "1" else "shifts.csv"
    preview = post_import(console_client, content, name)
    assert not preview.context["result"].has_validation_errors()
    form = preview.context["confirm_form"]
    done = console_client.post(PROCESS_IMPORT, {**form.initial, "resource": "0"})
    assert done.status_code == 302
    assert {str(s.pk): s.notes for s in Shift.objects.all()} == shifts


DAY, NIGHT = datetime(2026, 12, 7, 6, tzinfo=UTC), datetime(2026, 12, 7, 18, tzinfo=UTC)


# --- Export: filters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "format=0",
        "starts_at__gte=notadate",
        "station__id__exact=zz",
        "paramedics__id__exact=-1",
        "starts_at__year=99999999999999999999",
        "nonsense=1",
    ],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_export_links_with_bad_filters_are_400_not_500(console_client, roster, query, method):
    shift_for(roster, starts_at=DAY, ends_at=NIGHT)
    call = getattr(console_client, method)
    response = call(
        f"{EXPORT}?{query}", {"format": "0", "resource": "0"} if method == "post" else {}
    )
    assert response.status_code == 400
    assert "filters in this export link are not valid" in response.content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_export_link_with_a_time_utc_cannot_hold_is_never_a_500(console_client, roster, method):
    """Year 1 at +14:00 lies before year 1 in UTC: refused where the database cannot
    hold it (400, as the list), an empty export where it can (PostgreSQL)."""
    shift_for(roster, starts_at=DAY, ends_at=NIGHT)
    call = getattr(console_client, method)
    response = call(
        f"{EXPORT}?starts_at__gte=0001-01-01T00:00:00%2B14:00",
        {"format": "0", "resource": "0"} if method == "post" else {},
    )
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert "filters in this export link are not valid" in response.content.decode()


def test_export_takes_the_lists_filters(console_client, roster):
    kept = shift_for(
        roster, station=Station.objects.get(code="MITTE"), starts_at=DAY, ends_at=NIGHT
    )
    other = StationFactory(code="SPANDAU")
    shift_for(ParamedicFactory(), station=other, starts_at=DAY, ends_at=NIGHT)
    assert console_client.get(f"{EXPORT}?station__id__exact={kept.station_id}").status_code == 200
    rows = exported_cells(export(console_client, "0", station__id__exact=kept.station_id), "0")
    assert [row[0] for row in rows[1:]] == [str(kept.pk)]


def test_an_unknown_export_format_is_a_form_error(console_client, roster):
    response = console_client.post(EXPORT, {"format": "7", "resource": "0"})
    assert response.status_code == 200
    assert response.context["form"].errors["format"]


def test_the_import_file_reads_as_the_exported_one_for_a_plain_dataset():
    """Unescaping reads back only what escaping wrote: a hand-typed `'abc` stays."""
    from core.spreadsheets import escape_formula, unescape_formula

    # A carriage return first is escaped too; it is not in the exports above because
    # the import reads CSV in text mode, which turns line endings into "\n".
    assert escape_formula("\rcarriage") == "'\rcarriage"
    for value in [*FORMULAE, "\rcarriage", "'abc", "", "a'=b", None, 5]:
        assert unescape_formula(escape_formula(value)) == value
    assert unescape_formula("'abc") == "'abc"
