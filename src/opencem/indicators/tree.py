"""The indicator tree KPI -> KQI -> CEI: an operator-editable YAML, its validation and its SQL.

The tree says, per service, which KQI columns of ``kqi_pspu_day`` are scored, with which curve
(:func:`opencem.indicators.qoe.score_logistic` / ``score_linear``), which good / bad anchors and which
weight; how the per-service CEIs are combined into one network CEI per subscriber and day (usage x
service importance); and how the customer journey stages (use, get help, choose / interact) are scored
from the network CEI and the care contacts.

Public API
----------
* :data:`KQI_COLUMNS`, :data:`SERVICES`, :data:`CURVES`, :data:`STAGES`
* :class:`Tree` (:class:`ServiceNode`, :class:`KqiNode`, :class:`OverallNode`, :class:`JourneyNode`,
  :class:`StagesNode`, :class:`UseStage`, :class:`CareStage`), :class:`TreeError`
* :func:`load_tree`, :func:`parse_tree`, :meth:`Tree.to_yaml`, :meth:`Tree.weights`,
  :meth:`Tree.with_weights`
* SQL: :func:`cei_service_sql`, :func:`cei_subscriber_sql`, :func:`journey_sql`
* numpy reference: :func:`score_kqis_numpy`

SQL is DuckDB dialect restricted to a subset that ``sqlglot`` transpiles to Spark SQL: CASE,
COALESCE, arithmetic, SUM / MAX, CAST, GROUP BY, joins, ``date - INTERVAL 'n' DAY``; numeric literals in
exponent form so both engines type them DOUBLE; no GREATEST / LEAST (they skip NULLs), no FILTER, no
QUALIFY.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..contracts.bss import CARE_CATEGORIES
from ..vocabulary import SERVICES
from . import qoe

__all__ = [
    "KQI_COLUMNS",
    "FRACTION_COLUMNS",
    "SERVICES",
    "CURVES",
    "STAGES",
    "TreeError",
    "KqiNode",
    "ServiceNode",
    "OverallNode",
    "UseStage",
    "CareStage",
    "StagesNode",
    "JourneyNode",
    "Tree",
    "DEFAULT_TREE",
    "load_tree",
    "parse_tree",
    "cei_service_sql",
    "cei_subscriber_sql",
    "journey_sql",
    "score_kqis_numpy",
]

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
#: Values of ``kqi_pspu_day.service``.
CURVES: tuple[str, ...] = ("logistic", "linear")
#: Journey stages, in order.
STAGES: tuple[str, ...] = ("use", "get_help", "choose_interact")
USAGE_COLUMNS: tuple[str, ...] = ("sessions", "volume_mb")

DEFAULT_TREE = "default_tree.yaml"
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
    categories: list[Literal[CARE_CATEGORIES]] = Field(min_length=1)  # type: ignore[valid-type]
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
        return _validate(d, where)


def _plain(w: Any) -> Any:
    """numpy scalars -> Python float (so the YAML stays plain numbers); anything else unchanged."""
    if isinstance(w, (np.integer, np.floating)):
        return float(w)
    return w


# ---------------------------------------------------------------------------
# loading
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


def _validate(data: Any, file: str) -> Tree:
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
    return _validate(data, file)


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


# ---------------------------------------------------------------------------
# SQL
# ---------------------------------------------------------------------------


_lit = qoe.sql_double  # DOUBLE literal (exponent form: a plain 0.5 is DECIMAL on both engines)


def _score_sql(k: KqiNode) -> str:
    f = qoe.score_logistic_sql if k.curve == "logistic" else qoe.score_linear_sql
    return f(k.column, k.good, k.bad)


def _wmean_sql(pairs: list[tuple[str, float]]) -> str:
    """Weighted mean of the non-NULL expressions, weights renormalised; NULL when no weight is left."""
    pairs = [(e, w) for e, w in pairs if w > 0]
    num = " + ".join(f"COALESCE({_lit(w)} * {e}, {_lit(0.0)})" for e, w in pairs)
    den = " + ".join(f"(CASE WHEN {e} IS NULL THEN {_lit(0.0)} ELSE {_lit(w)} END)" for e, w in pairs)
    return f"(CASE WHEN ({den}) > {_lit(0.0)} THEN ({num}) / ({den}) END)"


def cei_service_sql(tree: Tree, kqi_table: str = "kqi_pspu_day", keys: str = "subscriber_id, day") -> str:
    """Per subscriber x day x service: the KQI scores and the service CEI (0-100).

    Columns: ``subscriber_id, day, service, sessions, volume_mb``, one ``score_<kqi>`` per KQI name
    (NULL for services without that KQI and where the KQI column is NULL), ``cei`` = weighted mean of
    the service's non-NULL scores (weights renormalised over them; NULL when none is left). Services of
    the table that the tree does not score keep their rows with NULL scores and CEI. ``keys`` replaces
    ``subscriber_id, day`` for other grains (the twin's grid x hour).
    """
    arms: dict[str, list[str]] = {n: [] for n in tree.kqi_names()}
    for svc, node in tree.services.items():
        for k in node.kqis:
            arms[k.name].append(f"WHEN '{svc}' THEN {_score_sql(k)}")
    scores = ",\n    ".join(f"CASE service {' '.join(a)} END AS score_{n}" for n, a in arms.items())
    cei_arms = "\n    ".join(
        f"WHEN '{svc}' THEN {_wmean_sql([(f'score_{k.name}', k.weight) for k in node.kqis])}"
        for svc, node in tree.services.items()
    )
    cols = ", ".join(tree.score_columns())
    return (
        f"SELECT {keys}, service, sessions, volume_mb, {cols},\n"
        f"  CASE service\n    {cei_arms}\n  END AS cei\n"
        f"FROM (\n  SELECT {keys}, service, sessions, volume_mb,\n    {scores}\n  FROM {kqi_table}\n) s"
    )


def cei_subscriber_sql(tree: Tree, cei_service_table: str = "cei_service_day", keys: str = "subscriber_id, day") -> str:
    """Per subscriber x day: the overall network CEI and one CEI per service.

    Columns: ``subscriber_id, day, sessions_total, cei, cei_<service>...``. ``cei`` is the mean of the
    non-NULL service CEIs weighted by usage x importance (usage = ``overall.usage``, sessions by
    default; services not in the tree weigh 0); NULL when no weight is left. ``cei_<service>`` is NULL
    when the service was not used that day (or its CEI is NULL). ``sessions_total`` counts every service.
    """
    imp = " ".join(f"WHEN '{s}' THEN {_lit(n.importance)}" for s, n in tree.services.items())
    w = f"(CASE WHEN cei IS NULL THEN {_lit(0.0)} ELSE CAST({tree.overall.usage} AS DOUBLE) * (CASE service {imp} ELSE {_lit(0.0)} END) END)"
    per = ",\n  ".join(f"MAX(CASE WHEN service = '{s}' THEN cei END) AS cei_{s}" for s in tree.services)
    return (
        f"SELECT {keys}, SUM(sessions) AS sessions_total,\n"
        f"  CASE WHEN SUM({w}) > {_lit(0.0)} THEN SUM({w} * cei) / SUM({w}) END AS cei,\n"
        f"  {per}\n"
        f"FROM {cei_service_table}\nGROUP BY {keys}"
    )


def _in(categories: list[str]) -> str:
    return "category IN (" + ", ".join(f"'{c}'" for c in categories) + ")"


def _care_score_sql(st: CareStage, prefix: str) -> str:
    s = (
        f"({_lit(100.0)} - {_lit(st.contact_penalty)} * {prefix}_contacts"
        f" - {_lit(st.complaint_penalty)} * {prefix}_complaints"
        f" - {_lit(st.unresolved_penalty)} * {prefix}_unresolved)"
    )
    return f"(CASE WHEN {s} < {_lit(0.0)} THEN {_lit(0.0)} ELSE {s} END)"


def journey_sql(tree: Tree, cei_subscriber_table: str = "cei_subscriber_day", care_table: str = "care_contacts") -> str:
    """Per subscriber x day of ``cei_subscriber_table``: journey stage scores and the journey CEI.

    Columns: ``subscriber_id, day, cei_use, cei_get_help, cei_choose_interact, cei_journey,
    care_contacts_window, care_complaints_window``. The window is the ``journey.window_days`` calendar
    days ending on ``day`` (``CAST(contact_time AS DATE) BETWEEN day - (window_days - 1) days AND day``).
    ``cei_use`` is the overall network CEI; the care stages are 100 minus their penalties (floored at
    0; 100 without contacts); ``cei_journey`` is the mean of the non-NULL stages weighted by the stage
    weights (NULL when no weight is left).
    """
    st = tree.journey.stages
    back = tree.journey.window_days - 1
    one, zero = _lit(1.0), _lit(0.0)
    unresolved = f"(CASE WHEN NOT resolved THEN {one} ELSE {zero} END)"
    complaint = f"(CASE WHEN is_complaint THEN {one} ELSE {zero} END)"

    def counts(stage: CareStage, p: str) -> str:
        cond = _in(stage.categories)
        return (
            f"SUM(CASE WHEN {cond} THEN {one} ELSE {zero} END) AS {p}_contacts,\n"
            f"    SUM(CASE WHEN {cond} THEN {complaint} ELSE {zero} END) AS {p}_complaints,\n"
            f"    SUM(CASE WHEN {cond} THEN {unresolved} ELSE {zero} END) AS {p}_unresolved"
        )

    names = [f"{p}_{c}" for p in ("h", "i") for c in ("contacts", "complaints", "unresolved")] + ["all_contacts", "all_complaints"]
    windowed = ",\n    ".join(f"COALESCE(SUM(c.{n}), {zero}) AS {n}" for n in names)
    stages = [("cei_use", st.use.weight), ("cei_get_help", st.get_help.weight), ("cei_choose_interact", st.choose_interact.weight)]
    return (
        f"WITH c AS (\n"
        f"  SELECT subscriber_id, CAST(contact_time AS DATE) AS contact_day,\n"
        f"    {counts(st.get_help, 'h')},\n"
        f"    {counts(st.choose_interact, 'i')},\n"
        f"    SUM({one}) AS all_contacts,\n"
        f"    SUM({complaint}) AS all_complaints\n"
        f"  FROM {care_table}\n"
        f"  GROUP BY subscriber_id, CAST(contact_time AS DATE)\n"
        f"), w AS (\n"
        f"  SELECT u.subscriber_id, u.day, MAX(u.cei) AS cei,\n"
        f"    {windowed}\n"
        f"  FROM {cei_subscriber_table} u\n"
        f"  LEFT JOIN c ON c.subscriber_id = u.subscriber_id\n"
        f"    AND c.contact_day BETWEEN u.day - INTERVAL {back} DAY AND u.day\n"
        f"  GROUP BY u.subscriber_id, u.day\n"
        f"), s AS (\n"
        f"  SELECT subscriber_id, day, cei AS cei_use,\n"
        f"    {_care_score_sql(st.get_help, 'h')} AS cei_get_help,\n"
        f"    {_care_score_sql(st.choose_interact, 'i')} AS cei_choose_interact,\n"
        f"    all_contacts, all_complaints\n"
        f"  FROM w\n"
        f")\n"
        f"SELECT subscriber_id, day, cei_use, cei_get_help, cei_choose_interact,\n"
        f"  {_wmean_sql(stages)} AS cei_journey,\n"
        f"  CAST(all_contacts AS BIGINT) AS care_contacts_window,\n"
        f"  CAST(all_complaints AS BIGINT) AS care_complaints_window\n"
        f"FROM s"
    )


# ---------------------------------------------------------------------------
# numpy reference
# ---------------------------------------------------------------------------


def _np_column(table: Any, name: str) -> np.ndarray:
    col = table.column(name)
    if hasattr(col, "to_numpy"):
        try:
            return np.asarray(col.to_numpy(), dtype=float)
        except TypeError:  # pyarrow ChunkedArray with nulls in older versions
            return np.asarray(col.to_pylist(), dtype=float)
    return np.asarray(col, dtype=float)


def score_kqis_numpy(tree: Tree, kqi_table: Any) -> dict[str, np.ndarray]:
    """Independent numpy computation of :func:`cei_service_sql` over a pyarrow table (row order kept).

    Returns ``{'score_<kqi>': array, ..., 'cei': array}``, NaN where the SQL gives NULL.
    """
    service = np.asarray(kqi_table.column("service").to_pylist(), dtype=object)
    n = len(service)
    out = {c: np.full(n, np.nan) for c in tree.score_columns()}
    num, den = np.zeros(n), np.zeros(n)
    for svc, node in tree.services.items():
        m = service == svc
        for k in node.kqis:
            x = _np_column(kqi_table, k.column)[m]
            f = qoe.score_logistic if k.curve == "logistic" else qoe.score_linear
            s = np.asarray(f(x, k.good, k.bad), dtype=float)
            out[f"score_{k.name}"][m] = s
            if k.weight > 0:
                ok = ~np.isnan(s)
                num[m] += np.where(ok, k.weight * s, 0.0)
                den[m] += np.where(ok, k.weight, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["cei"] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def poor_session_sql(tree: Tree) -> str:
    """SQL that is true for a poor session row of xDR: it failed, or a condition of its service's
    ``poor_session`` list holds."""
    whens = []
    for name, svc in tree.services.items():
        tests = " OR ".join(["NOT success"] + [c.sql() for c in svc.poor_session])
        whens.append(f"  WHEN '{name}' THEN {tests}")
    return "CASE service\n" + "\n".join(whens) + "\n  ELSE NOT success END"
