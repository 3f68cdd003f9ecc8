"""bench/: print the ratios the benchmarks measured at the end of the session."""

from __future__ import annotations


def _lines(title: str, results: dict[str, dict]) -> list[str]:
    """A module's RESULTS under its SUMMARY heading: one line of figures per benchmark."""
    lines = [title]
    for name, figures in results.items():
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in figures.items())
        lines.append(f"  {name}: {shown}")
    return lines


def pytest_terminal_summary(terminalreporter) -> None:
    import test_bench_asm
    import test_bench_compiler
    import test_bench_core
    import test_bench_memory
    import test_bench_plan
    import test_bench_trace

    for module in (test_bench_core, test_bench_asm, test_bench_plan, test_bench_trace,
                   test_bench_compiler, test_bench_memory):
        if not module.RESULTS:
            continue
        lines = (module.pytest_terminal_summary_lines() if module is test_bench_plan
                 else _lines(module.SUMMARY, module.RESULTS))
        for line in lines:
            terminalreporter.write_line(line)
