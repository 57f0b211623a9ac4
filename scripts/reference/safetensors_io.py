"""Minimal safetensors reader/writer (F32, F16, BF16) for torch tensors.

The format, as the `safetensors` library writes it:
  8 bytes  little-endian u64 N, the length of the JSON header
  N bytes  JSON header, padded with spaces to a multiple of 8:
           {"__metadata__": {...str: str}, "<name>": {"dtype": "F32", "shape": [...],
            "data_offsets": [begin, end]}, ...}   (offsets relative to the data section)
  data     the tensors' raw little-endian bytes, back to back, in data_offsets order
"""

import json
import os
import struct

import numpy as np
import torch

# torch dtype -> (safetensors dtype tag, bytes per element)
_TAGS = {torch.float32: ("F32", 4), torch.float16: ("F16", 2), torch.bfloat16: ("BF16", 2)}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        # numpy has no bfloat16: reinterpret the same 16 bits as int16
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype("<f4" if t.dtype == torch.float32 else "<f2").tobytes()


def save_file(tensors: dict, path: str, metadata: dict | None = None) -> None:
    """Write `tensors` ({name: tensor}) to `path`. Tensors keep their own dtype (F32/F16/BF16);
    like the safetensors library they are laid out by descending alignment, then by name."""
    for name, t in tensors.items():
        if t.dtype not in _TAGS:
            raise ValueError(f"{name}: unsupported dtype {t.dtype}")
    order = sorted(tensors, key=lambda n: (-_TAGS[tensors[n].dtype][1], n))
    header = {"__metadata__": dict(metadata or {"format": "pt"})}
    chunks, offset = [], 0
    for name in order:
        t = tensors[name]
        data = _tensor_bytes(t)
        header[name] = {
            "dtype": _TAGS[t.dtype][0],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for data in chunks:
            f.write(data)


def load_file(path: str) -> dict:
    """Read every tensor of a .safetensors file as torch tensors in their stored dtype."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        tag, shape = info["dtype"], info["shape"]
        if tag == "F32":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f4").astype(np.float32))
        elif tag == "F16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f2").astype(np.float16))
        elif tag == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<i2").astype(np.int16)).view(torch.bfloat16)
        else:
            raise ValueError(f"{name}: unsupported dtype {tag}")
        out[name] = t.reshape(shape)
    return out


def load_checkpoint(folder: str) -> dict:
    """All tensors of a model folder: model.safetensors, or the shards listed in
    model.safetensors.index.json ({"metadata": {...}, "weight_map": {name: shard}})."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index):
        return load_file(os.path.join(folder, "model.safetensors"))
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        for name, t in load_file(os.path.join(folder, shard)).items():
            if weight_map.get(name) != shard:
                raise ValueError(f"{name} found in {shard} but the index maps it elsewhere")
            tensors[name] = t
    missing = set(weight_map) - set(tensors)
    if missing:
        raise ValueError(f"tensors listed in the index but absent from the shards: {sorted(missing)}")
    return tensors


def save_sharded(tensors: dict, folder: str, shards: list[list[str]]) -> None:
    """Write `tensors` split as `shards` (lists of names) to
    model-0000i-of-0000n.safetensors plus model.safetensors.index.json, as transformers does."""
    n = len(shards)
    weight_map, total = {}, 0
    for i, names in enumerate(shards, start=1):
        fname = f"model-{i:05d}-of-{n:05d}.safetensors"
        save_file({k: tensors[k] for k in names}, os.path.join(folder, fname))
        for k in names:
            weight_map[k] = fname
            total += tensors[k].numel() * tensors[k].element_size()
    if set(weight_map) != set(tensors):
        raise ValueError("shards must list every tensor exactly once")
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
