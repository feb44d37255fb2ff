"""The environment every replearn process runs with for readable output: one place for the CLI and the worker.

``replearn`` (cli/main.py) and the deployment worker (deployments/worker.py, started by
``make deploy``) both apply :func:`quiet_env` with :func:`apply_quiet_env`; flow runs the
worker starts inherit it. A variable the user has set is never overridden.
"""

from __future__ import annotations

from collections.abc import MutableMapping


def quiet_env() -> dict[str, str]:
    """``{name: value}`` of the environment variables replearn sets unless the user set them.

    - ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false``: no download/upload bar per artifact (the worker's
      terminal otherwise fills with them); replearn's own training progress bars stay.
    - ``PREFECT_SERVER_ANALYTICS_ENABLED=false``: Prefect's local API sends no usage analytics.
    - ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=180``: the temporary local API can take longer
      than Prefect's 20 s to start on a loaded 2-core machine.
    """
    return {
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }


def apply_quiet_env(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Set every :func:`quiet_env` variable missing from ``env`` (``os.environ`` or a copy); returns ``env``."""
    for name, value in quiet_env().items():
        env.setdefault(name, value)
    return env
