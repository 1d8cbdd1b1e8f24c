"""Spreadsheets in and out of the console (CSV, XLSX): bounded reading, safe writing.

Reading (rows in an import and the uncompressed bytes of an archive
are capped per caller). An XLSX is a ZIP archive whose few kilobytes can unpack
to gigabytes (one 200 MiB shared string took a worker to 2.5 GB), so the archive
is inspected before any parser sees it: its size, its member count, each
member's and the total uncompressed size, and each large member's compression
ratio, as the central directory declares them. That is enough: Python's zipfile
never yields more than a member's declared size (a member that holds more fails
its CRC check). Then rows are read one at a time, in openpyxl's read-only mode
or by the csv module, and refused past IMPORT_MAX_ROWS rows, MAX_COLUMNS cells
or IMPORT_MAX_CELL_CHARS characters in a cell, before the whole sheet is in
memory. A refusal is a SpreadsheetRefused whose message the import form shows.

Writing: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
is a formula to a spreadsheet program (`=HYPERLINK(...)` in a note runs when a
supervisor opens the export), so every exported text cell that starts with one,
or with the escape `'` itself, gets a leading `'`: the program shows it as text.
Reading strips exactly that one `'` again, so an exported file imports back to
the values it was made from.
"""

import csv
import io
import zipfile
from collections.abc import Iterable

import tablib
from django.conf import settings
from import_export.formats import base_formats

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_ESCAPE = "'"
# A shift file has six columns; a row far wider is no roster.
MAX_COLUMNS = 64
# An XLSX holds about ten members; thousands are no spreadsheet.
MAX_ARCHIVE_MEMBERS = 100
# Small members compress well without harm (an empty sheet, styles): the ratio is
# checked only on members that unpack to more than this.
RATIO_CHECKED_FROM_BYTES = 1024 * 1024


class SpreadsheetRefused(ValueError):
    """The file is refused before (or while) it is read; the message says why."""


def escape_formula(value):
    """A text cell a spreadsheet program would run as a formula, made text (`'` first)."""
    if isinstance(value, str) and value[:1] in (*FORMULA_STARTS, FORMULA_ESCAPE):
        return FORMULA_ESCAPE + value
    return value


def unescape_formula(value):
    """The value escape_formula was given: one leading `'` before what it escapes."""
    if (
        isinstance(value, str)
        and value[:1] == FORMULA_ESCAPE
        and value[1:2] in (*FORMULA_STARTS, FORMULA_ESCAPE)
    ):
        return value[1:]
    return value


def _escaped(dataset: tablib.Dataset) -> tablib.Dataset:
    safe = tablib.Dataset(headers=dataset.headers, title=dataset.title)
    for row in dataset:
        safe.append([escape_formula(cell) for cell in row])
    return safe


def check_archive(data: bytes) -> None:
    """Refuse an XLSX whose archive is larger, or unpacks larger, than the limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise SpreadsheetRefused("This is not an XLSX file (not a ZIP archive).") from None
    members = archive.infolist()
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise SpreadsheetRefused(
            f"The XLSX archive holds {len(members)} files; a spreadsheet holds at most "
            f"{MAX_ARCHIVE_MEMBERS}."
        )
    member_limit = settings.IMPORT_MAX_MEMBER_BYTES
    ratio_limit = settings.IMPORT_MAX_COMPRESSION_RATIO
    total = 0
    for member in members:
        name = repr(member.filename[:80])
        if member.file_size > member_limit:
            raise SpreadsheetRefused(
                f"{name} in the XLSX unpacks to {member.file_size} bytes; at most "
                f"{member_limit} are read."
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_CHECKED_FROM_BYTES and ratio > ratio_limit:
            raise SpreadsheetRefused(
                f"{name} in the XLSX is compressed {ratio:.0f} to 1; at most {ratio_limit} "
                "to 1 is read (an archive bomb?)."
            )
        total += member.file_size
    if total > settings.IMPORT_MAX_UNPACKED_BYTES:
        raise SpreadsheetRefused(
            f"The XLSX unpacks to {total} bytes; at most "
            f"{settings.IMPORT_MAX_UNPACKED_BYTES} are read."
        )


def _check_size(length: int) -> None:
    limit = settings.IMPORT_MAX_FILE_BYTES
    if length > limit:
        raise SpreadsheetRefused(f"The file has {length} bytes; at most {limit} are imported.")


def dataset_from_rows(rows: Iterable, *, blank) -> tablib.Dataset:
    """A Dataset from rows read one at a time: the first is the header, blank rows are
    skipped, short rows padded with `blank`; refused past the row, column and cell caps.

    Every text cell is unescaped (unescape_formula), so an export imports back as it was.
    """
    max_rows, max_chars = settings.IMPORT_MAX_ROWS, settings.IMPORT_MAX_CELL_CHARS
    dataset = tablib.Dataset()
    width = None
    for number, row in enumerate(rows, start=1):
        if number > max_rows + 1:  # the header and max_rows rows
            raise SpreadsheetRefused(f"The file has more than {max_rows} rows.")
        cells = list(row)
        if len(cells) > MAX_COLUMNS:
            raise SpreadsheetRefused(
                f"Row {number} has {len(cells)} cells; at most {MAX_COLUMNS} are read."
            )
        for cell in cells:
            if isinstance(cell, str) and len(cell) > max_chars:
                raise SpreadsheetRefused(
                    f"Row {number} has a cell of {len(cell)} characters; at most "
                    f"{max_chars} are read."
                )
        while cells and cells[-1] in (None, ""):
            cells.pop()
        cells = [unescape_formula(cell) for cell in cells]
        if width is None:
            dataset.headers, width = cells, len(cells)
            continue
        if not cells:
            continue
        if len(cells) > width:
            raise SpreadsheetRefused(f"Row {number} has more cells than the header row.")
        dataset.append(cells + [blank] * (width - len(cells)))
    return dataset


class BoundedCSV(base_formats.CSV):
    """CSV: size checked first, rows read one at a time; exported text cells escaped."""

    def create_dataset(self, in_stream, **kwargs):
        if isinstance(in_stream, bytes):
            _check_size(len(in_stream))
            in_stream = in_stream.decode(self.encoding or "utf-8")
        else:
            _check_size(len(in_stream.encode(self.encoding or "utf-8", "surrogatepass")))
        try:
            return dataset_from_rows(csv.reader(io.StringIO(in_stream)), blank="")
        except csv.Error as exc:  # e.g. a field past csv's own limit (128 KiB)
            raise SpreadsheetRefused(f"The CSV cannot be read: {exc}.") from None

    def export_data(self, dataset, **kwargs):
        return super().export_data(_escaped(dataset), **kwargs)


class BoundedXLSX(base_formats.XLSX):
    """XLSX: the archive inspected before openpyxl opens it, then rows read one at a
    time from the first sheet; exported text cells escaped."""

    def create_dataset(self, in_stream, **kwargs):
        import openpyxl

        _check_size(len(in_stream))
        check_archive(in_stream)
        book = openpyxl.load_workbook(io.BytesIO(in_stream), read_only=True, data_only=True)
        try:
            sheet = book.active
            # Rows as the sheet holds them, not padded to the size its header claims
            # (a few bytes can claim A1:XFD1048576).
            sheet.reset_dimensions()
            return dataset_from_rows(
                ([cell.value for cell in row] for row in sheet.rows), blank=None
            )
        finally:
            book.close()

    def export_data(self, dataset, **kwargs):
        return super().export_data(_escaped(dataset), **kwargs)
