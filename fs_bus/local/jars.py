"""The Kafka broker's jars: pinned by a lock file, fetched from a Maven repository, sha256-checked.

The lock, ``kafka-<version>.lock`` beside this module, names every jar a broker of that
Kafka version runs with (``org.apache.kafka:kafka_2.13`` and its runtime dependencies,
plus log4j's slf4j binding) by its path in a Maven repository, with its sha256 and size.
It was generated once from what ``mvn`` resolves for ``pom.xml`` (``python3 -m
fs_bus.local.jars 4.1.1`` writes it again) and a test checks that it still matches.
Fetching is then plain GETs, so a machine needs neither Maven nor a resolver, and a
mirror is any URL that serves the Maven layout (``FS_BUS_MAVEN_REPOSITORY``).

Cache layout, under ``$FS_BUS_CACHE_DIR`` or ``~/.cache/fs-bus``::

    kafka-<version>/lib/*.jar   the classpath: exactly the lock's jars
    kafka-<version>/.complete   the sha256 of the lock the jars were checked against
    kafka-<version>.lock        flock'ed while lib/ is filled
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fs_bus.errors import LocalClusterError

DEFAULT_REPOSITORY = "https://repo1.maven.org/maven2/"
REPOSITORY_ENV = "FS_BUS_MAVEN_REPOSITORY"
MARKER = ".complete"

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Downloads run a few at a time: each jar is a separate request, and the round trips,
# not the bandwidth, are most of the time of ~46 small files.
_WORKERS = 4
_ATTEMPTS = 3
_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LockedJar:
    path: str  # in a Maven repository: org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.jar
    sha256: str
    size: int

    @property
    def file_name(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True)
class JarLock:
    kafka_version: str
    jars: tuple[LockedJar, ...]

    @property
    def total_size(self) -> int:
        return sum(j.size for j in self.jars)

    @property
    def digest(self) -> str:
        """Names this exact set of jars: the cache marker, so a changed lock refills lib/."""
        return hashlib.sha256(format_lock(self).encode()).hexdigest()


# --- the lock file (pure) -----------------------------------------------------


def maven_path(group: str, artifact: str, version: str, classifier: str = "", extension: str = "jar") -> str:
    """Where a Maven repository keeps an artifact (the layout every mirror serves)."""
    suffix = f"-{classifier}" if classifier else ""
    return f"{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}{suffix}.{extension}"


def format_lock(lock: JarLock) -> str:
    lines = [
        f"# The jars of a Kafka {lock.kafka_version} broker as `mvn dependency:list` resolves",
        "# fs_bus/local/pom.xml: org.apache.kafka:kafka_2.13, its runtime dependencies and",
        "# log4j's slf4j binding. Regenerate with `python3 -m fs_bus.local.jars "
        f"{lock.kafka_version}` (needs mvn).",
        "# sha256 size path-in-a-maven-repository",
    ]
    lines += [f"{j.sha256} {j.size} {j.path}" for j in sorted(lock.jars, key=lambda j: j.path)]
    return "\n".join(lines) + "\n"


def parse_lock(text: str, kafka_version: str, source: str) -> JarLock:
    """The lock in ``text``; LocalClusterError naming ``source`` and the line if it is malformed."""
    jars: list[LockedJar] = []
    names: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        def bad(why: str) -> LocalClusterError:
            return LocalClusterError(f"{source}, line {number}: {why}: {raw!r}; "
                                     f"expected '<sha256> <size> <path>' (regenerate it with "
                                     f"python3 -m fs_bus.local.jars {kafka_version})")

        fields = line.split()
        if len(fields) != 3:
            raise bad("not three fields")
        sha, size, path = fields
        if not _SHA256.fullmatch(sha):
            raise bad("the sha256 is not 64 lower-case hex digits")
        if not size.isdigit():
            raise bad("the size is not a number of bytes")
        parts = path.split("/")
        if not path.endswith(".jar") or path.startswith("/") or ".." in parts or "" in parts:
            raise bad("the path is not a relative path to a .jar")
        jar = LockedJar(path=path, sha256=sha, size=int(size))
        if jar.file_name in names:
            # lib/ is flat: two jars of one name would overwrite each other.
            raise bad(f"a second jar named {jar.file_name}")
        names.add(jar.file_name)
        jars.append(jar)
    if not jars:
        raise LocalClusterError(f"{source} names no jars; regenerate it with python3 -m fs_bus.local.jars {kafka_version}")
    return JarLock(kafka_version=kafka_version, jars=tuple(jars))


def lock_file_name(kafka_version: str) -> str:
    return f"kafka-{kafka_version}.lock"


def load_lock(kafka_version: str) -> JarLock | None:
    """The lock shipped in the package for this Kafka version, or None (not pinned)."""
    ref = resources.files("fs_bus.local").joinpath(lock_file_name(kafka_version))
    if not ref.is_file():
        return None
    return parse_lock(ref.read_text(), kafka_version, f"fs_bus/local/{lock_file_name(kafka_version)}")


def repository_url(env: Mapping[str, str] | None = None) -> str:
    """The Maven repository to fetch from: ``$FS_BUS_MAVEN_REPOSITORY`` or Maven Central."""
    env = os.environ if env is None else env
    url = env.get(REPOSITORY_ENV, "").strip() or DEFAULT_REPOSITORY
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http", "file"):
        raise LocalClusterError(
            f"{REPOSITORY_ENV}={url!r} is not an https://, http:// or file:// URL; set it to the root "
            f"of a Maven repository (the URL that {DEFAULT_REPOSITORY} stands for), e.g. "
            f"https://nexus.example.com/repository/maven-central/ or file://$HOME/.m2/repository"
        )
    return url if url.endswith("/") else url + "/"


def jar_url(repository: str, jar: LockedJar) -> str:
    return repository + jar.path


# --- fetching into lib/ -----------------------------------------------------------


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, jar: LockedJar) -> bool:
    try:
        return path.stat().st_size == jar.size and _sha256_of(path) == jar.sha256
    except OSError:
        return False


def stale_jars(lock: JarLock, lib: Path) -> list[LockedJar]:
    """The lock's jars that ``lib`` lacks, after removing every file the lock does not name.

    Jars already there and matching the lock are kept (an interrupted download resumes,
    and a cache filled by an older fs-bus through ``mvn`` is taken over as it is); any
    other file goes, so nothing but the lock's jars is ever on the classpath.
    """
    lib.mkdir(parents=True, exist_ok=True)
    wanted = {j.file_name for j in lock.jars}
    for stray in lib.iterdir():
        if stray.name not in wanted:
            if stray.is_dir() and not stray.is_symlink():
                shutil.rmtree(stray)
            else:
                stray.unlink()
    return [j for j in lock.jars if not _verified(lib / j.file_name, j)]


def sync_jars(lock: JarLock, lib: Path, repository: str, *, progress: Progress | None = None) -> int:
    """Make ``lib`` hold exactly the lock's jars, each sha256-checked; returns the bytes fetched."""
    missing = stale_jars(lock, lib)
    fetch_jars(missing, lib, repository, progress=progress, total=lock.total_size)
    return sum(j.size for j in missing)


def fetch_jars(
    missing: list[LockedJar], lib: Path, repository: str, *, progress: Progress | None = None,
    total: int | None = None,
) -> None:
    """Download ``missing`` from ``repository`` into ``lib``, each checked against its sha256.

    ``progress`` sees the bytes of the whole set (``total``, the jars already there
    counting as done), so a resumed download's bar starts where the last one stopped.
    """
    lib.mkdir(parents=True, exist_ok=True)
    want = sum(j.size for j in missing)
    total = want if total is None else total
    done = total - want
    guard = threading.Lock()

    def advance(n: int) -> None:
        nonlocal done
        with guard:
            done += n
            if progress is not None:
                progress(done, total)

    advance(0)
    with concurrent.futures.ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        futures = [pool.submit(_fetch, jar, repository, lib, advance) for jar in missing]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _fetch(jar: LockedJar, repository: str, lib: Path, advance: Callable[[int], None]) -> None:
    url = jar_url(repository, jar)
    part = lib / f".{jar.file_name}.part"
    for attempt in range(1, _ATTEMPTS + 1):
        got = 0
        try:
            h = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(part, "wb") as out:
                for block in iter(lambda: response.read(1 << 16), b""):
                    h.update(block)
                    out.write(block)
                    got += len(block)
                    advance(len(block))
        except urllib.error.HTTPError as e:
            part.unlink(missing_ok=True)
            advance(-got)
            # A 404 will not go away by asking again: the mirror does not have the jar.
            if e.code < 500 or attempt == _ATTEMPTS:
                raise LocalClusterError(
                    f"downloading {url} failed: HTTP {e.code} {e.reason}; does {REPOSITORY_ENV} "
                    f"({repository}) serve Maven Central's layout?"
                ) from e
        except (urllib.error.URLError, OSError) as e:
            part.unlink(missing_ok=True)
            advance(-got)
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            if isinstance(e, urllib.error.URLError) and isinstance(reason, FileNotFoundError):
                # A file:// mirror without the jar: asking again will not help.
                raise LocalClusterError(
                    f"{url} does not exist; does {REPOSITORY_ENV} ({repository}) name the root of a "
                    f"Maven repository (the folder holding org/, com/, ...)?"
                ) from e
            if attempt == _ATTEMPTS:
                raise LocalClusterError(
                    f"downloading {url} failed after {_ATTEMPTS} attempts: {reason}; check the network "
                    f"(https_proxy is honoured), or set {REPOSITORY_ENV} to a reachable Maven mirror, or "
                    f"KAFKA_HOME to an unpacked Kafka distribution"
                ) from e
        else:
            if got != jar.size or h.hexdigest() != jar.sha256:
                part.unlink(missing_ok=True)
                raise LocalClusterError(
                    f"{url} is not the jar fs-bus pins: got {got} bytes with sha256 {h.hexdigest()}, "
                    f"expected {jar.size} bytes with sha256 {jar.sha256} (the lock file in fs_bus/local); "
                    f"the repository ({repository}) serves a different file: point {REPOSITORY_ENV} "
                    f"at a faithful mirror of Maven Central"
                )
            os.replace(part, lib / jar.file_name)
            return
        time.sleep(0.5 * attempt)  # a transient failure (reset, 5xx): back off, then ask again


# --- the cache ----------------------------------------------------------------------


def default_cache_dir() -> Path:
    env = os.environ.get("FS_BUS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fs-bus"


def _marker_matches(root: Path, expected: str, kafka_version: str) -> bool:
    try:
        text = (root / MARKER).read_text().strip()
    except OSError:
        return False
    return text == expected and (root / "lib" / f"kafka_2.13-{kafka_version}.jar").is_file()


def cached_lib(
    cache_dir: Path | None,
    kafka_version: str,
    *,
    java: str,
    quiet: bool = False,
) -> Path:
    """``<cache>/kafka-<version>/lib``, holding the broker's jars; fetched on first use.

    From the package's lock when it pins ``kafka_version`` (Maven Central or
    ``$FS_BUS_MAVEN_REPOSITORY``); for any other version through ``mvn``, which then must
    be installed (``java`` is the JVM it runs on).
    """
    root = (cache_dir or default_cache_dir()).expanduser() / f"kafka-{kafka_version}"
    lock = load_lock(kafka_version)
    expected = lock.digest if lock is not None else f"mvn {kafka_version}"
    if _marker_matches(root, expected, kafka_version):
        return root / "lib"
    root.mkdir(parents=True, exist_ok=True)
    # Two processes (CI's pre-fetch and a test run, two shells) must not fill the same
    # lib/ at once; the second one waits and then finds it complete.
    with open(root.parent / f"kafka-{kafka_version}.lock", "w") as flock:
        fcntl.flock(flock, fcntl.LOCK_EX)
        if not _marker_matches(root, expected, kafka_version):
            (root / MARKER).unlink(missing_ok=True)
            if lock is not None:
                _fill_from_lock(root / "lib", lock, quiet=quiet)
            else:
                _fill_with_maven(root, kafka_version, java=java, quiet=quiet)
            (root / MARKER).write_text(expected + "\n")
    return root / "lib"


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def _fill_from_lock(lib: Path, lock: JarLock, *, quiet: bool) -> None:
    missing = stale_jars(lock, lib)
    if not missing:
        return  # all there and verified (a cache an older fs-bus filled with mvn)
    repository = repository_url()
    size = sum(j.size for j in missing)
    _say(quiet, f"fs-bus: fetching Kafka {lock.kafka_version}'s jars ({len(missing)} files, {size / 1e6:.0f} MB, "
                f"sha256-checked) from {repository} into {lib} (once)...")
    started = time.monotonic()
    bar = None
    if not quiet:
        from rich.console import Console

        from fs_bus.cli.progress import TransferBar

        bar = TransferBar(f"Kafka {lock.kafka_version} jars", Console(stderr=True))
    try:
        fetch_jars(missing, lib, repository, progress=bar, total=lock.total_size)
    finally:
        if bar is not None:
            bar.close()
    _say(quiet, f"fs-bus: {len(lock.jars)} jars ready in {time.monotonic() - started:.1f} s")


# --- mvn: the lock's source, and the way to any version the package does not pin -------


@dataclass(frozen=True)
class ResolvedJar:
    path: str  # in a Maven repository
    file: Path  # where mvn put it (its local repository)


_LISTED = re.compile(
    r"^\s*(?P<group>[^:\s]+):(?P<artifact>[^:]+):(?P<type>[^:]+)(?::(?P<classifier>[^:]+))?"
    r":(?P<version>[^:]+):(?P<scope>compile|runtime|provided|system):(?P<file>.+?)(?: -- module .*)?$"
)


def parse_dependency_list(text: str) -> list[ResolvedJar]:
    """The jars in what ``mvn dependency:list -DoutputAbsoluteArtifactFilename=true`` wrote."""
    resolved: list[ResolvedJar] = []
    for line in text.splitlines():
        m = _LISTED.match(line)
        if m is None or m["type"] != "jar":
            continue
        path = maven_path(m["group"], m["artifact"], m["version"], m["classifier"] or "")
        file = Path(m["file"].strip())
        if file.name != path.rpartition("/")[2]:
            raise LocalClusterError(f"mvn listed {file} for {path}: the names disagree")
        resolved.append(ResolvedJar(path=path, file=file))
    return resolved


def resolve_with_maven(
    kafka_version: str, workdir: Path, *, java: str | None = None, mvn: str | None = None,
) -> list[ResolvedJar]:
    """What ``mvn`` (default: the one on PATH) resolves for the package's ``pom.xml`` at
    ``kafka_version`` (runtime scope), each jar where Maven's local repository keeps it."""
    mvn = mvn or shutil.which("mvn")
    if not mvn:
        raise LocalClusterError(
            f"resolving the jars of Kafka {kafka_version} needs Maven, but `mvn` was not found "
            f"(apt-get install maven); fs-bus pins only the versions it has a lock file for"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    pom = workdir / "pom.xml"
    pom.write_text(resources.files("fs_bus.local").joinpath("pom.xml").read_text())
    listed = workdir / "dependencies.txt"
    env = dict(os.environ)
    if java is not None:
        env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
    cmd = [mvn, "-B", "-f", str(pom), f"-Dkafka.version={kafka_version}", "dependency:list",
           "-DincludeScope=runtime", "-DoutputAbsoluteArtifactFilename=true", f"-DoutputFile={listed}"]
    log_path = workdir / "mvn.log"
    with open(log_path, "w") as log:
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=workdir, env=env, check=False).returncode
        except OSError as e:
            raise LocalClusterError(f"cannot run {mvn}: {e}") from e
    if rc != 0 or not listed.is_file():
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-20:]).rstrip()
        raise LocalClusterError(
            f"resolving Kafka {kafka_version} with Maven failed (exit {rc}); is Maven Central reachable "
            f"and does that version exist? Full log: {log_path}\n{tail}"
        )
    resolved = parse_dependency_list(listed.read_text())
    if not any(r.file.name == f"kafka_2.13-{kafka_version}.jar" for r in resolved):
        raise LocalClusterError(f"mvn resolved no kafka_2.13-{kafka_version}.jar; see {log_path}")
    return resolved


def lock_from_resolved(kafka_version: str, resolved: Iterable[ResolvedJar]) -> JarLock:
    jars = tuple(LockedJar(path=r.path, sha256=_sha256_of(r.file), size=r.file.stat().st_size) for r in resolved)
    return JarLock(kafka_version=kafka_version, jars=tuple(sorted(jars, key=lambda j: j.path)))


def _fill_with_maven(root: Path, kafka_version: str, *, java: str, quiet: bool) -> None:
    lib = root / "lib"
    _say(quiet, f"fs-bus: fs-bus pins no jars for Kafka {kafka_version}; resolving them with mvn into {lib} "
                f"(once, ~45 MB)...")
    started = time.monotonic()
    resolved = resolve_with_maven(kafka_version, root / "mvn", java=java)
    # Whatever lib/ held is the remains of another set: start clean so no jar of
    # another version lingers on the classpath.
    shutil.rmtree(lib, ignore_errors=True)
    lib.mkdir(parents=True)
    for r in resolved:
        shutil.copyfile(r.file, lib / r.file.name)
    _say(quiet, f"fs-bus: {len(resolved)} jars ready in {time.monotonic() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    """``python3 -m fs_bus.local.jars VERSION``: write ``fs_bus/local/kafka-VERSION.lock`` from mvn."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m fs_bus.local.jars KAFKA_VERSION   (writes fs_bus/local/kafka-KAFKA_VERSION.lock)",
              file=sys.stderr)
        return 2
    kafka_version = args[0]
    with tempfile.TemporaryDirectory(prefix="fs-bus-lock-") as tmp:
        lock = lock_from_resolved(kafka_version, resolve_with_maven(kafka_version, Path(tmp)))
    target = Path(__file__).with_name(lock_file_name(kafka_version))
    target.write_text(format_lock(lock))
    print(f"wrote {target}: {len(lock.jars)} jars, {lock.total_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
