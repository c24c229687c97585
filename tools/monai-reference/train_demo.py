"""Trains the demo SegResNet on synthetic phantoms (CPU) and writes it as a MONAI bundle with an ONNX export.

    node --conditions=@cdss/source --import tsx tools/monai-reference/export-phantoms.ts /tmp/cdss-phantoms 240 16
    nice -n 10 tools/monai-reference/.venv/bin/python tools/monai-reference/train_demo.py /tmp/cdss-phantoms

Output: models/brats-demo/{configs/inference.json, configs/metadata.json, models/model.onnx, training.json}.
The model is trained on synthetic data only and is not for clinical use.

Recipe (monai-python.md §3): the bundle's network layout with init_filters 8, the bundle's preprocessing
(NormalizeIntensityd nonzero, channel_wise) and augmentation (random flips on the 3 axes, RandScaleIntensity 0.1,
RandShiftIntensity 0.1), the bundle's DiceLoss (sigmoid, squared_pred, smooth_nr 0, smooth_dr 1e-5),
random 48x48x40 crops, Adam + OneCycleLR, batch 2 (batch 1 falls on a slow CPU convolution path). Validation: held-out phantoms through
MONAI's sliding_window_inference with the bundle's post-processing, DiceMetric per region.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceLoss
from monai.metrics import DiceMetric
from monai.transforms import ConvertToMultiChannelBasedOnBratsClasses, NormalizeIntensity
from monai.utils import set_determinism

from common import ROOT, export_onnx, make_segresnet, sha256, versions

SEED = 7
THREADS = int(os.environ.get("TRAIN_THREADS", "1"))  # 1: OpenMP threads spin badly on an oversubscribed 2-core machine
MAX_STEPS = 500
MIN_STEPS = 200
VAL_EVERY = 100
TARGET = 0.85  # stop once every region's held-out Dice reaches this (the acceptance bar is 0.8)
ROI = [64, 64, 48]  # inference window: the whole 64x64x48 phantom
CROP = [48, 48, 40]  # training crops (as the bundle trains on random 224x224x144 crops), ~2x cheaper per step

torch.set_num_threads(THREADS)
set_determinism(seed=SEED)

data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cdss-phantoms")
out_dir = ROOT / "models" / "brats-demo"
index = json.loads((data_dir / "index.json").read_text())
dims = index["dims"]
norm = NormalizeIntensity(nonzero=True, channel_wise=True)
to_multi = ConvertToMultiChannelBasedOnBratsClasses()


def load(case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    base = data_dir / case["name"]
    img = np.fromfile(f"{base}.img.bin", dtype="<u2").reshape(4, *dims).astype(np.float32)
    lbl = np.fromfile(f"{base}.lbl.bin", dtype=np.uint8).reshape(*dims)
    x = norm(torch.from_numpy(img))
    y = to_multi(torch.from_numpy(lbl)[None]).float()  # [TC, WT, ET]
    return torch.as_tensor(x), y


train = [load(c) for c in index["train"]]
val = [load(c) for c in index["val"]]
print(f"loaded {len(train)} training and {len(val)} validation phantoms of {dims}", flush=True)

net = make_segresnet(init_filters=8, num_groups=8)
loss_fn = DiceLoss(sigmoid=True, squared_pred=True, smooth_nr=0.0, smooth_dr=1e-5)
opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-5)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=MAX_STEPS)
gen = torch.Generator().manual_seed(SEED)


def augment(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    o = [int(torch.randint(0, d - c + 1, (1,), generator=gen)) for d, c in zip(dims, CROP)]
    sl = (slice(None), slice(o[0], o[0] + CROP[0]), slice(o[1], o[1] + CROP[1]), slice(o[2], o[2] + CROP[2]))
    x, y = x[sl], y[sl]
    for axis in (1, 2, 3):
        if torch.rand(1, generator=gen).item() < 0.5:
            x, y = x.flip(axis), y.flip(axis)
    scale = 1 + (torch.rand(4, 1, 1, 1, generator=gen) * 0.2 - 0.1)  # RandScaleIntensity(factors=0.1)
    shift = torch.rand(4, 1, 1, 1, generator=gen) * 0.2 - 0.1  # RandShiftIntensity(offsets=0.1)
    mask = x != 0
    x = torch.where(mask, x * scale + shift, x)
    return x, y


def validate() -> list[float]:
    net.eval()
    metric = DiceMetric(include_background=True, reduction="mean_batch")
    with torch.no_grad():
        for x, y in val:
            logits = sliding_window_inference(x[None], ROI, 1, net, overlap=0.5, mode="gaussian")
            pred = (torch.sigmoid(logits) >= 0.5).float()
            metric(pred, y[None])
    net.train()
    return [float(v) for v in metric.aggregate()]


history = []
t0 = time.time()
net.train()
step = 0
dice = [0.0, 0.0, 0.0]
while step < MAX_STEPS:
    order = torch.randperm(len(train), generator=gen).tolist()
    for a in range(0, len(order) - 1, 2):
        batch = [augment(*train[i]) for i in order[a : a + 2]]
        x = torch.stack([b[0] for b in batch])
        y = torch.stack([b[1] for b in batch])
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % 20 == 0:
            print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        if step % VAL_EVERY == 0:
            dice = validate()
            history.append({"step": step, "seconds": round(time.time() - t0, 1), "dice_tc_wt_et": dice})
            print(f"step {step} held-out Dice TC {dice[0]:.3f} WT {dice[1]:.3f} ET {dice[2]:.3f}", flush=True)
            if step >= MIN_STEPS and min(dice) >= TARGET:
                break
        if step >= MAX_STEPS:
            break
    else:
        continue
    if step >= MIN_STEPS and min(dice) >= TARGET:
        break

net.eval()
(out_dir / "models").mkdir(parents=True, exist_ok=True)
(out_dir / "configs").mkdir(parents=True, exist_ok=True)
onnx_path = out_dir / "models" / "model.onnx"
export_onnx(net, onnx_path, (1, 4, *ROI))
params = sum(p.numel() for p in net.parameters())

inference = {
    "imports": ["$import glob", "$import os"],
    "bundle_root": ".",
    "network_def": {"_target_": "SegResNet", "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1], "init_filters": 8,
                    "in_channels": 4, "out_channels": 3, "dropout_prob": None},
    "network": "$@network_def.to(@device)",
    "preprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "LoadImaged", "keys": "image"},
        # the phantoms are exported in DICOM's axial order: i to the left, j posterior, k superior
        {"_target_": "Orientationd", "keys": "image", "axcodes": "LPS"},
        {"_target_": "NormalizeIntensityd", "keys": "image", "nonzero": True, "channel_wise": True}]},
    "inferer": {"_target_": "SlidingWindowInferer", "roi_size": ROI, "sw_batch_size": 1, "overlap": 0.5, "mode": "gaussian"},
    "postprocessing": {"_target_": "Compose", "transforms": [
        {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
        {"_target_": "AsDiscreted", "keys": "pred", "threshold": 0.5},
        {"_target_": "Lambdad", "keys": "pred",
         "func": "$lambda x: torch.where(x[[2]] > 0, 4, torch.where(x[[0]] > 0, 1, torch.where(x[[1]] > 0, 2, 0)))"}]},
}
metadata = {
    "version": "0.1.0",
    "monai_version": versions()["monai"],
    "pytorch_version": torch.__version__,
    "numpy_version": np.__version__,
    "task": "Brain tumour sub-region segmentation (demo)",
    "description": "A small SegResNet (bundle brats_mri_segmentation layout, init_filters 8) trained on CPU on synthetic "
                   "brain-MRI phantoms from @cdss/imaging. TRAINED ON SYNTHETIC DATA ONLY; NOT FOR CLINICAL USE.",
    "authors": "CDSS project",
    "image_classes": f"4 channel data, T1c, T1, T2, FLAIR phantoms at {index['spacing'][0]}x{index['spacing'][1]}x{index['spacing'][2]} mm",
    "label_classes": "3 channel data, channel 0 for Tumor core, channel 1 for Whole tumor, channel 2 for Enhancing tumor",
    "intended_use": "Demonstration and testing of the CDSS pipeline on synthetic phantoms only. Not for diagnostic or clinical use.",
    "eval_metrics": {"heldout_dice_tc": dice[0], "heldout_dice_wt": dice[1], "heldout_dice_et": dice[2]},
    "network_data_format": {
        "inputs": {"image": {"type": "image", "format": "magnitude", "modality": "MR", "num_channels": 4,
                             "spatial_shape": ["8*n", "8*n", "8*n"], "dtype": "float32", "is_patch_data": True,
                             "channel_def": {"0": "T1c", "1": "T1", "2": "T2", "3": "FLAIR"}}},
        "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": 3,
                             "spatial_shape": ["8*n", "8*n", "8*n"], "dtype": "float32", "value_range": [0, 1],
                             "channel_def": {"0": "Tumor core", "1": "Whole tumor", "2": "Enhancing tumor"}}},
    },
}
(out_dir / "configs" / "inference.json").write_text(json.dumps(inference, indent=2) + "\n")
(out_dir / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
(out_dir / "training.json").write_text(json.dumps({
    "seed": SEED, "threads": THREADS, "steps": step, "seconds": round(time.time() - t0, 1), "parameters": params,
    "data": {"generator": "@cdss/imaging generatePhantom", "dims": dims, "spacing": index["spacing"],
             "train_seeds": f"train-0..train-{len(train) - 1}", "val_seeds": f"val-0..val-{len(val) - 1}"},
    "recipe": {"loss": "DiceLoss(sigmoid, squared_pred, smooth_nr 0, smooth_dr 1e-5)", "optimizer": "Adam lr 2e-3 wd 1e-5",
               "schedule": f"OneCycleLR over {MAX_STEPS} steps", "batch": 2,
               "augmentation": f"random {CROP} crops, flips on 3 axes, RandScaleIntensity 0.1, RandShiftIntensity 0.1"},
    "history": history, "onnx_sha256": sha256(onnx_path), "versions": versions(),
}, indent=2) + "\n")
print(f"done: {step} steps, {time.time() - t0:.0f}s, held-out Dice {dice}, onnx {onnx_path.stat().st_size} bytes", flush=True)
