"""Import a function's modules straight from its bundle, without writing them to disk.

Nothing is left behind when the child process is killed (a temporary directory
would be), and tracebacks still show source lines: the loader answers
``get_source``, which ``linecache`` asks for. Bundle modules come first on
``sys.meta_path``, as a script's own directory comes first on ``sys.path``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

from fs_bus.artifacts.python_bundle import PythonBundle, module_path

# Shown as the file of bundle modules in tracebacks. Not "<...>": linecache skips
# such names, and then tracebacks have no source lines.
ORIGIN_PREFIX = "bundle:"


class BundleImporter(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finder and loader for the modules of one bundle.

    A parent package the bundle does not hold (``pkg`` of ``pkg.mod``) is made
    an empty package, as a namespace package would be.
    """

    def __init__(self, bundle: PythonBundle, packages: frozenset[str]) -> None:
        self.sources = dict(bundle.modules)
        self.packages = set(packages)
        for name in self.sources:
            parts = name.split(".")
            for i in range(1, len(parts)):
                self.packages.add(".".join(parts[:i]))

    def origin(self, fullname: str) -> str:
        return ORIGIN_PREFIX + module_path(fullname, fullname in self.packages and fullname in self.sources)

    def find_spec(self, fullname: str, path: object = None, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.sources and fullname not in self.packages:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=self.origin(fullname),
                                              is_package=fullname in self.packages)
        spec.has_location = fullname in self.sources  # sets __file__
        return spec

    def get_source(self, fullname: str) -> str | None:
        source = self.sources.get(fullname)
        if source is None:
            return "" if fullname in self.packages else None
        return importlib.util.decode_source(source)

    def get_code(self, fullname: str):  # type: ignore[no-untyped-def]
        source = self.get_source(fullname)
        if source is None:
            raise ImportError(f"no module {fullname!r} in the function's bundle", name=fullname)
        return compile(source, self.origin(fullname), "exec", dont_inherit=True)

    def is_package(self, fullname: str) -> bool:
        return fullname in self.packages

    def install(self) -> None:
        sys.meta_path.insert(0, self)
        # Names the bundle defines win over modules of the same name imported
        # before it (the runtime imports a few; the user's own are meant).
        for name in list(self.sources) + list(self.packages):
            sys.modules.pop(name, None)
