"""The tensors of a TorchScript archive (OpenAI's released CLIP files), read without running its program.

``torch.jit.load`` compiles the archive's TorchScript and runs its ``__setstate__`` methods: a crafted file runs code.
The archive is a zip: ``<name>/data.pkl`` pickles the module tree (each module an object of a ``__torch__.*`` class
whose state is a dict of attributes: parameters, buffers, submodules, flags), and each tensor's bytes lie in
``<name>/data/<key>``. This reader unpickles ``data.pkl`` with an allow-list that admits only those module objects
(as inert records), tensor rebuilds and plain containers, and returns the tensors under their dotted attribute paths,
the names ``torch.jit.load(path).state_dict()`` gives them.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from pathlib import Path

import torch

from vidapter.files import FileError

_STORAGE_DTYPES = {
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _ScriptObject:
    """An object of a ``__torch__`` class, kept as the attribute dict it was pickled with; no method of it runs."""

    def __setstate__(self, state) -> None:
        self.state = state


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None) -> torch.Tensor:
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _identity(value, *_):
    return value


# (module, name) -> what the restricted unpickler hands back; anything else is refused
_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{
        ("torch.jit._pickle", n): _identity
        for n in ("build_intlist", "build_doublelist", "build_boollist", "build_tensorlist", "restore_type_tag")
    },  # fmt: skip
    **{("torch", n): dtype for n, dtype in _STORAGE_DTYPES.items()},
}


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False  # not a zip, or a damaged one: the reader that tries it next says what is wrong


class _Unpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, path: Path):
        super().__init__(archive.open(f"{prefix}data.pkl"))
        self.archive, self.prefix, self.path = archive, prefix, path
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__.") or module == "__torch__":
            return _ScriptObject
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise FileError(f"{self.path}: the TorchScript archive's data.pkl names {module}.{name}, which is not a "
                        "tensor or module record; not read")  # fmt: skip

    def persistent_load(self, pid):
        kind, dtype, key, _location, _numel = pid
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise FileError(f"{self.path}: unexpected record {pid!r} in data.pkl")
        if key not in self.storages:
            data = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
            self.storages[key] = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
        return self.storages[key]


def _tensors(obj, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = getattr(obj, "state", None)
    if not isinstance(state, dict):
        return
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptObject):
            _tensors(value, f"{prefix}{name}.", out)


def read_torchscript_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``name -> tensor`` for every tensor attribute of the archive's module tree, without running TorchScript."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1)
            root = _Unpickler(archive, pkl[: -len("data.pkl")], path).load()
    except StopIteration:
        raise FileError(f"{path}: a TorchScript archive without data.pkl") from None
    except FileError:
        raise
    except Exception as e:  # a damaged or crafted archive: zip, pickle, or tensor-rebuild errors of any kind
        raise FileError(f"{path}: damaged TorchScript archive ({type(e).__name__}: {e})") from e
    out: dict[str, torch.Tensor] = {}
    _tensors(root, "", out)
    if not out:
        raise FileError(f"{path}: the TorchScript archive holds no tensors")
    return out
