"""What the client checks of a function's code before anything goes to Kafka: that a
``.wasm`` is a component (:func:`check_component`), and the modules of a ``type:
python`` function, made into their bundle (:func:`_python_bundle`)."""

from __future__ import annotations

import ast
import keyword
from typing import Iterable, Sequence

from fs_bus.artifacts.python_bundle import _MODULE_RE as _MODULE_NAME_RE
from fs_bus.artifacts.python_bundle import PythonBundle
from fs_bus.artifacts.python_bundle import validate as validate_bundle
from fs_bus.errors import InvalidArtifact

WASM_MAGIC = b"\x00asm"
COMPONENT_LAYER = b"\x0d\x00\x01\x00"  # version 0x0d, layer 1: a component, not a core module


def check_component(data: bytes, what: str = "function") -> None:
    """Refuse what is not a WebAssembly component before it is uploaded."""
    if data[:4] != WASM_MAGIC:
        raise InvalidArtifact(f"{what} is not WebAssembly (no \\0asm header); a processor needs a .wasm component")
    if data[4:8] != COMPONENT_LAYER:
        raise InvalidArtifact(
            f"{what} is a core WebAssembly module, not a component; build it for the component model "
            "(e.g. `wasm-tools component new core.wasm -o component.wasm`)")


def _text(config_content: str | bytes) -> str:
    return config_content.decode() if isinstance(config_content, bytes) else config_content


def _python_bundle(class_name: str, modules: Sequence[tuple[str, bytes]],
                   packages: Iterable[str] | None) -> tuple[PythonBundle, frozenset[str]]:
    """Check create_python_function's arguments and make its bundle; raise before any I/O."""
    if not isinstance(class_name, str) or not class_name.isidentifier() or keyword.iskeyword(class_name):
        raise InvalidArtifact(f"class_name must be a Python class name (an identifier), not {class_name!r}")
    if isinstance(modules, (str, bytes)) or not isinstance(modules, (list, tuple)):
        raise InvalidArtifact(f"modules must be a list of (module name, source) pairs, not "
                              f"{type(modules).__name__}")
    if not modules:
        raise InvalidArtifact("a python function needs at least one module (the one defining its driver class)")
    pairs = []
    for i, item in enumerate(modules):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InvalidArtifact(f"modules[{i}] must be a (module name, source) pair, not {item!r:.80}")
        name, source = item
        if not isinstance(name, str) or not _MODULE_NAME_RE.fullmatch(name) or \
                any(keyword.iskeyword(part) for part in name.split(".")):
            raise InvalidArtifact(f"modules[{i}]: {name!r} is not a dotted Python module name (like pkg.mod)")
        if isinstance(source, str):
            source = source.encode()
        elif isinstance(source, (bytes, bytearray, memoryview)):
            source = bytes(source)
        else:
            raise InvalidArtifact(f"module {name!r}: source must be bytes or str, not {type(source).__name__}")
        try:
            compile(source, f"{name} (module of the python function)", "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise InvalidArtifact(f"module {name!r}, line {exc.lineno}: syntax error: {exc.msg}") from None
        except ValueError as exc:  # null bytes
            raise InvalidArtifact(f"module {name!r} is not Python source: {exc}") from None
        pairs.append((name, source))
    names = [n for n, _ in pairs]
    if packages is None:
        package_set = frozenset(n for n in names if any(other.startswith(n + ".") for other in names))
    else:
        package_set = frozenset(packages)
        unknown = sorted(package_set - set(names))
        if unknown:
            raise InvalidArtifact(f"packages {unknown} are not among the modules {names}")
    bundle = PythonBundle(class_name, tuple(pairs))
    validate_bundle(bundle)  # duplicate names etc.
    entry_name, entry_source = pairs[-1]
    if not _binds(entry_source, class_name):
        raise InvalidArtifact(
            f"class {class_name!r} is not defined in module {entry_name!r}, the last module; the module defining "
            "the driver class goes last")
    return bundle, package_set


def _binds(source: bytes, name: str) -> bool:
    """Whether the module may bind ``name`` at run time (leniently: anything it could be)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.partition(".")[0]) == name:
                    return True
        if isinstance(node, ast.Name) and node.id in ("globals", "setattr", "exec"):
            return True  # made at run time: leave it to the node
    return False
