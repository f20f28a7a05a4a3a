"""The serving client's adapter choice (metadata made effective by the resize, SSE-U through the policy, the
default) and its OpenAI request, against a local stub server. vLLM itself is not run here (no GPU)."""

import base64
import io
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from scaleearth_cli.serving import ScaleRouter, ask, chat_request, sseu_estimator

pytest.importorskip("transformers")

INDEX = {
    "format": "cshlora-lora-export/1",
    "adapters": [{"name": f"gsd_{g:g}m", "gsd_m": g, "log10_gsd": math.log10(g)} for g in (0.1, 0.3, 1, 3, 10, 30)],
}
IMAGE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8))


def _prediction(mean_m, std):
    from sseu import SSEUPrediction

    return SSEUPrediction(torch.tensor([math.log10(mean_m)]), torch.tensor([std**2]))


def test_metadata_is_made_effective_before_choosing(tiny_model_dir):
    from scaleearth_cli.modeling import load_vlm

    _, processor = load_vlm(str(tiny_model_dir))
    router = ScaleRouter(INDEX, processor)
    # 48 px are resized to 64 px: a 0.3 m file is seen at 0.225 m -> log10 nearer 0.3 m than 0.1 m
    choice = router.choose(IMAGE, gsd_m=0.3)
    assert choice.origin == "metadata" and choice.gate_gsd_m == pytest.approx(0.225)
    assert choice.name == "gsd_0.3m"
    # 0.2 m -> 0.15 m effective: log10 0.15 = -0.82 is nearer 0.1 m (-1) than 0.3 m (-0.52)
    assert router.choose(IMAGE, gsd_m=0.2).name == "gsd_0.1m"
    assert ScaleRouter(INDEX).choose(IMAGE, gsd_m=0.2).name == "gsd_0.3m"  # unresized: 0.2 m itself
    with pytest.raises(ValueError):
        router.choose(IMAGE, gsd_m=-1.0)


def test_without_metadata_sseu_decides_through_the_policy():
    narrow = ScaleRouter(INDEX, estimator=lambda image: _prediction(2.5, 0.1)).choose(IMAGE)
    assert (narrow.name, narrow.origin) == ("gsd_3m", "estimate")
    wide = ScaleRouter(INDEX, estimator=lambda image: _prediction(2.5, 0.9)).choose(IMAGE)
    assert (wide.name, wide.origin, wide.gate_gsd_m) == ("gsd_10m", "default", pytest.approx(10.0))
    blind = ScaleRouter(INDEX).choose(IMAGE)
    assert (blind.name, blind.origin) == ("gsd_10m", "default")


def test_the_real_sseu_estimator(tiny_model_dir, random_run):
    from scaleearth_eval_testutil import HEAD_GSD_M

    choice = ScaleRouter(INDEX, estimator=sseu_estimator(str(tiny_model_dir), random_run)).choose(IMAGE)
    assert choice.origin == "estimate" and choice.gate_gsd_m == pytest.approx(HEAD_GSD_M, rel=1e-4)


class _Stub(BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append((self.path, body))
        reply = json.dumps({"choices": [{"message": {"content": f"answer from {body['model']}"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_request_goes_to_the_chosen_adapter():
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        router = ScaleRouter(INDEX)
        text, choice = ask(router, f"http://127.0.0.1:{server.server_port}/v1", IMAGE, "Is there a road?", gsd_m=1.2)
    finally:
        server.shutdown()
    path, body = _Stub.seen[-1]
    assert path == "/v1/chat/completions" and choice.name == "gsd_1m" and text == "answer from gsd_1m"
    image_part, text_part = body["messages"][0]["content"]
    assert text_part["text"].startswith("Is there a road?") and "single word" in text_part["text"]
    png = base64.b64decode(image_part["image_url"]["url"].split(",", 1)[1])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(IMAGE))
    assert body["temperature"] == 0.0 and chat_request("x", IMAGE, "q")["model"] == "x"
