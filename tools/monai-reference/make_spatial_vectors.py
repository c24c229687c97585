"""MONAI reference vectors for the spatial preprocessing and the lesion clean-up of @cdss/segmentation.

Writes, for each case, MONAI's output of
  * Orientation(axcodes="RAS")                      (nibabel io_orientation, flips and transposes),
  * Spacing(pixdim, mode="bilinear")                (images: trilinear, border padding, float64 grid),
  * Spacing(pixdim, mode="nearest")                 (labels),
  * SpatialResample(dst_affine=original, "nearest") (labels back onto the source grid),
  * KeepLargestConnectedComponent / RemoveSmallObjects on label maps and one-hot masks,
as little-endian C-order .bin files with a manifest.json (same layout as make_vectors.py).

Affines are MONAI's (RAS world, channel-first arrays [C, i, j, k]); the TypeScript tests build the same volumes as
DICOM (LPS) geometry and convert. Run: tools/monai-reference/.venv/bin/python tools/monai-reference/make_spatial_vectors.py
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    KeepLargestConnectedComponent,
    Orientation,
    RemoveSmallObjects,
    Spacing,
    SpatialResample,
)

from common import ROOT, FixtureWriter, versions

OUT = ROOT / "packages" / "segmentation" / "src" / "__fixtures__" / "monai-spatial"
SEED = 20261201


def rot(axis: str, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def affine(direction: np.ndarray, spacing: list[float], origin: list[float]) -> np.ndarray:
    """RAS affine from unit direction columns, spacing and the centre of voxel (0,0,0)."""
    a = np.eye(4)
    a[:3, :3] = direction @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def smooth_image(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth brain-like blob with noise and a zero background (float32)."""
    idx = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r2 = (idx**2).sum(0)
    img = 800 * np.exp(-r2 * 1.5) + 60 * np.sin(3 * idx[0] + 2 * idx[1]) * np.cos(4 * idx[2])
    img += rng.normal(0, 5, shape)
    img[r2 > 0.9] = 0
    return img.astype(np.float32)


def label_map(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """BraTS labels 0/1/2/4: nested ellipsoids off-centre plus a few islands (uint8)."""
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"))
    c = np.array(shape, dtype=float) * np.array([0.45, 0.55, 0.5])
    rad = np.array(shape, dtype=float) * np.array([0.3, 0.25, 0.3])
    d = np.sqrt((((idx - c[:, None, None, None]) / rad[:, None, None, None]) ** 2).sum(0))
    lab = np.zeros(shape, np.uint8)
    lab[d < 1.0] = 2
    lab[d < 0.6] = 4
    lab[d < 0.35] = 1
    for _ in range(4):
        p = [int(rng.integers(0, n)) for n in shape]
        lab[p[0] : p[0] + 2, p[1] : p[1] + 2, p[2] : p[2] + 1] = int(rng.choice([2, 4]))
    return lab


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    w = FixtureWriter(out)
    cases: dict = {"resample": [], "components": []}

    resample_cases = [
        # name, shape, direction (RAS columns), spacing, origin, target pixdim
        ("aniso", (23, 19, 9), np.eye(3), [1.2, 0.9, 3.0], [-10.0, 5.0, -12.0], [1.0, 1.0, 1.0]),
        ("oblique", (17, 21, 13), rot("z", 25) @ rot("x", -15), [1.1, 1.3, 2.0], [3.5, -7.25, 20.0], [1.25, 1.25, 1.25]),
        # DICOM's usual axial orientation: i to the patient's left, j posterior, k superior (LPS)
        ("lps", (19, 15, 11), np.diag([-1.0, -1.0, 1.0]), [0.9, 0.9, 2.5], [90.0, 110.0, -30.0], [1.5, 1.5, 1.5]),
        # a sagittal acquisition: i anterior, j inferior, k right
        ("sagittal", (14, 16, 12), np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float), [1.0, 1.0, 1.6], [-20.0, -30.0, 40.0], [1.2, 0.8, 1.0]),
    ]
    for name, shape, direction, spacing, origin, pixdim in resample_cases:
        aff = affine(direction, spacing, origin)
        img = smooth_image(rng, shape)
        lab = label_map(rng, shape)
        image = MetaTensor(torch.from_numpy(img[None]), affine=torch.from_numpy(aff))
        labels = MetaTensor(torch.from_numpy(lab[None].astype(np.float32)), affine=torch.from_numpy(aff))
        oriented = Orientation(axcodes="RAS")(image)
        oriented_labels = Orientation(axcodes="RAS")(labels)
        spaced = Spacing(pixdim=pixdim, mode="bilinear")(oriented)
        spaced_labels = Spacing(pixdim=pixdim, mode="nearest")(oriented_labels)
        back = SpatialResample(mode="nearest")(spaced_labels, dst_affine=torch.from_numpy(aff), spatial_size=shape)
        case = {
            "name": name,
            "affine": aff.tolist(),
            "pixdim": pixdim,
            "image": w.array(f"{name}_image", img[None]),
            "labels": w.array(f"{name}_labels", lab[None]),
            "oriented": w.array(f"{name}_oriented", oriented.as_tensor().float()),
            "oriented_affine": oriented.affine.numpy().tolist(),
            "spaced": w.array(f"{name}_spaced", spaced.as_tensor().float()),
            "spaced_affine": spaced.affine.numpy().tolist(),
            "spaced_labels": w.array(f"{name}_spaced_labels", spaced_labels.as_tensor().round().to(torch.uint8)),
            "back_labels": w.array(f"{name}_back_labels", back.as_tensor().round().to(torch.uint8)),
        }
        cases["resample"].append(case)

    shape = (30, 28, 20)
    lab = label_map(rng, shape)
    # a second large oedema island (smaller than the main tumour) and thin strips, as a bad network output has them
    lab[2:6, 2:25, 2:4] = 2
    lab[25:28, 5:7, 1:19] = 2
    wt = lab > 0
    tc = (lab == 1) | (lab == 4)
    et = lab == 4
    onehot = np.stack([tc, wt, et]).astype(np.float32)
    w.array("cc_labels", lab[None])
    w.array("cc_onehot", onehot)
    spacing = [1.2, 0.9, 1.5]
    for connectivity in (None, 1, 2):
        tag = "full" if connectivity is None else str(connectivity)
        kl = KeepLargestConnectedComponent(applied_labels=[1], is_onehot=False, connectivity=connectivity)
        # MONAI's transforms write into their input: every call gets a fresh copy
        wt_only = torch.from_numpy(wt[None].astype(np.float32))
        cases["components"].append({
            "op": "keep_largest", "input": "cc_wt", "connectivity": connectivity, "is_onehot": False,
            "independent": True, "applied_labels": [1],
            "output": w.array(f"cc_keep_largest_wt_c{tag}", kl(wt_only).to(torch.uint8)),
        })
        # every channel is a region (TC, WT, ET), none is background: name them all (MONAI skips channel 0 otherwise)
        kl_oh = KeepLargestConnectedComponent(
            applied_labels=[0, 1, 2], is_onehot=True, independent=True, connectivity=connectivity
        )
        cases["components"].append({
            "op": "keep_largest", "input": "cc_onehot", "connectivity": connectivity, "is_onehot": True,
            "independent": True,
            "output": w.array(f"cc_keep_largest_onehot_c{tag}", kl_oh(torch.from_numpy(onehot.copy())).to(torch.uint8)),
        })
    w.array("cc_wt", wt[None])
    for min_size, by_measure, connectivity in ((8, False, 1), (20, False, 3), (30.0, True, 1)):
        rso = RemoveSmallObjects(
            min_size=min_size, connectivity=connectivity, independent_channels=True, by_measure=by_measure,
            pixdim=spacing if by_measure else None,
        )
        tag = f"{min_size}{'mm3' if by_measure else 'vox'}_c{connectivity}"
        # one channel at a time: skimage would otherwise label the [C, ...] array as one 4-D image and join regions
        # across channels
        out = torch.cat([rso(torch.from_numpy(onehot[c : c + 1].copy())) for c in range(onehot.shape[0])]).to(torch.uint8)
        cases["components"].append({
            "op": "remove_small", "input": "cc_onehot", "connectivity": connectivity, "min_size": min_size,
            "by_measure": by_measure, "pixdim": spacing,
            "output": w.array(f"cc_remove_small_{tag}", out),
        })

    w.write_manifest({
        "description": "MONAI reference vectors for @cdss/segmentation's spatial transforms and lesion clean-up.",
        "generator": "tools/monai-reference/make_spatial_vectors.py",
        "seed": SEED,
        "versions": versions(),
        "layout": "C-order little-endian; arrays are [C, i, j, k]; affines are MONAI's (RAS world, voxel centres)",
        "defaults": {
            "Orientation": "axcodes RAS, labels None",
            "Spacing": "diagonal False, scale_extent False, align_corners False, padding border, dtype float64",
            "SpatialResample": "align_corners False, padding border, dtype float64",
        },
        "cases": cases,
    })
    print("wrote", out)


if __name__ == "__main__":
    main()
