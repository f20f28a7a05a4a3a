"""Step (e) of tools/gpu_check.py: CS-HLoRA exported at fixed GSDs and served as plain LoRA adapters.

The tiny Qwen3-VL (``scaleearth_cli.tiny.make_tiny_model``) gets a random CS-HLoRA adapter (the gate
matters: B != 0, thresholds spread), exported at two GSDs with ``cshlora.export_lora_grid``. The reference
for each GSD is transformers + plain PEFT with that exported adapter, greedy on a fixed text prompt.

- GPU, vLLM importable: ``vllm.LLM(enable_lora=True)`` generates with each adapter (``LoRARequest``); the
  tokens must equal the reference. (The OpenAI server wraps the same engine; the client that picks the
  adapter per request, ``scaleearth_cli.serving``, is unit-tested on CPU.)
- ``--dry-run`` (CPU, no vLLM): the serving client asks a local OpenAI-style stub server that answers with
  the reference model of the adapter the request names: the client's choice, the request and the answers'
  round trip are checked, not vLLM.
"""

from __future__ import annotations

import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import torch

GRID_M = (0.3, 30.0)
PROMPT_IDS = [11, 23, 35, 47, 59, 71, 83]
NEW_TOKENS = 8


def _export(folder: Path):
    import cshlora
    from scaleearth_cli.modeling import adapter_config, load_vlm
    from scaleearth_cli.tiny import make_tiny_model

    tiny = make_tiny_model(folder / "tiny")
    vlm, _ = load_vlm(str(tiny), device="cpu")
    torch.manual_seed(0)
    cshlora.inject(vlm, adapter_config("cshlora", r=8, alpha=16))
    with torch.no_grad():
        for _, layer in cshlora.cshlora_layers(vlm):
            layer.lora_B.normal_(0.0, 0.5)
            layer.tau.copy_(torch.linspace(-1.5, 2.5, layer.r))
    index = cshlora.export_lora_grid(vlm, GRID_M, folder / "lora", base_model_name_or_path=str(tiny))
    return tiny, cshlora.read_export_index(index)


def _reference(tiny: Path, adapter_dir: Path, device) -> list[int]:
    from peft import PeftModel

    from scaleearth_cli.modeling import load_vlm

    base, _ = load_vlm(str(tiny), device=str(device))
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    ids = torch.tensor([PROMPT_IDS], device=device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS,
                             min_new_tokens=NEW_TOKENS, do_sample=False)  # fmt: skip
    return out[0, len(PROMPT_IDS) :].tolist()


def _vllm(tiny: Path, index: dict, lora_root: Path) -> dict[str, list[int]]:
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    llm = LLM(model=str(tiny), enable_lora=True, max_lora_rank=8, max_loras=len(index["adapters"]),
              dtype="float32", enforce_eager=True, gpu_memory_utilization=0.3)  # fmt: skip
    params = SamplingParams(temperature=0.0, max_tokens=NEW_TOKENS, min_tokens=NEW_TOKENS, ignore_eos=True)
    out = {}
    for i, entry in enumerate(index["adapters"], 1):
        request = LoRARequest(entry["name"], i, str(lora_root / entry["name"]))
        (result,) = llm.generate({"prompt_token_ids": PROMPT_IDS}, params, lora_request=request)
        out[entry["name"]] = list(result.outputs[0].token_ids)
    return out


def _stub_round_trip(index: dict, references: dict[str, list[int]], tiny: Path) -> dict:
    from PIL import Image

    from scaleearth_cli.serving import ScaleRouter, ask

    class Server(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = " ".join(map(str, references[body["model"]]))
            reply = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    router = ScaleRouter(index)
    image = Image.new("RGB", (64, 64), (120, 130, 90))
    answers = {}
    try:
        for gsd in (0.2, 0.5, 20.0, 100.0):
            text, choice = ask(router, f"http://127.0.0.1:{server.server_port}/v1", image, "Is there a road?", gsd)
            answers[gsd] = (choice.name, text)
    finally:
        server.shutdown()
    expected = {0.2: "gsd_0.3m", 0.5: "gsd_0.3m", 20.0: "gsd_30m", 100.0: "gsd_30m"}
    ok = all(answers[g][0] == expected[g] and answers[g][1] == " ".join(map(str, references[expected[g]]))
             for g in expected)  # fmt: skip
    return {"routed": {str(g): name for g, (name, _) in answers.items()}, "ok": ok}


def run(device: torch.device, dry_run: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tiny, index = _export(folder)
        references = {e["name"]: _reference(tiny, folder / "lora" / e["name"], device) for e in index["adapters"]}
        result = {"grid_m": list(GRID_M), "reference_tokens": references}
        if len({tuple(v) for v in references.values()}) < 2:
            result.update(status="fail", error="the two GSDs' adapters gave the same tokens: the gate did nothing")
            return result
        if dry_run:
            stub = _stub_round_trip(index, references, tiny)
            result.update(engine="stub OpenAI server backed by transformers + PEFT (dry run, not vLLM)", **stub)
            result["status"] = "pass" if stub["ok"] else "fail"
            return result
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            result.update(status="skipped", reason=f"vllm is not importable ({e})")
            return result
        served = _vllm(tiny, index, folder / "lora")
        mismatched = [name for name in references if served[name] != references[name]]
        result.update(engine="vllm", vllm_tokens=served, mismatched=mismatched)
        result["status"] = "pass" if not mismatched else "fail"
        result["note"] = "exported CS-HLoRA adapters served by vLLM " + (
            "match transformers + PEFT" if not mismatched else f"differ for {mismatched}"
        )
        return result
