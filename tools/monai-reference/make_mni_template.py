"""Writes packages/dicom/assets/mni152-2009a-2mm.bin.gz: the MNI ICBM152 2009a (symmetric) T1, grey-matter and
white-matter maps that the nilearn wheel ships, averaged over 2x2x2 blocks and turned to DICOM's patient order (LPS,
i fastest), as three uint8 volumes, with mni152-2009a-2mm.json describing the grid. The licence notice travels beside
them (packages/dicom/assets/LICENSE-MNI152.txt). Run: tools/monai-reference/.venv/bin/python tools/monai-reference/make_mni_template.py
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import nibabel as nib
import nilearn
import numpy as np

from common import ROOT

OUT = ROOT / "packages" / "dicom" / "assets"
DATA = Path(nilearn.__file__).parent / "datasets" / "data"


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    img = nib.load(DATA / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz")
    return np.asanyarray(img.dataobj).astype(np.float64), img.affine


def main() -> None:
    volumes = []
    affine = None
    for name in ("t1", "gm", "wm"):
        a, affine = load(name)
        n = [s // 2 * 2 for s in a.shape]
        a = a[: n[0], : n[1], : n[2]]
        blocks = a.reshape(n[0] // 2, 2, n[1] // 2, 2, n[2] // 2, 2).mean(axis=(1, 3, 5))
        # RAS (x to the right, y anterior) to LPS: reverse the first two axes; then i fastest (Fortran order)
        lps = blocks[::-1, ::-1, :]
        volumes.append(np.floor(lps + 0.5).clip(0, 255).astype(np.uint8).ravel(order="F"))
    assert affine is not None and np.allclose(affine[:3, :3], np.eye(3))
    dims = [int(s) // 2 for s in nib.load(DATA / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").shape]
    # centre of block m along x (RAS) is x0 + 2m + 0.5; after the flip, LPS voxel 0 is the last block
    ras0 = affine[:3, 3]
    origin = [
        -(ras0[0] + 2 * (dims[0] - 1) + 0.5),
        -(ras0[1] + 2 * (dims[1] - 1) + 0.5),
        ras0[2] + 0.5,
    ]
    raw = b"".join(v.tobytes() for v in volumes)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "mni152-2009a-2mm.bin.gz").write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    meta = {
        "source": "MNI ICBM152 2009a nonlinear symmetric (nilearn "
        + nilearn.__version__
        + ": mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz), 2x2x2 block means",
        "volumes": ["t1", "gm", "wm"],
        "dtype": "uint8",
        "order": "i fastest; LPS patient coordinates",
        "dims": dims,
        "spacing": [2, 2, 2],
        "origin": [float(o) for o in origin],
        "sha256": hashlib.sha256(raw).hexdigest(),
        "licence": "LICENSE-MNI152.txt",
    }
    (OUT / "mni152-2009a-2mm.json").write_text(json.dumps(meta, indent=2) + "\n")
    print("wrote", OUT, dims, origin, len(raw))


if __name__ == "__main__":
    main()
