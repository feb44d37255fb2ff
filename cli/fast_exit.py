"""End a ``replearn`` process as soon as its work is done: every ``atexit`` handler runs, the interpreter's
teardown does not.

After a flow run the interpreter spends about 1.4 s tearing itself down
(freeing the modules of Prefect, MLflow, pydantic and numba one by one) with no
effect anyone can see: Prefect's log and event workers are drained by their
own ``atexit`` handlers, logging's handlers flushed and closed by
``logging.shutdown``. A caller that reads the command's output to its end
(``$(replearn ...)``, ``| tee``, ``subprocess.run(capture_output=True)``) waits
for all of it. :class:`FastExit`, registered with ``atexit`` before anything
else (so it runs after every other handler), flushes stdout and stderr, tells
its reporters the status, and leaves with ``os._exit``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable


class FastExit:
    """The process's exit status (``code``, 1 until set), given to the OS once every other ``atexit`` handler has
    run; ``reporters`` are called with it first (the spare process tells its client)."""

    def __init__(self) -> None:
        self.code = 1
        self.reporters: list[Callable[[int], None]] = []

    def set(self, code: object) -> int:
        """Record the status of ``SystemExit(code)`` (None is 0; a message is printed, as Python does, and is 1)."""
        if code is None:
            self.code = 0
        elif isinstance(code, int):
            self.code = code
        else:
            print(code, file=sys.stderr)
            self.code = 1
        return self.code

    def run(self, main: Callable[[], object]) -> int:
        """Call ``main`` and record its status: 0 when it returns, its ``SystemExit``'s (:meth:`set`), 130 on
        Ctrl-C (re-raised, so the interpreter reports it); returns the status."""
        try:
            main()
            return self.set(0)
        except SystemExit as e:
            return self.set(e.code)
        except KeyboardInterrupt:
            self.set(130)
            raise

    def finish(self) -> None:
        """Flush stdout and stderr, call the reporters, then ``os._exit`` with the status."""
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        for report in self.reporters:
            with contextlib.suppress(Exception):
                report(self.code)
        os._exit(self.code)

    @classmethod
    def install(cls) -> FastExit:
        """A new :class:`FastExit` registered with ``atexit``; install it before importing anything that
        registers handlers of its own, so that it runs last."""
        exit_ = cls()
        atexit.register(exit_.finish)
        return exit_
