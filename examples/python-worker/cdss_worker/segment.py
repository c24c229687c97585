"""The segmentation itself, with MONAI, as the model's manifest and bundle configs describe it:

1. the four series onto one grid: one frame of reference, channels resampled onto the T1c grid where they differ
   (``SpatialResample``, bilinear, border padding);
2. ``Orientationd(axcodes)`` and ``Spacingd(pixdim)`` from the manifest's ``input`` (bilinear; MONAI resamples only
   when the spacing changes), then ``NormalizeIntensity(nonzero, channel_wise)``;
3. ``sliding_window_inference`` with the manifest's ``inference`` settings (roi, overlap, gaussian, sigma scale);
4. sigmoid, threshold, the bundle's label rule (ET where the ET channel is on, else NCR where TC, else ED where WT);
5. the manifest's clean-up per region (``RemoveSmallObjects`` by mm³, ``KeepLargestConnectedComponent``), on the
   model grid, as the TypeScript worker's ``studyFindings`` does;
6. the labels back onto the T1c grid by inverting step 2 (``Invertd``, nearest), and measured there: volumes from
   the T1c voxel size, the whole tumour's largest diameter.

This mirrors ``@cdss/segmentation``'s ``prepareStudy`` / ``segment`` / ``studyFindings``, which its parity tests
prove equal to these MONAI calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch
from monai.data import MetaTensor
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference
from monai.transforms import (
    Compose,
    Invertd,
    KeepLargestConnectedComponent,
    NormalizeIntensity,
    Orientationd,
    RemoveSmallObjects,
    SpatialResample,
    Spacingd,
)

from .model import Model
from .volumes import SeriesVolume

CHANNELS = ("t1c", "t1", "t2", "flair")
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


class InputError(Exception):
    """The study cannot be segmented as it is (another frame of reference, a grid too large)."""


class Aborted(Exception):
    """The job was cancelled, timed out or its worker is stopping: raised between windows of the sliding window."""


@dataclass
class Findings:
    """The cleaned labels on the T1c grid (``labels[i, j, k]``: 0, 1 NCR, 2 ED, ET label) and their measurements."""

    labels: np.ndarray
    #: region → (mL, voxels)
    volumes: dict[str, tuple[float, int]]
    largest_diameter_mm: float | None
    #: components of the network's whole tumour before the clean-up
    raw_components: int
    timings_ms: dict[str, float] = field(default_factory=dict)


def _same_grid(a: SeriesVolume, b: SeriesVolume) -> bool:
    return a.data.shape == b.data.shape and np.allclose(a.affine, b.affine, atol=1e-4)


def _channel_tensor(volume: SeriesVolume) -> MetaTensor:
    return MetaTensor(torch.from_numpy(volume.data)[None], affine=torch.from_numpy(volume.ras_affine()))


def prepare(model: Model, volumes: Mapping[str, SeriesVolume]) -> tuple[dict, Compose]:
    """Steps 1–2: the model input (``{"image": MetaTensor [C, X, Y, Z]}``) and the spatial transform to invert."""
    manifest = model.manifest
    names = [c.lower() for c in manifest["input"]["channels"]]
    missing = [n for n in names if n not in volumes]
    if missing:
        raise InputError(f"missing input channel(s): {', '.join(missing)}")
    reference = volumes[names[0]]
    for name in names[1:]:
        frame = volumes[name].frame_of_reference_uid
        if frame and reference.frame_of_reference_uid and frame != reference.frame_of_reference_uid:
            raise InputError(
                f"the {name.upper()} series is in another frame of reference than the {names[0].upper()} series: "
                "the series are not in one patient coordinate system; register them first"
            )
    target = _channel_tensor(reference)
    to_reference = SpatialResample(mode="bilinear", padding_mode="border", dtype=torch.float64)
    channels = []
    for name in names:
        tensor = _channel_tensor(volumes[name])
        if not _same_grid(volumes[name], reference):
            tensor = to_reference(tensor, dst_affine=target.affine, spatial_size=target.shape[1:])
        channels.append(torch.as_tensor(tensor, dtype=torch.float32))
    image = MetaTensor(torch.cat(channels, 0), affine=target.affine)
    spatial = Compose(
        [
            # labels: nibabel's RAS convention, as the MetaTensor's affine (stated: MONAI's default is to change)
            Orientationd(keys="image", axcodes=manifest["input"].get("axcodes", "RAS"), labels=RAS_LABELS),
            Spacingd(
                keys="image",
                pixdim=manifest["input"]["spacingMm"],
                mode="bilinear",
                padding_mode="border",
                dtype=torch.float64,
            ),
        ]
    )
    data = spatial({"image": image})
    norm = manifest["input"].get("normalize")
    if norm is not None:
        data["image"] = NormalizeIntensity(nonzero=norm["nonzero"], channel_wise=norm["channelWise"])(data["image"])
    data["image"] = data["image"].to(torch.float32)
    return data, spatial


def window_count(shape: tuple[int, ...], roi: tuple[int, ...], overlap: float) -> int:
    """How many windows MONAI's ``sliding_window_inference`` runs on an input of ``shape`` (spatial)."""
    size = tuple(max(s, r) for s, r in zip(shape, roi))
    interval = tuple(r if r == s else max(int(r * (1 - overlap)), 1) for s, r in zip(size, roi))
    return len(dense_patch_slices(size, roi, interval))


def infer(
    model: Model,
    image: torch.Tensor,
    should_stop: Callable[[], bool],
    on_window: Callable[[int, int], None] = lambda done, total: None,
) -> torch.Tensor:
    """Step 3: the network's logits ``[C_out, X, Y, Z]`` by MONAI's sliding window."""
    settings = model.manifest["inference"]
    roi = tuple(settings["roiSize"])
    batch = int(settings.get("swBatchSize", 1))
    total = math.ceil(window_count(tuple(image.shape[1:]), roi, settings["overlap"]) / batch) * batch
    done = 0

    def predictor(windows: torch.Tensor) -> torch.Tensor:
        nonlocal done
        if should_stop():
            raise Aborted("stopped during inference")
        out = model.network(windows)
        done += windows.shape[0]
        on_window(min(done, total), total)
        return out

    with torch.inference_mode():
        logits = sliding_window_inference(
            torch.as_tensor(image)[None],
            roi_size=roi,
            sw_batch_size=batch,
            predictor=predictor,
            overlap=settings["overlap"],
            mode=settings.get("mode", "gaussian"),
            sigma_scale=settings.get("sigmaScale", 0.125),
            padding_mode="constant",
            cval=settings.get("cval", 0.0),
        )
    return torch.as_tensor(logits)[0]


def labels_from_logits(model: Model, logits: torch.Tensor) -> np.ndarray:
    """Step 4: sigmoid, threshold (``AsDiscrete(threshold)`` keeps ``>=``), the BraTS label rule."""
    out = model.manifest["output"]
    if out["activation"] != "sigmoid":
        raise InputError(f"output activation {out['activation']!r}: this worker applies sigmoid outputs only")
    on = (torch.sigmoid(logits) >= out["threshold"]).numpy()
    regions = out["regions"]
    et_label = int(model.manifest.get("etLabel", 4))
    labels = np.zeros(on.shape[1:], dtype=np.uint8)
    labels[on[regions["wt"]]] = 2
    labels[on[regions["tc"]]] = 1
    labels[on[regions["et"]]] = et_label
    return labels


def _components(mask: np.ndarray, connectivity: int) -> int:
    from skimage.measure import label  # MONAI's own CPU path for connected components

    return int(label(mask, connectivity=connectivity, return_num=True)[1])


def clean(model: Model, labels: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, int]:
    """Step 5: the manifest's clean-up per region; also the whole tumour's component count before it."""
    post = model.manifest["postprocessing"]["components"]
    connectivity = int(post.get("connectivity", 3))
    et_label = int(model.manifest.get("etLabel", 4))
    masks = {"wt": labels > 0, "tc": (labels == 1) | (labels == et_label), "et": labels == et_label}
    raw_components = _components(masks["wt"], connectivity)
    voxel_mm3 = float(np.prod(spacing))
    cleaned = {}
    for region, mask in masks.items():
        m = torch.from_numpy(mask[None])
        minimum = post.get("minSizeMm3", {}).get(region)
        if minimum:
            # the TypeScript clean-up keeps components of at least ceil(mm³ / voxel) voxels, as MONAI does for a
            # min_size in voxels (skimage removes those smaller)
            m = RemoveSmallObjects(min_size=math.ceil(minimum / voxel_mm3), connectivity=connectivity)(m)
        if region in post.get("keepLargest", []):
            m = KeepLargestConnectedComponent(is_onehot=False, applied_labels=[1], connectivity=connectivity)(
                torch.as_tensor(m).to(torch.uint8)
            )
        cleaned[region] = torch.as_tensor(m).numpy()[0].astype(bool)
    out = np.zeros_like(labels)
    wt, tc, et = cleaned["wt"], cleaned["tc"], cleaned["et"]
    out[wt] = 2
    out[wt & tc] = 1
    out[wt & tc & et] = et_label
    return out, raw_components


def to_source(labels: np.ndarray, prepared: dict, spatial: Compose) -> np.ndarray:
    """Step 6: labels from the model grid back onto the T1c grid (the spatial transforms inverted, nearest)."""
    image = prepared["image"]
    pred = MetaTensor(
        torch.from_numpy(labels[None].astype(np.float32)),
        meta=dict(image.meta),
        applied_operations=list(image.applied_operations),
    )
    inverted = Invertd(keys="pred", transform=spatial, orig_keys="image", nearest_interp=True)(
        {"image": image, "pred": pred}
    )["pred"]
    return np.rint(torch.as_tensor(inverted).numpy()[0]).astype(np.uint8)


def largest_diameter_mm(mask: np.ndarray, affine: np.ndarray) -> float | None:
    """The largest distance between two voxel centres of a mask, in mm (the convex hull's vertices suffice)."""
    points = np.argwhere(mask)
    if len(points) == 0:
        return None
    world = points @ affine[:3, :3].T
    if len(world) > 4:
        from scipy.spatial import ConvexHull, QhullError

        try:
            world = world[ConvexHull(world).vertices]
        except QhullError:  # flat or degenerate: every point is a candidate
            pass
    best = 0.0
    for start in range(0, len(world), 2048):
        block = world[start : start + 2048]
        best = max(best, float(np.sqrt(((block[:, None, :] - world[None, :, :]) ** 2).sum(-1)).max()))
    return best


def region_volumes(labels: np.ndarray, voxel_mm3: float, et_label: int) -> dict[str, tuple[float, int]]:
    """BraTS sub-region volumes: enhancing tumour (ET), tumour core (NCR + ET), whole tumour (all)."""
    counts = {
        "enhancing-tumour": int((labels == et_label).sum()),
        "tumour-core": int(((labels == 1) | (labels == et_label)).sum()),
        "whole-tumour": int((labels > 0).sum()),
    }
    return {region: (n * voxel_mm3 / 1000.0, n) for region, n in counts.items()}
