"""The indicator tree as a validated model: its nodes, their rules, and one-line errors naming the YAML path.

Per service, which KQI columns of ``kqi_pspu_day`` are scored, with which curve, anchors and weight; how
the service CEIs combine into one network CEI; how the journey stages are scored. :func:`validate_tree`
turns pydantic's errors into a :class:`TreeError` (``file: yaml.path: problem``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ...vocabulary import SERVICES

#: Columns of ``kqi_pspu_day`` a KQI node may score (all DOUBLE; NULL where they do not apply to the
#: service). ``sessions`` and ``volume_mb`` are usage, not quality: they weight (``overall.usage``),
#: they are not scored.
KQI_COLUMNS: tuple[str, ...] = (
    "success_rate",
    "throughput_kbps_mean",
    "rtt_ms_mean",
    "jitter_ms_mean",
    "page_load_ms_mean",
    "slow_page_share",
    "initial_buffer_ms_mean",
    "stall_ratio",
    "stall_session_share",
    "video_bitrate_kbps_mean",
    "video_resolution_mean",
    "video_mos_mean",
    "call_setup_ms_mean",
    "call_drop_rate",
    "voice_mos_mean",
    "voice_delay_ms_mean",
    "packet_loss_pct_mean",
)
#: KQI columns that are fractions 0..1: their good / bad anchors must lie in 0..1 (catches "99" for 0.99).
FRACTION_COLUMNS: frozenset[str] = frozenset(
    {"success_rate", "slow_page_share", "stall_session_share", "call_drop_rate"}
)
#: Score curves of :mod:`opencem.indicators.qoe` a KQI node may use.
CURVES: tuple[str, ...] = ("logistic", "linear")
#: Journey stages, in order.
STAGES: tuple[str, ...] = ("use", "get_help", "choose_interact")
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class TreeError(ValueError):
    """An invalid indicator tree; ``str(e)`` is one line ``file: yaml.path: problem``."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file, self.path, self.problem = file, path, problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {problem}")


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------


def _err(problem: str, field: str | None = None) -> PydanticCustomError:
    """Validation error; ``field`` (relative YAML path) is appended to the error location."""
    return PydanticCustomError("tree", "{problem}", {"problem": problem, "field": field})


Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Weight = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Text = Annotated[str, Field(strict=True, min_length=1)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            allowed = list(cls.model_fields)
            for key in data:
                if key not in cls.model_fields:
                    hint = difflib.get_close_matches(str(key), allowed, n=1)
                    extra = f"did you mean '{hint[0]}'? " if hint else ""
                    raise _err(f"unknown key ({extra}allowed: {', '.join(allowed)})", str(key))
        return data


class KqiNode(_Node):
    """One scored KQI: ``score_<name> = curve(column; good, bad)`` in 0..100."""

    name: Text
    column: Text
    curve: Literal["logistic", "linear"]
    good: Number
    bad: Number
    weight: Weight
    source: Text

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise _err(f"must be a lower-case identifier [a-z][a-z0-9_]* (got {v!r})")
        return v

    @field_validator("column")
    @classmethod
    def _column(cls, v: str) -> str:
        if v not in KQI_COLUMNS:
            hint = difflib.get_close_matches(v, KQI_COLUMNS, n=1)
            if hint:
                raise _err(f"unknown KQI column {v!r} (did you mean {hint[0]!r}? see tree.KQI_COLUMNS)")
            raise _err(f"unknown KQI column {v!r} (allowed: {', '.join(KQI_COLUMNS)})")
        return v

    @model_validator(mode="after")
    def _anchors(self) -> KqiNode:
        if self.good == self.bad:
            raise _err("must differ from bad", "good")
        if self.column in FRACTION_COLUMNS:
            for f in ("good", "bad"):
                v = getattr(self, f)
                if not 0.0 <= v <= 1.0:
                    raise _err(f"{self.column} is a fraction 0..1 (got {v!r})", f)
        return self


class PoorCondition(_Node):
    """One way a single session of the service is poor: an xDR column above or below a threshold, or true."""

    column: Text
    above: Number | None = None
    below: Number | None = None
    is_true: bool | None = None

    @field_validator("column")
    @classmethod
    def _column(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise _err(f"must be an xDR column name [a-z][a-z0-9_]* (got {v!r})")
        return v

    @model_validator(mode="after")
    def _one_test(self) -> PoorCondition:
        if sum(t is not None for t in (self.above, self.below, self.is_true)) != 1:
            raise _err("give exactly one of above, below or is_true: true", "column")
        return self

    def sql(self) -> str:
        if self.is_true is not None:
            return self.column if self.is_true else f"NOT {self.column}"
        return f"{self.column} > {self.above!r}" if self.above is not None else f"{self.column} < {self.below!r}"


class ServiceNode(_Node):
    """A service: its importance in the usage weighting of the overall CEI, its KQIs and what makes one
    of its sessions poor (a failed session always is)."""

    importance: Weight
    source: Text | None = None
    kqis: list[KqiNode] = Field(min_length=1)
    poor_session: list[PoorCondition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _kqis(self) -> ServiceNode:
        seen: set[str] = set()
        for i, k in enumerate(self.kqis):
            if k.name in seen:
                raise _err(f"duplicate KQI name {k.name!r} in this service", f"kqis[{i}].name")
            seen.add(k.name)
        if not any(k.weight > 0 for k in self.kqis):
            raise _err("at least one KQI weight must be > 0", "kqis")
        return self


class OverallNode(_Node):
    """Overall network CEI = usage-weighted mean of the service CEIs, weight = usage x importance."""

    usage: Literal["sessions", "volume_mb"] = "sessions"


class UseStage(_Node):
    """Journey stage 'use': the overall network CEI."""

    weight: Weight
    source: Text | None = None


class CareStage(_Node):
    """A journey stage scored from care contacts in the trailing window.

    score = max(0, 100 - contact_penalty x contacts - complaint_penalty x complaints
    - unresolved_penalty x unresolved), counting contacts whose category is in ``categories``.
    """

    weight: Weight
    categories: list[Text] = Field(min_length=1)  # the operator's own category names (an open vocabulary)
    contact_penalty: Weight
    complaint_penalty: Weight
    unresolved_penalty: Weight
    source: Text | None = None

    @field_validator("categories")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        for i, c in enumerate(v):
            if c in v[:i]:
                raise _err(f"duplicate category {c!r}", f"[{i}]")
        return v


class StagesNode(_Node):
    use: UseStage
    get_help: CareStage
    choose_interact: CareStage

    @model_validator(mode="after")
    def _positive(self) -> StagesNode:
        if not any(getattr(self, s).weight > 0 for s in STAGES):
            raise _err("at least one stage weight must be > 0")
        return self


class JourneyNode(_Node):
    """Journey CEI = weighted mean of the stage scores that are not NULL."""

    window_days: int = Field(strict=True, ge=1, le=366)
    stages: StagesNode


class Tree(_Node):
    """The whole indicator tree (see ``default_tree.yaml``)."""

    version: Literal[1]
    services: dict[str, ServiceNode] = Field(min_length=1)
    overall: OverallNode = Field(default_factory=OverallNode)
    journey: JourneyNode

    @field_validator("services", mode="before")
    @classmethod
    def _service_names(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            for key in v:
                if key not in SERVICES:
                    hint = difflib.get_close_matches(str(key), SERVICES, n=1)
                    extra = f"did you mean '{hint[0]}'? " if hint else ""
                    raise _err(f"unknown service ({extra}allowed: {', '.join(SERVICES)})", str(key))
        return v

    @model_validator(mode="after")
    def _importance(self) -> Tree:
        if not any(s.importance > 0 for s in self.services.values()):
            raise _err("at least one service importance must be > 0", "services")
        return self

    # -- helpers -----------------------------------------------------------

    def kqi_names(self) -> list[str]:
        """KQI names in order of first appearance; each gives a ``score_<name>`` column."""
        out: list[str] = []
        for s in self.services.values():
            out += [k.name for k in s.kqis if k.name not in out]
        return out

    def score_columns(self) -> list[str]:
        return [f"score_{n}" for n in self.kqi_names()]

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="python", exclude_none=True)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """The tree as YAML (comments are not kept); also written to ``path`` when given."""
        text = "# OpenCEM indicator tree (written by opencem.indicators.tree.Tree.to_yaml)\n" + yaml.safe_dump(
            self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=False, width=120
        )
        if path is not None:
            Path(path).write_text(text)
        return text

    def weights(self) -> dict[str, Any]:
        """Every weight of the tree: ``{'kqi': {service: {kqi: w}}, 'importance': {service: w},
        'stages': {stage: w}}``; the same shape :meth:`with_weights` takes."""
        return {
            "kqi": {s: {k.name: k.weight for k in n.kqis} for s, n in self.services.items()},
            "importance": {s: n.importance for s, n in self.services.items()},
            "stages": {s: getattr(self.journey.stages, s).weight for s in STAGES},
        }

    def with_weights(
        self,
        kqi: Mapping[str, Mapping[str, float]] | None = None,
        importance: Mapping[str, float] | None = None,
        stages: Mapping[str, float] | None = None,
        *,
        source: str | None = None,
    ) -> Tree:
        """A validated copy with some weights replaced (for calibration); self is unchanged.

        ``kqi={'video': {'stall': 0.5}}``, ``importance={'voice': 2.0}``, ``stages={'use': 0.7}``;
        weights not named keep their value. Unknown services / KQIs / stages and invalid weights raise
        :class:`TreeError`. ``source`` (e.g. ``'calibrated 2025-06-01 on NPS'``) replaces the ``source``
        of every KQI, service (importance) and stage whose weight was given.
        """
        d = self.to_dict()
        where = "with_weights"
        for svc, ws in (kqi or {}).items():
            if svc not in d["services"]:
                raise TreeError(where, f"kqi.{svc}", f"no such service in the tree ({', '.join(d['services'])})")
            nodes = {k["name"]: k for k in d["services"][svc]["kqis"]}
            for name, w in ws.items():
                if name not in nodes:
                    raise TreeError(where, f"kqi.{svc}.{name}", f"no such KQI in service {svc} ({', '.join(nodes)})")
                nodes[name]["weight"] = _plain(w)
                if source is not None:
                    nodes[name]["source"] = source
        for svc, w in (importance or {}).items():
            if svc not in d["services"]:
                raise TreeError(where, f"importance.{svc}", f"no such service in the tree ({', '.join(d['services'])})")
            d["services"][svc]["importance"] = _plain(w)
            if source is not None:
                d["services"][svc]["source"] = source
        for stage, w in (stages or {}).items():
            if stage not in STAGES:
                raise TreeError(where, f"stages.{stage}", f"no such stage ({', '.join(STAGES)})")
            d["journey"]["stages"][stage]["weight"] = _plain(w)
            if source is not None:
                d["journey"]["stages"][stage]["source"] = source
        return validate_tree(d, where)


def _plain(w: Any) -> Any:
    """numpy scalars -> Python float (so the YAML stays plain numbers); anything else unchanged."""
    if isinstance(w, (np.integer, np.floating)):
        return float(w)
    return w


# ---------------------------------------------------------------------------
# validation errors
# ---------------------------------------------------------------------------


def _yaml_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith("["):
            out += part
        else:
            out += f".{part}" if out else str(part)
    return out


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _problem(e: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    loc, typ, ctx = tuple(e["loc"]), e["type"], e.get("ctx") or {}
    inp = e.get("input")
    if typ == "tree":
        field = ctx.get("field")
        if field:
            loc = loc + tuple(p for p in re.split(r"\.(?![^\[]*\])", field) if p)
        return loc, ctx["problem"]
    if typ == "missing":
        return loc, "missing required field"
    if typ == "extra_forbidden":
        return loc, "unknown key"
    if typ in ("literal_error", "enum"):
        exp = str(ctx.get("expected", ""))
        many = "," in exp or " or " in exp
        return loc, f"must be {'one of ' if many else ''}{exp} (got {_short(inp)})"
    if typ in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[typ]
        bound = next(iter(ctx.values()))
        return loc, f"must be {op} {bound:g} (got {_short(inp)})"
    if typ in ("float_type", "int_type", "finite_number", "float_parsing", "int_parsing", "int_from_float"):
        kind = "an integer" if typ.startswith("int") else "a finite number"
        return loc, f"must be {kind} (got {_short(inp)})"
    if typ in ("string_type", "string_too_short"):
        return loc, f"must be a non-empty string (got {_short(inp)})"
    if typ in ("model_type", "dict_type", "model_attributes_type"):
        return loc, f"must be a mapping (got {_short(inp)})"
    if typ == "list_type":
        return loc, f"must be a list (got {_short(inp)})"
    if typ == "too_short":
        return loc, "must not be empty"
    return loc, f"{e['msg']} (got {_short(inp)})"


def validate_tree(data: Any, file: str) -> Tree:
    """A :class:`Tree` from parsed YAML; the first problem (and how many more) as a :class:`TreeError`."""
    if not isinstance(data, Mapping):
        raise TreeError(file, "", f"must be a YAML mapping with version, services, overall, journey (got {_short(data)})")
    try:
        return Tree.model_validate(data)
    except ValidationError as ex:
        errs = ex.errors()
        loc, problem = _problem(errs[0])
        if len(errs) > 1:
            problem += f" (and {len(errs) - 1} more error{'s' if len(errs) > 2 else ''})"
        raise TreeError(file, _yaml_path(loc), problem) from None
