"""The command-line verbs of this part, added to `opencem` by :func:`register` (heavy imports inside the verbs)."""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections.abc import Callable
from pathlib import Path

import typer

from ..errors import InputError


def _workspace(ws: Path) -> Path:
    if not ws.is_dir():
        raise InputError(f"{ws}: no such workspace folder")
    return ws


def _parse_now(value: str | None, ws: Path) -> dt.datetime | None:
    if value is None:
        return None
    if value == "data":
        return None  # resolved by the store once loaded (see serve)
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--now {value!r}: give an ISO 8601 time such as 2026-10-21T00:00:00Z, or 'data'") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def register(app: typer.Typer, friendly_errors: Callable) -> None:
    """Add this part's verbs to the `opencem` app; each verb is wrapped in ``friendly_errors``."""

    @app.command()
    @friendly_errors
    def serve(workspace: Path = typer.Option(..., "--workspace", "-w", help="The workspace to serve"),
              host: str = typer.Option("127.0.0.1", help="Address to listen on"),
              port: int = typer.Option(8000, help="Port to listen on"),
              min_group: int = typer.Option(10, "--min-group", help="Smallest group any aggregate may describe"),
              now: str = typer.Option(None, help="The clock maxAge and time windows are judged against: an ISO time, "
                                                 "or 'data' for the end of the workspace's data (default: wall clock)"),
              keep_alive: int = typer.Option(75, "--keep-alive", help="Seconds an idle client connection is kept open "
                                                                        "(nginx's default; uvicorn's own is 5)"),
              log_level: str = typer.Option("info", help="uvicorn log level")) -> None:
        """Serve the open APIs of a workspace (CAMARA location and density, NPS, experience, twin, preferences)."""
        import uvicorn

        from .app import Settings, create_app

        ws = _workspace(workspace)
        if min_group < 2:
            raise InputError(f"--min-group {min_group}: an aggregate must describe at least 2 subscribers")
        settings = Settings(min_group=min_group, now=_parse_now(now, ws))
        api = create_app(ws, settings)
        if now == "data":
            settings.now = api.state.ctx.store.data_end
        if not api.state.ctx.registry.all():
            typer.echo(f"no API clients yet: add one with `opencem clients add --workspace {ws} ...`", err=True)
        gc.collect()
        gc.freeze()  # the loaded store is never freed: keep the collector from walking it on every full collection
        # every call is in the audit log already; uvicorn's access log would repeat it on stderr
        uvicorn.run(api, host=host, port=port, log_level=log_level, access_log=False, timeout_keep_alive=keep_alive)

    clients = typer.Typer(no_args_is_help=True, help="API clients of a workspace: add, revoke, list.")
    app.add_typer(clients, name="clients")

    @clients.command("add")
    @friendly_errors
    def add(workspace: Path = typer.Option(..., "--workspace", "-w"),
            client_id: str = typer.Option(..., "--id", help="Client id (letters, digits, . _ -)"),
            scope: list[str] = typer.Option(..., "--scope", help="A scope the client may ask for (repeat the option)"),
            purpose: str = typer.Option(..., help="Declared purpose, written to the audit log with each call"),
            rate: float = typer.Option(20.0, help="Requests per second"),
            burst: int = typer.Option(None, help="Requests at once (default: twice the rate)")) -> None:
        """Register a client; prints its secret once (only its hash is kept)."""
        from .security import ClientRegistry

        ws = _workspace(workspace)
        scopes = [s for item in scope for s in item.replace(",", " ").split()]
        secret = ClientRegistry.of(ws).add(client_id, scopes, purpose, rate_per_s=rate, burst=burst)
        typer.echo(json.dumps({"client_id": client_id, "client_secret": secret, "scopes": sorted(set(scopes))}))

    @clients.command("revoke")
    @friendly_errors
    def revoke(workspace: Path = typer.Option(..., "--workspace", "-w"),
               client_id: str = typer.Option(..., "--id")) -> None:
        """Revoke a client: its tokens stop working at once, also on a running server."""
        from .security import ClientRegistry

        ClientRegistry.of(_workspace(workspace)).revoke(client_id)
        typer.echo(f"revoked {client_id}")

    @clients.command("list")
    @friendly_errors
    def list_(workspace: Path = typer.Option(..., "--workspace", "-w")) -> None:
        """The workspace's clients (no secrets), one JSON object a line."""
        from .security import ClientRegistry, SCOPES

        for c in ClientRegistry.of(_workspace(workspace)).all():
            typer.echo(json.dumps(c.public()))
        if not ClientRegistry.of(workspace).all():
            typer.echo("no clients; scopes: " + ", ".join(SCOPES), err=True)
