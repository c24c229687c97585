"""One analysis, as the TypeScript worker's ``analyseStudy`` does it: fetch the four series from the PACS over
DICOMweb (WADO-RS), segment them (``segment.py``), measure them (``findings.py``), write a DICOM SEG on the T1c grid
(highdicom; AUTOMATIC, with the model's name and version) and a TID 1500 measurement report (Enhanced SR) beside it,
store both in the PACS (STOW-RS), and return the protocol's ``result``. Progress goes out by
stage with the same percentages; errors become the protocol's failure reasons, retryable only where asking again
could help (the PACS unreachable while fetching or storing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import highdicom as hd
import monai
import nibabel as nib
import numpy as np
import pydicom
import requests
import torch
from dicomweb_client.api import DICOMwebClient
from highdicom.sr.coding import CodedConcept
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from . import __version__
from .findings import measure_lesions, plausibility_flags
from .jobs import JobContext, JobFailure, Stopped
from .model import Model
from .segment import (
    Aborted,
    InputError,
    clean,
    infer,
    labels_from_logits,
    largest_diameter_mm,
    prepare,
    region_volumes,
    to_source,
)
from .volumes import SeriesGeometryError, SeriesVolume, series_volume

CHANNELS = ("t1c", "t1", "t2", "flair")
#: The BraTS segments of @cdss/dicom's BRATS_SEGMENTS: label value, label, SNOMED CT type, CIELab colour.
BRATS_SEGMENTS = (
    (1, "NCR", CodedConcept("6574001", "SCT", "Necrosis"), (21758, 44029, 40217)),
    (2, "ED", CodedConcept("79654002", "SCT", "Edema"), (58364, 28226, 49601)),
    (4, "ET", CodedConcept("108369006", "SCT", "Neoplasm"), (43803, 50297, 25443)),
)
MORPHOLOGICALLY_ABNORMAL_STRUCTURE = CodedConcept("49755003", "SCT", "Morphologically abnormal structure")


def dicomweb_client(base_url: str, username: str | None, password: str | None, timeout_s: float) -> DICOMwebClient:
    """A DICOMweb client of Orthanc's DICOMweb plugin (``<ORTHANC_URL>/dicom-web``), with basic auth if given."""
    session = requests.Session()
    if username and password:
        session.auth = (username, password)
    return DICOMwebClient(url=f"{base_url.rstrip('/')}/dicom-web", session=session, timeout=timeout_s)


@dataclass
class AnalysisSettings:
    #: Largest grid accepted, voxels per channel (default 240×240×160, as the TypeScript worker).
    max_voxels: int = 240 * 240 * 160
    #: A job running longer fails with deadline-exceeded (default 15 min).
    job_timeout_s: float = 15 * 60
    worker_id: str = "cdss-python-worker"


def _failure(stage: str, error: BaseException) -> BaseException:
    """The protocol's failure reason of an error in a stage (as the TypeScript worker's ``failure``)."""
    if isinstance(error, (JobFailure, Stopped)):
        return error
    if isinstance(error, Aborted):
        return Stopped(str(error))
    if isinstance(error, requests.HTTPError) and error.response is not None and error.response.status_code == 404:
        if stage == "fetch":
            return JobFailure("series-missing", "a requested series is not in the PACS")
        return JobFailure("output-store-failed", "the PACS answered 404 to the store")
    if isinstance(error, SeriesGeometryError):
        return JobFailure("preprocessing-failed", str(error))
    if isinstance(error, InputError):
        return JobFailure("preprocessing-failed", str(error))
    reason = {
        "fetch": "input-fetch-failed",
        "preprocess": "preprocessing-failed",
        "inference": "inference-failed",
        "postprocess": "output-store-failed",
        "store": "output-store-failed",
    }[stage]
    # network and PACS errors may pass; our own errors will not
    retryable = stage in ("fetch", "store") and isinstance(error, (requests.RequestException, OSError))
    return JobFailure(reason, f"{type(error).__name__} while {stage}", retryable)


def _fetch(client: DICOMwebClient, study: str, channel: str, series: str) -> SeriesVolume:
    try:
        datasets = client.retrieve_series(study, series)
    except requests.HTTPError as error:
        if error.response is not None and error.response.status_code == 404:
            raise JobFailure("series-missing", f"the {channel.upper()} series is not in the study") from error
        raise
    if not datasets:
        raise JobFailure("series-missing", f"the {channel.upper()} series is not in the study or has no instances")
    try:
        return series_volume(datasets)
    except SeriesGeometryError as error:
        raise JobFailure("preprocessing-failed", f"the {channel.upper()} series: {error}") from error


def write_seg(labels: np.ndarray, source: SeriesVolume, model: Model, job_id: str, et_label: int) -> pydicom.Dataset:
    """A binary DICOM SEG of the labels (``labels[i, j, k]`` on the T1c grid) in the T1c series' study.

    Its UIDs derive from the job, so a retried job overwrites its own SEG instead of adding another.
    """
    name, version = model.manifest["name"][:64], model.manifest["version"][:64]
    algorithm = hd.AlgorithmIdentificationSequence(
        name=name, version=version, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = []
    segment_map = np.zeros(256, dtype=np.uint8)
    for number, (value, label, type_, cielab) in enumerate(BRATS_SEGMENTS, start=1):
        segment_map[et_label if value == 4 else value] = number
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=label,
                segmented_property_category=MORPHOLOGICALLY_ABNORMAL_STRUCTURE,
                segmented_property_type=type_,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
                display_color=hd.color.CIELabColor(*[c / 65535 * s - o for c, s, o in zip(cielab, (100, 255, 255), (0, 128, 128))]),
            )
        )
    # frames in source-image order: frame k is the label plane of slice k, rows j, columns i
    frames = np.ascontiguousarray(segment_map[labels].transpose(2, 1, 0))
    return hd.seg.Segmentation(
        source_images=source.datasets,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(entropy_srcs=[job_id, "seg/series"]),
        series_number=100,
        sop_instance_uid=generate_uid(entropy_srcs=[job_id, "seg/instance"]),
        instance_number=1,
        manufacturer="CDSS",
        manufacturer_model_name="cdss-python-worker",
        software_versions=[f"cdss-python-worker {__version__}", f"MONAI {monai.__version__}", f"torch {torch.__version__}"],
        device_serial_number="0",
        series_description=f"AI segmentation {version}"[:64],
        content_label="TUMOUR",
        content_description=("NOT FOR CLINICAL USE" if model.manifest.get("notForClinicalUse") else f"{name} {version}")[:64],
        omit_empty_frames=False,
    )


def write_measurement_report(
    seg: pydicom.Dataset,
    source: SeriesVolume,
    model: Model,
    job_id: str,
    volumes: dict[str, tuple[float, int]],
    segment_ml: dict[int, float],
    lesions: list,
) -> pydicom.Dataset:
    """A TID 1500 Measurement Report (Enhanced SR) beside the SEG, as ``@cdss/dicom``'s ``writeMeasurementReport``:
    one measurement group per segment (its volume), one per enhancing lesion (volume, long and short axis, referencing
    the ET segment), and the tumour core and whole tumour volumes (TID 1501)."""
    name, version = model.manifest["name"][:64], model.manifest["version"][:64]
    sr_codes = hd.sr.CodedConcept
    brain = [hd.sr.FindingSite(sr_codes("12738006", "SCT", "Brain"))]
    volume = sr_codes("118565006", "SCT", "Volume")
    ml, mm = sr_codes("ml", "UCUM", "milliliter"), sr_codes("mm", "UCUM", "millimeter")
    source_series = hd.sr.SourceSeriesForSegmentation(source.datasets[0].SeriesInstanceUID)

    def tracking(label: str, key: str) -> hd.sr.TrackingIdentifier:
        return hd.sr.TrackingIdentifier(uid=generate_uid(entropy_srcs=[job_id, "sr", key]), identifier=label)

    def segment(number: int) -> hd.sr.ReferencedSegment:
        return hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID,
            sop_instance_uid=seg.SOPInstanceUID,
            segment_number=number,
            source_series=source_series,
        )

    groups: list = []
    for number, (value, label, type_, _) in enumerate(BRATS_SEGMENTS, start=1):
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking(label, f"segment-{number}"),
                referenced_segment=segment(number),
                finding_type=type_,
                finding_sites=brain,
                measurements=[hd.sr.Measurement(name=volume, value=round(segment_ml[value], 3), unit=ml)],
            )
        )
    et_type = BRATS_SEGMENTS[2][2]
    for n, lesion in enumerate(lesions, start=1):
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking(
                    f"Enhancing lesion {n}{'' if lesion.measurable else ' (non-measurable)'}", f"lesion-{n}"
                ),
                referenced_segment=segment(3),
                finding_type=et_type,
                finding_sites=brain,
                measurements=[
                    hd.sr.Measurement(name=volume, value=round(lesion.volume_ml, 3), unit=ml),
                    hd.sr.Measurement(
                        name=sr_codes("103339001", "SCT", "Long Axis"), value=round(lesion.longest_mm, 1), unit=mm
                    ),
                    hd.sr.Measurement(
                        name=sr_codes("103340004", "SCT", "Short Axis"), value=round(lesion.perpendicular_mm, 1), unit=mm
                    ),
                ],
            )
        )
    for n, (label, region) in enumerate((("Tumour core", "tumour-core"), ("Whole tumour", "whole-tumour")), start=1):
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=tracking(label, f"region-{n}"),
                finding_type=et_type,
                finding_sites=brain,
                measurements=[hd.sr.Measurement(name=volume, value=round(volumes[region][0], 3), unit=ml)],
            )
        )
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["device", name, version]), name=name, model_name=f"{name} {version}"[:64]
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=sr_codes("113091000", "SCT", "Magnetic resonance imaging"),
        imaging_measurements=groups,
    )
    return hd.sr.EnhancedSR(
        evidence=[seg],
        content=report,
        series_instance_uid=generate_uid(entropy_srcs=[job_id, "sr/series"]),
        series_number=101,
        sop_instance_uid=generate_uid(entropy_srcs=[job_id, "sr/instance"]),
        instance_number=1,
        manufacturer="CDSS",
        is_complete=True,
        series_description=f"AI measurements {version}"[:64],
    )


def analyse(
    ctx: JobContext,
    client: DICOMwebClient,
    model: Model,
    settings: AnalysisSettings,
    now: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Runs one analysis for a validated ``analysis.requested``; returns the protocol's ``result``."""
    request = ctx.request
    if request["model"]["id"] != model.ref["id"]:
        raise JobFailure(
            "unsupported-model", f"this worker serves {model.ref['id']} {model.ref['version']}, not {request['model']['id']}"
        )
    started = now()
    limit = started + settings.job_timeout_s
    timings: dict[str, float] = {}
    mark = [started]

    def lap(stage: str) -> None:
        t = now()
        timings[stage] = round((t - mark[0]) * 1000)
        mark[0] = t

    def check() -> bool:
        return ctx.should_stop() or now() >= limit

    def stop_if_asked() -> None:
        if ctx.should_stop():
            raise Stopped("stopped")
        if now() >= limit:
            raise JobFailure("deadline-exceeded", f"the job ran past the worker's limit of {settings.job_timeout_s:.0f} s")

    study = request["studyInstanceUid"]
    ctx.progress("fetch", 2)
    try:
        volumes = {c: _fetch(client, study, c, request["series"][c]) for c in CHANNELS}
    except Exception as error:  # noqa: BLE001 -- mapped to the protocol's reasons
        raise _failure("fetch", error) from error
    nx, ny, nz = volumes["t1c"].data.shape
    if nx * ny * nz > settings.max_voxels:
        raise JobFailure("invalid-request", f"study grid {nx}x{ny}x{nz} exceeds the worker's limit")
    lap("fetch")
    stop_if_asked()
    ctx.progress("preprocess", 20)
    try:
        prepared, spatial = prepare(model, volumes)
    except Exception as error:  # noqa: BLE001
        raise _failure("preprocess", error) from error
    lap("preprocess")
    stop_if_asked()
    ctx.progress("inference", 25)
    last = [25]

    def on_window(done: int, total: int) -> None:
        percent = 25 + (done * 60) // max(total, 1)
        if percent >= last[0] + 5:
            last[0] = percent
            ctx.progress("inference", percent)

    try:
        logits = infer(model, prepared["image"], check, on_window)
    except Aborted as error:
        stop_if_asked()
        raise Stopped(str(error)) from error
    except Exception as error:  # noqa: BLE001
        raise _failure("inference", error) from error
    lap("inference")
    stop_if_asked()
    ctx.progress("postprocess", 88)
    et_label = int(model.manifest.get("etLabel", 4))
    source = volumes["t1c"]
    try:
        labels = labels_from_logits(model, logits)
        model_spacing = tuple(float(s) for s in model.manifest["input"]["spacingMm"])
        cleaned, raw_components = clean(model, labels, model_spacing)
        on_source = to_source(cleaned, prepared, spatial)
        voxel_mm3 = float(np.prod(source.spacing))
        volumes_ml = region_volumes(on_source, voxel_mm3, et_label)
        diameter = largest_diameter_mm(on_source > 0, source.affine)
        # lesions and flags on the T1c voxels in RAS order: axial planes along the third axis, inferior first
        ras = nib.orientations.ornt_transform(
            nib.orientations.io_orientation(source.ras_affine()), nib.orientations.axcodes2ornt("RAS")
        )
        axial = nib.orientations.apply_orientation(on_source, ras)
        axial_spacing = tuple(float(source.spacing[int(a)]) for a in ras[:, 0].argsort())
        post = model.manifest["postprocessing"]
        lesions, sum_of_products = measure_lesions(
            axial == et_label,
            axial_spacing,  # type: ignore[arg-type]
            int(post["components"].get("connectivity", 3)),
            float(post.get("minMeasurableMm", 10)),
        )
        flags = plausibility_flags(
            model.manifest,
            axial > 0,
            volumes_ml["whole-tumour"][0],
            raw_components,
            logits,
            prepared["image"],
            float(np.prod(model_spacing)) / 1000,
        )
        seg = write_seg(on_source, source, model, request["jobId"], et_label)
        segment_ml = {value: int((on_source == value).sum()) * voxel_mm3 / 1000 for value in (1, 2, et_label)}
        sr = write_measurement_report(seg, source, model, request["jobId"], volumes_ml, segment_ml, lesions)
    except Exception as error:  # noqa: BLE001
        raise _failure("postprocess", error) from error
    lap("postprocess")
    stop_if_asked()
    ctx.progress("store", 92)
    try:
        answer = client.store_instances([seg, sr], study_instance_uid=study)
        stored = {str(item.ReferencedSOPInstanceUID) for item in (answer.get("ReferencedSOPSequence") or [])}
        for what, instance in (("SEG", seg), ("SR", sr)):
            if instance.SOPInstanceUID not in stored:
                raise JobFailure("output-store-failed", f"the PACS did not store the {what}", retryable=True)
    except Exception as error:  # noqa: BLE001
        raise _failure("store", error) from error
    lap("store")
    ctx.progress("store", 100)
    result: dict[str, Any] = {
        "regions": [
            {"region": region, "volumeMl": ml, "voxelCount": count} for region, (ml, count) in volumes_ml.items()
        ],
        "segmentation": {
            "studyInstanceUid": study,
            "seriesInstanceUid": str(seg.SeriesInstanceUID),
            "sopInstanceUid": str(seg.SOPInstanceUID),
        },
        "model": model.ref,
        "timingsMs": timings,
        "structuredReport": {"seriesInstanceUid": str(sr.SeriesInstanceUID), "sopInstanceUid": str(sr.SOPInstanceUID)},
    }
    if diameter is not None:
        result["largestDiameterMm"] = diameter
    result["lesions"] = [lesion.protocol() for lesion in lesions[:1000]]
    result["sumOfProductsMm2"] = round(sum_of_products, 2)
    result["flags"] = flags[:50]
    return result
