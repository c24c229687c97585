"""DICOM series ↔ volumes: a series of single-frame MR images becomes one float32 volume with its patient-space
geometry, the same grid ``@cdss/dicom``'s ``buildVolume`` makes (columns i, rows j, slices k along row × column,
spacing from PixelSpacing and the slice positions, Rescale Slope/Intercept applied), and a label map on that grid
becomes a DICOM SEG (highdicom).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset


class SeriesGeometryError(Exception):
    """A series cannot be one volume (mixed orientations, duplicate or uneven slices, missing attributes)."""


@dataclass
class SeriesVolume:
    """A series as a volume: ``data[i, j, k]`` (float32), ``affine`` the voxel → patient (LPS, mm) matrix."""

    data: np.ndarray
    #: 4×4, LPS: world = affine @ [i, j, k, 1]
    affine: np.ndarray
    #: the source instances in slice (k) order
    datasets: list[Dataset]
    frame_of_reference_uid: str | None

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(np.linalg.norm(self.affine[:3, a])) for a in range(3))  # type: ignore[return-value]

    def ras_affine(self) -> np.ndarray:
        """The same grid's affine in RAS (nibabel, MONAI): x and y negated."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine


def _floats(ds: Dataset, keyword: str, count: int) -> list[float]:
    value = ds.get(keyword)
    if value is None:
        raise SeriesGeometryError(f"an instance has no {keyword}")
    values = [float(v) for v in (value if isinstance(value, (list, tuple)) or hasattr(value, "__len__") else [value])]
    if len(values) != count:
        raise SeriesGeometryError(f"{keyword} has {len(values)} values, expected {count}")
    return values


def series_volume(datasets: Sequence[Dataset], spacing_tolerance: float = 0.01) -> SeriesVolume:
    """Assembles single-frame instances of one series into a volume.

    :raises SeriesGeometryError: for a series that is not one regular stack of parallel slices
    """
    if not datasets:
        raise SeriesGeometryError("the series has no instances")
    first = datasets[0]
    iop = np.array(_floats(first, "ImageOrientationPatient", 6))
    row, col = iop[:3], iop[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise SeriesGeometryError("ImageOrientationPatient is not two orthogonal unit vectors")
    normal = np.cross(row, col)
    for ds in datasets:
        if np.abs(np.array(_floats(ds, "ImageOrientationPatient", 6)) - iop).max() > 1e-4:
            raise SeriesGeometryError("the instances do not share one ImageOrientationPatient")
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise SeriesGeometryError("the instances do not share one size")
    ordered = sorted(datasets, key=lambda ds: float(np.array(_floats(ds, "ImagePositionPatient", 3)) @ normal))
    positions = np.array([_floats(ds, "ImagePositionPatient", 3) for ds in ordered])
    along = positions @ normal
    if len(ordered) > 1:
        gaps = np.diff(along)
        if gaps.min() < 1e-3:
            raise SeriesGeometryError("two slices are at the same position")
        step = float(np.median(gaps))
        if np.abs(gaps - step).max() > spacing_tolerance * step:
            raise SeriesGeometryError("the slices are not evenly spaced (missing or extra slices)")
        off_axis = positions - positions[0] - np.outer(along - along[0], normal)
        if np.linalg.norm(off_axis, axis=1).max() > max(0.01, spacing_tolerance * step):
            raise SeriesGeometryError("the slices are not stacked along their normal (tilted or sheared series)")
    else:
        step = float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)
    pixel_spacing = _floats(first, "PixelSpacing", 2)
    # (k, j, i) as read, then i fastest in memory order is data[i, j, k] in numpy's C order of [k][j][i] transposed
    planes = []
    for ds in ordered:
        pixels = ds.pixel_array.astype(np.float32)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        planes.append(pixels * np.float32(slope) + np.float32(intercept) if (slope, intercept) != (1, 0) else pixels)
    data = np.ascontiguousarray(np.stack(planes).transpose(2, 1, 0))
    affine = np.eye(4)
    affine[:3, 0] = row * pixel_spacing[1]
    affine[:3, 1] = col * pixel_spacing[0]
    affine[:3, 2] = normal * step
    affine[:3, 3] = positions[0]
    return SeriesVolume(
        data=data,
        affine=affine,
        datasets=list(ordered),
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID") or "") or None,
    )
