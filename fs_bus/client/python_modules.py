"""Find the source a ``type: python`` function needs: its driver class's module and the
project-local modules that module imports, transitively.

``collect_modules(MyDriver)`` reads files and nothing else (it imports nothing and
runs no user code): imports are found with ``ast`` (``import x``, ``from x import y``,
``from . import y``, ``from .m import y``, also inside functions and ``try`` blocks)
and resolved to files through ``sys.modules`` when already imported, else by looking
along ``sys.path`` (or the parent package's ``__path__``) as the import system would.

A module is *project-local* when its source file lies under the directory of the
driver's file or under the driver's package root (the directory holding its top-level
package), and is neither

* the standard library (a top-level name in ``sys.stdlib_module_names`` or a
  built-in module, or a file under ``sys.base_prefix``'s ``lib``),
* installed (a file under a ``site-packages`` or ``dist-packages`` directory), nor
* fs-bus itself (``fs_bus``, ``fs_api``, ``fs_client``), which every node has.

Imports that are not project-local are left to the node's environment; extension
modules (``.so``) and imports computed at run time (``importlib.import_module(name)``)
are not collected.

Modules come out in import order: a package's ``__init__`` before its submodules, a
module's dependencies before it, and the driver's module last (``entry_module``). An
import cycle between local modules is cut where it closes, as Python itself does.
"""

from __future__ import annotations

import ast
import importlib.machinery
import keyword
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from fs_bus.artifacts.python_bundle import PythonBundle, pack
from fs_bus.errors import InvalidArtifact

__all__ = ["CollectedModules", "InvalidDriverClass", "collect_modules", "project_roots"]

# Every node has these; a bundle never carries them.
FS_BUS_PACKAGES = frozenset({"fs_bus", "fs_api", "fs_client"})
_SOURCE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES)
_INSTALL_DIRS = frozenset({"site-packages", "dist-packages"})


class InvalidDriverClass(InvalidArtifact, TypeError):
    """What was given as the driver class is not a class (both an ``InvalidArtifact`` and a ``TypeError``)."""


@dataclass(frozen=True, slots=True)
class CollectedModules(PythonBundle):
    """A ``PythonBundle`` plus what ``pack`` needs to lay it out: which modules are packages.

    ``files`` holds each module's source file, in the order of ``modules`` (for messages).
    """

    packages: frozenset[str] = frozenset()
    files: tuple[str, ...] = ()

    def pack(self) -> bytes:
        return pack(self, self.packages)

    @property
    def module_names(self) -> list[str]:
        return [name for name, _ in self.modules]


@dataclass(frozen=True, slots=True)
class _Found:
    name: str
    file: Path | None  # None: a namespace package (a directory without __init__.py)
    package: bool
    search: tuple[Path, ...]  # where its submodules are looked for (a package's __path__)


def collect_modules(driver_class: type) -> CollectedModules:
    """The modules a Python function needs to run ``driver_class``, the driver's module last.

    Raises ``InvalidDriverClass`` (also a ``TypeError``) when ``driver_class`` is not a
    class, and ``InvalidArtifact`` when it is not an ``FSProcessorDriver`` subclass, is
    not defined at the top level of a module, or its module has no source file (a
    class typed into a REPL or a notebook).
    """
    if not isinstance(driver_class, type):
        raise InvalidDriverClass(f"driver_class must be a class, not an instance of {type(driver_class).__name__}")
    _check_is_driver(driver_class)
    class_name = driver_class.__name__
    if driver_class.__qualname__ != class_name:
        raise InvalidArtifact(
            f"driver class {driver_class.__qualname__} must be defined at the top level of its module "
            f"(a node finds it as {driver_class.__module__}.{class_name})")
    entry = _entry_module(driver_class)
    roots = project_roots(entry)
    collector = _Collector(roots)
    if not collector.is_local(entry.file):
        raise InvalidArtifact(
            f"driver class {class_name} is defined in {entry.file}, which is installed (standard library, "
            "site-packages or dist-packages), not project source; define the driver in your project")
    names, files, sources, packages = collector.collect(entry)
    return CollectedModules(class_name=class_name, modules=tuple(zip(names, sources)),
                            packages=frozenset(packages), files=tuple(str(f) for f in files))


def project_roots(entry: _Found) -> tuple[Path, ...]:
    """The directory of the driver's file and its package root (they may be the same)."""
    assert entry.file is not None
    here = entry.file.parent
    parts = entry.name.split(".")
    root = here
    # Walk up past the packages the module lives in: a.b.c in /x/a/b/c.py has root /x.
    enclosing = parts if entry.package else parts[:-1]
    for part in reversed(enclosing):
        if root.name != part:  # not laid out as its name says (a custom loader): stay put
            root = here
            break
        root = root.parent
    return (here,) if root == here else (here, root)


# --- the driver -----------------------------------------------------------------


def _check_is_driver(cls: type) -> None:
    try:
        from fs_bus.api import FSProcessorDriver  # written alongside; imported late on purpose
    except ImportError:
        bases = [c for c in cls.__mro__ if c.__name__ == "FSProcessorDriver"]
        base = bases[0] if bases else None
        ok = bool(bases)
    else:
        base = FSProcessorDriver
        ok = issubclass(cls, FSProcessorDriver)
    if not ok:
        raise InvalidArtifact(
            f"driver class {cls.__module__}.{cls.__qualname__} is not a subclass of FSProcessorDriver; "
            "define it as `class MyDriver(FSProcessorDriver)` (from fs_bus.api import FSProcessorDriver)")
    if cls is base:
        raise InvalidArtifact("driver_class must be your subclass of FSProcessorDriver, not FSProcessorDriver itself")


def _entry_module(cls: type) -> _Found:
    """Name, file and kind of the module that defines ``cls``."""
    name = cls.__module__
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None) if module is not None else None
    if name == "__main__":
        if not file:
            raise InvalidArtifact(
                f"driver class {cls.__name__} is defined in an interactive session (REPL or notebook), so "
                "there is no source file to upload; move it into a .py file and import it from there")
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name and spec.name != "__main__":
            name = spec.name  # run as `python -m pkg.mod`: it is pkg.mod to the node
        else:
            name = Path(file).stem  # run as `python script.py`: the node imports it as `script`
            if not name.isidentifier() or keyword.iskeyword(name):
                raise InvalidArtifact(
                    f"script {file} defines driver class {cls.__name__}, but {name!r} is not a Python module "
                    f"name, so a node cannot import it; rename the file (e.g. {_identifier(name)}.py)")
    elif module is None:
        raise InvalidArtifact(f"driver class {cls.__name__}: its module {name!r} is not imported (not in "
                              "sys.modules), so its source cannot be found")
    if not file:
        raise InvalidArtifact(f"driver class {cls.__name__}: module {name!r} has no source file "
                              "(built in, or created in memory); define the driver in a .py file")
    path = _real(file)
    if path.suffix not in _SOURCE_SUFFIXES or not path.is_file():
        raise InvalidArtifact(f"driver class {cls.__name__}: module {name!r} was loaded from {file}, not from "
                              "Python source that could be uploaded")
    top = name.partition(".")[0]
    if top in FS_BUS_PACKAGES:
        raise InvalidArtifact(f"driver class {cls.__name__} is part of fs-bus ({name}); define your own subclass "
                              "in your project")
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise InvalidArtifact(
            f"driver module {name!r} ({file}) has the name of a standard library module, which a node would "
            "import instead; rename the file")
    is_pkg = path.stem == "__init__"
    return _Found(name, path, is_pkg, (path.parent,) if is_pkg else ())


def _identifier(text: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return out if out and not out[0].isdigit() else f"_{out}"


# --- the walk -------------------------------------------------------------------


class _Collector:
    def __init__(self, roots: tuple[Path, ...]):
        self.roots = roots
        self.stdlib_dirs = _stdlib_dirs()
        self.found: dict[str, _Found | None] = {}
        self.state: dict[str, str] = {}  # name -> "visiting" | "done"
        self.order: list[_Found] = []
        self.sources: dict[str, bytes] = {}

    # which files count

    def is_local(self, file: Path | None) -> bool:
        if file is None:
            return False
        if _INSTALL_DIRS.intersection(file.parts):
            return False
        if any(_under(file, d) for d in self.stdlib_dirs):
            return False
        return any(_under(file, r) for r in self.roots)

    def _local(self, name: str) -> _Found | None:
        top = name.partition(".")[0]
        if top in FS_BUS_PACKAGES or top in sys.stdlib_module_names or top in sys.builtin_module_names:
            return None
        found = self._find(name)
        if found is None:
            return None
        if found.file is None:  # namespace package: local if one of its directories is
            return found if any(self.is_local(d / "__init__.py") for d in found.search) else None
        return found if self.is_local(found.file) else None

    # the walk

    def collect(self, entry: _Found) -> tuple[list[str], list[Path], list[bytes], set[str]]:
        self.found[entry.name] = entry
        self._visit(entry)
        self.order = _packages_first(self.order, entry)
        names = [f.name for f in self.order]
        files = [f.file if f.file is not None else f.search[0] / "__init__.py" for f in self.order]
        sources = [self.sources[n] for n in names]
        packages = {f.name for f in self.order if f.package}
        return names, files, sources, packages

    def _visit(self, mod: _Found) -> None:
        self.state[mod.name] = "visiting"
        deps: list[str] = []
        parts = mod.name.split(".")
        deps += [".".join(parts[:i]) for i in range(1, len(parts))]  # its packages come first
        if mod.file is None:
            source = b""  # a namespace package: an empty __init__ makes the bundle self-contained
        else:
            source = mod.file.read_bytes()
            deps += _imports(source, mod)
        self.sources[mod.name] = source
        for dep in deps:
            if dep in self.state:
                continue  # done, or an import cycle closing on a module being visited
            found = self._local(dep)
            if found is not None:
                self._visit(found)
        self.state[mod.name] = "done"
        self.order.append(mod)

    # finding a module's file without importing it

    def _find(self, name: str) -> _Found | None:
        if name in self.found:
            return self.found[name]
        result = self._find_uncached(name)
        self.found[name] = result
        return result

    def _find_uncached(self, name: str) -> _Found | None:
        module = sys.modules.get(name)
        if module is not None and name != "__main__":
            return _from_module(name, module)
        parent, _, last = name.rpartition(".")
        if parent:
            p = self._find(parent)
            if p is None or not p.package:
                return None
            places: tuple[Path, ...] = p.search
        else:
            places = tuple(Path(e or os.getcwd()) for e in sys.path if isinstance(e, str))
        portions: list[Path] = []
        for place in places:
            pkg_dir = place / last
            for suffix in _SOURCE_SUFFIXES:
                init = pkg_dir / f"__init__{suffix}"
                if init.is_file():
                    init = _real(init)
                    return _Found(name, init, True, (init.parent,))
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                if (place / f"{last}{suffix}").is_file():
                    return None  # compiled: nothing to collect
            for suffix in _SOURCE_SUFFIXES:
                file = place / f"{last}{suffix}"
                if file.is_file():
                    return _Found(name, _real(file), False, ())
            if (place / f"{last}.pyc").is_file():
                return None  # sourceless
            if pkg_dir.is_dir():
                portions.append(_real(pkg_dir))
        if portions:
            return _Found(name, None, True, tuple(portions))
        return None


def _packages_first(order: list[_Found], entry: _Found) -> list[_Found]:
    """Move each package before its submodules where a cycle put it after (``pkg/__init__``
    importing ``pkg.mod``), keeping the rest of the order and the driver's module last."""
    by_name = {f.name: f for f in order}
    out: list[_Found] = []
    placed: set[str] = set()

    def place(f: _Found) -> None:
        parts = f.name.split(".")
        for i in range(1, len(parts)):
            parent = by_name.get(".".join(parts[:i]))
            if parent is not None and parent.name not in placed and parent is not entry:
                placed.add(parent.name)
                out.append(parent)
        if f.name not in placed:
            placed.add(f.name)
            out.append(f)

    for f in order:
        if f is not entry:
            place(f)
    place(entry)
    return out


def _from_module(name: str, module: ModuleType) -> _Found | None:
    file = getattr(module, "__file__", None)
    path = getattr(module, "__path__", None)
    search = tuple(_real(p) for p in path if isinstance(p, str)) if path is not None else ()
    if file is None:
        return _Found(name, None, True, search) if path is not None and search else None
    real = _real(file)
    if real.suffix not in _SOURCE_SUFFIXES:
        return None  # an extension module or bytecode: nothing to upload
    return _Found(name, real, path is not None, search)


def _imports(source: bytes, mod: _Found) -> list[str]:
    """Module names ``source`` may import, in source order (some may not be modules at all)."""
    try:
        tree = ast.parse(source, filename=str(mod.file))
    except SyntaxError as exc:
        raise InvalidArtifact(f"module {mod.name!r} ({mod.file}, line {exc.lineno}): syntax error: {exc.msg}") from None
    package = mod.name if mod.package else mod.name.rpartition(".")[0]
    nodes = sorted((n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))),
                   key=lambda n: (n.lineno, n.col_offset))
    names: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
            continue
        if node.level:
            if not package:
                continue  # a relative import outside a package fails in Python too
            bits = package.rsplit(".", node.level - 1)
            if len(bits) < node.level:
                continue  # beyond the top-level package
            base = bits[0] + (f".{node.module}" if node.module else "")
        elif node.module:
            base = node.module
        else:
            continue
        names.append(base)
        names += [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
    seen: set[str] = set()
    return [n for n in names if not (n in seen or seen.add(n))]


# --- paths ----------------------------------------------------------------------


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _under(path: Path, directory: Path) -> bool:
    return path == directory or directory in path.parents


def _stdlib_dirs() -> tuple[Path, ...]:
    dirs = {_real(Path(os.__file__).parent)}
    for prefix in {sys.base_prefix, sys.base_exec_prefix}:
        for lib in ("lib", "lib64", "Lib"):
            candidate = Path(prefix) / lib
            if candidate.is_dir():
                dirs.add(_real(candidate))
    return tuple(sorted(dirs))
