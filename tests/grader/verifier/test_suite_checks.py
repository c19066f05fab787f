"""The architecture and held-out checks of the default suite, fed the answers a sandbox would give
(computed here with torch): one export of build_model() serves both, the held-out images reach only
the verifier, `predict` is judged against the graph's own argmax, and the grader's process never
imports onnxruntime."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader.execution import CallOutcome
from grader.execution.calls import Encoder
from grader.suites import Answers, Failure, Partial, load_suite
from reference.inference import predict
from reference.models import UNet, create_model
from tests.grader.verifier.graphs import ROOT, networks

ARCHITECTURE = "_grader_suite_unet_urothelial_test_architecture"
HELDOUT = "_grader_suite_unet_urothelial_hidden_heldout"


@pytest.fixture(scope="module")
def suite(assignment):
    return {t.id: t for t in load_suite(assignment.suite_dir, assignment)}


def _export_outcomes(key, model):
    arch = sys.modules[ARCHITECTURE]
    model = model.eval()
    with torch.no_grad():
        outputs = [model(torch.from_numpy(p)).numpy() for p in arch.PROBES[key]]
    factory = arch.NETWORKS[key][0]
    return {factory.id: CallOutcome(factory.id, "ok", value={"__stored__": factory.store_as}),
            arch.EXPORTS[key].id: CallOutcome(arch.EXPORTS[key].id, "ok",
                                              value={"onnx": networks.export(model), "outputs": outputs})}


def _predict_outcomes(model, how=predict):
    heldout = sys.modules[HELDOUT]
    images = heldout.CHECK_IMAGES
    return {f"h.predict{k}": CallOutcome(f"h.predict{k}", "ok", value=how(model, np.stack([images[i] for i in g])))
            for k, g in enumerate(heldout._groups(images))}


@pytest.fixture(scope="module")
def outcomes(suite):
    torch.manual_seed(0)
    resnet, unet = create_model(), UNet(base_filters=8, depth=4)
    found = {**_export_outcomes("resnet", resnet), **_export_outcomes("unet", unet), **_predict_outcomes(resnet),
             "a.load": CallOutcome("a.load", "ok", value=None)}
    return found, resnet


def check(test, outcomes):
    answers = Answers({c.id: outcomes[c.id] for c in test.calls})
    try:
        return test.check(answers), answers
    except Failure as failure:
        return failure, answers


def test_one_export_of_build_model_serves_the_architecture_and_heldout_tests(suite):
    arch = sys.modules[ARCHITECTURE]
    resnet_calls = {t.id: [c.id for c in t.calls] for t in suite.values() if "a.export_resnet" in
                    [c.id for c in t.calls]}
    assert set(resnet_calls) == {"architecture.resnet_output_shape", "architecture.resnet_fully_convolutional",
                                 "architecture.resnet_skip_connections", "architecture.resnet34_encoder",
                                 "heldout.mean_foreground_dice", "heldout.predict_agrees"}
    for ids in resnet_calls.values():
        assert ids[:3] == ["a.build_model", "a.load", "a.export_resnet"]  # weights loaded before the export
    assert arch.LOAD_RESNET.extra["optional"] is True
    assert [s.name for s in arch.JOBS["resnet"].label_sets] == ["heldout", "predict_check"]
    assert sum(t.points for t in suite.values() if t.tag == "heldout") == 10


def test_correct_networks_pass_and_the_heldout_score_comes_from_the_graph(suite, outcomes, assignment):
    found, _ = outcomes
    for test_id in ("architecture.unet_output_shape", "architecture.unet_fully_convolutional",
                    "architecture.unet_skip_connections", "architecture.resnet_output_shape",
                    "architecture.resnet_fully_convolutional", "architecture.resnet_skip_connections",
                    "architecture.resnet34_encoder", "heldout.predict_agrees"):
        verdict, _ = check(suite[test_id], found)
        assert not isinstance(verdict, Failure), f"{test_id}: {verdict}"
    verdict, answers = check(suite["heldout.mean_foreground_dice"], found)
    assert isinstance(verdict, Partial) and "mean foreground Dice" in verdict.message
    from grader.assignments import load_heldout
    masks = load_heldout(assignment).masks
    assert [p.shape for p in answers.kept["predictions"]] == [m.shape for m in masks]
    assert set(answers.kept["dice"]) == set(answers.kept["iou"]) == {"background", "cytoplasm", "nucleus"}


def test_without_model_pt_the_heldout_score_fails_and_says_why(suite, outcomes):
    found, _ = outcomes
    absent = {**found, "a.load": CallOutcome("a.load", "ok", value={"absent": True})}
    verdict, _ = check(suite["heldout.mean_foreground_dice"], absent)
    assert isinstance(verdict, Failure) and "save model.state_dict() as model.pt" in str(verdict)
    assert not isinstance(check(suite["heldout.predict_agrees"], absent)[0], Failure)


def _resizing(model, images):
    x = torch.from_numpy(images)
    h, w = x.shape[-2:]
    with torch.no_grad():
        logits = model.eval()(F.interpolate(x, size=(-(-h // 32) * 32, -(-w // 32) * 32), mode="bilinear"))
    return F.interpolate(logits, size=(h, w), mode="bilinear").argmax(1).numpy()


def _zero_padding_centred(model, images):
    x = torch.from_numpy(images)
    h, w = x.shape[-2:]
    ph, pw = (-h) % 32, (-w) % 32
    with torch.no_grad():
        logits = model.eval()(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)))
    return logits[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w].argmax(1).numpy()


def test_predict_is_judged_against_the_graphs_own_argmax(suite, outcomes):
    found, resnet = outcomes
    test = suite["heldout.predict_agrees"]
    assert not isinstance(check(test, {**found, **_predict_outcomes(resnet, _zero_padding_centred)})[0], Failure)
    verdict, _ = check(test, {**found, **_predict_outcomes(resnet, _resizing)})
    assert isinstance(verdict, Failure) and "match the argmax of your network's own logits on" in str(verdict)
    batch_axis = {**found, **_predict_outcomes(resnet, lambda m, x: predict(m, x)[0])}
    assert "predict returned labels of shape" in str(check(test, batch_axis)[0])


def test_skips_multiplied_by_zero_lose_the_skip_points(suite, outcomes):
    found, _ = outcomes
    dead = {**found, **_export_outcomes("unet", networks.SkipUNet(dead=True))}
    verdict, _ = check(suite["architecture.unet_skip_connections"], dead)
    assert isinstance(verdict, Failure) and "do not change its output" in str(verdict)


def test_heldout_images_never_enter_the_sandbox(suite, assignment, tmp_path):
    from grader.assignments import load_heldout
    heldout = load_heldout(assignment)
    encoder = Encoder(tmp_path)
    specs = [encoder.call(c) for t in suite.values() for c in t.calls]
    sent = [np.load(p) for p in sorted((tmp_path / "in").glob("*.npy"))]
    for image in heldout.images:
        for array in sent:
            rows = array.reshape(-1, *image.shape) if array.ndim >= 3 and array.shape[-3:] == image.shape else []
            assert not any(np.array_equal(row, image) for row in rows)
    heldout_specs = [encoder.call(c) for t in suite.values() if t.tag == "heldout" for c in t.calls]
    assert "__path__" not in json.dumps(heldout_specs)  # no folder of images crosses either


def test_the_checks_run_without_onnxruntime_in_the_graders_process(outcomes, tmp_path):
    found, _ = outcomes
    keep = ("a.unet", "a.export_unet", "a.build_model", "a.load", "a.export_resnet", "h.predict0", "h.predict1")
    (tmp_path / "resnet.onnx").write_bytes(found["a.export_resnet"].value["onnx"])
    (tmp_path / "unet.onnx").write_bytes(found["a.export_unet"].value["onnx"])
    arrays = {f"{key}.{i}": a for key in ("a.export_resnet", "a.export_unet")
              for i, a in enumerate(found[key].value["outputs"])}
    arrays.update({key: found[key].value for key in ("h.predict0", "h.predict1")})
    np.savez(tmp_path / "arrays.npz", **arrays)
    script = f"""
import sys
import numpy as np
from pathlib import Path
from grader.assignments import load_assignment
from grader.execution import CallOutcome
from grader.suites import Answers, Failure, load_suite
folder = Path({str(tmp_path)!r})
arrays = np.load(folder / "arrays.npz")
out = {{k: CallOutcome(k, "ok", value={{"__stored__": k}}) for k in ("a.unet", "a.build_model")}}
out["a.load"] = CallOutcome("a.load", "ok", value=None)
for key, name in (("a.export_resnet", "resnet"), ("a.export_unet", "unet")):
    outputs = [arrays[f"{{key}}.{{i}}"] for i in range(3)]
    out[key] = CallOutcome(key, "ok", value={{"onnx": (folder / f"{{name}}.onnx").read_bytes(), "outputs": outputs}})
for key in ("h.predict0", "h.predict1"):
    out[key] = CallOutcome(key, "ok", value=arrays[key])
assignment = load_assignment(Path("assignments/unet_urothelial"))
failed = []
for test in load_suite(assignment.suite_dir, assignment):
    if all(c.id in out for c in test.calls):
        try:
            test.check(Answers({{c.id: out[c.id] for c in test.calls}}))
        except Failure as failure:
            failed.append(test.id)
print(sorted(failed), "onnxruntime" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.stdout.strip().splitlines()[-1] == "[] False", done.stdout + done.stderr


def test_every_test_of_a_graph_shares_one_verifier_run(suite, outcomes, monkeypatch):
    from grader.verifier import Verifier, runner
    from tests.grader.verifier.test_runner import Counting

    sandbox = Counting()
    monkeypatch.setattr(runner, "_default", Verifier(sandbox))
    found, _ = outcomes
    for test in suite.values():
        if all(c.id in found for c in test.calls):
            check(test, found)
    assert sandbox.runs == 2  # the U-Net's graph and build_model()'s, each once


class _EinsumHead(torch.nn.Module):
    """The scratch U-Net whose logits go through a dense layer written with torch.einsum (no MatMul node)."""

    def __init__(self):
        super().__init__()
        self.unet = UNet(base_filters=8, depth=4)
        self.dense = torch.nn.Parameter(torch.eye(3))

    def forward(self, x):
        return torch.einsum("nchw,cd->ndhw", self.unet(x), self.dense)


def test_a_dense_layer_written_with_einsum_is_not_fully_convolutional(suite):
    torch.manual_seed(0)
    verdict, _ = check(suite["architecture.unet_fully_convolutional"], _export_outcomes("unet", _EinsumHead()))
    assert isinstance(verdict, Failure) and "contains Einsum: a fully connected part" in str(verdict)
