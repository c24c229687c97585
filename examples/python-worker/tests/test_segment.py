"""The pipeline's pieces on synthetic data: series assembly, the grid round trip through MONAI's Orientation and
Spacing and back, window counting, the label rule, the clean-up, and the SEG (highdicom) read back with pydicom."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
import torch
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from cdss_worker.analysis import write_seg
from cdss_worker.model import load_model
from cdss_worker.protocol import _REPO_ROOT
from cdss_worker.segment import clean, labels_from_logits, prepare, to_source, window_count, infer
from cdss_worker.volumes import SeriesGeometryError, series_volume

DEMO = _REPO_ROOT / "models" / "brats-demo"


@pytest.fixture(scope="module")
def model():
    return load_model(DEMO)


def mr_series(
    volume: np.ndarray,
    spacing=(3.75, 3.75, 3.75),
    row=(1.0, 0.0, 0.0),
    col=(0.0, 1.0, 0.0),
    origin=(-100.0, -110.0, -80.0),
    frame="1.2.3.4",
    slope=1.0,
) -> list[Dataset]:
    """Single-frame MR instances of ``volume[i, j, k]`` (uint16), positions along row × column, shuffled."""
    study, series = generate_uid(), generate_uid()
    normal = np.cross(row, col)
    out = []
    for k in range(volume.shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "p1", "Test^Patient", "19700101", "F"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "20260101", "120000", "1", "", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", 1, k + 1
        ds.Manufacturer = "test"
        ds.ImageOrientationPatient = [*row, *col]
        ds.ImagePositionPatient = list(np.asarray(origin) + k * spacing[2] * normal)
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, 0
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T.astype(np.uint16)).tobytes()
        out.append(ds)
    rng = np.random.default_rng(7)
    return [out[i] for i in rng.permutation(len(out))]


def test_a_series_becomes_one_volume_in_slice_order_with_rescale():
    volume = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7)
    built = series_volume(mr_series(volume, spacing=(1.0, 2.0, 3.0), slope=2.0))
    assert built.data.shape == (5, 6, 7)
    np.testing.assert_array_equal(built.data, volume * 2.0)
    np.testing.assert_allclose(built.spacing, (1.0, 2.0, 3.0))
    np.testing.assert_allclose(built.affine[:3, 3], (-100.0, -110.0, -80.0))
    assert [int(ds.InstanceNumber) for ds in built.datasets] == list(range(1, 8))


def test_a_series_with_a_missing_slice_is_refused():
    datasets = mr_series(np.zeros((4, 4, 6), dtype=np.uint16))
    with pytest.raises(SeriesGeometryError, match="evenly"):
        series_volume([ds for ds in datasets if int(ds.InstanceNumber) != 3])


@pytest.mark.parametrize(
    ("shape", "roi", "overlap"),
    [((64, 64, 48), (64, 64, 48), 0.5), ((70, 64, 30), (64, 64, 48), 0.5), ((100, 90, 80), (64, 64, 48), 0.25)],
)
def test_window_count_is_what_the_sliding_window_runs(model, shape, roi, overlap):
    calls = []
    model_like = type("M", (), {"manifest": {"inference": {"roiSize": roi, "overlap": overlap, "swBatchSize": 1}}})()
    model_like.network = lambda x: torch.zeros((x.shape[0], 3, *x.shape[2:]))
    infer(model_like, torch.zeros((4, *shape)), lambda: False, lambda done, total: calls.append((done, total)))
    assert calls[-1] == (window_count(shape, roi, overlap), window_count(shape, roi, overlap))


def test_the_label_rule_gives_enhancing_over_core_over_oedema(model):
    logits = torch.full((3, 2, 2, 1), -5.0)
    regions = model.manifest["output"]["regions"]
    logits[regions["wt"], 0, :, 0] = 5  # oedema only
    logits[regions["tc"], 1, 0, 0] = 5  # core without whole tumour still counts as core
    logits[regions["et"], 1, 1, 0] = 0  # sigmoid 0.5: on (>= threshold)
    labels = labels_from_logits(model, logits)
    assert labels[:, :, 0].tolist() == [[2, 2], [1, 4]]


def test_clean_keeps_the_largest_whole_tumour_and_drops_small_enhancing_islands(model):
    labels = np.zeros((20, 20, 20), dtype=np.uint8)
    labels[2:8, 2:8, 2:8] = 2  # the tumour
    labels[4:6, 4:6, 4:6] = 4  # 8 voxels of enhancement inside it: 8 × 1 mm³ < 100 mm³, removed
    labels[15:17, 15:17, 15:17] = 2  # a second, smaller component, removed
    cleaned, raw = clean(model, labels, (1.0, 1.0, 1.0))
    assert raw == 2
    assert set(np.unique(cleaned)) == {0, 2}
    assert (cleaned > 0).sum() == 6**3


@pytest.mark.parametrize(
    ("row", "col", "spacing"),
    [
        ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), None),  # the model's spacing in DICOM's axial order (LPS): a pure reordering
        ((-1.0, 0.0, 0.0), (0.0, 0.0, -1.0), None),  # the model's spacing, coronal, flipped: reordering and flips
        ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (3.0, 3.0, 5.0)),  # another spacing: resampled both ways
    ],
    ids=["axial", "coronal-flipped", "resampled"],
)
def test_labels_return_to_the_t1c_grid(model, row, col, spacing):
    spacing = spacing or tuple(float(s) for s in model.manifest["input"]["spacingMm"])
    volume = np.zeros((40, 36, 30), dtype=np.uint16)
    volume[10:22, 8:20, 6:18] = 400 + 200 * (np.indices((12, 12, 12)).sum(0) % 2)  # normalised to ±1, never 0
    series = series_volume(mr_series(volume, spacing=spacing, row=row, col=col))
    prepared, spatial = prepare(model, {c: series for c in ("t1c", "t1", "t2", "flair")})
    # a label map on the model grid: where the image is not background (NormalizeIntensity(nonzero) keeps 0 at 0)
    labels = (prepared["image"][0].numpy() != 0).astype(np.uint8) * 2
    back = to_source(labels, prepared, spatial)
    assert back.shape == volume.shape
    agreement = ((back > 0) == (volume > 0)).mean()
    if spacing[2] == spacing[0]:
        assert agreement == 1.0  # no interpolation: every voxel returns to where it came from
    else:
        assert agreement > 0.99


def test_the_seg_is_binary_automatic_and_holds_the_labels(model, tmp_path):
    volume = np.full((16, 12, 6), 100, dtype=np.uint16)
    series = series_volume(mr_series(volume, spacing=(1.0, 1.0, 2.0)))
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[2:5, 3:6, 1] = 1
    labels[6:9, 3:6, 2:4] = 2
    labels[10, 5, 4] = 4
    seg = write_seg(labels, series, model, "0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70", 4)
    buffer = io.BytesIO()
    seg.save_as(buffer)
    read = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    assert read.Modality == "SEG" and read.SegmentationType == "BINARY"
    assert read.SeriesDescription.startswith("AI segmentation ")
    segments = read.SegmentSequence
    assert [s.SegmentLabel for s in segments] == ["NCR", "ED", "ET"]
    assert {s.SegmentAlgorithmType for s in segments} == {"AUTOMATIC"}
    assert {s.SegmentAlgorithmName for s in segments} == {model.manifest["name"]}
    # frames back to a label map: frame f is segment (f // slices) + 1 on slice f % slices (source order)
    frames = read.pixel_array
    slices = volume.shape[2]
    rebuilt = np.zeros_like(labels)
    for f, frame in enumerate(frames):
        number = read.PerFrameFunctionalGroupsSequence[f].SegmentIdentificationSequence[0].ReferencedSegmentNumber
        position = read.PerFrameFunctionalGroupsSequence[f].PlanePositionSequence[0].ImagePositionPatient
        k = int(round((float(position[2]) - float(series.affine[2, 3])) / 2.0))
        rebuilt[:, :, k][frame.T > 0] = (1, 2, 4)[number - 1]
    np.testing.assert_array_equal(rebuilt, labels)
    # the same job gives the same UIDs: a retried job overwrites its own SEG
    again = write_seg(labels, series, model, "0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70", 4)
    assert (again.SeriesInstanceUID, again.SOPInstanceUID) == (seg.SeriesInstanceUID, seg.SOPInstanceUID)
    assert slices == 6


def test_the_seg_and_its_measurement_report_are_valid_dicom(model, tmp_path):
    import os
    import shutil
    import subprocess

    from cdss_worker.analysis import write_measurement_report
    from cdss_worker.findings import Lesion

    if not shutil.which("dciodvfy"):
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but dciodvfy is not installed (apt-get install -y dicom3tools)")
        pytest.skip("dciodvfy is not installed (dicom3tools)")
    volume = np.full((16, 12, 6), 100, dtype=np.uint16)
    series = series_volume(mr_series(volume, spacing=(1.0, 1.0, 2.0)))
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[2:9, 3:6, 1:4] = 2
    labels[3:6, 3:5, 2] = 4
    job = "0b6f3c2e-5d1a-4c8e-9f7a-2b3c4d5e6f70"
    seg = write_seg(labels, series, model, job, 4)
    lesion = Lesion(volume_ml=0.012, longest_mm=3.2, perpendicular_mm=1.4, slice=2, measurable=False)
    volumes = {"enhancing-tumour": (0.012, 6), "tumour-core": (0.012, 6), "whole-tumour": (0.126, 63)}
    sr = write_measurement_report(seg, series, model, job, volumes, {1: 0.0, 2: 0.114, 4: 0.012}, [lesion])
    assert sr.SeriesDescription.startswith("AI measurements ")
    for name, dataset in (("seg.dcm", seg), ("sr.dcm", sr)):
        dataset.save_as(tmp_path / name)
        out = subprocess.run(["dciodvfy", str(tmp_path / name)], capture_output=True, text=True)
        errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], name
