"""MONAI's CPU time for the same model and input shape as bench/inference.ts, for the ratio TS pipeline / MONAI.

    tools/monai-reference/.venv/bin/python tools/monai-reference/bench_monai.py [--dims 240,240,155] [--roi 240,240,160]
        [--threads 2] [--model models/brats-demo/models/model.onnx]

Times, on the same machine: (a) MONAI's whole bundle pipeline with the torch network (NormalizeIntensity,
sliding_window_inference, sigmoid, AsDiscrete, the label rule) and (b) the same with onnxruntime (Python) running
the ONNX file as the predictor. The torch network has the same architecture with seeded weights (timing does not
depend on the values). Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnxruntime as ort
import torch
from monai.inferers import sliding_window_inference
from monai.transforms import NormalizeIntensity

from common import ROOT, make_segresnet


def torch_model(init_filters: int) -> torch.nn.Module:
    """The same SegResNet architecture in torch. The exporter folds GroupNorm's affine parameters into renamed
    constants, so the trained weights cannot be read back from the ONNX file; CPU time does not depend on the
    weight values (dense convolutions), so seeded weights time the same network."""
    torch.manual_seed(0)
    return make_segresnet(init_filters=init_filters, num_groups=8).eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", default="240,240,155")
    ap.add_argument("--roi", default="240,240,160")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init-filters", type=int, default=8)
    ap.add_argument("--model", default=str(ROOT / "models" / "brats-demo" / "models" / "model.onnx"))
    a = ap.parse_args()
    dims = [int(v) for v in a.dims.split(",")]
    roi = [int(v) for v in a.roi.split(",")]
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    img = (rng.random((4, *dims), dtype=np.float32) * 1000).astype(np.float32)
    img[:, :10] = 0
    net = torch_model(a.init_filters)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])

    def ort_pred(w: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(sess.run(None, {"image": w.numpy()})[0])

    def pipeline(predictor) -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            x = NormalizeIntensity(nonzero=True, channel_wise=True)(torch.from_numpy(img.copy()))[None]
            logits = sliding_window_inference(x, roi, 1, predictor, overlap=0.5)
            binary = torch.sigmoid(logits[0]) >= 0.5
            labels = torch.where(binary[[2]], 4, torch.where(binary[[0]], 1, torch.where(binary[[1]], 2, 0)))
            [int((labels == v).sum()) for v in (1, 2, 4)]
        return (time.perf_counter() - t) * 1000

    pipeline(ort_pred)  # warm-up
    ort_ms = pipeline(ort_pred)
    pipeline(net)
    torch_ms = pipeline(net)
    print(json.dumps({"bench": "monai-cpu", "unit": "ms", "dims": dims, "roi": roi, "threads": a.threads,
                      "monai_torch_ms": round(torch_ms), "monai_onnxruntime_ms": round(ort_ms)}))


if __name__ == "__main__":
    main()
