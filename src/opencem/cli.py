"""`opencem <verb>`: the command line of the loop."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="OpenCEM: customer experience management and network NPS.")


@app.command()
def version() -> None:
    """Print the OpenCEM version."""
    from opencem import __version__

    typer.echo(__version__)
