"""collect_modules finds a Python function's project modules; FsClient checks them before any Kafka I/O.

Every test builds a throw-away project in tmp_path, imports it, and forgets it after.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from fs_bus.artifacts.python_bundle import PythonBundle, pack, unpack
from fs_bus.client.python_modules import CollectedModules, collect_modules
from fs_bus.errors import InvalidArtifact, InvalidConfig

REPO = Path(__file__).resolve().parents[2]


def _real_driver_base() -> bool:
    try:
        from fs_bus.api import FSProcessorDriver  # noqa: F401
    except Exception:  # noqa: BLE001 - being written alongside; the tests then bring their own base
        return False
    return True


@pytest.fixture
def base_import(tmp_path, monkeypatch) -> str:
    """The line a driver module uses to import FSProcessorDriver.

    The real fs_bus.api when it is there; else a stand-in named FSProcessorDriver in a
    directory outside the project (so it is never collected either way).
    """
    if _real_driver_base():
        return "from fs_bus.api import FSProcessorDriver"
    ext = tmp_path / "ext"
    ext.mkdir()
    (ext / "fake_fs_api_base.py").write_text("class FSProcessorDriver:\n    pass\n")
    monkeypatch.syspath_prepend(str(ext))
    return "from fake_fs_api_base import FSProcessorDriver"


@pytest.fixture
def project(tmp_path, monkeypatch, base_import):
    """``project({"pkg/mod.py": source, ...})`` writes the files under tmp_path/proj and puts it on sys.path.

    ``{base}`` in a source becomes the FSProcessorDriver import. Modules imported from
    tmp_path are dropped from sys.modules at the end.
    """
    root = tmp_path / "proj"
    root.mkdir()
    before = set(sys.modules)

    def write(files: dict[str, str]) -> Path:
        for rel, source in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source).replace("{base}", base_import))
        importlib.invalidate_caches()
        return root

    monkeypatch.syspath_prepend(str(root))
    yield write
    top = os.path.realpath(tmp_path)
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        places = [getattr(module, "__file__", None) or "", *(getattr(module, "__path__", None) or [])]
        if any(isinstance(p, str) and p and os.path.realpath(p).startswith(top) for p in places):
            del sys.modules[name]


def _source(root: Path, rel: str) -> bytes:
    return (root / rel).read_bytes()


# --- what is collected, in which order --------------------------------------------


def test_driver_and_the_helper_it_imports_are_collected_helper_first(project):
    root = project({
        "helper.py": "def shout(s):\n    return s.upper()\n",
        "unused.py": "X = 1\n",
        "driver.py": """\
            {base}
            import helper

            class Upper(FSProcessorDriver):
                def process(self, ctx, source_id, data):
                    ctx.emit(helper.shout(data))
            """,
    })
    module = importlib.import_module("driver")
    bundle = collect_modules(module.Upper)
    assert isinstance(bundle, PythonBundle) and isinstance(bundle, CollectedModules)
    assert bundle.class_name == "Upper"
    assert bundle.module_names == ["helper", "driver"]
    assert bundle.entry_module == "driver"
    assert dict(bundle.modules) == {"helper": _source(root, "helper.py"), "driver": _source(root, "driver.py")}
    assert bundle.packages == frozenset()
    assert [Path(f).name for f in bundle.files] == ["helper.py", "driver.py"]


def test_a_package_with_relative_imports_collects_its_modules_and_init_files(project):
    project({
        "app/__init__.py": '"""The app."""\n',
        "app/util.py": "def f0():\n    return 0\n",
        "app/unused.py": "X = 1\n",
        "app/sub/__init__.py": "",
        "app/sub/mod.py": "from ..util import f0\n\ndef f():\n    return f0() + 1\n",
        "app/drv.py": """\
            from . import util
            from .sub.mod import f
            {base}

            class Driver(FSProcessorDriver):
                pass
            """,
    })
    module = importlib.import_module("app.drv")
    bundle = collect_modules(module.Driver)
    assert bundle.module_names == ["app", "app.util", "app.sub", "app.sub.mod", "app.drv"]
    assert bundle.packages == {"app", "app.sub"}
    assert bundle.entry_module == "app.drv"
    assert [Path(f).name for f in bundle.files] == ["__init__.py", "util.py", "__init__.py", "mod.py", "drv.py"]


def test_a_package_init_that_imports_the_driver_still_puts_the_driver_last(project):
    project({
        "pkg/__init__.py": "from .drv import Driver\nfrom . import helpers\n",
        "pkg/helpers.py": "Y = 2\n",
        "pkg/drv.py": "{base}\nfrom pkg import helpers\n\nclass Driver(FSProcessorDriver):\n    pass\n",
    })
    module = importlib.import_module("pkg")
    bundle = collect_modules(module.Driver)
    # pkg imports pkg.helpers, but a package still comes before its submodules.
    assert bundle.module_names == ["pkg", "pkg.helpers", "pkg.drv"]
    assert bundle.packages == {"pkg"}


def test_a_namespace_package_gets_an_empty_init_so_the_bundle_stands_alone(project):
    project({
        "nsp/part.py": "P = 1\n",
        "ns_drv.py": "{base}\nfrom nsp import part\n\nclass Ns(FSProcessorDriver):\n    pass\n",
    })
    bundle = collect_modules(importlib.import_module("ns_drv").Ns)
    assert bundle.module_names == ["nsp", "nsp.part", "ns_drv"]
    assert dict(bundle.modules)["nsp"] == b"" and bundle.packages == {"nsp"}


def test_modules_imported_only_inside_functions_are_found_without_being_imported(project):
    project({
        "lazy_dep.py": "Z = 3\n",
        "lazy_drv.py": """\
            {base}

            class Lazy(FSProcessorDriver):
                def open(self, ctx):
                    import lazy_dep
                    return lazy_dep.Z
            """,
    })
    module = importlib.import_module("lazy_drv")
    assert "lazy_dep" not in sys.modules
    assert collect_modules(module.Lazy).module_names == ["lazy_dep", "lazy_drv"]
    assert "lazy_dep" not in sys.modules  # found on sys.path, not imported


def test_stdlib_and_installed_packages_are_never_collected(project):
    root = project({
        "vendor/site-packages/vendored_lib.py": "V = 1\n",
        "vendor/dist-packages/debian_lib.py": "D = 1\n",
        "only_driver.py": """\
            import json
            import os.path
            import collections.abc
            from collections import abc, OrderedDict
            from os import path as p
            import pytest
            import yaml
            from yaml import safe_load
            import vendored_lib
            import debian_lib
            import fs_bus.errors
            from fs_client.config import WasmTaskBuilder
            import fs_api
            {base}

            class Only(FSProcessorDriver):
                pass
            """,
    })
    sys.path.append(str(root / "vendor" / "site-packages"))
    sys.path.append(str(root / "vendor" / "dist-packages"))
    try:
        module = importlib.import_module("only_driver")
        bundle = collect_modules(module.Only)
    finally:
        sys.path.remove(str(root / "vendor" / "site-packages"))
        sys.path.remove(str(root / "vendor" / "dist-packages"))
    assert bundle.module_names == ["only_driver"]
    assert bundle.packages == frozenset()


def test_an_import_cycle_between_local_modules_terminates(project):
    project({
        "cyc_a.py": "import cyc_b\n\ndef a():\n    return cyc_b.b()\n",
        "cyc_b.py": "import cyc_a\n\ndef b():\n    return 1\n",
        "cyc_drv.py": "{base}\nimport cyc_a\n\nclass Cyc(FSProcessorDriver):\n    pass\n",
    })
    module = importlib.import_module("cyc_drv")
    assert collect_modules(module.Cyc).module_names == ["cyc_b", "cyc_a", "cyc_drv"]


def test_a_cycle_through_the_driver_module_keeps_the_driver_last(project):
    project({
        "back.py": "import back_drv\n\ndef g():\n    return back_drv\n",
        "back_drv.py": "{base}\nimport back\n\nclass Back(FSProcessorDriver):\n    pass\n",
    })
    module = importlib.import_module("back_drv")
    assert collect_modules(module.Back).module_names == ["back", "back_drv"]


# --- a driver in a script run directly ------------------------------------------------


def _run(args: list[str], cwd: Path, base_import: str, tmp_path: Path) -> dict:
    paths = [str(REPO)]
    if "fake_fs_api_base" in base_import:
        paths.append(str(tmp_path / "ext"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


_REPORT = """
if __name__ == "__main__":
    import json
    from fs_bus.client.python_modules import collect_modules
    b = collect_modules({cls})
    print(json.dumps({{"modules": b.module_names, "entry": b.entry_module, "class": b.class_name,
                      "packages": sorted(b.packages), "last_source": b.modules[-1][1].decode()}}))
"""


def test_a_driver_in_a_script_run_directly_is_named_after_the_file(project, tmp_path, base_import):
    root = project({
        "helper.py": "def shout(s):\n    return s.upper()\n",
        "run_me.py": "{base}\nimport helper\n\nclass Main(FSProcessorDriver):\n    pass\n"
                     + _REPORT.format(cls="Main"),
    })
    out = _run([str(root / "run_me.py")], tmp_path, base_import, tmp_path)
    assert out["modules"] == ["helper", "run_me"]
    assert (out["entry"], out["class"], out["packages"]) == ("run_me", "Main", [])
    assert out["last_source"] == (root / "run_me.py").read_text()


def test_a_driver_in_a_module_run_with_dash_m_keeps_its_dotted_name(project, tmp_path, base_import):
    root = project({
        "app/__init__.py": "",
        "app/util.py": "U = 1\n",
        "app/main.py": "{base}\nfrom . import util\n\nclass Main(FSProcessorDriver):\n    pass\n"
                       + _REPORT.format(cls="Main"),
    })
    out = _run(["-m", "app.main"], root, base_import, tmp_path)
    assert out["modules"] == ["app", "app.util", "app.main"]
    assert (out["entry"], out["packages"]) == ("app.main", ["app"])


def test_a_main_module_is_simulated_in_process(project, monkeypatch):
    root = project({
        "dep_of_script.py": "D = 1\n",
        "script_like.py": "{base}\nimport dep_of_script\n\nclass S(FSProcessorDriver):\n    pass\n",
    })
    cls = importlib.import_module("script_like").S
    main = types.ModuleType("__main__")
    main.__file__ = str(root / "script_like.py")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(cls, "__module__", "__main__")
    bundle = collect_modules(cls)
    assert bundle.module_names == ["dep_of_script", "script_like"]


def test_a_script_whose_name_is_no_module_name_is_refused(project, monkeypatch):
    root = project({"ok_name.py": "{base}\n\nclass S(FSProcessorDriver):\n    pass\n"})
    (root / "my-script.py").write_text((root / "ok_name.py").read_text())
    cls = importlib.import_module("ok_name").S
    main = types.ModuleType("__main__")
    main.__file__ = str(root / "my-script.py")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(cls, "__module__", "__main__")
    with pytest.raises(InvalidArtifact, match=r"'my-script' is not a Python module name.*my_script\.py"):
        collect_modules(cls)


def test_a_driver_typed_into_a_repl_is_refused(project, monkeypatch):
    project({"repl_base.py": "{base}\n"})
    base = importlib.import_module("repl_base").FSProcessorDriver
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))  # a REPL's: no __file__
    cls = type("Typed", (base,), {"__module__": "__main__"})
    with pytest.raises(InvalidArtifact, match="interactive session"):
        collect_modules(cls)


# --- what is refused --------------------------------------------------------------------


def test_a_non_class_is_refused(project):
    project({"inst_drv.py": "{base}\n\nclass D(FSProcessorDriver):\n    def process(self, ctx, source_id, data):\n"
                            "        pass\n"})
    cls = importlib.import_module("inst_drv").D
    for value, kind in ((cls(), "D"), ("D", "str"), (None, "NoneType")):
        with pytest.raises(TypeError, match=f"driver_class must be a class, not an instance of {kind}"):
            collect_modules(value)
    with pytest.raises(InvalidArtifact):
        collect_modules(cls())


def test_a_class_that_is_not_a_driver_is_refused(project):
    project({"plain.py": "{base}\n\nclass Plain:\n    pass\n"})
    module = importlib.import_module("plain")
    with pytest.raises(InvalidArtifact, match="not a subclass of FSProcessorDriver"):
        collect_modules(module.Plain)
    with pytest.raises(InvalidArtifact, match="not FSProcessorDriver itself"):
        collect_modules(module.FSProcessorDriver)


def test_without_fs_bus_api_a_base_named_fsprocessordriver_is_enough(project, monkeypatch):
    project({"alone.py": "class FSProcessorDriver:\n    pass\n\nclass Mine(FSProcessorDriver):\n    pass\n\n"
                         "class Other:\n    pass\n"})
    module = importlib.import_module("alone")
    monkeypatch.setitem(sys.modules, "fs_bus.api", None)  # `from fs_bus.api import ...` raises ImportError
    assert collect_modules(module.Mine).module_names == ["alone"]
    with pytest.raises(InvalidArtifact, match="not a subclass of FSProcessorDriver"):
        collect_modules(module.Other)


def test_a_class_defined_inside_a_function_is_refused(project):
    project({"nest.py": "{base}\n\ndef make():\n    class Inner(FSProcessorDriver):\n        pass\n"
                        "    return Inner\n"})
    cls = importlib.import_module("nest").make()
    with pytest.raises(InvalidArtifact, match="top level of its module"):
        collect_modules(cls)


# --- the bundle -----------------------------------------------------------------------


def test_packing_the_collected_bundle_is_deterministic_and_unpacks_to_the_same_modules(project):
    project({
        "det/__init__.py": "",
        "det/util.py": "U = 'ü'\n",
        "det/drv.py": "{base}\nfrom .util import U\n\nclass Det(FSProcessorDriver):\n    pass\n",
    })
    bundle = collect_modules(importlib.import_module("det.drv").Det)
    first = pack(bundle, bundle.packages)
    assert bundle.pack() == first
    assert pack(collect_modules(importlib.import_module("det.drv").Det), bundle.packages) == first
    back, packages = unpack(first)
    assert back.class_name == "Det" and back.modules == bundle.modules and packages == {"det"}
    assert back.entry_module == "det.drv"


# --- FsClient: bad input is refused before any Kafka I/O --------------------------------

CONFIG = """\
name: py-fn
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: 127.0.0.1:9092
        topic: in
        group_id: g
outputs:
  - output-type: kafka
    bootstrap_servers: 127.0.0.1:9092
    topic: out
"""
DRIVER = b"from fs_bus.api import FSProcessorDriver\n\nclass D(FSProcessorDriver):\n    pass\n"


@pytest.fixture
def offline_client(monkeypatch):
    """An FsClient that fails the test on any Kafka I/O; ``created`` holds what reached ``_create``."""
    from fs_client import FsClient

    def no_io(*_a, **_k):
        raise AssertionError("Kafka I/O before the input was checked")

    client = FsClient(bootstrap_servers="127.0.0.1:9", namespace="t-offline")
    for attr in ("_read_control", "_read_status", "_producer_", "_ensure_topics", "_reader"):
        monkeypatch.setattr(client, attr, no_io)
    client.created = []
    return client


def _capture(client, monkeypatch):
    def create(config, text, artifact, kind, wait, timeout, replace=False, shadow=False):
        client.created.append((config, text, artifact, kind, wait, timeout))
        client.flags.append((replace, shadow))
        return True
    monkeypatch.setattr(client, "_create", create)
    client.flags = []


@pytest.mark.parametrize("class_name, modules, match", [
    ("D", [], "at least one module"),
    ("D", (), "at least one module"),
    ("D", "mod", "list of"),
    ("D", [("not-a-module", DRIVER)], "not a dotted Python module name"),
    ("D", [("pkg..mod", DRIVER)], "not a dotted Python module name"),
    ("D", [("pkg.class", DRIVER)], "not a dotted Python module name"),
    ("D", [("mod", DRIVER, b"x")], "pair"),
    ("D", [("mod", 42)], "source must be bytes"),
    ("D", [("mod", DRIVER), ("mod", DRIVER)], "given twice"),
    ("D", [("mod", b"def broken(:\n")], "line 1: syntax error"),
    ("not a class", [("mod", DRIVER)], "class name"),
    ("class", [("mod", DRIVER)], "class name"),
    (None, [("mod", DRIVER)], "class name"),
    ("Missing", [("mod", DRIVER)], "not defined in module 'mod', the last module"),
    ("D", [("mod", DRIVER), ("helper", b"X = 1\n")], "not defined in module 'helper'"),
])
def test_create_python_function_refuses_bad_modules_before_any_io(offline_client, class_name, modules, match):
    with pytest.raises(InvalidArtifact, match=match):
        offline_client.create_python_function(class_name, modules, CONFIG)


def test_create_python_function_refuses_a_processor_config_on_field_type(offline_client):
    with pytest.raises(InvalidConfig) as info:
        offline_client.create_python_function("D", [("mod", DRIVER)], CONFIG + "type: processor\n")
    assert info.value.field == "type"
    assert "'py-fn'" in str(info.value) and "type: python" in str(info.value)


@pytest.mark.parametrize("config, error", [
    ("name: [unclosed", InvalidConfig),
    (CONFIG.replace("name: py-fn", "name: 'bad name'"), InvalidConfig),
    (CONFIG + "type: lambda\n", InvalidConfig),
    ({"name": "py-fn"}, TypeError),
])
def test_create_python_function_refuses_a_bad_config_before_any_io(offline_client, config, error):
    with pytest.raises(error):
        offline_client.create_python_function("D", [("mod", DRIVER)], config)


def test_create_python_function_uploads_a_python_bundle(offline_client, monkeypatch):
    from fs_bus.control.records import ArtifactKind

    _capture(offline_client, monkeypatch)
    helper = b"X = 1\n"
    assert offline_client.create_python_function(
        "D", [("pkg", b""), ("pkg.helper", helper), ("pkg.mod", DRIVER)], CONFIG.encode(), wait=False,
        timeout=5) is True
    (config, text, artifact, kind, wait, timeout), = offline_client.created
    assert (config.name, config.type.value, text, kind, wait, timeout) == \
        ("py-fn", "python", CONFIG, ArtifactKind.PYTHON_MODULES, False, 5)
    bundle, packages = unpack(artifact)
    assert bundle == PythonBundle("D", (("pkg", b""), ("pkg.helper", helper), ("pkg.mod", DRIVER)))
    assert packages == {"pkg"}  # inferred: the prefix of other modules' names
    assert artifact == pack(bundle, packages)


def test_replace_and_shadow_reach_the_create(offline_client, monkeypatch):
    _capture(offline_client, monkeypatch)
    offline_client.create_python_function("D", [("mod", DRIVER)], CONFIG.encode(), wait=False, replace=True)
    offline_client.create_python_function("D", [("mod", DRIVER)], CONFIG.encode(), wait=False, shadow=True)
    offline_client.create_python_function("D", [("mod", DRIVER)], CONFIG.encode(), wait=False)
    assert offline_client.flags == [(True, False), (False, True), (False, False)]


def test_create_python_function_from_config_collects_the_driver_class(project, offline_client, monkeypatch):
    from fs_client.config import KafkaInput, KafkaOutput, WasmTaskBuilder

    _capture(offline_client, monkeypatch)
    project({
        "svc/__init__.py": "",
        "svc/helper.py": "H = 1\n",
        "svc/drv.py": "{base}\nfrom . import helper\n\nclass Svc(FSProcessorDriver):\n    pass\n",
    })
    cls = importlib.import_module("svc.drv").Svc
    config = (WasmTaskBuilder().set_name("svc")
              .add_input_group([KafkaInput("127.0.0.1:9092", "in", "g")])
              .add_output(KafkaOutput("127.0.0.1:9092", "out"))
              .build())
    assert offline_client.create_python_function_from_config(config, cls, wait=False) is True
    assert offline_client.create_python_function_from_config(config.to_yaml().encode(), cls, wait=False) is True
    first, second = offline_client.created
    assert first[2] == second[2]  # the same bytes, so the same artifact
    bundle, packages = unpack(first[2])
    assert [n for n, _ in bundle.modules] == ["svc", "svc.helper", "svc.drv"]
    assert bundle.class_name == "Svc" and packages == {"svc"}
    assert first[0].name == "svc" and first[0].type.value == "python"


def test_create_python_function_from_config_refuses_before_any_io(project, offline_client):
    from fs_client.config import WasmTaskBuilder

    project({"plain2.py": "class Plain:\n    pass\n"})
    config = WasmTaskBuilder().set_name("x").build()
    with pytest.raises(TypeError, match="not an instance of Plain"):
        offline_client.create_python_function_from_config(config, importlib.import_module("plain2").Plain())
    with pytest.raises(InvalidArtifact, match="not a subclass of FSProcessorDriver"):
        offline_client.create_python_function_from_config(config, importlib.import_module("plain2").Plain)
    with pytest.raises(TypeError, match="WasmTaskConfig or YAML"):
        offline_client.create_python_function_from_config({"name": "x"}, importlib.import_module("plain2").Plain)


def test_a_python_config_with_a_wasm_file_points_to_create_python_function(offline_client):
    import re

    wasm = b"\x00asm\x0d\x00\x01\x00"
    with pytest.raises(InvalidArtifact) as info:
        offline_client.create_function_from_bytes(wasm, CONFIG + "type: python\n")
    message = str(info.value)
    assert "'py-fn'" in message and "type 'python'" in message and "type: processor" in message
    advised = re.findall(r"\bcreate_\w+", message)
    assert "create_python_function" in advised
    assert all(hasattr(type(offline_client), name) for name in advised), advised
