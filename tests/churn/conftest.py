"""A synthetic operator long enough for the churn model: 1,000 subscribers over 75 days.

The suite's shared operator (tests/conftest.py) has 16 days, and a port-out hazard needs a month after
each scoring day, and a time split a second month after the first fit day; so the churn tests build their
own, small one, once per session, and train on it once (scoring days from day 7).
Read only: a test that writes works on a copy (the suite's `clone` fixture).
"""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from opencem.ingest.pseudonym import KEY_ENV
from opencem.measure.run import measure
from opencem.synth.generator import SynthConfig, generate
from opencem.workspace import Workspace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see tests/conftest.py

LONG = SynthConfig(subscribers=1_000, days=75, seed=5, workers=1)


@pytest.fixture(scope="session")
def churn_op(tmp_path_factory):
    """`data`, its measured workspace `ws`, the churn model trained on it (`model`, also saved) and the base
    scored as of the day after the data (`scored`, written)."""
    from opencem.churn.score import score_churn
    from opencem.churn.train import train_churn

    mp = pytest.MonkeyPatch()
    mp.delenv(KEY_ENV, raising=False)
    root = tmp_path_factory.mktemp("churn")
    data, ws = root / "op", root / "ws"
    generate(data, LONG)
    measure(data, ws)
    model = train_churn(ws, min_history=7)
    model.save(Workspace(ws).model("churn"))
    scored = score_churn(ws)
    yield SimpleNamespace(data=Path(data), ws=Path(ws), model=model, scored=scored)
    mp.undo()
