"""Database statements that stop when told to: a long read (a scan of every record) run
in a thread, whose activity was cancelled or whose result is no longer needed, gives its
connection back at once instead of reading on."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


class Interrupted(Exception):
    """The statement was interrupted because the reader was told to stop."""


_WATCH_SECONDS = 0.2


@contextmanager
def interrupted_by(stop: threading.Event, connection: Connection) -> Iterator[None]:
    """Interrupt the connection's statement as soon as `stop` is set (a watcher thread
    looks every `_WATCH_SECONDS`); the error that follows is `Interrupted`. Interrupting
    is the one call both drivers allow from another thread."""
    raw = connection.connection.driver_connection
    assert raw is not None
    interrupt = raw.cancel if connection.dialect.name == "postgresql" else raw.interrupt
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if stop.wait(_WATCH_SECONDS):
                interrupt()  # again until it ends: the statement may not have begun yet
                done.wait(_WATCH_SECONDS)

    watcher = threading.Thread(target=watch, name="interrupt-on-stop", daemon=True)
    watcher.start()
    try:
        yield
    except DBAPIError as error:
        if stop.is_set():
            raise Interrupted from error
        raise
    finally:
        done.set()
        watcher.join()
