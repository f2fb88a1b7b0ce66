"""A real browser moves the temperature slider of notebook 08 in JupyterLab and sees new text, and chats in notebook 15's box.

Starts JupyterLab on localhost with a token, drives Debian's Chromium headless through Playwright
(``executable_path`` set: nothing downloads a browser), runs notebook 08 top to bottom, moves the
temperature slider with the keyboard, and checks that the generated text changed and that no cell
shows an error. Select it alone with ``pytest -m browser``. With ``UPDATE_SCREENSHOT=1`` it also
refreshes ``docs/temperature_widget.png``.
"""
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _requirements import require

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "08_sampling.ipynb"
CHAT_NOTEBOOK = "15_chatting.ipynb"
pytestmark = pytest.mark.browser


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    require(module="playwright", executable="chromium", why="the browser test: pip install playwright; apt-get install chromium")
    home = tmp_path_factory.mktemp("lab")
    for name in (NOTEBOOK, CHAT_NOTEBOOK):
        shutil.copy(ROOT / "notebooks" / name, home / name)  # autosave must not touch the stored one
    trained = ROOT / "notebooks" / "runs" / "memory_chat.pt"  # notebook 14's model; without it notebook 15 trains one
    if trained.is_file():
        (home / "runs").mkdir()
        shutil.copy(trained, home / "runs" / trained.name)
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell (JupyterLab 4 otherwise keeps off-screen cells out of the page)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "COURSE_DEVICE": "cpu"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={home}", "--ServerApp.open_browser=False"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail("JupyterLab exited: " + (home / "server.log").read_text()[-2000:])
            time.sleep(0.5)
    else:
        server.terminate()
        pytest.fail("JupyterLab did not start in 120 s: " + (home / "server.log").read_text()[-2000:])
    yield base, token, home
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


@contextlib.contextmanager
def browser_page():
    """A page of Debian's headless Chromium, closed afterwards (tests/test_server.py uses it too)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def run_all(page, base, token, notebook):
    """Open ``notebook`` in JupyterLab, run every cell, wait until done; fail if a cell shows an error."""
    page.goto(f"{base}/lab/tree/{notebook}?reset&token={token}", timeout=120_000)  # reset: no tab of an earlier test
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.click(".jp-Notebook")  # focus the notebook so that the menu acts on it
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    # done when no prompt shows [*] and the last code cell has an execution count
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            return prompts.length > 0 && !prompts.some(t => t.includes('*')) && /\\d/.test(prompts[prompts.length - 1]);
        }""", timeout=300_000)
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, "a cell shows an error:\n" + "\n".join(errors.all_inner_texts())[:3000]
    return errors


def test_temperature_slider_changes_the_text(jupyterlab):
    base, token, home = jupyterlab
    with browser_page() as page:
        errors = run_all(page, base, token, NOTEBOOK)

        widget = page.locator(".jp-OutputArea-output .widget-vbox").first
        widget.wait_for(timeout=60_000)
        text = widget.locator(".widget-html-content").first
        before = text.inner_text()
        assert "temperature 1.00" in before, before
        handle = widget.locator(".widget-slider").first.locator(".noUi-handle").first
        handle.focus()
        for _ in range(20):  # 20 steps of 0.05: temperature 1.00 -> 2.00
            page.keyboard.press("ArrowRight")
        page.wait_for_function("el => el.innerText.includes('temperature 2.00')", arg=text.element_handle(),
                               timeout=60_000)
        after = text.inner_text()
        assert after != before
        assert errors.count() == 0, "a cell shows an error after moving the slider"
        shot = home / "temperature_widget.png"
        widget.screenshot(path=str(shot))
        assert shot.stat().st_size > 5_000
        if os.environ.get("UPDATE_SCREENSHOT"):
            shutil.copy(shot, ROOT / "docs" / "temperature_widget.png")


def test_chat_box_answers_from_the_history(jupyterlab):
    """Notebook 15's chat box: type, press Enter, the reply streams in; the third answer needs the first message."""
    base, token, home = jupyterlab
    with browser_page() as page:
        errors = run_all(page, base, token, CHAT_NOTEBOOK)
        box = page.locator(".jp-OutputArea-output .widget-vbox").filter(
            has=page.locator("input[placeholder='Type a message and press Enter']")).first
        box.wait_for(timeout=60_000)
        conversation = box.locator(".widget-html-content").first
        box.get_by_role("button", name="Reset").click()  # the notebook's own cells talked to this box already
        page.wait_for_function("el => el.innerText.includes('no messages yet')", arg=conversation.element_handle(),
                               timeout=60_000)
        field = box.locator("input[placeholder='Type a message and press Enter']")
        for number, message in enumerate(["Hi! I'm Nora. I love opera.", "How are you?", "What do I love?"], start=1):
            field.fill(message)
            field.press("Enter")
            page.wait_for_function(
                "([el, n]) => el.querySelectorAll('.chat-assistant:not(.chat-streaming)').length === n",
                arg=[conversation.element_handle(), number], timeout=60_000)
            assert field.input_value() == "", "the box is cleared after sending"
        replies = conversation.locator(".chat-assistant").all_inner_texts()
        assert replies[0].startswith("bot:") and "Nora" in replies[0], replies
        assert replies[-1] == "bot: You love opera.", replies
        assert errors.count() == 0, "a cell shows an error after chatting"
