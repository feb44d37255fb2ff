"""``replearn prefect status|stop``: the local Prefect API that ``replearn run`` keeps alive between commands."""

from __future__ import annotations

import typer

from replearn.cli import main as cli

prefect_app = typer.Typer(help="The local Prefect API that `replearn run` starts on first use and reuses "
                                   "(stops by itself after 30 idle minutes).", no_args_is_help=True)
cli.app.add_typer(prefect_app, name="prefect")


@prefect_app.command("status")
def status() -> None:
    """Say whether the local Prefect API runs, and where its UI is."""
    from replearn.infra.local_api import running_api, state_dir

    api = running_api()
    if api is None:
        cli.console.print(f"no local Prefect API running (state in {state_dir()}); `replearn run ...` starts one",
                          soft_wrap=True, highlight=False)
        return
    cli.console.print(f"local Prefect API: {api.url} (pid {api.pid}); UI: {api.ui}", soft_wrap=True, highlight=False)


@prefect_app.command("stop")
def stop() -> None:
    """Stop the local Prefect API now (the next `replearn run` starts it again)."""
    from replearn.infra.local_api import stop_api

    api = stop_api()
    cli.console.print(f"stopped the local Prefect API at {api.url}" if api else "no local Prefect API was running",
                      soft_wrap=True, highlight=False)
