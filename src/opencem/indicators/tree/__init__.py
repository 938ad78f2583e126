"""The indicator tree KPI -> KQI -> CEI: an operator-editable YAML, its validation and its SQL.

The tree says, per service, which KQI columns of ``kqi_pspu_day`` are scored, with which curve
(:func:`opencem.indicators.qoe.score_logistic` / ``score_linear``), which good / bad anchors and which
weight; how the per-service CEIs are combined into one network CEI per subscriber and day (usage x
service importance); and how the customer journey stages (use, get help, choose / interact) are scored
from the network CEI and the care contacts.

Modules: ``model`` (the nodes, their validation, :class:`TreeError`), ``load`` (YAML -> tree) and
``sql`` (the SQL generated from a tree, and the numpy computation that checks it). This package is
their public face:

* :data:`KQI_COLUMNS`, :data:`FRACTION_COLUMNS`, :data:`CURVES`, :data:`STAGES`
* :class:`Tree` (:class:`ServiceNode`, :class:`KqiNode`, :class:`PoorCondition`, :class:`OverallNode`,
  :class:`JourneyNode`, :class:`StagesNode`, :class:`UseStage`, :class:`CareStage`), :class:`TreeError`
* :func:`load_tree`, :func:`parse_tree`, :meth:`Tree.to_yaml`, :meth:`Tree.weights`,
  :meth:`Tree.with_weights`
* SQL: :func:`cei_service_sql`, :func:`cei_subscriber_sql`, :func:`journey_sql`, :func:`poor_session_sql`
* numpy reference: :func:`score_kqis_numpy`
"""

from __future__ import annotations

from .load import DEFAULT_TREE, load_tree, parse_tree
from .model import (
    CURVES,
    FRACTION_COLUMNS,
    KQI_COLUMNS,
    STAGES,
    CareStage,
    JourneyNode,
    KqiNode,
    OverallNode,
    PoorCondition,
    ServiceNode,
    StagesNode,
    Tree,
    TreeError,
    UseStage,
)
from .sql import cei_service_sql, cei_subscriber_sql, journey_sql, poor_session_sql, score_kqis_numpy, service_score_column

__all__ = [
    "KQI_COLUMNS",
    "FRACTION_COLUMNS",
    "CURVES",
    "STAGES",
    "TreeError",
    "KqiNode",
    "PoorCondition",
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
    "service_score_column",
    "journey_sql",
    "poor_session_sql",
    "score_kqis_numpy",
]
