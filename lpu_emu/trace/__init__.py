"""lpu_emu.trace: look at a traced run, cycle by cycle, forward and back.

The pipeline, in order (one concept per module):

    model.py       Traced: a program run once with the event log on (lenient, so the whole
                   schedule is visible; engine auto: small programs without numba), plus its
                   Plan, source text and names
    index.py       TraceIndex: the log sorted by cycle with np.searchsorted offsets, stream
                   contents at a cycle, SRAM rows at a cycle (checkpoints + deltas), producers
    commands.py    the command language: one parser for the UI, --script files and stdin
    breakpoints.py breakpoints and watchpoints as sorted arrays of the cycles they hit
    session.py     Session: the current cycle and the breakpoints; runs a command, returns a block
    views*.py      pure rich renderables over (Traced, cycle): never print, never replay
    listing.py     the per-cycle text listing (`--text`), shared by the step view
    perfetto.py    Chrome Trace Event JSON for ui.perfetto.dev
    app.py         the interactive textual UI over the same Session

Every view at any cycle is computed from the index, never by replaying from cycle 0, so stepping
costs the same at cycle 10 and at cycle 10^6 (docs/design.md section 12).
"""
