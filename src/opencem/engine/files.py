"""File helpers every writer uses: atomic folder and file writes, Parquet path lists and hive base paths."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_CHARS = set("*?[{")


def as_path_list(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Paths as absolute strings (URLs such as s3://... are kept as they are)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        s = os.fspath(p)
        out.append(s if _SCHEME_RE.match(s) else os.path.abspath(s))
    if not out:
        raise ValueError("no Parquet paths given")
    return out


def hive_base_path(paths: Sequence[str]) -> str | None:
    """The folder above the first ``key=value`` (or globbed) path component, when all paths agree.

    ``/lake/pm/day=2024-01-01/part-0.parquet`` and ``/lake/pm/*/*.parquet`` both give ``/lake/pm``.
    Returns None when a path has no such component or the paths disagree.
    """
    bases = set()
    for p in paths:
        parts = p.split("/")
        cut = next((i for i, part in enumerate(parts[:-1]) if "=" in part or _GLOB_CHARS & set(part)), None)
        if cut is None:
            return None
        bases.add("/".join(parts[:cut]) or "/")
    return bases.pop() if len(bases) == 1 else None


def atomic_write_text(path: Path, text: str) -> None:
    """Write one file through a temporary sibling and a rename: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:10]}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path (not yet created) to write into; on success swap it into place.

    The old content of ``path`` is renamed aside, the new folder renamed to ``path``, then the old one
    removed, so a failure while writing leaves ``path`` untouched and a re-run replaces (never appends).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:10]
    tmp = path.parent / f".{path.name}.tmp-{token}"
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"nothing was written for {path}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists() or path.is_symlink():
        old = path.parent / f".{path.name}.old-{token}"
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def replace_partitions(staging: Path, target: Path, column: str, values: Sequence[str]) -> None:
    """Move the ``column=value`` folders of ``staging`` into ``target`` for each of ``values``, each replacing
    the one there (a value ``staging`` lacks is removed from ``target``: it has no rows now); the other
    folders of ``target`` stay. ``staging`` is removed. Each folder is swapped by renames, so a reader sees
    a day's old files or its new ones."""
    target.mkdir(parents=True, exist_ok=True)
    for v in values:
        new, old = staging / f"{column}={v}", target / f"{column}={v}"
        aside = target.parent / f".{target.name}.{column}={v}.old"  # outside target: no reader globs it
        shutil.rmtree(aside, ignore_errors=True)
        if old.exists():
            os.replace(old, aside)
        if new.exists():
            os.replace(new, old)
        shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
