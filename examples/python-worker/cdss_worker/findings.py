"""What a reviewer needs besides the volumes, as ``@cdss/segmentation`` computes it (``measure.ts``, ``flags.ts``):
the enhancing lesions measured as bidimensional RANO does, and the plausibility flags whose thresholds the model's
manifest gives (``postprocessing.plausibility``). A flagged result needs a reviewer's comment to be approved.

Lesions are measured on the T1c grid's voxels oriented to RAS (axial planes along the third axis, inferior first),
as the TypeScript worker does for a resampled study; for a study already on the model's grid it measures the same
voxels in the model's orientation, which gives the same diameters and slice numbers (only the names of the faces in a
``fov-edge`` message can differ, ``d0 low`` for ``d0 high``, as the two orientations mirror the first two axes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from skimage.measure import label


@dataclass
class Lesion:
    volume_ml: float
    longest_mm: float
    perpendicular_mm: float
    slice: int
    measurable: bool

    def protocol(self) -> dict[str, Any]:
        """The protocol's ``lesion`` object, rounded as the TypeScript worker rounds it."""
        return {
            "volumeMl": round(self.volume_ml, 4),
            "longestDiameterMm": round(self.longest_mm, 2),
            "perpendicularDiameterMm": round(self.perpendicular_mm, 2),
            "productMm2": round(self.longest_mm * self.perpendicular_mm, 2),
            "slice": self.slice,
            "measurable": self.measurable,
        }


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain over points sorted by (x, y), in the TypeScript order (ties resolve alike)."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    pts = points[order]
    if len(pts) <= 2:
        return pts

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))

    lower: list[np.ndarray] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[np.ndarray] = []
    for p in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def bidimensional(points: np.ndarray, pixel: float) -> tuple[float, float]:
    """The longest diameter of a lesion's points on one slice (mm), and the longest chord perpendicular to it."""
    hull = _convex_hull(points)
    longest, ux, uy = 0.0, 1.0, 0.0
    for a in range(len(hull)):
        for b in range(a + 1, len(hull)):
            dx, dy = hull[b] - hull[a]
            d = math.hypot(dx, dy)
            if d > longest:
                longest, ux, uy = d, dx / d, dy / d
    if longest == 0:
        return 0.0, 0.0
    # points bucketed by their position along u (half a pixel either side); each bucket's chord runs along v
    t = points[:, 0] * ux + points[:, 1] * uy
    s = -points[:, 0] * uy + points[:, 1] * ux
    order = np.argsort(t, kind="stable")
    t, s = t[order], s[order]
    half = pixel / 2
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    perpendicular = 0.0
    for c in range(len(t)):
        window = s[lo[c] : hi[c]]
        perpendicular = max(perpendicular, float(window.max() - window.min()))
    return longest, perpendicular


def measure_lesions(
    et: np.ndarray, spacing: tuple[float, float, float], connectivity: int, min_measurable_mm: float
) -> tuple[list[Lesion], float]:
    """The enhancing lesions (connected components of ``et[d0, d1, d2]``, axial planes along d2), largest first,
    and the sum of the products of the measurable ones (mm²)."""
    components, count = label(et, connectivity=connectivity, return_num=True)
    s0, s1, s2 = spacing
    voxel_ml = s0 * s1 * s2 / 1000
    lesions = []
    for c in range(1, count + 1):
        voxels = np.argwhere(components == c)  # (i, j, k) in memory order, as the TypeScript loop visits them
        best = (0.0, 0.0, -1)
        for k in np.unique(voxels[:, 2]):
            on_slice = voxels[voxels[:, 2] == k]
            points = np.stack([on_slice[:, 0] * s0, on_slice[:, 1] * s1], axis=1).astype(np.float64)
            longest, perpendicular = bidimensional(points, min(s0, s1))
            if longest > best[0] or best[2] < 0:
                best = (longest, perpendicular, int(k))
        longest, perpendicular, k = best
        lesions.append(
            Lesion(
                volume_ml=len(voxels) * voxel_ml,
                longest_mm=longest,
                perpendicular_mm=perpendicular,
                slice=k,
                measurable=longest >= min_measurable_mm and perpendicular >= min_measurable_mm,
            )
        )
    lesions.sort(key=lambda lesion: (-lesion.volume_ml, lesion.slice))
    total = sum(lesion.longest_mm * lesion.perpendicular_mm for lesion in lesions if lesion.measurable)
    return lesions, total


def _edges(mask: np.ndarray, margin: int) -> str | None:
    names = []
    for axis in range(3):
        where = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[0]
        if len(where) == 0:
            return None
        if where[0] <= margin:
            names.append(f"d{axis} low")
        if where[-1] >= mask.shape[axis] - 1 - margin:
            names.append(f"d{axis} high")
    return ", ".join(names) or None


def _nonzero_stats(x: np.ndarray) -> tuple[float, float]:
    values = x[x != 0].astype(np.float64)
    if len(values) == 0:
        return 0.0, 1.0
    mean = float(values.mean())
    sd = math.sqrt(max(float((values * values).mean()) - mean * mean, 0.0))
    return mean, sd or 1.0


def enhancing_brain_ml(t1c: np.ndarray, t1: np.ndarray, voxel_ml: float, z: float) -> float:
    """mL of the brain where T1c − T1 (each normalised over its non-zero voxels) exceeds ``z`` standard deviations."""
    a, b = _nonzero_stats(t1c), _nonzero_stats(t1)
    inside = (t1c != 0) & (t1 != 0)
    diff = np.zeros(t1c.shape, dtype=np.float32)
    diff[inside] = ((t1c[inside] - a[0]) / a[1] - (t1[inside] - b[0]) / b[1]).astype(np.float32)
    mean, sd = _nonzero_stats(diff)
    return int((((diff - mean) / sd > z) & (diff != 0)).sum()) * voxel_ml


def plausibility_flags(
    manifest: dict[str, Any],
    whole_tumour: np.ndarray,
    whole_tumour_ml: float,
    raw_components: int,
    logits: torch.Tensor,
    model_input: torch.Tensor,
    model_voxel_ml: float,
) -> list[dict[str, str]]:
    """The plausibility flags of a result (``flags.ts``): ``fov-edge``, ``many-components``, ``whole-tumour-large``,
    ``et-outside-tc``, ``empty-with-enhancement``; empty when it looks plausible."""
    limits = {
        "fovEdgeMarginVoxels": 0,
        "maxComponents": 10,
        "maxWholeTumourMl": 400,
        "maxEtOutsideTcFraction": 0.05,
        "minEnhancingMl": 1,
        "enhancementZ": 3,
        **manifest["postprocessing"].get("plausibility", {}),
    }
    flags = []
    edge = _edges(whole_tumour, int(limits["fovEdgeMarginVoxels"]))
    if edge:
        flags.append({"code": "fov-edge", "message": f"the whole tumour reaches the edge of the field of view ({edge})"})
    if raw_components > limits["maxComponents"]:
        flags.append(
            {
                "code": "many-components",
                "message": f"the network found {raw_components} separate tumour regions "
                f"(more than {limits['maxComponents']})",
            }
        )
    if whole_tumour_ml > limits["maxWholeTumourMl"]:
        flags.append(
            {
                "code": "whole-tumour-large",
                "message": f"whole tumour {whole_tumour_ml:.1f} mL is above the plausible "
                f"{float(limits['maxWholeTumourMl']):.1f} mL",
            }
        )
    out = manifest["output"]
    if out["activation"] == "sigmoid":
        on = torch.sigmoid(logits) >= out["threshold"]
        enhancing = on[out["regions"]["et"]]
        outside = int((enhancing & ~on[out["regions"]["tc"]]).sum())
        count = int(enhancing.sum())
        if count > 0 and outside / count > limits["maxEtOutsideTcFraction"]:
            flags.append(
                {
                    "code": "et-outside-tc",
                    "message": f"{outside / count * 100:.1f} % of the enhancing tumour lies outside the tumour core",
                }
            )
    channels = [c.lower() for c in manifest["input"]["channels"]]
    if whole_tumour_ml == 0 and "t1c" in channels and "t1" in channels:
        data = torch.as_tensor(model_input).numpy()
        ml = enhancing_brain_ml(
            data[channels.index("t1c")], data[channels.index("t1")], model_voxel_ml, limits["enhancementZ"]
        )
        if ml >= limits["minEnhancingMl"]:
            flags.append(
                {
                    "code": "empty-with-enhancement",
                    "message": f"no tumour segmented, but {ml:.1f} mL of the brain enhance after contrast",
                }
            )
    return flags
