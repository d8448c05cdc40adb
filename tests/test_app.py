"""The web app (radvlm_grpo.app, app/app.py), end to end in a real headless browser: Debian's chromium driven by
selenium through chromedriver, against the tiny model served by Gradio on localhost.

The browser test uploads a synthetic X-ray, runs anatomical grounding, and reads the answer, the boxes and the result
image back from the page; the image must be, pixel for pixel, the model's boxes drawn on the uploaded image. Its
screenshot goes to ``$RADVLM_APP_SCREENSHOT`` (default: the test's temporary folder) and is named in the output.
"""

import ast
import base64
import io
import os
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import GROUNDING_ANSWER, GROUNDING_SUBJECT
from PIL import Image

from radvlm_grpo.models.generation import SamplingSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
BROWSER_MISSING = not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK))

gr = pytest.importorskip("gradio", reason='the app extra is not installed: pip install -e ".[app]"')
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from radvlm_grpo.app.page import AppArguments, build_app, make_handler  # noqa: E402
from radvlm_grpo.models.inference import PRED_COLOR, draw_boxes, load_predictor  # noqa: E402
from radvlm_grpo.vocab.boxes import parse_boxes  # noqa: E402


@pytest.fixture(scope="module")
def predictor(grounding_model_dir):
    return load_predictor(str(grounding_model_dir), sampling=SamplingSettings(max_new_tokens=40), batch_size=1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_handler_answers_and_refuses_with_messages(predictor, xray_png):
    run = make_handler(predictor)
    image = Image.open(xray_png)
    answer, boxes, drawn = run(image, "anatomical_grounding", GROUNDING_SUBJECT)
    assert answer == GROUNDING_ANSWER and boxes == "1: [0.12, 0.2, 0.45, 0.85]"
    assert drawn.size == image.size
    report, no_boxes, shown = run(image, "report_generation", "ignored for reports")
    assert isinstance(report, str) and no_boxes == "" and shown.size == image.size
    with pytest.raises(gr.Error, match="Upload a chest X-ray first"):
        run(None, "report_generation", "")
    with pytest.raises(gr.Error, match="phrase_grounding needs what to locate: the phrase"):
        run(image, "phrase_grounding", " ")


def test_the_app_names_its_checkpoint(monkeypatch):
    from radvlm_grpo.cli import UserError

    monkeypatch.delenv("RADVLM_MODEL", raising=False)
    with pytest.raises(UserError, match="--model_name_or_path MODEL, or set RADVLM_MODEL=MODEL"):
        AppArguments()
    monkeypatch.setenv("RADVLM_MODEL", "me/RadVLM-GRPO")
    assert AppArguments().model_name_or_path == "me/RadVLM-GRPO"


def _pins(setup_source: str) -> tuple[dict[str, str], list[str]]:
    tree = ast.parse(setup_source)
    values = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    deps = ast.literal_eval(values["_deps"])
    names = [arg.value for arg in values["install_requires"].args]
    return {re.match(r"[^!=<>~ ]+", d).group(): d for d in deps}, names


def test_the_space_requirements_are_the_package_pins():
    pins, install_requires = _pins((REPO_ROOT / "setup.py").read_text())
    lines = (REPO_ROOT / "app/requirements.txt").read_text().splitlines()
    required = sorted(line for line in lines if line and not line.startswith("#"))
    assert required == sorted(pins[name] for name in [*install_requires, "gradio"])
    front_matter = (REPO_ROOT / "app/README.md").read_text().split("---")[1]
    assert f"sdk_version: {pins['gradio'].split('==')[1]}" in front_matter and "app_file: app.py" in front_matter


# ---------------------------------------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_url(predictor):
    # Gradio's server-side rendering starts a Node.js server and installs SIGTERM/SIGINT handlers in this process; a
    # later test that forks (datasets' num_proc pools) then cannot terminate its workers. The page needs no SSR.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    app = build_app(predictor)
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        yield app.local_url
    finally:
        app.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.fixture
def browser(tmp_path):
    if BROWSER_MISSING:
        pytest.skip(
            f"chromium and chromedriver are not installed ({CHROMIUM}, {CHROMEDRIVER}): `apt-get install chromium "
            "chromium-driver` (what `make install` does as root)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


READ_IMAGE = """
const done = arguments[arguments.length - 1];
fetch(arguments[0]).then(r => r.blob()).then(blob => {
  const reader = new FileReader();
  reader.onload = () => done(reader.result);
  reader.readAsDataURL(blob);
}).catch(e => done("error: " + e));
"""


def test_the_page_grounds_an_uploaded_xray(app_url, browser, xray_png, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    started = time.perf_counter()
    browser.get(app_url)
    upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#xray input[type=file]")))
    upload.send_keys(str(xray_png))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#xray img")))
    task = browser.find_element(By.XPATH, "//*[@id='task']//label[normalize-space()='Anatomical region']")
    task.click()
    browser.find_element(By.CSS_SELECTOR, "#subject textarea, #subject input").send_keys(GROUNDING_SUBJECT)
    browser.find_element(By.CSS_SELECTOR, "#run").click()

    answer_box = browser.find_element(By.CSS_SELECTOR, "#answer textarea")
    wait.until(lambda _: answer_box.get_property("value"))
    result = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#result img")))
    answer = answer_box.get_property("value")
    boxes = browser.find_element(By.CSS_SELECTOR, "#boxes textarea, #boxes input").get_property("value")
    data_url = browser.execute_async_script(READ_IMAGE, result.get_attribute("src"))
    screenshot = Path(os.environ.get("RADVLM_APP_SCREENSHOT") or tmp_path / "app_page.png")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(screenshot))
    print(f"screenshot of the page: {screenshot} ({time.perf_counter() - started:.1f} s in the browser)")

    assert answer == GROUNDING_ANSWER
    assert boxes == "1: [0.12, 0.2, 0.45, 0.85]"
    assert data_url.startswith("data:image/png;base64,"), data_url[:80]
    shown = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")
    expected = draw_boxes(Image.open(xray_png), parse_boxes(answer), GROUNDING_SUBJECT)
    assert shown.size == expected.size
    assert np.array_equal(np.asarray(shown), np.asarray(expected)), "the page shows the model's boxes on the upload"
    assert (np.asarray(shown) == PRED_COLOR).all(axis=2).sum() > 100  # and they are there, in red
    assert Image.open(screenshot).size[0] >= 1000
