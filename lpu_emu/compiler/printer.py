"""A graph as text, one node a line: `y = MatMul(x, w1, b1) {trans_b=1}  ; (16, 384)`."""

from __future__ import annotations

from lpu_emu.compiler.graph import Graph


def graph_text(graph: Graph) -> str:
    lines = [f"graph {graph.name}("
             + ", ".join(f"{i}: {graph.value(i).shape}" for i in graph.inputs) + ")"]
    for c, data in graph.constants.items():
        lines.append(f"  const {c}: {tuple(data.shape)}")
    for n in graph.nodes:
        attrs = " {" + ", ".join(f"{k}={v}" for k, v in n.attrs) + "}" if n.attrs else ""
        shapes = ", ".join(str(graph.value(o).shape) for o in n.outputs)
        lines.append(f"  {', '.join(n.outputs)} = {n.op}({', '.join(n.inputs)}){attrs}"
                     f"  ; {shapes}")
    lines.append(f"  return {', '.join(graph.outputs)}")
    return "\n".join(lines)
