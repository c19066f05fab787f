"""The two networks, inspected as ONNX graphs the sandbox hands over and the grader runs itself."""


import hashlib

import numpy as np
import onnx

from grader.execution import call, export_call
from grader.execution.onnx_graph import ModelRejected, agrees, check_graph, run_graph
from grader.suites import Failure, register
from grader.suites.structure import analyse, describe_skips

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
_analysed: dict[str, object] = {}


def _graph(answers, key):
    factory, _, label = NETWORKS[key]
    answers.value(factory.id, label)
    exported = answers.value(EXPORTS[key].id, f"exporting {label} to ONNX")
    try:
        graph = check_graph(exported["onnx"])
    except ModelRejected as err:
        raise Failure(f"{label} could not be inspected: {err}")
    return graph, exported["outputs"], label


def _structure(graph):
    """Analysed once per distinct graph (several tests read the same one)."""
    key = hashlib.sha256(graph.data).hexdigest()
    if key not in _analysed:
        _analysed[key] = analyse(onnx.load_from_string(graph.data), PROBE)
    return _analysed[key]


def build_tests(assignment):
    tests = []
    for key, (factory, multiple, label) in NETWORKS.items():
        calls = [factory, EXPORTS[key]]
        _register_network_tests(tests, key, calls, label)
    _register_resnet_tests(tests)
    _register_encoder_shapes(tests)
    return tests


def _register_network_tests(tests, key, calls, label):
    @register(tests, id=f"architecture.{key}_output_shape", name=f"{label}: logits per pixel, several sizes",
              points=2, tag="architecture", calls=calls,
              hint="A segmentation network returns (N, num_classes, H, W) logits, for non-square inputs too.")
    def _output_shape(answers):
        graph, outputs, _ = _graph(answers, key)
        for probe, theirs in zip(PROBES[key], outputs):
            expected = (probe.shape[0], 3, *probe.shape[2:])
            ours = run_graph(graph, probe)
            if ours.shape != expected:
                raise Failure(f"{label} returns {ours.shape} for input {probe.shape}; expected {expected}")
            if not agrees(graph, probe, theirs):
                raise Failure(f"the exported {label} and the model in your code give different outputs on the "
                              "same input: make sure the network computes the same thing every time")

    @register(tests, id=f"architecture.{key}_fully_convolutional", name=f"{label}: no fully connected layer",
              points=1, tag="architecture", calls=calls,
              hint="Flattening and dense layers destroy the spatial layout that segmentation needs.")
    def _fully_convolutional(answers):
        graph, _, _ = _graph(answers, key)
        dense = graph.op_types & {"Gemm", "MatMul", "Flatten"}
        if dense:
            raise Failure(f"{label} contains {', '.join(sorted(dense))}: a fully connected part")

    @register(tests, id=f"architecture.{key}_skip_connections", name=f"{label}: skips concatenated at every level",
              points=3, tag="architecture", calls=calls,
              hint="At each resolution of the encoder, the decoder should concatenate (torch.cat along channels) "
                   "the encoder's features of that same resolution.")
    def _skips(answers):
        graph, _, _ = _graph(answers, key)
        problems = describe_skips(_structure(graph))
        if problems:
            raise Failure(f"in {label}: " + "; ".join(problems))


def _register_resnet_tests(tests):
    calls = [NETWORKS["resnet"][0], EXPORTS["resnet"]]

    @register(tests, id="architecture.resnet34_encoder", name="build_model(): a ResNet34 encoder", points=2,
              tag="architecture", calls=calls,
              hint="ResNet34 has a 7x7 stride-2 stem, then 3, 4, 6 and 3 basic blocks at 64, 128, 256 and 512 channels.")
    def _encoder(answers):
        graph, _, _ = _graph(answers, "resnet")
        structure = _structure(graph)
        if structure.stem != (64, 7, 2):
            raise Failure(f"the first convolution has {structure.stem[0]} filters of size {structure.stem[1]} and "
                          f"stride {structure.stem[2]}" if structure.stem else "no convolution found")
        blocks = [structure.residual_adds.get(c, 0) for c in (64, 128, 256, 512)]
        if blocks != [3, 4, 6, 3]:
            raise Failure(f"the encoder has {'-'.join(map(str, blocks))} residual blocks at 64/128/256/512 channels")


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
            expected = _torchvision_shapes(h, w)
            try:
                got = [tuple(int(v) for v in s) for s in got]
            except TypeError:
                raise Failure(f"encoder_feature_shapes({h}, {w}) returned {got!r}; expected four (C, H, W) tuples")
            if got != expected:
                raise Failure(f"encoder_feature_shapes({h}, {w}) returned {got}, which differs from what ResNet34 "
                              "computes for that input")


_tv_cache: dict[tuple[int, int], list] = {}


def _torchvision_shapes(h, w):
    """The truth, from torchvision's resnet34 itself (run here, in the grader)."""
    if (h, w) not in _tv_cache:
        import torch
        import torchvision

        net = torchvision.models.resnet34(weights=None).eval()
        shapes, x = [], torch.zeros(1, 3, h, w)
        with torch.no_grad():
            x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
                x = layer(x)
                shapes.append(tuple(x.shape[1:]))
        _tv_cache[(h, w)] = shapes
    return _tv_cache[(h, w)]


