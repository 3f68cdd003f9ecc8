"""Number formatting shared by the renderers (pure functions, plain strings)."""

from __future__ import annotations

SI = (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))


def si(value: float, unit: str) -> str:
    """`value` with an SI prefix and 4 significant digits: si(1.4976e14, "B/s") == "149.8 TB/s"."""
    for prefix, scale in SI:
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def size(nbytes: int) -> str:
    """A byte count in decimal and binary units: "230.7 MB (220 MiB)"."""
    return f"{nbytes / 1e6:.4g} MB ({nbytes / 2**20:.4g} MiB)"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def param_value(name: str, value: float | int | tuple[int, ...]) -> str:
    """A chip parameter's value, with the unit its name ends in (clock_hz, *_bytes_per_s)."""
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    if name.endswith("_hz"):
        return si(value, "Hz")
    if name.endswith("_bytes_per_s"):
        return si(value, "B/s")
    if name.endswith("_latency"):
        return f"{value:g} cycles"
    return f"{value:g}" if isinstance(value, float) else str(value)
