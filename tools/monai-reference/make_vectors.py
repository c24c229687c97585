"""Writes MONAI's output at every stage of the BraTS pipeline for small synthetic inputs of odd shapes.

Run from the repository root:  tools/monai-reference/.venv/bin/python tools/monai-reference/make_vectors.py
Output: packages/segmentation/src/__fixtures__/monai/ (arrays as .bin, described by manifest.json). The TypeScript tests in
packages/segmentation read only those files.

Everything here is MONAI's own code (NormalizeIntensity, sliding_window_inference, Activations, AsDiscrete, SegResNet);
the only hand-written parts are the toy predictor, the synthetic input and the label-volume/diameter bookkeeping
(which MONAI has no function for).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from monai.data.utils import compute_importance_map
from monai.inferers import sliding_window_inference
from monai.transforms import Activations, AsDiscrete, NormalizeIntensity

from common import FIXTURES, FixtureWriter, export_onnx, make_segresnet, sha256, versions

SEED = 20261126
THREADS = 2
torch.set_num_threads(THREADS)
torch.manual_seed(SEED)
rng = np.random.default_rng(SEED)


def synthetic_case(shape: tuple[int, int, int]) -> np.ndarray:
    """A 4-channel brain-like volume: an ellipsoid 'brain' (background exactly 0) with a blob 'tumour'."""
    d0, d1, d2 = shape
    z, y, x = np.meshgrid(
        (np.arange(d0) - (d0 - 1) / 2) / (d0 / 2),
        (np.arange(d1) - (d1 - 1) / 2) / (d1 / 2),
        (np.arange(d2) - (d2 - 1) / 2) / (d2 / 2),
        indexing="ij",
    )
    brain = (z**2 + y**2 + x**2) < 0.85
    tumour = ((z - 0.2) ** 2 + (y + 0.1) ** 2 + (x - 0.15) ** 2) < 0.12
    core = ((z - 0.2) ** 2 + (y + 0.1) ** 2 + (x - 0.15) ** 2) < 0.04
    out = np.zeros((4, *shape), np.float32)
    for c, (scale, t_gain, c_gain) in enumerate([(600, 1.8, 0.5), (450, 0.8, 0.6), (900, 1.6, 1.9), (300, 1.7, 1.2)]):
        v = scale * (1 + 0.08 * rng.standard_normal(shape))
        v = np.where(tumour, v * t_gain, v)
        v = np.where(core, v * c_gain, v)
        out[c] = np.where(brain, v, 0).astype(np.float32)
    return out


def toy_predictor(win: torch.Tensor) -> torch.Tensor:
    """Deterministic, window-dependent (depends on the position inside the window), exactly reproducible in float32.
    TS mirror: packages/segmentation/src/sliding-window.parity.test.ts."""
    _, _, r0, r1, r2 = win.shape
    i = torch.arange(r0, dtype=torch.float32).view(1, r0, 1, 1)
    j = torch.arange(r1, dtype=torch.float32).view(1, 1, r1, 1)
    k = torch.arange(r2, dtype=torch.float32).view(1, 1, 1, r2)
    o0 = win[:, 0] + i * 0.01
    o1 = win[:, 1] * 2.0 - j * 0.02
    o2 = (win[:, 2] - win[:, 3]) + k * 0.03
    return torch.stack([o0, o1, o2], 1)


def brats_labels(pred: torch.Tensor, et_label: int = 4) -> torch.Tensor:
    """The bundle's Lambdad (configs/inference.json), verbatim."""
    x = pred
    return torch.where(x[[2]] > 0, et_label, torch.where(x[[0]] > 0, 1, torch.where(x[[1]] > 0, 2, 0)))


def brute_force_diameter(mask: np.ndarray, spacing: list[float]) -> float:
    pts = np.argwhere(mask).astype(np.float64) * np.asarray(spacing)
    best = 0.0
    for a in range(len(pts)):
        d = ((pts[a + 1 :] - pts[a]) ** 2).sum(1)
        if d.size:
            best = max(best, float(d.max()))
    return math.sqrt(best)


def main() -> None:
    w = FixtureWriter(FIXTURES)
    cases: dict[str, object] = {}

    # 1. NormalizeIntensity: the bundle's settings on an odd-shaped brain-like volume ...
    raw = synthetic_case((29, 23, 19))
    w.array("raw_a", raw)
    norm_a = NormalizeIntensity(nonzero=True, channel_wise=True)(torch.from_numpy(raw.copy()))
    w.array("norm_a", norm_a)
    cases["normalize"] = [{"input": "raw_a", "nonzero": True, "channel_wise": True, "output": "norm_a"}]
    # ... and every option combination on a tiny volume with an all-zero channel and a constant channel (std 0 -> 1).
    tiny = rng.normal(50, 20, (3, 7, 5, 6)).astype(np.float32)
    tiny[tiny < 35] = 0
    tiny[1] = 0
    tiny[2] = np.where(tiny[2] != 0, 123.5, 0)
    w.array("raw_tiny", tiny)
    for nz in (True, False):
        for cw in (True, False):
            name = f"norm_tiny_nz{int(nz)}_cw{int(cw)}"
            w.array(name, NormalizeIntensity(nonzero=nz, channel_wise=cw)(torch.from_numpy(tiny.copy())))
            cases["normalize"].append({"input": "raw_tiny", "nonzero": nz, "channel_wise": cw, "output": name})

    # 2. Importance maps (MONAI >= 1.1 gaussian, not normalised, clamped at 1e-3).
    cases["importance"] = []
    for roi in ([16, 12, 10], [16, 16, 16]):
        name = "importance_gaussian_" + "x".join(map(str, roi))
        w.array(name, compute_importance_map(roi, mode="gaussian", sigma_scale=0.125, device="cpu"))
        cases["importance"].append({"roi_size": roi, "mode": "gaussian", "sigma_scale": 0.125, "output": name})

    # 3. Sliding window with the toy predictor: constant and gaussian, overlaps 0.25 and 0.5, sw_batch_size 3.
    x = norm_a[None]
    cases["sliding_window_toy"] = []
    for mode in ("constant", "gaussian"):
        for ov in (0.25, 0.5):
            name = f"sw_toy_{mode}_{int(ov * 100)}"
            with torch.no_grad():
                out = sliding_window_inference(x, [16, 12, 10], 3, toy_predictor, overlap=ov, mode=mode)
            w.array(name, out[0])
            cases["sliding_window_toy"].append(
                {"input": "norm_a", "roi_size": [16, 12, 10], "sw_batch_size": 3, "overlap": ov, "mode": mode,
                 "sigma_scale": 0.125, "padding_mode": "constant", "cval": 0.0, "output": name}
            )
    # Padding on two axes (11 < 16, 9 < 10), odd sizes, non-zero cval.
    small = rng.normal(0, 1, (4, 11, 13, 9)).astype(np.float32)
    w.array("raw_small", small)
    with torch.no_grad():
        out = sliding_window_inference(torch.from_numpy(small)[None], [16, 12, 10], 2, toy_predictor, overlap=0.5,
                                       mode="gaussian", cval=0.5)
    w.array("sw_toy_padded", out[0])
    cases["sliding_window_toy"].append(
        {"input": "raw_small", "roi_size": [16, 12, 10], "sw_batch_size": 2, "overlap": 0.5, "mode": "gaussian",
         "sigma_scale": 0.125, "padding_mode": "constant", "cval": 0.5, "output": "sw_toy_padded"}
    )

    # 4. The network: a small SegResNet with the bundle's blocks, fixed seed, GroupNorm affine perturbed so that it matters.
    net = make_segresnet(init_filters=4, num_groups=4)
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
        final = net.conv_final[2].conv
        final.bias.copy_(torch.tensor([-0.4, 0.3, -0.8]))
    net.eval()
    onnx_path = FIXTURES / "segresnet_f4.onnx"
    export_onnx(net, onnx_path, (1, 4, 16, 16, 16))
    params = sum(p.numel() for p in net.parameters())

    cases["network"] = {"onnx": onnx_path.name, "onnx_sha256": sha256(onnx_path), "init_filters": 4, "num_groups": 4,
                        "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1], "parameters": params,
                        "input_name": "image", "output_name": "pred", "seed": SEED}
    # A single window straight through the network (network parity without stitching).
    one = norm_a[None, :, 5:21, 3:19, 1:17].contiguous()
    with torch.no_grad():
        w.array("net_window_logits", net(one)[0])
    cases["network"]["window"] = {"input": "norm_a", "starts": [5, 3, 1], "size": [16, 16, 16], "output": "net_window_logits"}
    cases["sliding_window_net"] = []
    for mode, ov in (("constant", 0.25), ("gaussian", 0.5)):
        name = f"sw_net_{mode}_{int(ov * 100)}"
        with torch.no_grad():
            logits = sliding_window_inference(x, [16, 16, 16], 2, net, overlap=ov, mode=mode)
        w.array(name, logits[0])
        cases["sliding_window_net"].append(
            {"input": "norm_a", "roi_size": [16, 16, 16], "sw_batch_size": 2, "overlap": ov, "mode": mode,
             "sigma_scale": 0.125, "output": name}
        )

    # 5. Post-processing of the gaussian run, as the bundle: sigmoid, AsDiscrete(threshold=0.5), Lambdad label rule.
    spacing = [1.2, 0.9, 1.5]
    logits = torch.from_numpy(np.fromfile(FIXTURES / "sw_net_gaussian_50.bin", dtype="<f4").reshape(3, 29, 23, 19))
    probs = Activations(sigmoid=True)(logits)
    binary = AsDiscrete(threshold=0.5)(probs)
    post = {"logits": "sw_net_gaussian_50", "spacing": spacing, "threshold": 0.5, "labels": {}}
    for et_label in (4, 3):
        labels = brats_labels(binary, et_label)[0].to(torch.uint8).numpy()
        name = f"labels_et{et_label}"
        w.array(name, labels)
        counts = {str(v): int((labels == v).sum()) for v in (0, 1, 2, et_label)}
        post["labels"][str(et_label)] = {"output": name, "counts": counts}
    labels = np.fromfile(FIXTURES / "labels_et4.bin", dtype=np.uint8).reshape(29, 23, 19)
    vox = float(np.prod(spacing))
    n = {k: int(v) for k, v in (("ncr", (labels == 1).sum()), ("ed", (labels == 2).sum()), ("et", (labels == 4).sum()))}
    post["volumes_ml"] = {
        "ncr": n["ncr"] * vox / 1000, "ed": n["ed"] * vox / 1000, "et": n["et"] * vox / 1000,
        "tc": (n["ncr"] + n["et"]) * vox / 1000, "wt": (n["ncr"] + n["ed"] + n["et"]) * vox / 1000,
    }
    post["wt_diameter_mm"] = brute_force_diameter(labels > 0, spacing)
    post["et_diameter_mm"] = brute_force_diameter(labels == 4, spacing)
    cases["postprocess"] = post

    w.write_manifest({
        "description": "MONAI reference vectors for @cdss/segmentation; regenerate with tools/monai-reference (see README).",
        "generator": "tools/monai-reference/make_vectors.py",
        "seed": SEED,
        "versions": versions(),
        "layout": "C-order little-endian; images are [C, d0, d1, d2] (MONAI channel-first, batch dim dropped)",
        "threshold_rule": "sigmoid(logit) >= 0.5 (AsDiscrete)",
        "label_rule": "ET ? et_label : TC ? 1 : WT ? 2 : 0 with channels [TC, WT, ET] (bundle Lambdad)",
        "cases": cases,
    })
    print("wrote", FIXTURES, "parameters", params)


if __name__ == "__main__":
    main()
