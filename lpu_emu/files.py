"""Reading files a user names (sources, includes, `.npy` data): bounded before anything is read.

Every reader here refuses, with a one-line reason and before allocating, what would otherwise
cost unbounded time or memory: anything but a regular file (`/dev/zero`, a FIFO, a directory),
a file larger than the reader's limit, a `.npy` whose header is malformed, holds Python objects,
claims more elements than the limit or than the file holds. The reasons are `FileRefused`
(a ValueError); callers turn them into their own located errors (AsmError at the directive,
UsageError naming the option). `within` is the `--sandbox` rule: a path must resolve inside a
directory tree.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

import numpy as np

MAX_SOURCE_BYTES = 256 * 2**20  # one source or include file (a 10^6-line program is ~60 MB)
MAX_NPY_BYTES = 2**30  # the data of one .npy (the largest preset's SRAM is 512 MB)
NPY_MAGIC = b"\x93NUMPY"


class FileRefused(ValueError):
    """A file that is not read, and why: one line that reads after "cannot read X: ", and
    quotes nothing of the file's content."""


def _regular(path: Path) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise FileRefused(exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise FileRefused("it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused("it is not a regular file (a device, FIFO or socket)")
    return st


def read_bounded(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (default MAX_SOURCE_BYTES;
    FileRefused otherwise)."""
    path, limit = Path(path), MAX_SOURCE_BYTES if limit is None else limit
    st = _regular(path)
    if st.st_size > limit:
        raise FileRefused(f"it is {st.st_size:,} bytes, more than the {limit:,} allowed")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise FileRefused(exc.strerror or str(exc)) from None
    if len(data) > limit:  # it grew while we read it
        raise FileRefused(f"it is more than the {limit:,} bytes allowed")
    return data


def npy_header(path: str | os.PathLike,
               limit: int | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a .npy, from its header alone, checked against the file's size and
    `limit` bytes of data (default MAX_NPY_BYTES)."""
    path, limit = Path(path), MAX_NPY_BYTES if limit is None else limit
    st = _regular(path)
    try:
        with open(path, "rb") as f:
            if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise FileRefused("it is not a .npy file (it does not start with the NumPy magic)")
            f.seek(0)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise FileRefused(f"it is a .npy of format version {version[0]}.{version[1]}; "
                                  "versions 1.0 and 2.0 are read")
            data_bytes = st.st_size - f.tell()
    except FileRefused:
        raise
    except Exception as exc:  # numpy's header parser raises many types (ValueError,
        # SyntaxError, tokenize.TokenError, ...) for a malformed header: all mean "malformed"
        raise FileRefused(f"its .npy header is malformed ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise FileRefused("it holds Python objects (pickles are never loaded)")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > limit:
        raise FileRefused(f"its header claims {count:,} elements ({nbytes:,} bytes), more than the "
                          f"{limit:,} bytes allowed")
    if data_bytes != nbytes:
        raise FileRefused(f"it holds {data_bytes:,} bytes of data; its header says {nbytes:,}")
    return tuple(shape), dtype


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """The array of a .npy whose header `npy_header` accepted."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise FileRefused(f"numpy cannot load it ({exc})") from None


def within(path: Path, root: Path) -> bool:
    """Whether `path` resolves (symbolic links followed) inside the directory tree `root`."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError, ValueError):
        return False
