"""Hypothesis profiles for the whole suite.

`ci` (the default): every property test draws the same examples on every run (derandomize, no
example database), so a red CI run is reproducible from its commit alone, and no example is
timed against a deadline (a shared 2-core machine is slow at random moments). `explore`
(`HYPOTHESIS_PROFILE=explore`, and the default under `LPU_SLOW=1`) draws new examples each run
and keeps failures in the local example database: the way to search for new bugs."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("explore" if os.environ.get("LPU_SLOW") == "1" else "ci"))
