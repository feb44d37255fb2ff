"""``replearn prefect status|stop``: the local Prefect API that ``replearn run`` keeps alive between commands."""

from __future__ import annotations

import typer

from replearn.cli import main as cli

prefect_app = typer.Typer(help="The local Prefect API that `replearn run` starts on first use and reuses, and the "
                                   "spare process that has the next `replearn run`'s imports done (both stop by "
                                   "themselves after 30 idle minutes).", no_args_is_help=True)
cli.app.add_typer(prefect_app, name="prefect")


def _say(text: str) -> None:
    cli.console.print(text, soft_wrap=True, highlight=False)


@prefect_app.command("status")
def status() -> None:
    """Say whether the local Prefect API runs, and where its UI is; and whether a spare process waits."""
    from replearn.infra.local_api import running_api, state_dir
    from replearn.infra.warm_client import running_spare

    api = running_api()
    _say(f"local Prefect API: {api.url} (pid {api.pid}); UI: {api.ui}" if api else
         f"no local Prefect API running (state in {state_dir()}); `replearn run ...` starts one")
    spare = running_spare()
    _say(f"spare process: pid {spare.pid}, {'ready' if spare.ready else 'importing'}" if spare else
         "no spare process (the next `replearn run` imports Prefect and MLflow itself, and starts one)")


@prefect_app.command("stop")
def stop() -> None:
    """Stop the local Prefect API and the spare process now (the next `replearn run` starts them again)."""
    from replearn.infra.local_api import stop_api
    from replearn.infra.warm_client import stop_spare

    api = stop_api()
    _say(f"stopped the local Prefect API at {api.url}" if api else "no local Prefect API was running")
    spare = stop_spare()
    _say(f"stopped the spare process {spare.pid}" if spare else "no spare process was waiting")
