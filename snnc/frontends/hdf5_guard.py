"""Check an untrusted HDF5 model file (lava-dl ``.net``, ``.nir``) before any of its data is read.

HDF5 can make a reader open other files or allocate without bound. ``check_hdf5`` walks the file's link
tree WITHOUT resolving anything but hard links and refuses, naming the object:

* external links and soft links (a soft link can point anywhere in the file and close a cycle; neither
  lava-dl's ``export_hdf5`` nor ``nir.write`` writes one), and an object reached twice (a hard-link cycle
  or alias);
* datasets with external raw storage (their bytes live in another file: ``/dev/zero``, a user's key
  file, ...) and virtual datasets (their data is mapped from other files);
* a declared size above the budget, per dataset and per file, counted from the declared shape and
  element size before a single element is read. Variable-length elements (strings) count
  ``VLEN_ELEMENT_BYTES`` each; their number is bounded by the same budget.

The budget is ``HDF5Limits.budget(file size)``: ``ratio`` times the file size (room for compression),
at least ``floor_bytes`` and at most ``cap_bytes``. Each format passes its own limits; a caller may pass
larger ones for a model it trusts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from snnc.errors import ModelFileError

VLEN_ELEMENT_BYTES = 16       # h5py's in-memory size of one variable-length element (pointer + length)
MIB = 1 << 20


@dataclass(frozen=True)
class HDF5Limits:
    """How much an HDF5 model file may declare: bytes ``ratio`` x file size clamped to
    [``floor_bytes``, ``cap_bytes``]; at most ``max_objects`` groups and datasets, ``max_depth`` levels."""

    ratio: int = 64
    floor_bytes: int = 256 * MIB
    cap_bytes: int = 2048 * MIB
    max_objects: int = 100_000
    max_depth: int = 32

    def budget(self, file_size: int) -> int:
        """Bytes the file's datasets and attributes may declare in all."""
        return min(self.cap_bytes, max(self.floor_bytes, self.ratio * file_size))


class UnsafeHDF5Error(ModelFileError):
    """An HDF5 file would read other files or allocate beyond the budget; names the object."""

    def __init__(self, path, obj: str, problem: str) -> None:
        self.object = obj
        super().__init__(str(path), f"HDF5 object '{obj}': {problem}")


def check_hdf5(path: str | Path, limits: HDF5Limits = HDF5Limits()) -> None:
    """Raise ``UnsafeHDF5Error`` unless every object of the file at ``path`` is safe to read (see module
    docstring); reads only link and object headers, never data."""
    import h5py
    path = Path(path)
    walker = _Walker(path, limits, limits.budget(path.stat().st_size))
    with h5py.File(path, "r") as handle:
        walker.visit_attributes(handle, "/")
        walker.visit_group(handle, "/", depth=0)


class _Walker:
    """Depth-first walk over hard links, counting objects and declared bytes."""

    def __init__(self, path: Path, limits: HDF5Limits, budget: int) -> None:
        self.path, self.limits, self.budget = path, limits, budget
        self.seen: set[tuple[int, int]] = set()
        self.declared = 0

    def refuse(self, obj: str, problem: str) -> UnsafeHDF5Error:
        return UnsafeHDF5Error(self.path, obj, problem)

    def visit_group(self, group, where: str, depth: int) -> None:
        import h5py
        if depth > self.limits.max_depth:
            raise self.refuse(where, f"nested deeper than {self.limits.max_depth} groups")
        for key in group:
            name = f"{where.rstrip('/')}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise self.refuse(name, f"external link to '{link.filename}': snnc reads only the model file")
            if not isinstance(link, h5py.HardLink):
                raise self.refuse(name, f"{type(link).__name__} (only hard links are read; a soft link can "
                                        "close a cycle)")
            self.visit_object(group[key], name, depth)

    def visit_object(self, obj, name: str, depth: int) -> None:
        import h5py
        self.count(obj, name)
        self.visit_attributes(obj, name)
        if isinstance(obj, h5py.Group):
            self.visit_group(obj, name, depth + 1)
        elif isinstance(obj, h5py.Dataset):
            self.check_dataset(obj, name)
        else:
            raise self.refuse(name, f"a group or dataset, got {type(obj).__name__}")

    def count(self, obj, name: str) -> None:
        import h5py
        info = h5py.h5o.get_info(obj.id)
        key = (info.fileno, info.addr)
        if key in self.seen:
            raise self.refuse(name, "reached a second time (hard-link cycle or alias)")
        self.seen.add(key)
        if len(self.seen) > self.limits.max_objects:
            raise self.refuse(name, f"more than {self.limits.max_objects} objects")

    def check_dataset(self, dataset, name: str) -> None:
        import h5py
        plist = dataset.id.get_create_plist()
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            raise self.refuse(name, "virtual dataset (its data is mapped from other files)")
        if plist.get_external_count() > 0:
            file = plist.get_external(0)[0].decode(errors="replace")
            raise self.refuse(name, f"external raw storage in '{file}': snnc reads only the model file")
        self.declare(name, dataset.shape, dataset.dtype)

    def visit_attributes(self, obj, name: str) -> None:
        import h5py
        for key in obj.attrs:
            attribute = h5py.h5a.open(obj.id, key.encode() if isinstance(key, str) else key)
            self.declare(f"{name}@{key}", attribute.shape, attribute.dtype)

    def declare(self, name: str, shape, dtype) -> None:
        elements = 1
        for dim in shape or ():
            elements *= int(dim)
        size = elements * (VLEN_ELEMENT_BYTES if dtype.kind == "O" else max(dtype.itemsize, 1))
        self.declared += size
        if size > self.budget or self.declared > self.budget:
            raise self.refuse(name, f"declares {size} bytes (shape {tuple(shape or ())}, {dtype}); limit "
                                    f"{self.budget} bytes for all data of this {self.path.stat().st_size}-byte "
                                    "file (HDF5Limits)")
