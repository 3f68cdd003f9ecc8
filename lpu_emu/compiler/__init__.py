"""The tensor-streaming compiler: graph IR -> lowering -> placement -> schedule -> emit -> Program.

Its modules are the stages, in processing order (docs/compiler.md walks through one layer):

    graph.py      the IR: Value, Node, Graph (frozen dataclasses), the op vocabulary (ONNX names)
    shapes.py     shape inference, one function per op
    builder.py    GraphBuilder: the Python front end
    evaluate.py   the graph's meaning in float64 numpy: what compiled programs are checked against
"""
