"""tests/compiler: the float64 reference evaluates edge values (1/x, a fully masked softmax row)
on purpose; numpy's floating-point warnings about them are noise here."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _quiet_numpy():
    with np.errstate(all="ignore"):
        yield
