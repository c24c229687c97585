"""Training and validation studies for the demo model: template phantoms (template_phantom.py, the numpy twin of
@cdss/dicom's generateTemplatePhantom) acquired on many grids and orientations, then put onto the model's grid by
MONAI's Orientation + Spacing (what @cdss/segmentation's prepareStudy reproduces; parity vectors in
make_spatial_vectors.py).

    nice -n 19 tools/monai-reference/.venv/bin/python tools/monai-reference/make_training_set.py /tmp/cdss-template-set 320 16

Each study `<name>`: `<name>.img.npy` uint16 [4, d0, d1, d2] (T1c, T1, T2, FLAIR, rounded after trilinear
resampling) and `<name>.lbl.npy` uint8 [d0, d1, d2] (BraTS 0/1/2/4, nearest), on the model grid (axes L, P, S at
MODEL_SPACING mm), cropped to the head (what is cut is background, exactly 0 after normalisation either way).
`index.jsonl` gets one line per study with how it was acquired. Re-running skips the studies already written.

Acquisitions (seeded per study by its name):
  * iso: isotropic 1.0-3.8 mm over the whole head;
  * aniso: 0.7-1.4 mm in plane, 2.5-6.5 mm slices, axial, sagittal or coronal;
  * small: a field of view of 60-150 mm per axis somewhere around the tumour (a partial head, often smaller than
    the inference window on the model grid);
  * model: the model's own grid.
Stored in a random axis order and direction (one of the 48 axis permutations and flips), so Orientation does work.
Tumour scale 0.5-1.5 (smaller and larger lesions than the generator's default), noise 1-5 %.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Orientation, Spacing

from template_phantom import generate, load_template

MODEL_SPACING = (2.0, 2.0, 2.0)
MODEL_AXCODES = "LPS"
CHANNELS = ("t1c", "t1", "t2", "flair")
MAX_VOXELS = 4.5e6  # bounds the generation time of one study
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def acquisition(rng: np.random.Generator) -> dict:
    kind = str(rng.choice(["iso", "aniso", "small", "model"], p=[0.35, 0.35, 0.15, 0.15]))
    fov = np.array([rng.uniform(170, 240), rng.uniform(200, 256), rng.uniform(140, 200)])
    if kind == "iso":
        spacing = np.full(3, rng.uniform(1.0, 3.8)) * rng.uniform(0.95, 1.05, 3)
    elif kind == "aniso":
        spacing = np.full(3, rng.uniform(0.7, 1.4))
        spacing[int(rng.choice(3, p=[0.25, 0.25, 0.5]))] = rng.uniform(2.5, 6.5)
    elif kind == "small":
        spacing = np.full(3, rng.uniform(1.0, 3.0))
    else:
        spacing = np.array(MODEL_SPACING)
    dims = np.maximum(8, np.round(fov / spacing)).astype(int)
    while np.prod(dims) > MAX_VOXELS:  # coarser rather than slower
        spacing = spacing * 1.05
        dims = np.maximum(8, np.round(fov / spacing)).astype(int)
    return {
        "kind": kind,
        "dims": [int(d) for d in dims],
        "spacing": [round(float(s), 4) for s in spacing],
        "small_fov_mm": [float(rng.uniform(60, 150)) for _ in range(3)] if kind == "small" else None,
        "small_shift": [float(rng.uniform(-0.35, 0.35)) for _ in range(3)] if kind == "small" else None,
        "tumour_scale": float(rng.uniform(0.5, 1.5)),
        "noise": float(rng.uniform(0.01, 0.05)),
        "perm": [int(a) for a in rng.permutation(3)],
        "flip": [bool(f) for f in rng.random(3) < 0.5],
    }


def study(name: str, acq: dict) -> tuple[np.ndarray, np.ndarray]:
    dims, spacing = acq["dims"], acq["spacing"]
    vols, labels, tumour = generate(name, tuple(dims), tuple(spacing), acq["tumour_scale"], acq["noise"])
    meta, _ = load_template()
    tdims, tsp, tor = meta["dims"], meta["spacing"], meta["origin"]
    origin = np.array([tor[a] + (tdims[a] - 1) * tsp[a] / 2 - (dims[a] - 1) * spacing[a] / 2 for a in range(3)])
    shape = (dims[2], dims[1], dims[0])
    # [x, y, z] arrays (C-order of [k][j][i] transposed), LPS axes
    img = np.stack([vols[c].reshape(shape).T for c in CHANNELS]).astype(np.float32)
    lbl = labels.reshape(shape).T[None].astype(np.float32)
    if acq["kind"] == "small":
        centre = (np.array(tumour["centre"]) - origin) / np.array(spacing)
        half = np.array(acq["small_fov_mm"]) / np.array(spacing) / 2
        c = centre + np.array(acq["small_shift"]) * 2 * half
        lo = np.clip(np.round(c - half), 0, np.array(dims) - 8).astype(int)
        hi = np.clip(np.round(c + half), lo + 8, np.array(dims)).astype(int)
        img = img[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        lbl = lbl[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        origin = origin + lo * np.array(spacing)
    # stored in another axis order and direction: array axis q runs along LPS axis perm[q], reversed where flip[q]
    direction = np.zeros((3, 3))
    for q, a in enumerate(acq["perm"]):
        direction[a, q] = -1.0 if acq["flip"][q] else 1.0
    img = np.transpose(img, [0, *[1 + a for a in acq["perm"]]])
    lbl = np.transpose(lbl, [0, *[1 + a for a in acq["perm"]]])
    first = origin.copy()
    for q, a in enumerate(acq["perm"]):
        if acq["flip"][q]:
            img = np.flip(img, 1 + q)
            lbl = np.flip(lbl, 1 + q)
            first[a] += (img.shape[1 + q] - 1) * spacing[a]
    stored_spacing = [spacing[a] for a in acq["perm"]]
    aff = np.eye(4)
    aff[:3, :3] = LPS_TO_RAS @ direction @ np.diag(stored_spacing)
    aff[:3, 3] = LPS_TO_RAS @ first
    affine = torch.from_numpy(aff)
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(img)), affine=affine)
    label = MetaTensor(torch.from_numpy(np.ascontiguousarray(lbl)), affine=affine)
    image = Spacing(pixdim=MODEL_SPACING, mode="bilinear")(Orientation(axcodes=MODEL_AXCODES)(image))
    label = Spacing(pixdim=MODEL_SPACING, mode="nearest")(Orientation(axcodes=MODEL_AXCODES)(label))
    x = np.clip(np.round(image.as_tensor().numpy()), 0, 65535).astype(np.uint16)
    y = np.round(label.as_tensor().numpy()[0]).astype(np.uint8)
    # crop the background around the head (zeros stay zeros through normalisation and padding)
    nz = np.argwhere(x.any(axis=0))
    lo, hi = nz.min(0), nz.max(0) + 1
    return x[:, lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], y[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cdss-template-set")
    n_train = int(sys.argv[2]) if len(sys.argv) > 2 else 320
    n_val = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    names = [f"val-{n}" for n in range(n_val)] + [f"train-{n}" for n in range(n_train)]
    for name in names:
        if (out / f"{name}.lbl.npy").exists():
            continue
        t0 = time.time()
        rng = np.random.default_rng(int.from_bytes(name.encode(), "little") % (2**63))
        acq = acquisition(rng)
        x, y = study(name, acq)
        np.save(out / f"{name}.img.npy", x)
        np.save(out / f"{name}.lbl.npy", y)  # written last: its presence marks a complete study
        line = {"name": name, **acq, "model_dims": list(y.shape), "wt_voxels": int((y > 0).sum()),
                "et_voxels": int((y == 4).sum()), "seconds": round(time.time() - t0, 1)}
        with (out / "index.jsonl").open("a") as f:
            f.write(json.dumps(line) + "\n")
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
