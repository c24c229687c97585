"""Shared helpers of the MONAI reference tool: the network, ONNX export, fixture writing."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.nets import SegResNet

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "packages" / "segmentation" / "src" / "__fixtures__" / "monai"

# The block layout of the model-zoo bundle `brats_mri_segmentation` (configs/inference.json `network_def`).
BUNDLE_BLOCKS = dict(blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1), in_channels=4, out_channels=3)


def make_segresnet(init_filters: int, num_groups: int) -> SegResNet:
    """A SegResNet with the bundle's block structure; fewer filters and GroupNorm groups to stay small."""
    return SegResNet(
        spatial_dims=3,
        init_filters=init_filters,
        norm=("GROUP", {"num_groups": num_groups}),
        dropout_prob=None,
        **BUNDLE_BLOCKS,
    )


def export_onnx(net: torch.nn.Module, path: Path, example_shape: tuple[int, ...]) -> None:
    """TorchScript exporter, opset 17, dynamic D/H/W, weights inside the file (loads from bytes in onnxruntime-node)."""
    import onnx

    net.eval()
    dyn = {2: "D", 3: "H", 4: "W"}
    torch.onnx.export(
        net,
        (torch.zeros(*example_shape),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["pred"],
        dynamic_axes={"image": {0: "N", **dyn}, "pred": {0: "N", **dyn}},
    )
    model = onnx.load(str(path))
    ops = {n.op_type for n in model.graph.node}
    # GroupNormalization-18 has per-group scale/bias (onnx#5466); the exporter must decompose GroupNorm instead.
    assert "GroupNormalization" not in ops, ops
    onnx.checker.check_model(model)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FixtureWriter:
    """Writes little-endian C-order arrays as .bin files and one manifest.json describing them."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.arrays: dict[str, Any] = {}

    def array(self, name: str, a: np.ndarray | torch.Tensor) -> str:
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(a)
        if a.dtype == np.float32:
            dtype = "float32"
        elif a.dtype in (np.uint8, np.bool_):
            a = a.astype(np.uint8)
            dtype = "uint8"
        else:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        file = f"{name}.bin"
        (self.dir / file).write_bytes(a.astype(a.dtype.newbyteorder("<")).tobytes())
        self.arrays[name] = {"file": file, "dtype": dtype, "shape": list(a.shape), "sha256": sha256(self.dir / file)}
        return name

    def write_manifest(self, body: dict[str, Any]) -> None:
        body = {**body, "arrays": self.arrays}
        (self.dir / "manifest.json").write_text(json.dumps(body, indent=2) + "\n")


def versions() -> dict[str, Any]:
    import monai
    import onnx
    import onnxruntime

    return {
        "monai": monai.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
