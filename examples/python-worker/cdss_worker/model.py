"""The model: a ``@cdss/segmentation`` manifest (``models/brats-demo/manifest.json``) and its MONAI bundle configs,
with the network rebuilt as MONAI's ``SegResNet`` from ``configs/inference.json`` and its weights read from the
committed ONNX file.

The ONNX file was exported from that very SegResNet (TorchScript exporter, opset 17), which keeps the convolution
weights under their PyTorch state-dict names. GroupNorm became ``Reshape → InstanceNormalization → Reshape → Mul(γ)
→ Add(β)``, with γ and β renamed to ``onnx::Mul_N`` / ``onnx::Add_N``: they are matched to the network's GroupNorm
layers in the order the graph applies them, which is the order the network runs them (recorded with forward hooks).
Every tensor of the state dict must be matched exactly once with its shape, or loading fails; a test compares the
network's output with the ONNX graph's (onnx's reference evaluator).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from monai.networks.nets import SegResNet
from onnx import numpy_helper


class ModelError(Exception):
    """The model cannot be loaded (a missing or changed file, a manifest the network does not fit)."""


@dataclass(frozen=True)
class Model:
    """A loaded model: its manifest, the network (eval mode, CPU) and its protocol reference."""

    manifest: dict[str, Any]
    network: torch.nn.Module
    directory: Path

    @property
    def ref(self) -> dict[str, str]:
        """The protocol's model reference: the manifest name lower-cased to the protocol's id alphabet (as the
        TypeScript worker's ``modelRef``), and its version."""
        name = re.sub(r"[^a-z0-9._-]+", "-", self.manifest["name"].lower())
        name = re.sub(r"^[^a-z0-9]+", "", name)
        return {"id": name or "model", "version": self.manifest["version"]}


def _network_def(directory: Path) -> dict[str, Any]:
    config = json.loads((directory / "configs" / "inference.json").read_text("utf-8"))
    net = dict(config["network_def"])
    target = net.pop("_target_", "SegResNet")
    if target.split(".")[-1] != "SegResNet":
        raise ModelError(f"configs/inference.json network_def is {target}, this worker builds SegResNet only")
    return net


def _groupnorm_order(network: torch.nn.Module, in_channels: int) -> list[str]:
    """Names of the network's GroupNorm layers in the order a forward pass applies them."""
    order: list[str] = []
    hooks = [
        module.register_forward_hook(lambda _m, _i, _o, name=name: order.append(name))
        for name, module in network.named_modules()
        if isinstance(module, torch.nn.GroupNorm)
    ]
    try:
        with torch.inference_mode():
            network(torch.zeros(1, in_channels, 8, 8, 8))
    finally:
        for hook in hooks:
            hook.remove()
    return order


def state_dict_from_onnx(network: torch.nn.Module, graph: onnx.GraphProto, in_channels: int) -> dict[str, torch.Tensor]:
    """The network's state dict with every tensor taken from the ONNX graph's initializers (see the module comment)."""
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    wanted = network.state_dict()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in wanted.items():
        if name in initializers:
            out[name] = torch.from_numpy(np.array(initializers.pop(name), dtype=np.float32))
    # γ and β of each GroupNorm: the Mul and Add constants that follow an InstanceNormalization, in graph order
    affine: list[tuple[str, str]] = []
    after_norm = False
    pending_mul: str | None = None
    for node in graph.node:
        if node.op_type == "InstanceNormalization":
            after_norm, pending_mul = True, None
        elif after_norm and node.op_type == "Mul":
            pending_mul = next((i for i in node.input if i in initializers), None)
        elif after_norm and node.op_type == "Add" and pending_mul is not None:
            added = next((i for i in node.input if i in initializers), None)
            if added is not None:
                affine.append((pending_mul, added))
            after_norm, pending_mul = False, None
    norms = _groupnorm_order(network, in_channels)
    if len(norms) != len(affine):
        raise ModelError(f"the ONNX graph has {len(affine)} normalisations with an affine, the network {len(norms)}")
    for norm, (gamma, beta) in zip(norms, affine):
        for suffix, source in (("weight", gamma), ("bias", beta)):
            out[f"{norm}.{suffix}"] = torch.from_numpy(np.array(initializers.pop(source), dtype=np.float32).reshape(-1))
    missing = [k for k in wanted if k not in out]
    if missing:
        raise ModelError(f"no ONNX weights for {', '.join(missing[:5])}")
    for name, tensor in wanted.items():
        if tuple(out[name].shape) != tuple(tensor.shape):
            raise ModelError(f"{name}: ONNX shape {tuple(out[name].shape)}, network {tuple(tensor.shape)}")
    return out


def load_model(directory: str | Path) -> Model:
    """Loads a model folder: ``manifest.json`` (``format`` onnx, its sha256 checked) and ``configs/inference.json``.

    :raises ModelError: with the reason
    """
    folder = Path(directory)
    try:
        manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
        spec = manifest["model"]
        if spec.get("format") != "onnx":
            raise ModelError(f"model format {spec.get('format')!r}: this worker reads onnx")
        raw = (folder / spec["file"]).read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if spec.get("sha256") and digest != spec["sha256"]:
            raise ModelError(f"{spec['file']} has sha256 {digest}, the manifest says {spec['sha256']}")
        net_def = _network_def(folder)
        in_channels = int(net_def.get("in_channels", len(manifest["input"]["channels"])))
        network = SegResNet(spatial_dims=3, **net_def)
        network.load_state_dict(state_dict_from_onnx(network, onnx.load_from_string(raw).graph, in_channels))
        network.eval()
    except ModelError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        raise ModelError(f"{type(error).__name__}: {error}") from error
    return Model(manifest=manifest, network=network, directory=folder)
