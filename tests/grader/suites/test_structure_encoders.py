"""Encoders identified from what their graphs compute (ResNet18, ResNet34, ResNet50 against specs), look-alikes
named for what they are, and attention on the skips detected only when its gate is real."""

import pytest

from grader.suites.structure import (RESNET18, RESNET34, RESNET50, RESNETS, EncoderSpec, describe_encoder,
                                     describe_skips, describe_variants, detect_variants, from_layout,
                                     identify_encoder)
from grader.verifier import VerificationFailed
from tests.grader.suites.test_structure import LAYOUT


def structure(encoder_graphs, name):
    return from_layout(encoder_graphs.layout(name))


def test_spec_weights_are_torchvisions_convolution_weights():
    import torchvision

    for spec in RESNETS:
        net = getattr(torchvision.models, spec.name.lower())(weights=None)
        assert spec.weights == sum(p.numel() for p in net.parameters() if p.dim() == 4)


@pytest.mark.parametrize("height,width", [(256, 256), (224, 320), (255, 257), (97, 131), (33, 64), (1, 2)])
def test_feature_shapes_are_what_torchvision_computes(height, width):
    import torch
    import torchvision

    for spec in RESNETS:
        net = getattr(torchvision.models, spec.name.lower())(weights=None).eval()
        shapes, x = [], torch.zeros(1, 3, height, width)
        with torch.no_grad():
            x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
            for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
                x = layer(x)
                shapes.append(tuple(x.shape[1:]))
        assert spec.feature_shapes(height, width) == shapes, spec.name


@pytest.mark.parametrize("name,spec", [("resnet18", RESNET18), ("resnet34", RESNET34), ("resnet50", RESNET50)])
def test_each_smp_encoder_is_identified(encoder_graphs, name, spec):
    found = structure(encoder_graphs, name)
    assert describe_encoder(found, spec) == [] and describe_skips(found) == []
    identified = identify_encoder(found, RESNETS)
    assert identified.name == identified.closest == spec.name and identified.problems == ()
    assert identified.computes == spec.outline
    assert detect_variants(found) == frozenset()


def test_the_old_call_form_is_the_resnet34_spec(encoder_graphs):
    found = structure(encoder_graphs, "resnet18")
    assert describe_encoder(found, RESNET34.stem, RESNET34.blocks, RESNET34.weights) == describe_encoder(
        found, RESNET34) == ["the encoder has 2-2-2-2 residual blocks at 64/128/256/512 channels",
                             "the encoder's convolutions hold 11.17M weights; ResNet34's hold 21.3M"]


def test_a_resnet34_submitted_as_resnet50_is_named_a_resnet34(encoder_graphs):
    found = structure(encoder_graphs, "resnet34")
    assert describe_encoder(found, RESNET50) == [
        "the encoder has 0-0-0-0 bottleneck blocks at 256/512/1024/2048 channels",
        "9 residual blocks at 256/512/1024/2048 channels do not hold a 1×1, a 3×3 and a 1×1 convolution in series "
        "on the branch that all change the output, as a ResNet bottleneck block does",
        "no residual block at 1024/2048 channels halves the resolution, as the first block of each of those "
        "ResNet stages does (stride 2)",
        "more residual blocks change the resolution at 256 channels than in ResNet50",
        "the encoder's convolutions hold 21.27M weights; ResNet50's hold 23.5M"]
    identified = identify_encoder(found, [RESNET50, RESNET34])
    assert (identified.name, identified.computes) == ("ResNet34", "basic blocks 3-4-6-3 at 64/128/256/512 channels")


def test_a_resnet50_submitted_as_resnet34_is_named_for_its_bottlenecks(encoder_graphs):
    problems = describe_encoder(structure(encoder_graphs, "resnet50"), RESNET34)
    assert "the encoder holds bottleneck blocks (bottleneck blocks 3-4-6-3 at 256/512/1024/2048 channels " \
           "(expansion 4)); ResNet34's blocks are basic blocks" in problems


def test_a_resnet50_without_the_expansion_is_not_resnet50(encoder_graphs):
    found = structure(encoder_graphs, "resnet50_narrow")
    assert found.bottleneck_blocks == {64: 3, 128: 4, 256: 6, 512: 3} and found.basic_blocks == {}
    identified = identify_encoder(found, RESNETS)
    assert identified.name is None and identified.closest == "ResNet50"
    assert identified.computes == "bottleneck blocks 3-4-6-3 at 64/128/256/512 channels (expansion 1)"
    assert identified.problems == (
        "the encoder has 6-3-0-0 bottleneck blocks at 256/512/1024/2048 channels",
        "16 bottleneck blocks end with 1 times the channels of their 3×3 convolution; ResNet50's end with 4 times",
        "no residual block at 1024/2048 channels halves the resolution, as the first block of each of those "
        "ResNet stages does (stride 2)",
        "more residual blocks change the resolution at 256 channels than in ResNet50",
        "the encoder's convolutions hold 13.84M weights; ResNet50's hold 23.5M")


def test_a_bottleneck_with_a_dead_3x3_does_not_count(encoder_graphs):
    found = structure(encoder_graphs, "resnet50_dead_3x3")
    assert found.bottleneck_blocks == {256: 3, 512: 4, 1024: 5, 2048: 3}
    # the weights are all there (with the batch norm after the dead 3×3, not folded into it, and Slice's bounds):
    # only the measurement tells
    assert 0 < found.trunk_weights - RESNET50.weights < 2 * 256 + 64
    identified = identify_encoder(found, RESNETS)
    assert identified.name is None and identified.closest == "ResNet50"
    assert identified.problems == (
        "the encoder has 3-4-5-3 bottleneck blocks at 256/512/1024/2048 channels",
        "1 residual block at 256/512/1024/2048 channels does not hold a 1×1, a 3×3 and a 1×1 convolution in series "
        "on the branch that all change the output, as a ResNet bottleneck block does",
        "1 addition in the encoder did not count as residual blocks: the grader perturbed their branches and the "
        "output did not change")


def test_scse_and_an_attention_gate_are_attention(encoder_graphs):
    for name in ("resnet34_scse", "gated"):
        found = structure(encoder_graphs, name)
        assert detect_variants(found) == {"attention"} and describe_variants(found) == []
        assert describe_skips(found) == []  # a gated skip is still a skip
    assert identify_encoder(structure(encoder_graphs, "resnet34_scse"), RESNETS).name == "ResNet34"
    assert detect_variants(structure(encoder_graphs, "ungated")) == frozenset()


def test_fake_attention_is_not_attention(encoder_graphs):
    zero = structure(encoder_graphs, "gated_zero")
    assert detect_variants(zero) == frozenset() and describe_skips(zero) == []
    assert describe_variants(zero) == ["2 sigmoid gates on the skips at resolution 1, 1/2 do not change the output "
                                       "(the grader perturbed the gate and the output stayed the same)"]
    frozen = structure(encoder_graphs, "gated_frozen")
    assert detect_variants(frozen) == frozenset()
    assert describe_variants(frozen) == ["2 sigmoid gates on the skips at resolution 1, 1/2 stay the same whatever "
                                         "the input: attention computes its gate from the features"]


@pytest.mark.parametrize("name,where", [("gated_silu", "1, 1/2"), ("gated_mean", "1, 1/2"),
                                        ("resnet34_silu_after_concat", "1/16")])
def test_a_sigmoid_with_no_layer_of_its_own_is_not_attention(encoder_graphs, name, where):
    found = structure(encoder_graphs, name)
    assert detect_variants(found) == frozenset() and describe_skips(found) == []
    count = len(found.gates)
    assert count >= 1 and all(g.live and g.input_dependent and not g.learned for g in found.gates)
    assert describe_variants(found) == [
        f"{count} sigmoid gate{'s' if count > 1 else ''} on the skips at resolution {where} "
        f"take{'' if count > 1 else 's'} the sigmoid of the features (or of a summary of them) with no layer of "
        f"{'their' if count > 1 else 'its'} own: that is an activation such as SiLU; attention computes its gate "
        "with convolutions or linear layers that it learns"]


def test_a_resnet34_computed_in_5d_beside_a_resnet50_is_refused_not_misread(encoder_graphs):
    import sys

    from tests.fixtures.graphs.encoders import INSIDE

    if str(INSIDE) not in sys.path:
        sys.path.insert(0, str(INSIDE))
    from topology import AnalysisError

    with pytest.raises(AnalysisError, match="a convolution \\(Conv\\) over 5-dimensional tensors"):
        encoder_graphs.analysed("resnet34_hidden_in_5d")
    with pytest.raises(VerificationFailed, match="could not analyse your exported network: it has a convolution"):
        structure(encoder_graphs, "resnet34_hidden_in_5d")


@pytest.mark.parametrize("name", ["resnet18_padded_as_resnet34", "resnet18_mean_padded_as_resnet34"])
def test_a_resnet18_padded_with_squeezed_blocks_and_dead_weights_is_not_resnet34(encoder_graphs, name):
    # Two red-team attacks: blocks of c -> 1 -> c, then blocks whose 3×3s give c channels but read their mean.
    found = structure(encoder_graphs, name)
    assert found.residual_adds == RESNET34.blocks and found.basic_blocks == RESNET18.blocks
    assert abs(found.trunk_weights - RESNET34.weights) < 0.05 * RESNET34.weights  # the ballast does its part
    identified = identify_encoder(found, RESNETS)
    assert identified.name is None and identified.closest == "ResNet18"
    assert identified.computes == "basic blocks 2-2-2-2 at 64/128/256/512 channels, and 8 other residual blocks " \
                                  "(at 64/128/256/512 channels)"
    assert describe_encoder(found, RESNET34) == [
        "the encoder has 2-2-2-2 residual blocks at 64/128/256/512 channels",
        "8 residual blocks at 64/128/256/512 channels do not hold two 3×3 convolutions in series on the branch that "
        "both change the output and both read and give the block's number of channels, as a ResNet basic block does"]


def test_weights_expanded_at_run_time_are_not_a_blocks_own(encoder_graphs):
    # A red-team attack: 8 extra blocks whose (c, c, 3, 3) weights are (c, 1, 3, 3) values expanded at run time,
    # with dead ballast making up the count: the blocks look whole (widths, fan-ins) but store a c-th of it.
    found = structure(encoder_graphs, "resnet18_stretched_as_resnet34")
    assert found.basic_blocks == RESNET18.blocks and found.residual_adds == RESNET34.blocks
    assert describe_encoder(found, RESNET34)[:2] == [
        "the encoder has 2-2-2-2 residual blocks at 64/128/256/512 channels",
        "8 residual blocks at 64/128/256/512 channels do not hold two 3×3 convolutions in series on the branch that "
        "both change the output and both read and give the block's number of channels, as a ResNet basic block does"]


def test_a_bridge_at_the_bottleneck_is_decoder_not_encoder(encoder_graphs):
    # smp's center block after the trunk's last residual block sees its features, never the image
    found = structure(encoder_graphs, "resnet34_center_block")
    assert found.trunk_weights == RESNET34.weights
    assert identify_encoder(found, RESNETS).name == "ResNet34" and describe_skips(found) == []


def test_group_norm_computed_through_3d_tensors_keeps_the_encoder_whole(encoder_graphs):
    # GroupNorm exports as Reshape to 3-D, InstanceNormalization, Reshape back: the trunk's ancestry crosses it
    found = structure(encoder_graphs, "resnet34_group_norm")
    assert found.basic_blocks == RESNET34.blocks and found.stem == RESNET34.stem and describe_skips(found) == []
    assert describe_encoder(found, RESNET34) == [] and identify_encoder(found, RESNETS).name == "ResNet34"


def test_weights_a_trunk_computes_with_outside_convolutions_are_counted(encoder_graphs):
    # An encoder computed with MatMul over channels-last features held weights no Conv showed.
    found = structure(encoder_graphs, "resnet18_linear_in_trunk")
    hidden = found.trunk_weights - RESNET18.weights - (512 * 20000 + 20000)  # the matrix and its bias
    assert 0 <= hidden <= 16 and found.basic_blocks == RESNET18.blocks  # (and a scalar or two)
    # int8 weights made input-dependent before use count by their bytes: what float32 weights they could hold
    hidden = structure(encoder_graphs, "resnet18_int8_in_trunk").trunk_weights - RESNET18.weights - 512 * 20000 // 4
    assert 0 <= hidden <= 16


def test_identify_prefers_the_kind_and_counts_then_the_fewest_differences():
    specs = (EncoderSpec("A", (8, 3, 1), {8: 1}, 1000), EncoderSpec("B", (8, 3, 1), {8: 1}, 1000, "bottleneck", 4))
    found = from_layout(LAYOUT)  # one basic block at 8 channels
    assert identify_encoder(found, specs).name == "A"
    assert identify_encoder(found, specs[1:]).closest == "B" and identify_encoder(found, specs[1:]).name is None
    with pytest.raises(ValueError):
        identify_encoder(found, ())


GATE = {"where": "skip", "size": [64, 96], "channels": 8, "influence": 0.3, "reference": 0.5, "input_dependent": True,
        "learned": True}


def test_a_gate_not_reported_as_learned_does_not_count():
    unreported = {k: v for k, v in GATE.items() if k != "learned"}
    assert detect_variants(from_layout({**LAYOUT, "gates": [unreported]})) == frozenset()
    assert detect_variants(from_layout({**LAYOUT, "gates": [{**GATE, "learned": False}]})) == frozenset()


@pytest.mark.parametrize("broken", [
    {"gates": [{**GATE, "where": "decoder"}]},
    {"gates": [{**GATE, "input_dependent": 1}]},
    {"gates": [{**GATE, "learned": 1}]},
    {"gates": [{**GATE, "influence": float("nan")}]},
    {"residual_adds": [{**LAYOUT["residual_adds"][0], "kind": "inverted"}]},
    {"residual_adds": [{**LAYOUT["residual_adds"][0], "widths": "64x64"}]},
])
def test_a_malformed_report_is_a_value_error(broken):
    assert detect_variants(from_layout({**LAYOUT, "gates": [GATE]})) == {"attention"}
    with pytest.raises((ValueError, KeyError, TypeError)):
        from_layout({**LAYOUT, **broken})
