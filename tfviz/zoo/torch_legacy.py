"""Read a PyTorch checkpoint written in the *legacy* serialization format, without torch.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``, the only
format before PyTorch 1.6) is a sequence of pickles followed by raw storages:

1. a pickled magic number (0x1950a86a20f9469cfc6c),
2. a pickled protocol version (1001),
3. a pickled dict of system info (endianness, type sizes),
4. the pickled object itself, in which every tensor storage is a *persistent id*
   ``("storage", storage_type, key, location, numel[, view_metadata])`` and every tensor
   is a call to ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``,
5. a pickled list of storage keys, then for each key, in that order: an int64 element
   count followed by that many little-endian elements.

We rebuild tensors as numpy arrays with ``numpy.lib.stride_tricks.as_strided``.
Only what is needed to read a state dict is understood; anything else raises a clear
error instead of executing arbitrary pickled code.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct

import numpy as np

from ..errors import TorchFormatError  # noqa: F401  (the classes live in tfviz.errors)
from ..utils import ModelError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name):
        if name not in _STORAGE_DTYPES:
            raise TorchFormatError(f"unsupported storage type torch.{name}")
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _PendingStorage:
    """A storage whose bytes come after the pickles; filled in later."""

    def __init__(self, dtype, numel):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _PendingTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialize(self) -> np.ndarray:
        data = self.storage.data
        itemsize = data.dtype.itemsize
        if not self.size:
            return np.array(data[self.offset])
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view)  # copy: own the memory, contiguous


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _PendingTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


class _Unpickler(pickle.Unpickler):
    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages):
        super().__init__(file, encoding="utf-8")
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise TorchFormatError(f"refusing to unpickle {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise TorchFormatError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise TorchFormatError("storage views are not supported")
        if key not in self._storages:
            self._storages[key] = _PendingStorage(storage_type.dtype, numel)
        return self._storages[key]


def load_state_dict(path_or_bytes) -> "collections.OrderedDict[str, np.ndarray]":
    """Return the checkpoint's state dict as ``{name: numpy array}``."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        raw = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as fh:
            raw = fh.read()
    if raw[:2] == b"PK":
        raise TorchFormatError("this is PyTorch's zip format, not the legacy format")
    f = io.BytesIO(raw)
    try:
        magic = pickle.load(f)
        if magic != MAGIC_NUMBER:
            raise TorchFormatError("not a PyTorch legacy checkpoint (bad magic number)")
        version = pickle.load(f)
        if version != PROTOCOL_VERSION:
            raise TorchFormatError(f"unsupported protocol version {version}")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise TorchFormatError("big-endian checkpoints are not supported")
        storages: dict = {}
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
    except TorchFormatError:
        raise
    except Exception as exc:  # truncated or corrupt pickles
        raise TorchFormatError(f"corrupt checkpoint: {exc}") from exc
    for key in keys:
        header = f.read(8)
        if len(header) != 8:
            raise TorchFormatError("checkpoint is truncated")
        (numel,) = struct.unpack("<q", header)
        st = storages[key]
        nbytes = numel * st.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise TorchFormatError("checkpoint is truncated")
        st.data = np.frombuffer(buf, dtype=st.dtype.newbyteorder("<"))
    if not isinstance(obj, dict):
        raise TorchFormatError(f"expected a state dict, found {type(obj).__name__}")
    return collections.OrderedDict(
        (k, v.materialize() if isinstance(v, _PendingTensor) else v) for k, v in obj.items())
