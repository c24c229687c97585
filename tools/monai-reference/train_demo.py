"""Trains the demo SegResNet on template phantoms (CPU) and writes it as a MONAI bundle with an ONNX export.

    nice -n 19 tools/monai-reference/.venv/bin/python tools/monai-reference/make_training_set.py /tmp/cdss-template-set 320 16
    nice -n 19 tools/monai-reference/.venv/bin/python tools/monai-reference/train_demo.py /tmp/cdss-template-set /tmp/cdss-train
    tools/monai-reference/.venv/bin/python tools/monai-reference/train_demo.py /tmp/cdss-template-set /tmp/cdss-train --export

The first writes the studies (make_training_set.py: template phantoms acquired on many grids, orientations and
spacings, put on the model's 2 mm LPS grid by MONAI's Orientation + Spacing). The second trains, checkpointing every
CKPT_EVERY steps into the work folder (`last.pt`, and `best.pt` by the worst region's held-out Dice); run it again
to resume. `--export` writes the best checkpoint to models/brats-demo/ (configs/inference.json, configs/metadata.json,
models/model.onnx, training.json). The model is trained on synthetic data only and is not for clinical use.

Recipe: the bundle's network layout (SegResNet blocks 1,2,2,4 / 1,1,1) with init_filters 8; NormalizeIntensity
(nonzero, channel_wise) over the whole study as at inference; random 48x48x40 crops (two of three centred on a
tumour voxel; the inference window is 64x64x48), zero-padded where the study is smaller or (one crop in four) past
its edge, as the sliding window pads;
random flips on the 3 axes; per-channel intensity scaling (x0.85-1.15) and shifts (+-0.15) of the head's voxels;
DiceLoss (the bundle's, batch-pooled so crops without tumour count) + BCE; AdamW + OneCycleLR; batch 2 (batch 1
falls on a slow CPU convolution path). Validation: held-out studies through MONAI's sliding_window_inference with the
inference settings, the bundle's label rule, DiceMetric per region.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceLoss
from monai.metrics import DiceMetric
from monai.transforms import NormalizeIntensity
from monai.utils import set_determinism

from common import ROOT, export_onnx, make_segresnet, sha256, versions
from make_training_set import MODEL_AXCODES, MODEL_SPACING

SEED = 7
# 1 thread: on this oversubscribed 2-core machine two OpenMP threads spin at every barrier (measured: 7 s of CPU per
# step with 2 threads against 1.4 s with 1, at the same wall time)
THREADS = int(os.environ.get("TRAIN_THREADS", "1"))
MAX_STEPS = int(os.environ.get("TRAIN_STEPS", "2400"))
VAL_EVERY = int(os.environ.get("TRAIN_VAL_EVERY", "250"))
VAL_STUDIES = 8  # held-out studies validated on during training
CKPT_EVERY = 25
ROI = (64, 64, 48)  # inference window
CROP = (48, 48, 40)  # training crop (2.3x cheaper per step; the network is fully convolutional)
PAD_PAST_EDGE = 0.25  # fraction of crops allowed to run past the study's edge (zero padding, as the sliding window pads)
BATCH = 2
POSITIVE = 2 / 3  # fraction of crops centred on a tumour voxel (RandCropByPosNegLabel pos 2, neg 1)
INIT_FILTERS = 8
OVERLAP = 0.5

torch.set_num_threads(THREADS)
data_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cdss-template-set")
work_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/cdss-train")
export_only = "--export" in sys.argv
out_dir = Path(os.environ.get("TRAIN_EXPORT_DIR", ROOT / "models" / "brats-demo"))
work_dir.mkdir(parents=True, exist_ok=True)
norm = NormalizeIntensity(nonzero=True, channel_wise=True)


def log(msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with (work_dir / "train.log").open("a") as f:
        f.write(line + "\n")


def studies(prefix: str) -> list[str]:
    lines = [json.loads(s) for s in (data_dir / "index.jsonl").read_text().splitlines() if s.strip()]
    return sorted({s["name"] for s in lines if s["name"].startswith(prefix + "-")}, key=lambda n: int(n.split("-")[1]))


def load(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised study [4, ...] float32 and its region masks [TC, WT, ET] float32."""
    x = torch.from_numpy(np.load(data_dir / f"{name}.img.npy").astype(np.float32))
    lbl = torch.from_numpy(np.load(data_dir / f"{name}.lbl.npy"))
    y = torch.stack([(lbl == 1) | (lbl == 4), lbl > 0, lbl == 4]).float()
    return torch.as_tensor(norm(x)), y


def crop(t: torch.Tensor, start: list[int]) -> torch.Tensor:
    """The CROP block at `start` of [C, ...], zero where it runs past the array."""
    out = torch.zeros((t.shape[0], *CROP), dtype=t.dtype)
    src, dst = [], []
    for a in range(3):
        lo, hi = max(start[a], 0), min(start[a] + CROP[a], t.shape[1 + a])
        src.append(slice(lo, hi))
        dst.append(slice(lo - start[a], hi - start[a]))
    out[(slice(None), *dst)] = t[(slice(None), *src)]
    return out


def sample(name: str, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load(name)
    dims = x.shape[1:]
    wt = torch.nonzero(y[1])
    if len(wt) and rng.random() < POSITIVE:
        centre = wt[int(rng.integers(len(wt)))].tolist()
    else:
        centre = [int(rng.integers(d)) for d in dims]
    start = []
    past_edge = rng.random() < PAD_PAST_EDGE
    for a in range(3):
        c = CROP[a]
        s = centre[a] - c // 2 + int(rng.integers(-c // 4, c // 4 + 1))
        if past_edge:  # up to half a crop of zero padding beyond the study
            s = min(max(s, -c // 2), dims[a] - c // 2)
        elif dims[a] >= c:  # inside the study
            s = min(max(s, 0), dims[a] - c)
        else:  # a study smaller than the crop: a random zero pad on each side
            s = int(rng.integers(dims[a] - c, 1))
        start.append(s)
    x, y = crop(x, start), crop(y, start)
    for a in (1, 2, 3):
        if rng.random() < 0.5:
            x, y = x.flip(a), y.flip(a)
    head = x != 0
    scale = torch.from_numpy(rng.uniform(0.85, 1.15, (4, 1, 1, 1)).astype(np.float32))
    shift = torch.from_numpy(rng.uniform(-0.15, 0.15, (4, 1, 1, 1)).astype(np.float32))
    x = torch.where(head, x * scale + shift, x)
    return x, y


def labels_to_regions(p: torch.Tensor) -> torch.Tensor:
    """The bundle's label rule on thresholded [B, TC, WT, ET], back to region masks as the labels imply them."""
    et = p[:, 2] > 0
    tc = et | (p[:, 0] > 0)
    wt = tc | (p[:, 1] > 0)
    return torch.stack([tc, wt, et], 1).float()


def validate(net: torch.nn.Module, val: list[str]) -> list[float]:
    net.eval()
    metric = DiceMetric(include_background=True, reduction="mean_batch")
    with torch.no_grad():
        for name in val:
            x, y = load(name)
            logits = sliding_window_inference(x[None], ROI, 1, net, overlap=OVERLAP, mode="gaussian")
            metric(labels_to_regions((torch.sigmoid(logits) >= 0.5).float()), y[None])
    net.train()
    return [float(v) for v in metric.aggregate()]


def new_state() -> dict:
    set_determinism(seed=SEED)
    net = make_segresnet(init_filters=INIT_FILTERS, num_groups=8).to(memory_format=torch.channels_last_3d)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=MAX_STEPS, pct_start=0.1)
    return {"net": net, "opt": opt, "sched": sched, "step": 0, "history": [], "seconds": 0.0,
            "rng": np.random.default_rng(SEED), "best": None}


def save(state: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"net": state["net"].state_dict(), "opt": state["opt"].state_dict(),
                "sched": state["sched"].state_dict(), "step": state["step"], "history": state["history"],
                "seconds": state["seconds"], "rng": state["rng"].bit_generator.state, "best": state["best"],
                "torch_rng": torch.get_rng_state(), "max_steps": MAX_STEPS}, tmp)
    os.replace(tmp, path)


def restore(path: Path) -> dict:
    state = new_state()
    ck = torch.load(path, weights_only=False)
    state["net"].load_state_dict(ck["net"])
    state["opt"].load_state_dict(ck["opt"])
    state["sched"].load_state_dict(ck["sched"])
    state["rng"].bit_generator.state = ck["rng"]
    torch.set_rng_state(ck["torch_rng"])
    for k in ("step", "history", "seconds", "best"):
        state[k] = ck[k]
    return state


def train() -> None:
    train_names, val_names = studies("train"), studies("val")
    log(f"{len(train_names)} training and {len(val_names)} held-out studies; {THREADS} threads; {MAX_STEPS} steps")
    last = work_dir / "last.pt"
    state = restore(last) if last.exists() else new_state()
    net, opt, sched = state["net"], state["opt"], state["sched"]
    net.train()
    loss_fn = DiceLoss(sigmoid=True, squared_pred=True, smooth_nr=0.0, smooth_dr=1e-5, batch=True)
    bce = torch.nn.BCEWithLogitsLoss()
    rng = state["rng"]
    t0 = time.time() - state["seconds"]
    while state["step"] < MAX_STEPS:
        if state["step"] % 100 == 0:  # studies still being written are picked up as they arrive
            train_names = studies("train")
        batch = [sample(train_names[int(rng.integers(len(train_names)))], rng) for _ in range(BATCH)]
        x = torch.stack([b[0] for b in batch]).contiguous(memory_format=torch.channels_last_3d)
        y = torch.stack([b[1] for b in batch])
        opt.zero_grad()
        logits = net(x)
        loss = loss_fn(logits, y) + bce(logits, y)
        loss.backward()
        opt.step()
        sched.step()
        state["step"] += 1
        step = state["step"]
        state["seconds"] = time.time() - t0
        if step % 10 == 0:
            log(f"step {step} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.2e} {state['seconds']:.0f}s "
                f"({len(train_names)} studies)")
        if step % VAL_EVERY == 0 or step == MAX_STEPS:
            dice = validate(net, val_names[:VAL_STUDIES])
            state["history"].append({"step": step, "seconds": round(time.time() - t0, 1), "dice_tc_wt_et": dice})
            log(f"step {step} held-out Dice TC {dice[0]:.3f} WT {dice[1]:.3f} ET {dice[2]:.3f}")
            if state["best"] is None or min(dice) >= state["best"]["min_dice"]:
                state["best"] = {"step": step, "min_dice": min(dice), "dice_tc_wt_et": dice}
                save(state, work_dir / "best.pt")
        if step % CKPT_EVERY == 0 or step == MAX_STEPS:
            save(state, last)
    log(f"done: best {state['best']}")


def export() -> None:
    ck = torch.load(work_dir / "best.pt", weights_only=False)
    net = make_segresnet(init_filters=INIT_FILTERS, num_groups=8)
    net.load_state_dict(ck["net"])
    net.eval()
    index = [json.loads(s) for s in (data_dir / "index.jsonl").read_text().splitlines() if s.strip()]
    kinds: dict[str, int] = {}
    for s in index:
        if s["name"].startswith("train-"):
            kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
    n_train = sum(kinds.values())
    n_val = len(index) - n_train
    (out_dir / "models").mkdir(parents=True, exist_ok=True)
    (out_dir / "configs").mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "models" / "model.onnx"
    export_onnx(net, onnx_path, (1, 4, *ROI))
    params = sum(p.numel() for p in net.parameters())
    dice = ck["best"]["dice_tc_wt_et"]
    pix = list(MODEL_SPACING)
    inference = {
        "imports": ["$import glob", "$import os"],
        "bundle_root": ".",
        "network_def": {"_target_": "SegResNet", "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1],
                        "init_filters": INIT_FILTERS, "in_channels": 4, "out_channels": 3, "dropout_prob": None},
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            # the phantoms' axes: i to the patient's left, j posterior, k superior (DICOM's axial order)
            {"_target_": "Orientationd", "keys": "image", "axcodes": MODEL_AXCODES},
            {"_target_": "Spacingd", "keys": "image", "pixdim": pix, "mode": "bilinear"},
            {"_target_": "NormalizeIntensityd", "keys": "image", "nonzero": True, "channel_wise": True}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": list(ROI), "sw_batch_size": 1, "overlap": OVERLAP,
                    "mode": "gaussian"},
        "postprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "sigmoid": True},
            {"_target_": "AsDiscreted", "keys": "pred", "threshold": 0.5},
            {"_target_": "Lambdad", "keys": "pred",
             "func": "$lambda x: torch.where(x[[2]] > 0, 4, torch.where(x[[0]] > 0, 1, torch.where(x[[1]] > 0, 2, 0)))"}]},
    }
    description = ("A small SegResNet (bundle brats_mri_segmentation layout, init_filters 8) trained on CPU on synthetic "
                   "brain-MRI studies built on the MNI ICBM152 2009a template (@cdss/dicom generateTemplatePhantom). "
                   "TRAINED ON SYNTHETIC DATA ONLY; NOT FOR CLINICAL USE.")
    metadata = {
        "version": "0.2.0",
        "monai_version": versions()["monai"],
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "task": "Brain tumour sub-region segmentation (demo)",
        "description": description,
        "authors": "CDSS project",
        "image_classes": f"4 channel data, T1c, T1, T2, FLAIR template phantoms at {pix[0]}x{pix[1]}x{pix[2]} mm",
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
        "seed": SEED, "threads": THREADS, "steps": ck["step"], "best_step": ck["best"]["step"],
        "seconds": round(ck["seconds"], 1), "parameters": params,
        "data": {"generator": "tools/monai-reference/template_phantom.py (numpy twin of @cdss/dicom generateTemplatePhantom)",
                 "preprocessing": f"MONAI Orientation({MODEL_AXCODES}) + Spacing({pix}, bilinear; labels nearest)",
                 "acquisitions": "tools/monai-reference/make_training_set.py", "train_studies": n_train,
                 "train_kinds": kinds, "val_studies": n_val, "train_seeds": f"train-0..train-{n_train - 1}",
                 "val_seeds": f"val-0..val-{n_val - 1}"},
        "recipe": {"loss": "DiceLoss(sigmoid, squared_pred, smooth_nr 0, smooth_dr 1e-5, batch) + BCEWithLogits",
                   "optimizer": "AdamW lr 2e-3 wd 1e-5", "schedule": f"OneCycleLR over {ck['max_steps']} steps, pct_start 0.1",
                   "batch": BATCH,
                   "augmentation": f"random {list(CROP)} crops ({POSITIVE:.2f} centred on tumour) with zero pads, flips on 3 axes, "
                                   "per-channel scale x0.85-1.15 and shift +-0.15 of the head"},
        "history": ck["history"], "onnx_sha256": sha256(onnx_path), "versions": versions(),
    }, indent=2) + "\n")
    log(f"exported step {ck['best']['step']} (Dice {dice}) to {onnx_path} ({onnx_path.stat().st_size} bytes)")


if __name__ == "__main__":
    export() if export_only else train()
