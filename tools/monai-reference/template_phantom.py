"""The template phantom of @cdss/dicom (packages/dicom/src/template-phantom.ts) in numpy: the same volumes from the
same seed (float64 arithmetic in the same order; the PRNG is mulberry32 seeded by the same string hash).

    tools/monai-reference/.venv/bin/python tools/monai-reference/template_phantom.py   # writes the test fixture
"""
from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np

from common import ROOT, FixtureWriter

ASSETS = ROOT / "packages" / "dicom" / "assets"
K = 0x6D2B79F5
M32 = 0xFFFFFFFF
TISSUE = dict(fat=1, csf=3, grey=4, white=5, necrosis=6, enhancing=7, edema=8)


def imul(a, b):
    return (a * b) & M32


def hash_seed(seed: int | str) -> int:
    s = f"n:{seed}" if isinstance(seed, int) else f"s:{seed}"
    h = (1779033703 ^ len(s)) & M32
    for ch in s:
        h = imul(h ^ ord(ch), 3432918353)
        h = ((h << 13) | (h >> 19)) & M32
    h = imul(h ^ (h >> 16), 2246822507)
    h = imul(h ^ (h >> 13), 3266489909)
    return (h ^ (h >> 16)) & M32


def mulberry_out(a: np.ndarray) -> np.ndarray:
    """mulberry32's output for states `a` (uint64 arrays holding 32-bit values)."""
    t = a.copy()
    t = ((t ^ (t >> 15)) * (t | 1)) & M32
    t = t ^ ((t + (((t ^ (t >> 7)) * (t | 61)) & M32)) & M32)
    return (t ^ (t >> 14)) & M32


class Rand:
    def __init__(self, seed: int):
        self.seed = seed
        self.n = 0  # draws so far

    def next(self) -> int:
        self.n += 1
        a = np.array([(self.seed + self.n * K) & M32], dtype=np.uint64)
        return int(mulberry_out(a)[0])

    def block(self, count: int) -> np.ndarray:
        """The next `count` draws at once."""
        idx = np.arange(self.n + 1, self.n + 1 + count, dtype=np.uint64)
        self.n += count
        a = (np.uint64(self.seed) + idx * np.uint64(K)) & np.uint64(M32)
        return mulberry_out(a)

    def uniform(self, lo: float, hi: float) -> float:
        return lo + ((self.next() >> 8) / 16777216) * (hi - lo)


def load_template():
    meta = json.loads((ASSETS / "mni152-2009a-2mm.json").read_text())
    raw = np.frombuffer(gzip.decompress((ASSETS / "mni152-2009a-2mm.bin.gz").read_bytes()), dtype=np.uint8)
    n = int(np.prod(meta["dims"]))
    maps = {name: raw[i * n : (i + 1) * n].astype(np.float64) for i, name in enumerate(("t1", "gm", "wm"))}
    return meta, maps


def sample(m: np.ndarray, dims, x, y, z):
    nx, ny, nz = dims
    cx = np.clip(x, 0, nx - 1)
    cy = np.clip(y, 0, ny - 1)
    cz = np.clip(z, 0, nz - 1)
    x0, y0, z0 = np.floor(cx), np.floor(cy), np.floor(cz)
    fx, fy, fz = cx - x0, cy - y0, cz - z0
    x1 = np.where(x0 + 1 < nx, 1, 0)
    y1 = np.where(y0 + 1 < ny, nx, 0)
    z1 = np.where(z0 + 1 < nz, nx * ny, 0)
    p = (x0 + y0 * nx + z0 * nx * ny).astype(np.int64)
    v = lambda q: m[q]  # noqa: E731
    c00 = v(p) * (1 - fx) + v(p + x1) * fx
    c10 = v(p + y1) * (1 - fx) + v(p + y1 + x1) * fx
    c01 = v(p + z1) * (1 - fx) + v(p + z1 + x1) * fx
    c11 = v(p + y1 + z1) * (1 - fx) + v(p + y1 + z1 + x1) * fx
    return (c00 * (1 - fy) + c10 * fy) * (1 - fz) + (c01 * (1 - fy) + c11 * fy) * fz


def generate(seed, dims, spacing=(1.0, 1.0, 1.0), tumour_scale=1.0, noise=0.02):
    meta, maps = load_template()
    tdims, tsp, tor = meta["dims"], meta["spacing"], meta["origin"]
    sigma = noise * 1000
    rand = Rand(hash_seed(seed))
    centre = [tor[a] + ((tdims[a] - 1) * tsp[a]) / 2 for a in range(3)]
    origin = [centre[a] - ((dims[a] - 1) * spacing[a]) / 2 for a in range(3)]
    to_t = lambda p, a: (p - tor[a]) / tsp[a]  # noqa: E731
    tc = [0.0, 0.0, 0.0]
    for _ in range(200):
        tc = [rand.uniform(-55, 55), rand.uniform(-60, 40), rand.uniform(-10, 45)]
        wm = sample(maps["wm"], tdims, np.array([to_t(tc[0], 0)]), np.array([to_t(tc[1], 1)]), np.array([to_t(tc[2], 2)]))[0]
        if wm > 0.6 * 255:
            break
    base = rand.uniform(12, 20) * tumour_scale
    radii = [base * rand.uniform(0.85, 1.15) for _ in range(3)]
    core = rand.uniform(0.35, 0.55)
    edema = rand.uniform(1.6, 2.1)

    nx, ny, nz = dims
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    i, j, k = i.ravel().astype(np.float64), j.ravel().astype(np.float64), k.ravel().astype(np.float64)
    p = [origin[0] + i * spacing[0], origin[1] + j * spacing[1], origin[2] + k * spacing[2]]
    x, y, z = to_t(p[0], 0), to_t(p[1], 1), to_t(p[2], 2)
    t1t = sample(maps["t1"], tdims, x, y, z)
    head = t1t >= 8
    g = sample(maps["gm"], tdims, x, y, z) / 255
    w = sample(maps["wm"], tdims, x, y, z) / 255
    r = np.maximum(0, 1 - g - w)
    fluid = t1t < 60
    v = [4 * t1t, 4 * t1t, w * 350 + g * 550 + r * np.where(fluid, 1200, 300), w * 450 + g * 600 + r * np.where(fluid, 120, 250)]
    tissue = np.where(g > 0.5, TISSUE["grey"], np.where(w > 0.5, TISSUE["white"], np.where(fluid, TISSUE["csf"], TISSUE["fat"])))
    dx = (p[0] - tc[0]) / radii[0]
    dy = (p[1] - tc[1]) / radii[1]
    dz = (p[2] - tc[2]) / radii[2]
    d = np.sqrt(dx * dx + dy * dy + dz * dz)
    nec = d < core
    enh = ~nec & (d < 1)
    ede = ~nec & ~enh & (d < edema) & (w > 0.25)
    label = np.where(nec, 1, np.where(enh, 4, np.where(ede, 2, 0)))
    tissue = np.where(nec, TISSUE["necrosis"], np.where(enh, TISSUE["enhancing"], np.where(ede, TISSUE["edema"], tissue)))
    values = []
    for m, (n_, e_) in enumerate(((300, 500), (320, 1500), (1300, 900), (700, 900))):
        vm = np.where(nec, n_, np.where(enh, e_, v[m]))
        if m < 2:
            vm = np.where(ede, v[m] * 0.8, vm)
        else:
            vm = np.where(ede, 1200 if m == 2 else 1100, vm)
        values.append(vm)
    # noise: 4 draws per contrast per head voxel, in voxel order (i fastest), contrasts in order t1, t1c, t2, flair
    heads = np.flatnonzero(head)
    draws = (rand.block(16 * len(heads)) >> np.uint64(8)).astype(np.float64) / 16777216
    draws = draws.reshape(len(heads), 4, 4)
    out = {}
    for m, name in enumerate(("t1", "t1c", "t2", "flair")):
        u = draws[:, m, 0] + draws[:, m, 1] + draws[:, m, 2] + draws[:, m, 3]
        xm = values[m][heads] + (u - 2) * math.sqrt(3) * sigma
        vol = np.zeros(len(i), dtype=np.uint16)
        vol[heads] = np.where(xm <= 0, 0, np.where(xm >= 65535, 65535, np.floor(xm + 0.5))).astype(np.uint16)
        out[name] = vol
    labels = np.where(head, label, 0).astype(np.uint8)
    return out, labels, {"centre": tc, "radii": radii}


def main() -> None:
    out_dir = ROOT / "packages" / "dicom" / "src" / "__fixtures__" / "template-phantom"
    w = FixtureWriter(out_dir)
    cases = []
    for name, seed, dims, spacing, scale in (
        ("iso5", "template-parity", (40, 44, 36), (5.0, 5.0, 5.0), 1.0),
        ("aniso", 7, (52, 40, 16), (3.75, 5.0, 9.0), 1.3),
    ):
        vols, labels, tumour = generate(seed, dims, spacing, scale)
        # stored [k][j][i] (C-order of the i-fastest data), one array per volume
        shape = (dims[2], dims[1], dims[0])
        case = {"name": name, "seed": seed, "dims": list(dims), "spacing": list(spacing), "tumourScale": scale, "tumour": tumour}
        for m, v in vols.items():
            w.array(f"{name}_{m}", v.reshape(shape).astype(np.float32))
        w.array(f"{name}_labels", labels.reshape(shape))
        cases.append(case)
    w.write_manifest({"generator": "tools/monai-reference/template_phantom.py", "cases": cases})
    print("wrote", out_dir)


if __name__ == "__main__":
    main()
