"""The artifact of a ``type: python`` function: its modules and driver class, as one zip.

Layout: ``fs-bus-python.json`` (``{"format": 1, "class_name": ..., "modules": [name, ...]}``,
modules in import order, the driver's module last) and each module's source at its
dotted path (``pkg/mod.py``; a package's ``__init__`` as ``pkg/__init__.py``).
The zip is deterministic (fixed timestamps, sorted entries) so the same sources give
the same sha256 and are uploaded once. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import io
import json
import lzma
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass

from fs_bus.errors import InvalidArtifact

MANIFEST = "fs-bus-python.json"
FORMAT = 1
_MODULE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Sources are small; a bundle claiming more (a zip bomb) is refused before it is inflated.
MAX_UNPACKED_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PythonBundle:
    class_name: str
    modules: tuple[tuple[str, bytes], ...]  # (dotted module name, source), import order

    @property
    def entry_module(self) -> str:
        """The module that defines the driver class (the last one)."""
        return self.modules[-1][0]


def module_path(name: str, package: bool = False) -> str:
    return name.replace(".", "/") + ("/__init__.py" if package else ".py")


def pack(bundle: PythonBundle, packages: frozenset[str] = frozenset()) -> bytes:
    """Zip the bundle; ``packages`` names modules that are packages (``__init__``)."""
    validate(bundle)
    buf = io.BytesIO()
    entries = {MANIFEST: json.dumps({"format": FORMAT, "class_name": bundle.class_name,
                                     "modules": [n for n, _ in bundle.modules],
                                     "packages": sorted(packages)}, sort_keys=True).encode()}
    for name, source in bundle.modules:
        entries[module_path(name, name in packages)] = source
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(entries):
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, entries[path])
    return buf.getvalue()


def unpack(data: bytes) -> tuple[PythonBundle, frozenset[str]]:
    """Read a bundle back; raise ``InvalidArtifact`` saying what is wrong with it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(info.file_size for info in z.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise InvalidArtifact(f"python artifact unpacks to {unpacked} bytes, more than the "
                                      f"{MAX_UNPACKED_BYTES} a bundle of sources may have")
            try:
                manifest = json.loads(z.read(MANIFEST))
            except KeyError:
                raise InvalidArtifact(f"python artifact has no {MANIFEST}") from None
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise InvalidArtifact(f"python artifact {MANIFEST} is not format {FORMAT}: {manifest!r:.200}")
            names, package_names = manifest.get("modules", []), manifest.get("packages", [])
            class_name = manifest.get("class_name", "")
            if not (isinstance(names, list) and isinstance(package_names, list) and isinstance(class_name, str)
                    and all(isinstance(n, str) for n in names + package_names)):
                raise InvalidArtifact(f"python artifact {MANIFEST} needs class_name as a string and modules and "
                                      f"packages as lists of module names: {manifest!r:.200}")
            packages = frozenset(package_names)
            modules = []
            for name in names:
                try:
                    modules.append((name, z.read(module_path(name, name in packages))))
                except KeyError:
                    raise InvalidArtifact(f"python artifact lists module {name!r} but does not hold its source") from None
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, NotImplementedError, RuntimeError,
            ValueError, struct.error) as exc:
        # A corrupt zip fails in zipfile, in its decompressors (zlib, bz2's OSError, lzma)
        # or in json, each with its own exception type.
        raise InvalidArtifact(f"python artifact is not a readable bundle: {type(exc).__name__}: {exc}") from None
    bundle = PythonBundle(class_name, tuple(modules))
    validate(bundle)
    return bundle, packages


def validate(bundle: PythonBundle) -> None:
    if not bundle.class_name.isidentifier():
        raise InvalidArtifact(f"class_name {bundle.class_name!r} is not a Python class name")
    if not bundle.modules:
        raise InvalidArtifact("a python function needs at least one module")
    seen = set()
    for name, source in bundle.modules:
        if not _MODULE_RE.fullmatch(name):
            raise InvalidArtifact(f"module name {name!r} is not a dotted Python module name")
        if name in seen:
            raise InvalidArtifact(f"module {name!r} is given twice")
        seen.add(name)
        if not isinstance(source, (bytes, bytearray)):
            raise InvalidArtifact(f"module {name!r}: source must be bytes, not {type(source).__name__}")
