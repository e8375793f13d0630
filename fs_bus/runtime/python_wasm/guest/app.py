"""The Python runtime component: runs a ``type: python`` function's modules in the sandbox.

Built with componentize-py against world ``processor-runtime`` of ``wit/processor.wit``
(see :func:`fs_bus.runtime.python_wasm.runtime_component`). The host calls
``fs-exec(class-name, modules)`` with the modules of a python artifact
(``(dotted name, source)``, dependencies first, the driver's module last); they are
imported from memory, ``class-name`` is looked up in the last one and instantiated,
and its ``init(ctx, config)`` runs as soon as both ``fs-exec`` and ``fs-init`` came
(in either order). Every other export is forwarded to that instance. ``fs_api``
is importable by the user's code: it is ``fs_guest_api`` (the driver API over the
world's ``collector`` and ``kv`` imports).

Failures raise, and componentize-py turns an exception that leaves an export into
a trap (the host reports a ``GuestError``); the message and the traceback (with
the user's source lines) go to stderr, which the host logs as the function's output.

componentize-py makes a fresh ``WitWorld`` for every export call: state lives in
module globals. Everything here is imported at build time, so it is part of the
pre-initialized snapshot.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any, NoReturn

import wit_world

import fs_guest_api
import stdlib_preload  # noqa: F401 - imports the standard library into the snapshot
from fs_guest_api import Context, FSProcessorDriver

# The name user code imports the API by.
sys.modules["fs_api"] = fs_guest_api

# Shown as the file of bundle modules in tracebacks. Not "<...>": linecache skips
# such names, and then tracebacks have no source lines.
ORIGIN_PREFIX = "bundle:"


class _Runtime:
    """What fs-exec and fs-init set up. One per component instance (a module global)."""

    def __init__(self) -> None:
        self.config: dict[str, str] | None = None  # from fs-init
        self.driver: FSProcessorDriver | None = None  # from fs-exec
        self.ctx: Context | None = None
        self.class_name = ""
        self.initialized = False  # the driver's init() ran
        self.execed = False
        self.module_names: set[str] = set()  # top-level names of the function's modules


_rt = _Runtime()


class _BundleImporter(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """Finder and loader for the modules handed to fs-exec.

    A module whose name is a prefix (``pkg`` of ``pkg.mod``) of another's is a
    package; a parent package the modules do not include is an empty package.
    """

    def __init__(self, modules: list[tuple[str, bytes]]) -> None:
        self.sources: dict[str, bytes] = {}
        for name, source in modules:
            if not isinstance(name, str) or not all(part.isidentifier() for part in name.split(".")):
                raise ImportError(f"fs-exec: {name!r} is not a dotted Python module name")
            if name in self.sources:
                raise ImportError(f"fs-exec: module {name!r} is given twice")
            self.sources[name] = bytes(source)
        self.packages: set[str] = set()
        for name in self.sources:
            parts = name.split(".")
            for i in range(1, len(parts)):
                self.packages.add(".".join(parts[:i]))

    def origin(self, fullname: str) -> str:
        path = fullname.replace(".", "/")
        return ORIGIN_PREFIX + (path + "/__init__.py" if fullname in self.packages else path + ".py")

    def find_spec(self, fullname: str, path: object = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
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

    def get_code(self, fullname: str) -> Any:
        source = self.get_source(fullname)
        if source is None:
            raise ImportError(f"no module {fullname!r} among the function's modules", name=fullname)
        return compile(source, self.origin(fullname), "exec", dont_inherit=True)

    def is_package(self, fullname: str) -> bool:
        return fullname in self.packages

    def install(self) -> None:
        sys.meta_path.insert(0, self)
        # The function's own modules win over modules of the same name imported before.
        for name in list(self.sources) + list(self.packages):
            sys.modules.pop(name, None)


def _fail(where: str, exc: BaseException) -> None:
    """One line on stderr saying what failed, before the exception leaves the export
    (componentize-py then prints its traceback, with the user's source lines, and traps)."""
    exc_type = type(exc).__qualname__
    if type(exc).__module__ not in ("builtins", "__main__"):
        exc_type = f"{type(exc).__module__}.{exc_type}"
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a user __str__ that raises
        message = f"<{type(exc).__name__} whose str() failed>"
    line = f"fs-bus python runtime: {where} raised {exc_type}: {message}"
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] not in _rt.module_names:
        line += (" (only the standard library bundled into the Python runtime component can be imported, "
                 "besides the function's own modules and fs_api; no pip packages, no C extensions)")
    print(line, file=sys.stderr, flush=True)


class RuntimeComponentError(Exception):
    """The runtime cannot do what the host asked (no class, a wrong class, fs-exec twice...)."""


def _refuse(message: str) -> NoReturn:
    print(f"fs-bus python runtime: {message}", file=sys.stderr, flush=True)
    raise RuntimeComponentError(message)


def _exec(class_name: str, modules: list[tuple[str, bytes]]) -> None:
    if _rt.execed:
        _refuse(f"fs-exec was already called (class {_rt.class_name!r}); an instance runs one class")
    _rt.execed = True
    if not modules:
        _refuse("fs-exec got no modules: a python function needs at least one")
    if not isinstance(class_name, str) or not class_name.isidentifier():
        _refuse(f"fs-exec: class name {class_name!r} is not a Python class name")
    try:
        importer = _BundleImporter(modules)
    except ImportError as exc:
        _refuse(str(exc))
    importer.install()
    _rt.module_names = {name.split(".")[0] for name in importer.sources}
    for name in importer.sources:
        try:
            importlib.import_module(name)
        except BaseException as exc:
            _fail(f"importing module {name!r}", exc)
            raise
    module_name = modules[-1][0]
    cls = getattr(sys.modules[module_name], class_name, None)
    if cls is None:
        _refuse(f"module {module_name!r} defines no {class_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, FSProcessorDriver)):
        _refuse(f"{class_name!r} in module {module_name!r} is not a subclass of FSProcessorDriver; "
                f"define it as `class {class_name}(FSProcessorDriver)` (from fs_api import FSProcessorDriver)")
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        _refuse(f"class {class_name!r} does not define {missing}()")
    _rt.class_name = class_name
    _rt.ctx = Context(_rt.config)
    try:
        _rt.driver = cls()
    except BaseException as exc:
        _fail(f"{class_name}()", exc)
        raise
    _maybe_init()


def _maybe_init() -> None:
    """The driver's init(), once both fs-exec and fs-init happened."""
    if _rt.initialized or _rt.driver is None or _rt.config is None:
        return
    assert _rt.ctx is not None
    _rt.ctx._config = dict(_rt.config)
    _rt.initialized = True
    try:
        _rt.driver.init(_rt.ctx, dict(_rt.config))
    except BaseException as exc:
        _fail(f"{_rt.class_name}.init", exc)
        raise


def _ready(hook: str) -> tuple[FSProcessorDriver, Context]:
    driver, ctx = _rt.driver, _rt.ctx
    if driver is None or ctx is None:
        _refuse(f"fs-{hook} before fs-exec: the host must hand over the function's class and modules first")
    assert driver is not None and ctx is not None
    if not _rt.initialized:
        # A host that never sends fs-init: the configuration is empty.
        _rt.config = _rt.config or {}
        _maybe_init()
    return driver, ctx


class WitWorld(wit_world.WitWorld):
    def fs_init(self, config: list[tuple[str, str]]) -> None:
        _rt.config = {str(k): str(v) for k, v in config}
        if _rt.initialized:
            # A hook came first and ran init() with an empty configuration.
            assert _rt.ctx is not None
            _rt.ctx._config = dict(_rt.config)
            print("fs-bus python runtime: fs-init came after the driver's init() ran (with an empty "
                  "configuration); ctx.getConfig() now returns the new one, init() is not run again",
                  file=sys.stderr, flush=True)
            return
        _maybe_init()

    def fs_exec(self, class_name: str, modules: list[tuple[str, bytes]]) -> None:
        _exec(class_name, modules)

    def fs_process(self, source_id: int, data: bytes) -> None:
        driver, ctx = _ready("process")
        try:
            driver.process(ctx, source_id, data)
        except BaseException as exc:
            _fail(f"{_rt.class_name}.process", exc)
            raise

    def fs_process_watermark(self, source_id: int, watermark: int) -> None:
        driver, ctx = _ready("process-watermark")
        try:
            driver.process_watermark(ctx, source_id, watermark)
        except BaseException as exc:
            _fail(f"{_rt.class_name}.process_watermark", exc)
            raise

    def fs_take_checkpoint(self, checkpoint_id: int) -> None:
        driver, ctx = _ready("take-checkpoint")
        try:
            driver.take_checkpoint(ctx, checkpoint_id)
        except BaseException as exc:
            _fail(f"{_rt.class_name}.take_checkpoint", exc)
            raise

    def fs_check_heartbeat(self) -> bool:
        driver, ctx = _ready("check-heartbeat")
        try:
            return bool(driver.check_heartbeat(ctx))
        except BaseException as exc:
            _fail(f"{_rt.class_name}.check_heartbeat", exc)
            raise

    def fs_close(self) -> None:
        driver, ctx = _rt.driver, _rt.ctx
        if driver is None or ctx is None:
            return  # nothing ran: nothing to close
        try:
            driver.close(ctx)
        except BaseException as exc:
            _fail(f"{_rt.class_name}.close", exc)
            raise
        finally:
            ctx._close_stores()

    def fs_custom(self, payload: bytes) -> bytes:
        driver, _ctx = _ready("custom")
        if type(driver).custom is FSProcessorDriver.custom:
            _refuse(f"{type(driver).__name__} does not define custom()")
        try:
            result = driver.custom(payload)
            if type(result) is not bytes:
                if not isinstance(result, (bytes, bytearray, memoryview)):
                    raise TypeError(f"custom() must return bytes, not {type(result).__name__}")
                result = bytes(result)
        except BaseException as exc:
            _fail(f"{_rt.class_name}.custom", exc)
            raise
        return result
