"""Reading an indicator tree from YAML: the packaged default or an operator's file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .model import Tree, TreeError, validate_tree

DEFAULT_TREE = "default_tree.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_tree(text: str, file: str = "tree.yaml") -> Tree:
    """Validate a tree given as YAML text; ``file`` names it in error messages."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as ex:
        mark = getattr(ex, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        what = getattr(ex, "problem", None) or str(ex).splitlines()[0]
        raise TreeError(file, "", f"invalid YAML {where}: {what}".replace("  ", " ")) from None
    return validate_tree(data, file)


def load_tree(path: str | Path | None = None) -> Tree:
    """Load and validate a tree YAML; ``None`` loads the packaged ``default_tree.yaml``.

    Raises :class:`TreeError` (a ``ValueError``, one line naming file and YAML path) on an invalid tree
    and ``FileNotFoundError`` when the file does not exist.
    """
    if path is None:
        text = resources.files("opencem.indicators").joinpath(DEFAULT_TREE).read_text(encoding="utf-8")
        return parse_tree(text, DEFAULT_TREE)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"indicator tree {p} not found")
    return parse_tree(p.read_text(encoding="utf-8"), str(path))
