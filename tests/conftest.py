from pathlib import Path

import pytest

from opencem.synth.generator import SynthConfig, generate

SMALL = SynthConfig(subscribers=4_000, days=7, seed=11, workers=2)


@pytest.fixture(scope="session")
def operator(tmp_path_factory) -> Path:
    """A small synthetic operator shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("synth") / "op"
    generate(out, SMALL)
    return out
