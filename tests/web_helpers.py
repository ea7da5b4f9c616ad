"""A static file server and Debian's Chromium driven by Selenium, for tests/test_web.py and
docs/web_screenshot.py. Nothing is downloaded: the browser and its driver come from apt
(`apt-get install chromium chromium-driver`), onnxruntime-web from tests/js/node_modules."""

import contextlib
import functools
import http.server
import os
import pathlib
import shutil
import threading

REPO = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ORT_WEB = REPO / "tests" / "js" / "node_modules" / "onnxruntime-web"
INSTALL = "apt-get install chromium chromium-driver; cd tests/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci"
# Set by .ci/run, which installs everything: there a missing piece fails the tests instead of skipping them.
REQUIRED = bool(os.environ.get("GENZOO_REQUIRE_JS_TESTS"))


def skip_reason(reason):
    """`reason` to skip, or None where the tests are required (they then fail on what is missing)."""
    return None if REQUIRED else reason


def missing():
    """Why the browser tests cannot run here (None when they can, or when .ci/run requires them)."""
    return skip_reason(what_is_missing())


def what_is_missing():
    """What the browser tests lack here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) or shutil.which(os.path.basename(path))):
            return f"{path} is absent; install it with: {INSTALL}"
    if not (ORT_WEB / "dist").is_dir():
        return f"onnxruntime-web is not in {ORT_WEB}; install it with: {INSTALL}"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def static_server(folder):
    """Serve `folder` on 127.0.0.1 at a free port (a plain static server, as a user's); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=os.fspath(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium(width=1000, height=1000):
    """A headless Chromium (Debian's, with its own chromedriver) at a device scale factor of 1."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") if not os.path.isfile(CHROMIUM) else CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver_path = CHROMEDRIVER if os.path.isfile(CHROMEDRIVER) else shutil.which("chromedriver")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_script_timeout(120)
    return driver


def open_page(driver, url, timeout=120):
    """Load the page and wait until it is ready or has failed; returns window.genzoo's state."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.body.dataset.state") != "loading")
    return driver.execute_script("return window.genzoo.state")


def settle(driver):
    """Wait for the page's queued work (a redraw after a click) to finish."""
    driver.execute_async_script("const done = arguments[arguments.length - 1]; window.genzoo.busy.then(() => done(null));")
