"""bench/: print the ratios the benchmarks measured at the end of the session."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    import test_bench_core

    if test_bench_core.RESULTS:
        for line in test_bench_core.pytest_terminal_summary_lines():
            terminalreporter.write_line(line)
