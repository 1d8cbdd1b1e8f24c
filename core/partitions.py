"""Daily range partitions of a PostgreSQL table (the location trail, design §20).

A table partitioned by RANGE on a timestamp column holds one partition per UTC day,
named `<table>_pYYYYMMDD`, and a DEFAULT partition (`<table>_pdefault`) that takes
rows of a day that has no partition yet, so an insert never fails for want of one.
A periodic job creates the days ahead; purging a day is DROP TABLE of its partition:
it costs the same whatever the day holds, and leaves no dead rows to vacuum.

Creating and dropping take a transaction-scoped advisory lock per table, so two
jobs running at once (two beats, a manual run) do not race each other.
"""

import re
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction

DEFAULT_SUFFIX = "_pdefault"
_DAY = re.compile(r"_p(\d{8})$")


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


def _identifier(name: str) -> str:
    """Table and column names are the code's own, never a client's; checked anyway,
    since they are written into the SQL (they cannot be parameters)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_partitions(table: str) -> dict[date, str]:
    """The table's day partitions by day (the DEFAULT partition is not one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = {}
    for name in names:
        match = _DAY.search(name)
        if match and name == f"{table}_p{match.group(1)}":
            found[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return found


# Attaching and dropping a partition lock the parent table: writers wait behind
# them. Give up (the next run tries again) rather than queue behind a long reader
# and hold every writer up meanwhile.
LOCK_TIMEOUT = "5s"


def _lock(cursor, table: str) -> None:
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])


def ensure_day_partitions(*, table: str, column: str, first: date, last: date) -> list[str]:
    """Create the partitions of the days `first`..`last` that do not exist; returns
    their names. Rows of such a day already in the DEFAULT partition move into it
    (PostgreSQL refuses to attach a partition whose rows the default still holds)."""
    table, column = _identifier(table), _identifier(column)
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, table)
        existing = day_partitions(table)
        day = first
        while day <= last:
            if day not in existing:
                name = partition_name(table, day)
                low, high = day_start(day), day_start(day + timedelta(days=1))
                cursor.execute(
                    f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                )
                move = (
                    f"WITH moved AS (DELETE FROM {table}{DEFAULT_SUFFIX} "  # noqa: S608 - checked identifiers
                    f"WHERE {column} >= %s AND {column} < %s RETURNING *) "
                    f"INSERT INTO {name} SELECT * FROM moved"
                )
                cursor.execute(move, [low, high])
                cursor.execute(
                    f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
                    [low, high],
                )
                created.append(name)
            day += timedelta(days=1)
    return created


def drop_day_partitions_before(*, table: str, column: str, day: date) -> tuple[list[str], int]:
    """Drop the partitions of days before `day`, and delete the DEFAULT partition's
    rows from before it; returns the partitions dropped and the rows deleted."""
    table, column = _identifier(table), _identifier(column)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, table)
        dropped = []
        for partition_day, name in sorted(day_partitions(table).items()):
            if partition_day < day:
                cursor.execute(f"DROP TABLE {name}")
                dropped.append(name)
        cursor.execute(
            f"DELETE FROM {table}{DEFAULT_SUFFIX} WHERE {column} < %s",  # noqa: S608 - as above
            [day_start(day)],
        )
        return dropped, cursor.rowcount
