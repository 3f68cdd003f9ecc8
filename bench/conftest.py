"""bench/: print the ratios the benchmarks measured at the end of the session."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    import test_bench_asm
    import test_bench_compiler
    import test_bench_core
    import test_bench_memory
    import test_bench_plan
    import test_bench_trace

    for module in (test_bench_core, test_bench_asm, test_bench_plan, test_bench_trace,
                   test_bench_compiler, test_bench_memory):
        if module.RESULTS:
            for line in module.pytest_terminal_summary_lines():
                terminalreporter.write_line(line)
