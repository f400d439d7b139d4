"""Reading and writing files without surprises: nothing executes code from a file, nothing is left half written, and
every failure is one line that names the file and what is wrong.

Reading: ``load_torch_file`` is ``torch.load`` with ``weights_only=True`` (PyTorch's restricted unpickler: tensors,
numbers, strings, lists, dicts, and NumPy arrays of plain dtypes), so a crafted file cannot run code; a file that needs
more is refused with the Python objects it names, and only ``trust_pickle=True`` reads it with full pickle.

Writing: ``write_atomic`` writes a file through a temporary sibling and ``os.replace``, ``write_dir_atomic`` a whole
folder the same way, so a reader sees the old file or the new one, never a part. A failed write (a full disk: ENOSPC)
raises ``WriteError`` naming the path, the cause and what is still intact, after removing its temporary files.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from vidapter.errors import VidapterError


class FileError(VidapterError):
    """A file could not be read or written; the message is one line naming the file and what is wrong."""


class WriteError(FileError):
    """A write failed (full disk, no permission); the message says what is intact and how to go on."""


TRUST_HINT = "pass --trust-pickle (Python: trust_pickle=True) only for a file from a source you trust"

# NumPy arrays of plain dtypes: data only (the array's bytes and its dtype), as PyTorch's documentation allows them.
# Checkpoints written by vidapter 0.1 held the NumPy RNG state as such an array.
_np_core = np._core if hasattr(np, "_core") else np.core  # NumPy 2 / 1.x
_NUMPY_ARRAYS = [
    (_np_core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
    (_np_core.multiarray._reconstruct, "numpy._core.multiarray._reconstruct"),
    np.ndarray,
    np.dtype,
    *(getattr(np.dtypes, n) for n in ("UInt32DType", "Int64DType", "Float64DType", "Float32DType", "BoolDType")),
]


def _open_for_write(path: str | os.PathLike, mode: str = "wb") -> BinaryIO:
    """Every write of vidapter goes through this opener (tests replace it to simulate a full disk)."""
    return open(path, mode)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # temporary files are created private (0600, 0700); the result gets the usual permissions


def _os_error(e: BaseException | None) -> OSError | None:
    """The OSError behind ``e``: itself, or one it was raised from or while handling (``torch.save`` reports a failed
    write as a RuntimeError raised during the OSError)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _kept(path: Path, slash: str = "") -> str:
    return f"{path.name}{slash} is unchanged" if path.exists() else f"{path.name}{slash} was not created"


def _write_error(path: Path, cause: OSError, kept: str, intact: str) -> WriteError:
    """The one-line error of a failed write: the path, the cause, what is as it was, and how to go on."""
    return WriteError(f"{path}: could not write ({_describe(cause)})" + "".join(f"; {t}" for t in (kept, intact) if t))


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], None], intact: str = "") -> Path:
    """Write ``path`` by calling ``write(f)`` on a temporary file in the same folder, then ``os.replace``.

    On failure the temporary file is removed, ``path`` is as it was, and ``WriteError`` names the path, the cause and
    ``intact`` (what the user still has, and how to go on)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        with _open_for_write(tmp) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
        tmp = None
    except Exception as e:
        cause = _os_error(e)
        if cause is None:
            raise
        raise _write_error(path, cause, _kept(path), intact) from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str, intact: str = "") -> Path:
    return write_atomic(path, lambda f: f.write(text.encode()), intact)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def write_dir_atomic(
    directory: str | os.PathLike,
    write: Callable[[Path], None],
    intact: str = "",
    replaceable: Callable[[Path], bool] = lambda d: not any(d.iterdir()),
) -> Path:
    """Make ``directory`` whole or not at all: ``write(tmp)`` fills a temporary sibling folder, which then takes the
    directory's name. An existing directory is replaced only when ``replaceable(directory)`` says so (by default: it
    is empty), by swapping the two in one step where the system can (Linux); elsewhere it is moved aside, the new one
    renamed in, and the old one removed, or put back if that fails."""
    directory = Path(directory)
    if directory.exists() and not (directory.is_dir() and replaceable(directory)):
        raise WriteError(f"{directory}: already exists and is not a folder this command writes; not replaced "
                         "(remove it or choose another path)")  # fmt: skip
    tmp = aside = None
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
        write(tmp)
        os.chmod(tmp, 0o777 & ~_UMASK)
        if not directory.exists():
            os.replace(tmp, directory)
            tmp = None
        elif not _exchange(tmp, directory):  # after an exchange tmp holds the old directory, removed below
            aside = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.old.")) / directory.name
            os.replace(directory, aside)
            try:
                os.replace(tmp, directory)
            except OSError:
                os.replace(aside, directory)  # if this fails too, the error below names where the old one is
                raise
            tmp = None
    except Exception as e:
        cause = _os_error(e)
        if cause is None:
            raise
        kept = _kept(directory, "/")
        if aside is not None and aside.exists():
            kept = f"{directory.name}/ was moved to {aside}"
            aside = None  # keep it
        raise _write_error(directory, cause, kept, intact) from e
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside.parent, ignore_errors=True)
    return directory


def append_line(path: str | os.PathLike, line: str, intact: str = "") -> None:
    """Append one line to a log file (metrics.jsonl, skipped.jsonl); a failed write is a ``WriteError``."""
    try:
        with _open_for_write(path, "ab") as f:
            f.write((line + "\n").encode())
    except OSError as e:  # a plain write: the OSError itself
        raise _write_error(Path(path), e, "", intact) from e


def _refused_globals(path: Path, error: Exception) -> list[str]:
    """The Python objects a file names that the restricted loader refuses, read without unpickling it."""
    with contextlib.suppress(Exception):
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    return re.findall(r"GLOBAL (\S+)", str(error))


def load_torch_file(path: str | os.PathLike, trust_pickle: bool = False):
    """``torch.load`` on the CPU with the restricted unpickler (``weights_only=True``; NumPy arrays of plain dtypes
    allowed), or full pickle when ``trust_pickle``. Every failure is a one-line ``FileError``."""
    path = Path(path)
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FileError(f"{path}: the file is empty (0 bytes)")
    try:
        if trust_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(_NUMPY_ARRAYS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        names = _refused_globals(path, e)
        if names:
            raise FileError(
                f"{path}: holds Python objects the safe loader refuses ({', '.join(sorted(names)[:6])}); not read. "
                f"Loading it would run code named in the file: {TRUST_HINT}"
            ) from e
        raise FileError(f"{path}: not a PyTorch file the safe loader can read ({_first_line(e)})") from e
    except Exception as e:  # torch.load raises EOFError, OSError, KeyError, RuntimeError... on damaged files
        what = "truncated or damaged" if _is_zip_start(path) else "not a PyTorch file"  # torch.save writes zips
        raise FileError(f"{path}: {what} ({type(e).__name__}: {_first_line(e)})") from e


def _first_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    # PyTorch's weights-only errors put the reason ("Unsupported operand 149") after a paragraph of advice
    reason = next((ln for ln in lines if ln.strip().startswith("Unsupported")), lines[0])
    return reason.strip()[:200]


def _is_zip_start(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False
