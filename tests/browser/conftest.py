"""One Chromium per test module (starting it costs more than most tests), a fresh page state
for each test, and the screenshots of a failed test's pages named in its report."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.chromium import Browser, missing, start
from tests.web.conftest import approving, http  # noqa: F401  (the same steps as the HTTP tests)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    absent = missing()
    if absent:
        pytest.skip(
            f"needs Chromium and chromedriver; not installed: {', '.join(absent)} "
            "(apt-get install chromium chromium-driver)"
        )
    with pytest.MonkeyPatch.context() as env:
        # Selenium Manager would otherwise report usage and look for drivers online.
        env.setenv("SE_AVOID_STATS", "true")
        env.setenv("SE_OFFLINE", "true")
        chromium = start(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.quit()


@pytest.fixture
def browser(driver: WebDriver, tmp_path: Path) -> Browser:
    driver.delete_all_cookies()
    driver.get("about:blank")
    driver.get_log("browser")  # what earlier tests left in the console
    return Browser(driver, tmp_path / "screenshots")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.when == "call" and report.failed and isinstance(browser, Browser):
        try:
            browser.snapshot("at-failure")
        except WebDriverException as exc:  # the browser itself is gone: say so, keep the rest
            browser.taken.append(Path(f"(no picture at the failure: {exc.msg})"))
        report.sections.append(
            ("browser screenshots", "\n".join(str(path) for path in browser.taken))
        )
    return report
