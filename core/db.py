"""PostgreSQL connection pools across fork (Celery's prefork workers, seed_load).

A pool (settings: DATABASES OPTIONS "pool") is per process, but a forked child
inherits its parent's: the same sockets, used by two processes at once. After a
fork the child forgets the inherited pools and connections, so it opens its own.
They are kept referenced, never closed: closing would end the parent's sessions.
"""

import os

_inherited: list = []


def _forget_inherited_connections() -> None:
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    _inherited.append(dict(DatabaseWrapper._connection_pools))
    DatabaseWrapper._connection_pools.clear()
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _inherited.append(wrapper.connection)
            wrapper.connection = None


def forget_connections_after_fork() -> None:
    os.register_at_fork(after_in_child=_forget_inherited_connections)
