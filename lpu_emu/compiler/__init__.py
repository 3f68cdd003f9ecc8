"""The tensor-streaming compiler: graph IR -> lowering -> placement -> schedule -> emit -> Program.

Its modules are the stages, in processing order (docs/compiler.md walks through one layer):

    graph.py      the IR: Value, Node, Graph (frozen dataclasses), the op vocabulary (ONNX names)
    shapes.py     shape inference, one function per op
    builder.py    GraphBuilder: the Python front end
    evaluate.py   the graph's meaning in float64 numpy: what compiled programs are checked against
    layers.py     ready-made BERT encoder and GPT decoder layers; builtin.py: their CLI defaults
    frontends/    ONNX import and its fusion passes
    precision.py  precision modes: MXM dtype and operand parts
    gathers.py    every Gather as rows of a 2-D table (a graph -> graph pass lowering runs first)
    lowering.py   graph -> chip steps over 2-D tensors (Map, Mm, Transpose, Reduce)
      reductions.py, movement.py, matmuls.py: the lowering of reductions over any axes, of
                  values moved between axes (Concat, Slice, Transpose, Reshape), of transposed
                  and batched MatMuls
    padding.py    keeps the padding lanes of MXM operands finite (a pass over the steps)
    placement.py  tensors -> MEM slices, banks, addresses (Loc, Memory)
    dataflow.py   one iteration of a pipe as a timed dataflow graph (Read, Op, Write -> Slots)
    kernels.py    kernel builders: elementwise, MXM jobs, column reductions
    build.py      steps -> kernels (tiling over planes, rows, parts; runs of steps share kernels)
    schedule.py   kernels -> start cycles
    emit.py       placed kernels -> Program (vectorised); assembly.py: commented .lpu text
    pipeline.py   compile_graph, the flat sequence of the stages; session.py: KV-cache runs
    report.py     the roofline report
"""

from lpu_emu.compiler.pipeline import Compiled, compile_graph

__all__ = ["Compiled", "compile_graph"]
