"""The execution core: a Program decoded into a Plan, run by the numba core or the reference."""
