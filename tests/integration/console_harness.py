"""``fs-bus console`` as a process, and a headless Chromium driven by Selenium, for the console's tests.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); Selenium
is pointed at ``/usr/bin/chromedriver`` so it never downloads a browser of its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

from tests.integration.harness import ROOT, wait_until

CHROMIUM = os.environ.get("FS_BUS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FS_BUS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver"
# No sandbox (tests run as root in containers), no GPU, and nothing that calls home.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


def chromium(user_data_dir: Path):
    """A fresh headless Chromium; fails (never skips) with the command that installs it when missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) or shutil.which(p))]
    if missing:
        raise AssertionError(f"the console's browser tests need Debian's chromium and its driver, and "
                             f"{', '.join(missing)} is missing: run `{INSTALL}` (as .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


class ConsoleProcess:
    """``fs-bus console --port 0`` in its own OS process; ``url`` is the address it printed."""

    def __init__(self, bootstrap: str, namespace: str, workdir: Path, *args: str):
        self.log_path = workdir / f"console-{uuid.uuid4().hex[:6]}.log"
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fs_bus", "console", "-b", bootstrap, "--namespace", namespace, "--port", "0",
             "--interval", "0.5", *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT)
        log.close()
        found = wait_until(lambda: self._check_running() and re.search(r"fs-bus console: (http://\S+)", self.log()),
                           30, "the console's address")
        self.url = found.group(1)

    def _check_running(self) -> bool:
        assert self.proc.poll() is None, f"fs-bus console exited:\n{self.log()}"
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, dict]:
        return self.request("GET", path)

    def post(self, path: str, body: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict]:
        return self.request("POST", path, body if body is not None else {},
                            {"Content-Type": "application/json", **(headers or {})})

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=90) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def events(self, path: str, timeout: float = 60.0) -> Iterator[tuple[str, dict]]:
        """The server-sent events of ``path``: (event, data) pairs, as they come."""
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=timeout) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            event, data = "message", []
            for raw in r:
                line = raw.decode().rstrip("\n")
                if not line:
                    if data:
                        yield event, json.loads("\n".join(data))
                    event, data = "message", []
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# A type: python function that prints every record it sees: its lines reach the logs topic.
PRINTER_SOURCE = b'''
from fs_api import FSProcessorDriver, Context


class Printer(FSProcessorDriver):
    def process(self, ctx: Context, source_id: int, data: bytes) -> None:
        print(f"saw {data.decode()}", flush=True)
        ctx.emit(data, 0)
'''


def printer_config(bootstrap: str, namespace: str, source: str) -> str:
    return f"""\
name: printer
type: python
init_config:
  class_name: Printer
input-groups:
  - inputs:
      - input-type: kafka
        bootstrap_servers: "{bootstrap}"
        topic: {source}
        group_id: {source}-printer
        auto.offset.reset: earliest
outputs:
  - output-type: kafka
    bootstrap_servers: "{bootstrap}"
    topic: {source}-echoes
"""
