"""RANO lesion measurements and plausibility flags on synthetic masks (the rules of @cdss/segmentation's
measure.ts and flags.ts)."""

import math

import numpy as np
import pytest
import torch

from cdss_worker.findings import bidimensional, measure_lesions, plausibility_flags

MANIFEST = {
    "postprocessing": {"plausibility": {"maxComponents": 3, "maxWholeTumourMl": 50, "maxEtOutsideTcFraction": 0.05}},
    "output": {"activation": "sigmoid", "threshold": 0.5, "regions": {"tc": 0, "wt": 1, "et": 2}},
    "input": {"channels": ["T1c", "T1", "T2", "FLAIR"]},
}


def test_a_rectangle_measures_its_diagonal_and_the_chord_across_it():
    points = np.array([(x, y) for x in range(0, 21) for y in range(0, 11)], dtype=float)
    longest, perpendicular = bidimensional(points, 1.0)
    assert longest == pytest.approx(math.hypot(20, 10))
    # the longest chord perpendicular to the diagonal, within half a pixel of one line
    assert 9 < perpendicular < 2 * 20 * 10 / math.hypot(20, 10) + 1


def test_lesions_are_measured_largest_first_and_only_big_ones_count():
    et = np.zeros((40, 40, 10), dtype=bool)
    et[5:20, 5:17, 2:6] = True  # 15 × 12 voxels of 1 mm on 4 slices: measurable
    et[30:34, 30:33, 7] = True  # 4 × 3: not measurable
    lesions, total = measure_lesions(et, (1.0, 1.0, 2.0), 3, 10)
    assert [lesion.measurable for lesion in lesions] == [True, False]
    big = lesions[0]
    assert big.volume_ml == pytest.approx(15 * 12 * 4 * 2 / 1000)
    assert big.longest_mm == pytest.approx(math.hypot(14, 11))
    assert big.slice == 2  # the first slice with the longest diameter
    assert total == pytest.approx(big.longest_mm * big.perpendicular_mm)


def flags(whole_tumour, ml=10.0, raw=1, logits=None, image=None):
    logits = logits if logits is not None else torch.full((3, 4, 4, 4), -5.0)
    image = image if image is not None else torch.zeros((4, 4, 4, 4))
    return [f["code"] for f in plausibility_flags(MANIFEST, whole_tumour, ml, raw, logits, image, 0.001)]


def test_a_plausible_result_has_no_flag():
    mask = np.zeros((8, 8, 8), dtype=bool)
    mask[3:5, 3:5, 3:5] = True
    assert flags(mask) == []


def test_each_reason_to_doubt_is_flagged():
    mask = np.zeros((8, 8, 8), dtype=bool)
    mask[0:2, 3:5, 3:5] = True  # reaches d0 low
    logits = torch.full((3, 4, 4, 4), -5.0)
    logits[2, 0, 0, :] = 5  # enhancing, outside the tumour core
    assert flags(mask, ml=60, raw=4, logits=logits) == [
        "fov-edge",
        "many-components",
        "whole-tumour-large",
        "et-outside-tc",
    ]


def test_an_empty_result_where_the_brain_enhances_is_flagged():
    rng = np.random.default_rng(1)
    t1 = rng.uniform(100, 200, (20, 20, 20)).astype(np.float32)
    t1c = t1.copy()
    t1c[5:10, 5:10, 5:10] += 2000  # 125 voxels enhance strongly
    image = torch.from_numpy(np.stack([t1c, t1, t1, t1]))
    codes = [
        f["code"]
        for f in plausibility_flags(MANIFEST, np.zeros((20, 20, 20), bool), 0.0, 0, torch.full((3, 20, 20, 20), -5.0), image, 0.01)
    ]
    assert codes == ["empty-with-enhancement"]
