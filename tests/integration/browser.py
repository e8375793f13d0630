"""A headless Chromium driven by Selenium, for the console's browser tests.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); Selenium
is pointed at ``/usr/bin/chromedriver`` so it never downloads a browser of its own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
