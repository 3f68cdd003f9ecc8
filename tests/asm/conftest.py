"""Make tests/asm importable as a directory of helpers (strategies.py) whatever pytest's
import mode, without a package __init__ that could clash with other test directories."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
