"""`fs-bus produce` and `fs-bus consume` against the real broker: the walkthroughs' steps
without kcat (issue 17, point 8)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.harness import ROOT, create_topic, produce, read_topic


def fs_bus(bootstrap: str, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fs_bus", *args, "-b", bootstrap], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_produce_writes_each_line_or_value_with_its_key(bootstrap_servers, namespace):
    topic = f"{namespace}-words"
    create_topic(bootstrap_servers, topic)
    r = fs_bus(bootstrap_servers, "produce", topic, stdin="hello world hello\nbye\n")
    assert r.returncode == 0 and "produced 2 record(s)" in r.stderr, r.stderr
    assert fs_bus(bootstrap_servers, "produce", topic, "--key", "k", "v1", "v2").returncode == 0
    assert fs_bus(bootstrap_servers, "produce", topic, "-K", ":", stdin="a:1\n").returncode == 0
    got = [(m.key(), m.value()) for m in read_topic(bootstrap_servers, topic, 5)]
    assert got == [(None, b"hello world hello"), (None, b"bye"), (b"k", b"v1"), (b"k", b"v2"), (b"a", b"1")]


def test_consume_prints_what_is_there_and_exits_or_follows_for_n(bootstrap_servers, namespace):
    topic = f"{namespace}-out"
    create_topic(bootstrap_servers, topic)
    produce(bootstrap_servers, topic, [(b"k1", b"one"), (b"k2", b"two"), (None, b"three")])
    r = fs_bus(bootstrap_servers, "consume", topic)
    assert r.returncode == 0 and r.stdout == "one\ntwo\nthree\n", r.stderr

    r = fs_bus(bootstrap_servers, "consume", topic, "--offset", "-2", "-o", "json")
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["key"], d["value"], d["offset"]) for d in docs] == [("k2", "two", 1), (None, "three", 2)]

    r = fs_bus(bootstrap_servers, "consume", topic, "--print-key", "-n", "1")
    assert r.stdout == "k1\tone\n"

    follower = subprocess.Popen([sys.executable, "-m", "fs_bus", "consume", topic, "-f", "-n", "1", "-b",
                                 bootstrap_servers], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        # -f starts at the end: what is there already is not printed, the next record is.
        for attempt in range(100):
            produce(bootstrap_servers, topic, [(None, b"later")])
            try:
                out, err = follower.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
        assert follower.returncode == 0 and out == "later\n", err
    finally:
        follower.kill()


def test_consume_of_a_topic_that_does_not_exist_says_so(bootstrap_servers, namespace):
    r = fs_bus(bootstrap_servers, "consume", f"{namespace}-nothing")
    assert r.returncode == 1 and "does not exist" in r.stderr
