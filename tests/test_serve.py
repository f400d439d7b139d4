"""``vidapter serve`` over real sockets (uvicorn in a thread, httpx clients): predictions equal ``predict``'s, bad
uploads get a 4xx naming the problem and leave the server up and no file behind, concurrent requests share forwards,
a full queue answers 503; then the page in headless Chromium."""

from __future__ import annotations

import base64
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from vidapter.classifier import load_model, predict_file  # noqa: E402
from vidapter.serve.app import create_app  # noqa: E402

CLIP = "test/grow/00000.mp4"


class Server:
    """uvicorn serving ``app`` on a free loopback port, in a thread."""

    def __init__(self, app):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def served(model_dir, tmp_path_factory):
    model, cfg, names = load_model(model_dir)
    uploads = tmp_path_factory.mktemp("uploads")  # where the server's private temporary folders go
    app = create_app(model, cfg, names, model_name="tiny", max_upload_mb=1, max_seconds=60, max_wait=0.05)
    before, tempfile.tempdir = tempfile.tempdir, str(uploads)
    try:
        with Server(app) as server:
            yield server, model, cfg, names, uploads, app
    finally:
        tempfile.tempdir = before


def _post(url, data: bytes | None, name="clip.mp4", **form):
    files = {"file": (name, data, "video/mp4")} if data is not None else None
    return httpx.post(f"{url}/predict", files=files, data={k: str(v) for k, v in form.items()}, timeout=60)


def test_predictions_equal_predicts_and_bad_uploads_are_4xx(served, data, tmp_path):
    from vidapter.data.synthetic import write_audio_only

    server, model, cfg, names, uploads, _ = served
    url = server.url
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "model": "tiny", "classes": 13, "frames": 8}
    assert httpx.get(f"{url}/labels").json()["labels"] == names
    assert "<title>vidapter</title>" in httpx.get(f"{url}/").text
    clip = (data / CLIP).read_bytes()
    got = _post(url, clip, name="../../etc/passwd", top_k=3, frames="true")
    want = predict_file(model, cfg, data / CLIP, names=names, top_k=3)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["file"] == "passwd" and body["frames"] == want["frames"] == 16  # the name echoed, never a path
    assert [t["name"] for t in body["top"]] == [t["name"] for t in want["top"]]
    assert [t["prob"] for t in body["top"]] == pytest.approx([t["prob"] for t in want["top"]], abs=1e-5)
    assert len(body["seen"]) == 8 and base64.b64decode(body["seen"][0]["jpeg"])[:2] == b"\xff\xd8"  # JPEGs
    windows = _post(url, clip, window=1).json()["windows"]
    assert [(w["start_s"], w["end_s"]) for w in windows] == [(0.0, 1.0), (1.0, 2.0)]
    expected = predict_file(model, cfg, data / CLIP, names=names, window=1)["windows"]
    assert [[t["name"] for t in w["top"]] for w in windows] == [[t["name"] for t in w["top"]] for w in expected]

    audio = tmp_path / "audio.mp4"  # a file with an audio stream and no video stream
    write_audio_only(audio)

    def chunked():  # no Content-Length: the limit applies as the bytes arrive
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    cases = [
        (_post(url, b""), 400, "empty upload"),
        (_post(url, b"GIF89a not a video at all" * 10, name="x.gif"), 422, "x.gif: "),
        (_post(url, clip[: len(clip) // 3], name="cut.mp4"), 422, "cut.mp4:"),
        (_post(url, audio.read_bytes(), name="audio.mp4"), 422, "audio.mp4: no video stream"),
        (_post(url, b"\0" * (3 << 20)), 413, "upload larger than the limit of 1 MB"),
        (
            httpx.post(
                f"{url}/predict",
                content=chunked(),
                headers={"content-type": "multipart/form-data; boundary=b"},
                timeout=60,
            ),
            413,
            "larger than the limit of 1 MB",
        ),  # fmt: skip
        (_post(url, None, top_k=2), 422, "missing form field 'file'"),
        (_post(url, clip, top_k="many"), 422, "form field 'top_k'"),
        (_post(url, clip, top_k=0), 422, "'top_k': 0 is not between 1 and 1000"),
        (_post(url, clip, window=-1), 422, "'window': -1.0 seconds is not above 0"),
    ]
    for response, status, message in cases:
        assert response.status_code == status and message in response.json()["error"], (status, response.text)
    assert httpx.get(f"{url}/health").status_code == 200  # alive after every bad request
    assert not any(Path(uploads).iterdir())  # every upload's folder removed, also after errors


def test_long_video_is_refused(model_dir, data):
    from fastapi.testclient import TestClient

    model, cfg, names = load_model(model_dir)
    with TestClient(create_app(model, cfg, names, max_seconds=1.5)) as client:
        r = client.post("/predict", files={"file": ("long.mp4", (data / CLIP).read_bytes())})
    assert r.status_code == 422 and "long.mp4: 2.0 s long, over the limit of 1.5 s" in r.json()["error"]


def test_concurrent_requests_share_forwards_and_a_full_queue_answers_503(model_dir, data):
    model, cfg, names = load_model(model_dir)
    app = create_app(model, cfg, names, max_batch=8, max_wait=0.3, queue_size=2)
    clip = (data / CLIP).read_bytes()
    with Server(app) as server:
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: _post(server.url, clip).status_code, range(4)))
        sizes = app.state.batcher.sizes
        assert codes == [200] * 4 and max(sizes) > 1 and sum(k * v for k, v in sizes.items()) == 4, sizes
        stats = httpx.get(f"{server.url}/stats").json()
        assert stats["batch_sizes"] == {str(k): v for k, v in sorted(sizes.items())} and stats["rss_mib"] > 50
        assert stats["forwards"] == sum(sizes.values())
        slow = app.state.batcher._forward  # a forward that takes its time: the queue behind it fills

        def stalled(views):
            time.sleep(1.0)
            return slow(views)

        app.state.batcher._forward, app.state.batcher.max_batch = stalled, 1
        with ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda _: _post(server.url, clip), range(6)))
        codes = sorted(r.status_code for r in responses)
        assert 503 in codes and 200 in codes and set(codes) <= {200, 503}, codes
        busy = next(r for r in responses if r.status_code == 503)
        assert "queue of clips is full" in busy.json()["error"]
        app.state.batcher._forward = slow
        assert _post(server.url, clip).status_code == 200  # and it recovers


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")  # fmt: skip
def test_the_page_in_a_real_browser(served, data, tmp_path):
    """Headless Chromium opens the page, uploads a video through the file input and shows the classes the server
    predicted as bars, with the frames the model saw; a long video adds the timeline. The screenshot is saved
    (docs/images/serve.png is one made so, with a trained model)."""
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, model, cfg, names, _, _ = served
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(server.url + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: "13 classes" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "file").send_keys(str(data / CLIP))
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", (
            driver.find_element(By.ID, "status").text)  # fmt: skip
        shown = [e.get_attribute("data-name") for e in driver.find_elements(By.CSS_SELECTOR, "#bars .bar")]
        want = predict_file(model, cfg, data / CLIP, names=names, top_k=5)
        assert shown == [t["name"] for t in want["top"]]
        images = driver.find_elements(By.CSS_SELECTOR, "#frames img")
        assert len(images) == 8 and all(
            driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images
        )
        driver.save_screenshot(str(tmp_path / "serve.png"))
        assert (tmp_path / "serve.png").stat().st_size > 10_000

        long = tmp_path / "long.mp4"  # 10 s: the page asks for windows and draws the timeline
        from vidapter.data.synthetic import render_clip, write_mp4

        write_mp4(long, render_clip(4, np.random.default_rng(0), size=32, frames=80), fps=8)
        driver.execute_script("document.body.dataset.state = ''")
        driver.find_element(By.ID, "file").send_keys(str(long))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline .segment"))
        assert len(driver.find_elements(By.CSS_SELECTOR, "#timeline .segment")) == 10
    finally:
        driver.quit()
