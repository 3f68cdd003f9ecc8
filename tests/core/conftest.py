"""tests/core: expected values are computed with numpy on edge values (NaN, inf, overflow);
numpy's floating-point warnings about them are noise here."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"):
        yield
