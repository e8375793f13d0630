"""The console in a real headless browser (Debian's chromium), against a real broker and node.

``FS_BUS_CONSOLE_SCREENSHOTS=docs/img`` also saves the screenshots docs/console.md shows.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.console_harness import PRINTER_SOURCE, ConsoleProcess, chromium, printer_config
from tests.integration.harness import UPPER_WASM, create_topic, produce, upper_config

SHOTS = os.environ.get("FS_BUS_CONSOLE_SCREENSHOTS")


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium-profile")
    yield driver
    driver.quit()


class Page:
    """What a person does on the page, each step waiting for a condition (the page redraws at every tick)."""

    def __init__(self, driver, timeout: float = 60.0):
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = WebDriverWait(driver, timeout, poll_frequency=0.2,
                                  ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def until(self, condition, what: str):
        from selenium.common.exceptions import TimeoutException

        try:
            return self.wait.until(lambda _: condition())
        except TimeoutException:
            raise AssertionError(f"timed out waiting for {what}; the page shows:\n{self.text('main')[:2000]}") \
                from None

    def until_text(self, css: str, predicate, what: str) -> str:
        return self.until(lambda: (lambda t: t if predicate(t) else None)(self.text(css)), what)

    def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        self.until(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click() or True, f"clicking {css}")

    def exists(self, css: str) -> bool:
        from selenium.webdriver.common.by import By

        return bool(self.driver.find_elements(By.CSS_SELECTOR, css))

    def shoot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(SHOTS) / f"console-{name}.png"))

    def shoot_both_themes(self, name: str) -> None:
        if SHOTS:
            self.shoot(f"{name}-light")
            self.click("#theme-toggle")
            self.until(lambda: self.driver.execute_script("return document.documentElement.dataset.theme") == "dark",
                       "the dark theme")
            self.shoot(f"{name}-dark")
            self.click("#theme-toggle")


def count(text: str) -> int:
    return int(text.replace(",", "")) if text.replace(",", "").isdigit() else -1


def test_an_operator_sees_both_functions_watches_records_flow_reads_a_log_line_and_stops_one(
        bootstrap_servers, namespace, client, nodes, tmp_path, browser):
    words, src = f"{namespace}-words", f"{namespace}-in"
    create_topic(bootstrap_servers, words)
    create_topic(bootstrap_servers, src, partitions=2)
    nodes("n1", args=("--label", "zone=a"))
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                             upper_config(bootstrap_servers, "upper", src, f"{src}-out"))
    assert client.create_python_function("Printer", [("printer_fn", PRINTER_SOURCE)],
                                         printer_config(bootstrap_servers, namespace, words))
    console = ConsoleProcess(bootstrap_servers, namespace, tmp_path, "--allow-writes")
    try:
        page = Page(browser)
        browser.get(console.url)
        # Both functions, with their status and the partitions each node holds.
        page.until_text('tr[data-function="upper"] .placement', lambda t: f"{src}:0" in t and f"{src}:1" in t,
                        "upper's two partitions on n1")
        page.until_text('tr[data-function="printer"] .placement', lambda t: f"n1 → {words}:0" in t,
                        "printer's partition on n1")
        # (A node may report a transient failure, and retry, just after an input topic is created.)
        page.until_text('tr[data-function="upper"] .status', lambda t: t == "RUNNING", "upper RUNNING")
        page.until_text('tr[data-function="printer"] .status', lambda t: t == "RUNNING", "printer RUNNING")
        assert page.text("#mode") == "writes allowed"

        # A record count that rises while records flow, without reloading the page.
        page.until_text('tr[data-function="upper"] .records-in', lambda t: count(t) == 0, "upper's count at 0")
        produce(bootstrap_servers, src, [(f"k{i}".encode(), b"v") for i in range(30)])
        page.until_text('tr[data-function="upper"] .records-in', lambda t: count(t) == 30, "upper's count at 30")
        produce(bootstrap_servers, src, [(f"k{i}".encode(), b"v") for i in range(70)])
        page.until_text('tr[data-function="upper"] .records-in', lambda t: count(t) == 100, "upper's count at 100")
        page.until_text('tr[data-function="upper"] .in-rate', lambda t: t not in ("—", "0.0/s"), "a rate above 0")
        page.shoot_both_themes("functions")

        # A function's page shows a line it logged, live.
        page.click('tr[data-function="printer"] a')
        page.until_text("h1", lambda t: "printer" in t, "printer's page")
        produce(bootstrap_servers, words, [(None, b"hello console")])
        page.until_text("#logs", lambda t: "stdout: saw hello console" in t, "the logged line")
        assert page.text("#artifact").startswith("sha256")
        page.shoot_both_themes("function")

        # STOP, confirmed in a dialog, goes through to the nodes and the page shows it.
        page.click("#action-stop")
        page.until(lambda: browser.find_element("css selector", "#confirm").is_displayed(), "the confirmation")
        assert "STOP FUNCTION printer?" in page.text("#confirm-title")
        page.click("#confirm-ok")
        page.until_text("#function-status", lambda t: t == "STOPPED", "printer STOPPED on its page")
        assert client.describe_function("printer").desired == "STOPPED"
        assert client.describe_function("upper").desired == "RUNNING"
        page.until_text("#history", lambda t: "STOPPED" in t, "the new revision in the history")

        page.click("#nav-nodes")
        page.until_text('tr[data-node="n1"]', lambda t: "alive" in t and "upper" in t, "n1 on the nodes page")
        page.until_text('tr[data-node="n1"] .labels', lambda t: t == "zone=a", "n1's label")
        page.until_text('tr[data-node="n1"] .memory', lambda t: t.endswith("MiB"), "n1's memory")
        page.shoot_both_themes("nodes")
    finally:
        console.close()


def test_a_read_only_console_offers_no_way_to_change_anything(bootstrap_servers, namespace, client, nodes,
                                                               tmp_path, browser):
    src = f"{namespace}-in"
    create_topic(bootstrap_servers, src)
    nodes("n1")
    assert client.create_function_from_bytes(UPPER_WASM.read_bytes(),
                                             upper_config(bootstrap_servers, "upper", src, f"{src}-out"))
    console = ConsoleProcess(bootstrap_servers, namespace, tmp_path)
    try:
        page = Page(browser)
        browser.get(console.url + "#/functions/upper")
        page.until_text("#function-status", lambda t: t == "RUNNING", "upper's page")
        assert page.text("#mode") == "read-only"
        assert not page.exists("main button") and not page.exists("#create") and not page.exists("main input")
        browser.get(console.url + "#/functions")
        page.until(lambda: page.exists('tr[data-function="upper"]'), "the functions page")
        assert not page.exists("main button") and not page.exists("#create")
        # Even a request made by hand from the page is refused.
        status = browser.execute_async_script(
            "const done = arguments[0];"
            "fetch('/api/functions/upper/stop', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: '{}'}).then(r => done(r.status));")
        assert status == 403
        assert client.describe_function("upper").desired == "RUNNING"
    finally:
        console.close()
