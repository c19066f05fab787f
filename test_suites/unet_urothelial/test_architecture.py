"""The two networks, exported as ONNX graphs in the sandbox, accepted here, and run and analysed by
the grader's verifier in its own sandbox: once per graph, every test of that graph sharing the run.

The ResNet U-Net is built, given the submission's model.pt when there is one, and exported once per
grading; the held-out tests (hidden_heldout.py) read the same export and add their images to the
same verifier job (`add_labels`)."""

import numpy as np

from grader.execution import call, export_call, load_weights_call
from grader.suites import Failure, register
from grader.suites.graphs import accepted_export, check_probe_outputs, structure_of
from grader.suites.structure import RESNET34, describe_encoder, describe_skips
from grader.verifier import Job, verify

_rng = np.random.default_rng(20261124)
PROBE = _rng.random((1, 3, 64, 96), dtype=np.float32)  # non-square: H and W levels stay distinct


def _probes(multiple):
    return [_rng.random((2, 3, 2 * multiple, 3 * multiple), dtype=np.float32),
            _rng.random((1, 3, 4 * multiple, 2 * multiple), dtype=np.float32), PROBE]


NETWORKS = {
    # key: (factory call, multiple of the input side, what students call it)
    "unet": (call("a.unet", "UNet", store_as="unet", timeout=120, base_filters=8, depth=4), 8,
             "UNet(base_filters=8, depth=4)"),
    "resnet": (call("a.build_model", "build_model", store_as="resnet_unet", timeout=120), 32, "build_model()"),
}
PROBES = {key: _probes(multiple) for key, (_, multiple, _) in NETWORKS.items()}
EXPORTS = {key: export_call(f"a.export_{key}", factory.store_as, PROBE, PROBES[key], multiple=multiple)
           for key, (factory, multiple, _) in NETWORKS.items()}
LOAD_RESNET = load_weights_call("a.load", "resnet_unet", optional=True)  # before the export: one export serves all
CALLS = {"unet": [NETWORKS["unet"][0], EXPORTS["unet"]],
         "resnet": [NETWORKS["resnet"][0], LOAD_RESNET, EXPORTS["resnet"]]}
JOBS = {key: Job(probes=tuple(PROBES[key]), structure_probe=PROBE) for key in NETWORKS}


def add_labels(key, label_set):
    """Have the verifier also label `label_set` with network `key`, in the same run as everything else."""
    JOBS[key] = JOBS[key].with_labels(label_set)


def accepted(answers, key):
    """(accepted graph, the sandbox's own outputs on the probes) of network `key`'s export."""
    factory, _, label = NETWORKS[key]
    return accepted_export(answers, factory.id, EXPORTS[key].id, label)


def verified(answers, key):
    """(accepted graph, the verifier's answers, the sandbox's own outputs on the probes, label)."""
    graph, outputs = accepted(answers, key)
    return graph, verify(graph, JOBS[key]), outputs, NETWORKS[key][2]


def build_tests(assignment):
    tests = []
    for key, (_, _, label) in NETWORKS.items():
        _register_network_tests(tests, key, CALLS[key], label)
    _register_resnet_tests(tests)
    _register_encoder_shapes(tests)
    return tests


def _register_network_tests(tests, key, calls, label):
    @register(tests, id=f"architecture.{key}_output_shape", name=f"{label}: logits per pixel, several sizes",
              points=2, tag="architecture", calls=calls,
              hint="A segmentation network returns (N, num_classes, H, W) logits, for non-square inputs too.")
    def _output_shape(answers):
        _, verification, outputs, _ = verified(answers, key)
        check_probe_outputs(verification, outputs, PROBES[key], label)

    @register(tests, id=f"architecture.{key}_fully_convolutional", name=f"{label}: no fully connected layer",
              points=1, tag="architecture", calls=calls,
              hint="Flattening and dense layers destroy the spatial layout that segmentation needs.")
    def _fully_convolutional(answers):
        graph, _ = accepted(answers, key)
        dense = graph.op_types & {"Gemm", "MatMul", "Einsum", "Flatten"}
        if dense:
            raise Failure(f"{label} contains {', '.join(sorted(dense))}: a fully connected part")

    @register(tests, id=f"architecture.{key}_skip_connections", name=f"{label}: skips concatenated at every level",
              points=3, tag="architecture", calls=calls,
              hint="At each resolution of the encoder, the decoder should concatenate (torch.cat along channels) "
                   "the encoder's features of that same resolution.")
    def _skips(answers):
        _, verification, _, _ = verified(answers, key)
        problems = describe_skips(structure_of(verification, label))
        if problems:
            raise Failure(f"in {label}: " + "; ".join(problems))


def _register_resnet_tests(tests):
    @register(tests, id="architecture.resnet34_encoder", name="build_model(): a ResNet34 encoder", points=2,
              tag="architecture", calls=CALLS["resnet"],
              hint="ResNet34 has a 7x7 stride-2 stem, then 3, 4, 6 and 3 basic blocks at 64, 128, 256 and 512 channels.")
    def _encoder(answers):
        _, verification, _, label = verified(answers, "resnet")
        problems = describe_encoder(structure_of(verification, label), RESNET34)
        if problems:
            raise Failure("; ".join(problems))


def _register_encoder_shapes(tests):
    sizes = [(256, 256), (224, 320), (255, 257), (97, 131)]
    calls = [call(f"a.shapes{h}x{w}", "encoder_feature_shapes", h, w, timeout=30) for h, w in sizes]

    @register(tests, id="architecture.encoder_feature_shapes", name="encoder_feature_shapes: even and odd sizes",
              points=2, tag="architecture", calls=calls,
              hint="Work out each stride-2 step's output size from its kernel, stride and padding; odd sizes "
                   "show whether you round the right way.")
    def _shapes(answers):
        for (h, w), c in zip(sizes, calls):
            got = answers.value(c.id, f"encoder_feature_shapes({h}, {w})")
            expected = RESNET34.feature_shapes(h, w)
            try:
                got = [tuple(int(v) for v in s) for s in got]
            except TypeError:
                raise Failure(f"encoder_feature_shapes({h}, {w}) returned {got!r}; expected four (C, H, W) tuples")
            if got != expected:
                raise Failure(f"encoder_feature_shapes({h}, {w}) returned {got}, which differs from what ResNet34 "
                              "computes for that input")
