"""Validate JSON documents against the component schemas of an OpenAPI 3.0 file.

:class:`OpenAPISpec` checks a document against one component schema (:meth:`~OpenAPISpec.check`,
:meth:`~OpenAPISpec.validate`) and lists the fields a document has that the schema does not declare
(:meth:`~OpenAPISpec.undeclared_fields`; open schemas accept them silently).

How the OpenAPI 3.0 schemas are turned into JSON Schema 2020-12 (see :func:`compile_oas`):

* ``nullable: true`` adds ``null`` to ``type`` (and to ``enum``); siblings of ``$ref`` are dropped, as
  OpenAPI 3.0 ignores them; ``example``/``discriminator``/``xml``/``externalDocs`` are removed;
* ``discriminator`` is OpenAPI-only, so it is compiled into plain JSON Schema: every component schema
  ``S`` gets a *base* form (its own definition, where ``allOf`` parents point at their base forms too)
  and a *public* form used by every other ``$ref``: ``allOf: [base S]`` plus, for each mapping entry
  ``value -> T`` (``T`` not ``S``), ``if @type == value then $ref T``. A ``FloatCharacteristic`` inside a
  ``Characteristic_FVO`` array is therefore checked against ``FloatCharacteristic_FVO`` (its ``value``
  must be a number). For ``oneOf`` + ``discriminator`` (``PartyRefOrPartyRoleRef_FVO``,
  ``PlaceRefOrValue_FVO``, ...) the ``oneOf`` is replaced by the same dispatch and the property must be
  one of the mapping values (open schemas would otherwise match several branches and always fail);
* ``format: date-time`` / ``date`` are checked (RFC 3339); other formats (``float``, ``uri``) are not.

A compiled file is cached until it changes on disk.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..errors import InputError

_REF = "#/components/schemas/"
_BASE = "#/components/x-opencem-base/"
_URI = "https://opencem.invalid/openapi.json"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_ONE = ("items", "not", "additionalProperties")
_DROP = {"discriminator", "nullable", "example", "xml", "externalDocs"}


# --------------------------------------------------------------------------------------------- compile


def _convert(node: Any) -> Any:
    """One OpenAPI 3.0 schema object as JSON Schema 2020-12 (recursing only into schema positions)."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key in ("properties", "patternProperties") and isinstance(value, dict):
            out[key] = {name: _convert(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_convert(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            out[key] = _convert(value)
        else:
            out[key] = value
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if out.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
        elif out.get(exclusive) is False:
            del out[exclusive]
    return out


def compile_oas(oas: dict) -> dict:
    """The OAS document's component schemas as base + public JSON Schema forms (see the module docstring)."""
    schemas = oas.get("components", {}).get("schemas", {})
    base: dict[str, Any] = {}
    public: dict[str, Any] = {}
    for name, raw in schemas.items():
        conv = _convert(raw)
        disc = raw.get("discriminator") if isinstance(raw, dict) else None
        choice = disc is not None and any(k in raw for k in ("oneOf", "anyOf"))
        if isinstance(conv, dict):
            if choice:
                conv.pop("oneOf", None)
                conv.pop("anyOf", None)
            if isinstance(conv.get("allOf"), list):  # allOf is inheritance: parents are used without dispatch
                conv["allOf"] = [{"$ref": _BASE + s["$ref"][len(_REF):]} if isinstance(s, dict) and s.get("$ref", "").startswith(_REF) else s
                                 for s in conv["allOf"]]
        base[name] = conv
        parts: list[dict] = [{"$ref": _BASE + name}]
        if disc:
            prop = disc["propertyName"]
            mapping = dict(disc.get("mapping") or {})
            if not mapping and choice:  # implicit mapping: the schema names
                mapping = {s["$ref"].rsplit("/", 1)[-1]: s["$ref"] for s in raw.get("oneOf", raw.get("anyOf", [])) if "$ref" in s}
            for value, target in sorted(mapping.items()):
                if target != _REF + name:
                    parts.append({"if": {"properties": {prop: {"const": value}}, "required": [prop]}, "then": {"$ref": target}})
            if choice:
                parts.append({"required": [prop], "properties": {prop: {"enum": sorted(mapping)}}})
        public[name] = {"allOf": parts}
    return {"components": {"schemas": public, "x-opencem-base": base}}


def _load_yaml(path: Path) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=loader)


@functools.lru_cache(maxsize=8)
def _compiled(path: str, mtime_ns: int) -> dict:
    return compile_oas(_load_yaml(Path(path)))


_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


@_FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    dt.date.fromisoformat(value)
    return True


@functools.lru_cache(maxsize=64)
def _validator(path: str, mtime_ns: int, schema: str) -> Draft202012Validator:
    registry = Registry().with_resource(_URI, Resource(contents=_compiled(path, mtime_ns), specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{_URI}{_REF}{schema}"}, registry=registry, format_checker=_FORMATS)


# ------------------------------------------------------------------------------------------ json paths


def _jpath(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{base}[{key!r}]"


def _path_key(path: str) -> list:
    """Sort key for JSON paths: array indexes in numeric order."""
    return [int(x) if x.isdigit() else x for x in re.split(r"\[(\d+)\]", path)]


def _resolve(root: dict, ref: str) -> Any:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _declared(root: dict, node: Any, instance: dict, props: dict[str, list], depth: int = 0) -> None:
    if not isinstance(node, dict) or depth > 64:
        return
    if "$ref" in node:
        _declared(root, _resolve(root, node["$ref"]), instance, props, depth + 1)
    for sub in node.get("allOf", []):
        _declared(root, sub, instance, props, depth + 1)
    cond = node.get("if")
    if cond and "then" in node:
        if all(instance.get(k) == v.get("const") for k, v in cond["properties"].items()):
            _declared(root, node["then"], instance, props, depth + 1)
    for name, sub in node.get("properties", {}).items():
        props.setdefault(name, []).append(sub)


def _items(root: dict, node: Any, out: list, depth: int = 0) -> None:
    if not isinstance(node, dict) or depth > 64:
        return
    if "$ref" in node:
        _items(root, _resolve(root, node["$ref"]), out, depth + 1)
    for sub in node.get("allOf", []):
        _items(root, sub, out, depth + 1)
    if isinstance(node.get("items"), dict):
        out.append(node["items"])


def _walk(root: dict, node: Any, value: Any, where: str, out: set) -> None:
    if isinstance(value, dict):
        props: dict[str, list] = {}
        _declared(root, node, value, props)
        for key, sub in value.items():
            if key not in props:
                out.add(_jpath(where, key))
            for schema in props.get(key, []):
                _walk(root, schema, sub, _jpath(where, key), out)
    elif isinstance(value, list):
        schemas: list = []
        _items(root, node, schemas)
        for schema in schemas:
            for i, item in enumerate(value):
                _walk(root, schema, item, _jpath(where, i), out)


# ----------------------------------------------------------------------------------------------- specs


class OpenAPIValidationError(ValueError):
    """A document does not match its schema; ``errors`` holds (json path, reason) pairs."""

    def __init__(self, spec: str, schema: str, errors: list[tuple[str, str]]):
        self.spec, self.schema, self.errors = spec, schema, errors
        first = f"{errors[0][0]}: {errors[0][1]}"
        more = f" (and {len(errors) - 1} more: {'; '.join(f'{p}: {r}' for p, r in errors[1:4])})" if len(errors) > 1 else ""
        super().__init__(f"{spec} {schema}: invalid at {first}{more}")


class OpenAPISpec:
    """One OpenAPI 3.0 file (YAML or JSON); ``name`` is how messages call it (default: the file name)."""

    def __init__(self, path: Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name

    def _key(self, schema: str) -> tuple[str, int]:
        """(path, mtime) of the file, the cache key of its compiled form; ValueError for an unknown schema."""
        key = (str(self.path), self.path.stat().st_mtime_ns)
        if schema not in _compiled(*key)["components"]["schemas"]:
            raise InputError(f"{self.name} has no component schema {schema!r}")
        return key

    def check(self, doc: dict, schema: str) -> list[tuple[str, str]]:
        """All (json path, reason) violations of ``doc`` against the component ``schema``; [] when valid."""
        found = set()
        for err in _validator(*self._key(schema), schema).iter_errors(doc):
            where = err.json_path
            reason = err.message if len(err.message) <= 200 else err.message[:197] + "..."
            if err.validator == "required" and isinstance(err.instance, dict):
                missing = [r for r in err.validator_value if r not in err.instance and err.message == f"{r!r} is a required property"]
                if missing:
                    where, reason = _jpath(where, missing[0]), "required field is missing"
            found.add((where, reason))
        return sorted(found, key=lambda e: (_path_key(e[0]), e[1]))

    def validate(self, doc: dict, schema: str) -> None:
        """Raise :class:`OpenAPIValidationError` (a ValueError) naming spec, schema, field path and reason
        when ``doc`` does not match."""
        errors = self.check(doc, schema)
        if errors:
            raise OpenAPIValidationError(self.name, schema, errors)

    def undeclared_fields(self, doc: dict, schema: str) -> list[str]:
        """JSON paths of the fields in ``doc`` that the spec does not declare."""
        root = _compiled(*self._key(schema))
        out: set[str] = set()
        _walk(root, {"$ref": _REF + schema}, doc, "$", out)
        return sorted(out, key=_path_key)
