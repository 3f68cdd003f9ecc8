"""bench/: print the ratios the benchmarks measured at the end of the session."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    import test_bench_core
    import test_bench_plan

    for module in (test_bench_core, test_bench_plan):
        if module.RESULTS:
            for line in module.pytest_terminal_summary_lines():
                terminalreporter.write_line(line)
