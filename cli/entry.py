"""The ``replearn`` console script: a ``replearn run`` goes to the waiting spare process when one is ready.

Only the standard library and :mod:`replearn.infra.warm_client` are imported
before that decision, so a command the spare serves starts its flow within
about a tenth of a second instead of importing Prefect, MLflow and the flows
(about 4 s on 2 cores). Everything else, and every ``run`` no spare takes, is
:func:`replearn.cli.main.main` in this process, which ends without the
interpreter's teardown (:mod:`replearn.cli.fast_exit`).
"""

from __future__ import annotations

import sys


def _for_spare(argv: list[str]) -> bool:
    """A flow run (``run FAMILY ...``), not its help."""
    return len(argv) >= 2 and argv[0] == "run" and not {"--help", "-h"} & set(argv)


def main() -> None:
    """Console-script entry point."""
    argv = sys.argv[1:]
    if _for_spare(argv):
        from replearn.infra.warm_client import run_in_spare

        code = run_in_spare(argv)
        if code is not None:
            raise SystemExit(code)
    from replearn.cli.fast_exit import FastExit

    exit_ = FastExit.install()  # before the imports below: it runs after their atexit handlers
    from replearn.cli.main import main as cli_main

    raise SystemExit(exit_.run(cli_main))


if __name__ == "__main__":
    main()
