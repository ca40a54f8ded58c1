import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURE = SHARED / "fixtures" / "torchvision_state_dicts.json"


@pytest.fixture(scope="session")
def torchvision_ref() -> dict:
    """torchvision's state-dict layout per model (../shared/fixtures)."""
    if not FIXTURE.exists():
        pytest.fail(f"reference fixture missing: {FIXTURE} (CI lays shared/ next to the checkout)")
    return json.loads(FIXTURE.read_text())["models"]
