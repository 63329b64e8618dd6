"""Command-line inputs checked before any work, and tables never half-written.

Every check raises ``ValueError`` with one line of the same shape, naming the
flag and what it accepts::

    --seeds must be an integer in [1, 100000], got 0

and the command line turns it into ``mamlcheck CMD: error: ...`` with status 2.
Checks run before a command starts its work, so a typo costs nothing.

Tables are written by ``write_csv``: into a temporary file beside the target,
then renamed over it, so the target holds either its old content or the whole
new table.  Work that was interrupted goes to ``partial_path(path)`` with a
first line saying so, never to ``path``.
"""
from __future__ import annotations

import contextlib
import math
import os
import stat
import tempfile

import pandas as pd

__all__ = ["check_int", "check_float", "check_output_path", "check_output_folder", "partial_path", "write_csv"]


def _accepted(lo, hi, *, lo_open: bool = False) -> str:
    """The accepted range in words: ``in [lo, hi]``, ``>= lo``, ``> lo``."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}]"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    return f"<= {hi}" if hi is not None else "any value"


def check_int(flag: str, value, lo: int | None, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]`` (``None``: unbounded on that side);
    otherwise ``ValueError`` naming ``flag`` and the range."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        raise ValueError(f"{flag} must be an integer {_accepted(lo, hi)}, got {value!r}")
    return int(value)


def check_float(flag: str, value, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False) -> float:
    """``value`` as a finite float in ``[lo, hi]`` (``(lo, hi]`` with
    ``lo_open``); otherwise ``ValueError`` naming ``flag`` and the range."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    ok = math.isfinite(v) and (lo is None or v > lo or (v == lo and not lo_open)) and (hi is None or v <= hi)
    if not ok:
        raise ValueError(f"{flag} must be a finite number {_accepted(lo, hi, lo_open=lo_open)}, got {value!r}")
    return v


def _is_special(path: str) -> bool:
    """An existing path that is neither a regular file nor a folder
    (``/dev/null``, ``/dev/stdout``, a named pipe): written in place."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _probe_folder(folder: str) -> None:
    """Create, write, flush and remove a small file in ``folder``: raises
    ``OSError`` when the folder refuses files (read-only, no permission, full)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".mamlcheck-probe-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(b"probe\n")
            f.flush()
    finally:
        os.unlink(tmp)


def _probe_device(path: str) -> None:
    """Write zero bytes to a character or block device: harmless, yet
    ``/dev/full`` answers ``ENOSPC``.  Pipes are not opened (that would wait
    for a reader)."""
    if stat.S_ISFIFO(os.stat(path).st_mode) or stat.S_ISSOCK(os.stat(path).st_mode):
        return
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, b"")
    finally:
        os.close(fd)


def check_output_folder(flag: str, folder) -> None:
    """Create ``folder`` if needed and refuse, before any work, one that cannot
    be created or written to."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{flag} {folder} cannot be created: {e.strerror}") from None
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {folder} is not a writable folder")


def check_output_path(flag: str, path: str | None) -> None:
    """Refuse, before any work, an output path that could not be written
    after it: a folder, a path whose folder is missing or refuses files, a
    read-only file, a device that fails writes (``/dev/full``).  ``None``
    (no output asked for) passes."""
    if path is None:
        return

    def refuse(reason: str):
        raise ValueError(f"{flag} must name a writable file; cannot write {path!r}: {reason}")

    if not path:
        refuse("empty path")
    if os.path.isdir(path):
        refuse("it is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        refuse("its folder does not exist")
    try:
        if _is_special(path):
            _probe_device(path)
            return
        _probe_folder(folder)
    except OSError as e:
        refuse(e.strerror or str(e))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        refuse("the file is read-only")


def partial_path(path: str) -> str:
    """Where an interrupted run's table goes instead of ``path``:
    ``run.csv`` -> ``run.partial.csv`` (``run`` -> ``run.partial.csv``)."""
    root, ext = os.path.splitext(path)
    return f"{root}.partial{ext or '.csv'}"


def _new_file_mode(path: str) -> int:
    """Permissions for the written file: those of the file it replaces, or
    what ``open`` would give a new one (``0o666`` less the umask)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _dump(f, df: pd.DataFrame, comment: str | None) -> None:
    if comment is not None:
        f.write(f"# {comment}\n")
    df.to_csv(f, index=False)


def write_csv(df: pd.DataFrame, path: str, *, comment: str | None = None) -> None:
    """Write ``df`` to ``path`` as CSV, all or nothing: into a temporary file
    beside it, flushed to disk, then ``os.replace``-d over ``path``, so an
    interrupted or failed write leaves ``path`` as it was and no temporary file
    behind.  ``comment`` becomes a first line ``# comment`` (read back with
    ``pd.read_csv(path, comment="#")``).  Devices and pipes are written in place."""
    if _is_special(path):
        with open(path, "w", newline="") as f:
            _dump(f, df, comment)
        return
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            _dump(f, df, comment)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
