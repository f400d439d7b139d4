"""Draws docs/images/serve.png: the page of ``vidapter serve`` in headless Chromium, after a 12-second video of three
synthetic actions one after another was uploaded: the top classes as bars, the frames the model saw, and the
predicted class along the timeline. The model is the demo's (``vidapter demo`` writes runs/demo/model).

Needs the serve extra, Selenium and Debian's ``chromium`` and ``chromium-driver``:

    vidapter demo
    python docs/images/serve.py runs/demo/model      # writes docs/images/serve.png next to this file
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from vidapter.classifier import load_model
from vidapter.data.synthetic import CLASSES, render_clip, write_mp4
from vidapter.serve.app import create_app

ACTIONS = ["move_right", "rotate_cw", "stripes"]  # 4 s each


def main(model_dir: str) -> None:
    model, cfg, names = load_model(model_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(model, cfg, names, model_name="the demo model"),
                                           host="127.0.0.1", port=port, log_level="warning"))  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(3)
        frames = [render_clip(CLASSES.index(a), rng, size=64, frames=16) for a in ACTIONS for _ in range(2)]
        video = Path(tmp) / "three_actions.mp4"
        write_mp4(video, np.concatenate(frames), fps=8)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                     f"--user-data-dir={Path(tmp) / 'profile'}", "--window-size=900,1000"):  # fmt: skip
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(driver, 120)
            wait.until(lambda d: "classes" in d.find_element(By.ID, "model").text)
            driver.find_element(By.ID, "file").send_keys(str(video))
            state = lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")  # noqa: E731
            wait.until(lambda d: state(d) in ("done", "error"))
            if state(driver) != "done" or not driver.find_elements(By.CSS_SELECTOR, "#timeline .segment"):
                raise SystemExit(f"the page shows no timeline: {driver.find_element(By.ID, 'status').text}")
            time.sleep(0.5)
            out = Path(__file__).with_name("serve.png")
            height = driver.execute_script("return document.documentElement.scrollHeight")
            metrics = {"width": 900, "height": height, "deviceScaleFactor": 1, "mobile": False}
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            driver.save_screenshot(str(out))
            print(f"wrote {out}")
        finally:
            driver.quit()
            server.should_exit = True


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/demo/model")
