"""The command-line verbs of this part, added to `opencem` by :func:`register` (heavy imports inside the verbs)."""

from __future__ import annotations

from collections.abc import Callable

import typer


def register(app: typer.Typer, friendly_errors: Callable) -> None:
    """Add this part's verbs to the `opencem` app; each verb is wrapped in ``friendly_errors``."""
