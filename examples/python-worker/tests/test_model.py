"""The committed demo model rebuilt as MONAI's SegResNet with the ONNX file's weights computes what the ONNX graph
computes (onnx's reference evaluator, numpy), and a changed or unfitting model file is refused."""

import json
import shutil

import numpy as np
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from cdss_worker.model import ModelError, load_model
from cdss_worker.protocol import _REPO_ROOT

DEMO = _REPO_ROOT / "models" / "brats-demo"


@pytest.fixture(scope="module")
def model():
    return load_model(DEMO)


def test_reference_names_the_model_as_the_typescript_worker_does(model):
    assert model.ref == {"id": "brats-segresnet-demo", "version": model.manifest["version"]}


def test_network_equals_the_onnx_graph(model):
    x = np.random.default_rng(20261206).standard_normal((1, 4, 16, 24, 16)).astype(np.float32)
    (expected,) = ReferenceEvaluator(str(DEMO / model.manifest["model"]["file"])).run(None, {"image": x})
    with torch.inference_mode():
        got = model.network(torch.from_numpy(x)).numpy()
    assert got.shape == expected.shape == (1, 3, 16, 24, 16)
    # float32 through 30 convolutions in two implementations: the TS/MONAI parity plan allows 1e-3 on logits
    assert np.abs(got - expected).max() < 1e-4


def test_a_model_file_that_differs_from_its_manifest_is_refused(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(DEMO, copy)
    onnx_file = copy / "models" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelError, match="sha256"):
        load_model(copy)


def test_a_network_definition_the_weights_do_not_fit_is_refused(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(DEMO, copy)
    config_file = copy / "configs" / "inference.json"
    config = json.loads(config_file.read_text())
    config["network_def"]["init_filters"] = 16
    config_file.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="shape"):
        load_model(copy)
