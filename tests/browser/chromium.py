"""A real Chromium for the tests, driven by Selenium through Debian's chromedriver. The
daemon serves in the test's event loop, so every driver call runs in a thread; every wait
is on the page's state, never a fixed sleep."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,900",
)
# How long a page may take to reach the state a test waits for, on a busy 2-core machine.
PATIENCE = 30.0

T = TypeVar("T")


def missing() -> list[str]:
    """What is not installed of Chromium and its driver."""
    return [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]


def start(profile: Path) -> WebDriver:
    """Chromium in a fresh profile; Selenium Manager stays offline (SE_OFFLINE, set by the
    caller) because both binaries are named."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(PATIENCE)
    return driver


class Browser:
    """What a person does in the browser, as awaitables; a screenshot of every page shown
    goes to `shots`, for the test's report when it fails."""

    def __init__(self, driver: WebDriver, shots: Path) -> None:
        self.driver = driver
        self.shots = shots
        self.taken: list[Path] = []

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    async def open(self, url: str) -> None:
        await self._run(self.driver.get, url)
        await self._shown()

    async def back(self) -> None:
        await self._navigate(self.driver.back)

    async def type(self, field: str, text: str) -> None:
        element = await self._run(self.driver.find_element, By.NAME, field)
        await self._run(element.clear)
        await self._run(element.send_keys, text)

    async def press(self, label: str) -> None:
        """Click the button and wait for the page it brings."""
        button = await self.button(label)
        await self._navigate(button.click)

    async def follow(self, link: str) -> None:
        """Click the link that reads `link` and wait for its page."""
        element = await self._run(self.driver.find_element, By.LINK_TEXT, link)
        await self._navigate(element.click)

    async def double_click(self, label: str) -> None:
        button = await self.button(label)
        await self._navigate(ActionChains(self.driver).double_click(button).perform)

    async def button(self, label: str) -> WebElement:
        return await self._run(self.driver.find_element, By.XPATH, f"//button[.='{label}']")

    async def chosen(self) -> str:
        """The button the link preselected."""
        element = await self._run(self.driver.find_element, By.CSS_SELECTOR, "button.chosen")
        return await self._run(lambda: element.text)

    async def buttons(self) -> list[str]:
        found = await self._run(self.driver.find_elements, By.TAG_NAME, "button")
        return [await self._run(lambda b=b: b.text) for b in found]

    async def heading(self) -> str:
        element = await self._run(self.driver.find_element, By.TAG_NAME, "h1")
        return await self._run(lambda: element.text)

    async def text(self) -> str:
        element = await self._run(self.driver.find_element, By.TAG_NAME, "body")
        return await self._run(lambda: element.text)

    async def value(self, field: str) -> str:
        element = await self._run(self.driver.find_element, By.NAME, field)
        return str(await self._run(element.get_attribute, "value"))

    async def wait_for_heading(self, heading: str) -> None:
        """Until the page's h1 reads `heading` (a double click may bring two pages)."""
        located = expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), heading)
        await self._until(located)
        await self._shown()

    async def _navigate(self, action: Callable[[], object]) -> None:
        """Do what leaves this page, and wait until the next one has loaded. (A new document
        has a new time origin; staleness of the old one's elements is not reliable: after a
        POST Chromium's driver may call them missing rather than stale.)"""
        before = await self._run(self.driver.execute_script, _DOCUMENT)
        await self._run(action)
        await self._until(lambda driver: _document(driver) not in (None, before[0]))
        await self._shown()

    async def _shown(self) -> None:
        """The page has loaded: its picture is taken, and it said nothing in the console."""
        await self._until(lambda driver: _document(driver) is not None)
        self.snapshot(await self._run(lambda: self.driver.title))
        complaints = await self._run(self.console)
        assert complaints == [], f"the page wrote to the console: {complaints}"

    async def _until(self, condition: Callable[[WebDriver], Any]) -> None:
        await self._run(WebDriverWait(self.driver, PATIENCE).until, condition)

    def snapshot(self, name: str) -> Path:
        """The page as it looks now, saved under `shots`."""
        self.shots.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "page"
        path = self.shots / f"{len(self.taken) + 1:02d}-{slug}.png"
        self.driver.save_screenshot(str(path))
        self.taken.append(path)
        return path

    def console(self) -> list[str]:
        """What the pages wrote to the console since the last call (a CSP violation, a
        failed load), but for the page's own status, which the tests check by its words."""
        own = f"{self.driver.current_url} - Failed to load resource: the server responded"
        logged = [str(entry["message"]) for entry in self.driver.get_log("browser")]
        return [message for message in logged if not message.startswith(own)]


_DOCUMENT = "return [performance.timeOrigin, document.readyState]"


def _document(driver: WebDriver) -> float | None:
    """The time origin of the document shown, once it has loaded; None before that."""
    try:
        origin, state = driver.execute_script(_DOCUMENT)
    except WebDriverException:  # between two documents: no script runs
        return None
    return float(origin) if state == "complete" else None
