"""The verifier's topology on real smp U-Nets: ResNet50's bottleneck blocks (1×1-3×3-1×1, 4× expansion)
told from ResNet18/34's basic blocks by their convolutions, with the perturbation evidence that each
convolution of the series is live; sigmoid gates on the skips found and measured (live, input-dependent)."""

from collections import Counter

from onnx import helper

KERNELS = {"bottleneck": [1, 3, 1], "basic": [3, 3]}


def _kinds(layout):
    return Counter((r.kind, r.channels, r.widths) for r in layout.residuals)


def _kernels(layout, topo, residual):
    return [next(helper.get_attribute_value(a) for a in topo.nodes[n].attribute if a.name == "kernel_shape")[0]
            for n in residual.chain]


def test_resnet50_blocks_are_bottlenecks_with_the_4x_expansion(encoder_graphs):
    layout, topo = encoder_graphs.analysed("resnet50")
    assert _kinds(layout) == {("bottleneck", 256, (64, 64, 256)): 3, ("bottleneck", 512, (128, 128, 512)): 4,
                              ("bottleneck", 1024, (256, 256, 1024)): 6, ("bottleneck", 2048, (512, 512, 2048)): 3}
    assert all(_kernels(layout, topo, r) == KERNELS["bottleneck"] for r in layout.residuals)
    assert layout.stem == (64, 7, 2) and layout.trunk_weights == 23_454_912 and layout.gates == []


def test_resnet18_and_34_blocks_stay_basic(encoder_graphs):
    for name, counts in (("resnet18", [2, 2, 2, 2]), ("resnet34", [3, 4, 6, 3])):
        layout, topo = encoder_graphs.analysed(name)
        assert _kinds(layout) == {("basic", c, (c, c)): n for c, n in zip((64, 128, 256, 512), counts)}
        assert all(_kernels(layout, topo, r) == KERNELS["basic"] for r in layout.residuals)


def test_a_resnet50_without_the_expansion_shows_its_widths(encoder_graphs):
    layout, _ = encoder_graphs.analysed("resnet50_narrow")
    assert _kinds(layout) == {("bottleneck", c, (c, c, c)): n for c, n in zip((64, 128, 256, 512), (3, 4, 6, 3))}


def test_structure_json_reports_each_bottleneck_convolution_as_live(encoder_graphs):
    residuals = encoder_graphs.layout("resnet50")["residual_adds"]
    assert len(residuals) == 16
    for r in residuals:
        yardstick = max(r["influence"])
        assert r["kind"] == "bottleneck" and r["widths"][2] == 4 * r["widths"][1] == r["channels"]
        assert len(r["chain"]) == 3 and all(c["carried"] and c["influence"] > 1e-2 * yardstick for c in r["chain"])


def test_a_bottleneck_whose_3x3_is_multiplied_by_zero_measures_zero_there(encoder_graphs):
    residuals = encoder_graphs.layout("resnet50_dead_3x3")["residual_adds"]
    dead = [r for r in residuals if r["kind"] == "bottleneck" and r["chain"][1]["influence"] == 0.0]
    assert len(dead) == 1 and dead[0]["channels"] == 1024 and dead[0]["in_size"] != dead[0]["size"]
    assert dead[0]["chain"][0]["influence"] > 0 and dead[0]["chain"][2]["influence"] > 0  # the 1×1s are live
    inner = [r for r in residuals if r["kind"] == "plain"]  # `h + conv(h) * 0` is an addition of its own
    assert len(inner) == 1 and inner[0]["conv_influence"] == 0.0


def test_scse_attention_gates_the_concatenated_skips(encoder_graphs):
    layout, _ = encoder_graphs.analysed("resnet34_scse")
    assert [(g.where, g.size) for g in layout.gates] == [("join", s) for s in ((4, 6), (4, 6), (8, 12), (8, 12),
                                                                             (16, 24), (16, 24), (32, 48), (32, 48))]
    assert len(layout.joins) == 4 and {j.op for j in layout.joins} == {"Concat"}
    gates = encoder_graphs.layout("resnet34_scse")["gates"]
    assert all(g["input_dependent"] and g["influence"] > 0.1 * g["reference"] for g in gates)
    assert "gates" not in encoder_graphs.layout("resnet18")  # no gate, no measurement


def test_an_attention_gate_before_the_concat_keeps_the_skip_a_skip(encoder_graphs):
    layout, _ = encoder_graphs.analysed("gated")
    plain, _ = encoder_graphs.analysed("ungated")
    assert [(j.op, j.size, j.channels) for j in layout.joins] == [(j.op, j.size, j.channels) for j in plain.joins]
    assert [len(j.edges) for j in layout.joins] == [2, 2]  # into the gate and into its multiplication
    assert [(g.where, g.size, g.channels) for g in layout.gates] == [("skip", (32, 48), 16), ("skip", (64, 96), 8)]
    assert plain.gates == []
    gates = encoder_graphs.layout("gated")["gates"]
    assert all(g["input_dependent"] and g["influence"] > 0.1 * g["reference"] for g in gates)


def test_fake_gates_measure_as_what_they_are(encoder_graphs):
    zero = encoder_graphs.layout("gated_zero")["gates"]  # x * (sigmoid(...) * 0 + 1)
    assert len(zero) == 2 and all(g["influence"] == 0.0 and g["reference"] > 0 for g in zero)
    frozen = encoder_graphs.layout("gated_frozen")["gates"]  # x * sigmoid(f(x) * 0)
    assert len(frozen) == 2 and all(not g["input_dependent"] and g["influence"] > 0 for g in frozen)
