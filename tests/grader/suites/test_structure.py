"""Structure analysis on real exported graphs, run by the verifier: U-Nets in several styles pass,
broken ones are named, and skips or residual blocks that do not change the output do not count."""

import numpy as np
import pytest

from grader.suites.structure import (INFLUENCE_RATIO, SIGNAL_RATIO, describe_encoder, describe_signal,
                                     describe_skips, from_layout)
from grader.verifier import Job, accept, verify
from reference.models import UNet, create_model
from tests.grader.verifier.graphs import networks, unet_variants

PROBE = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)
RESNET34 = ((64, 7, 2), {64: 3, 128: 4, 256: 6, 512: 3}, 21_267_648)
_cache: dict[str, object] = {}


def structure_of(name: str, factory):
    if name not in _cache:
        graph = accept(networks.export(factory()))
        _cache[name] = from_layout(verify(graph, Job(structure_probe=PROBE)).layout())
    return _cache[name]


@pytest.mark.parametrize("name,factory", [
    ("scratch_unet", lambda: UNet(base_filters=8, depth=4)),
    ("transpose_concat", lambda: unet_variants.TinyUNet()),
    ("bilinear_concat", lambda: unet_variants.TinyUNet(up="bilinear")),
    ("smp_unet_resnet34", lambda: create_model()),
])
def test_u_nets_in_different_styles_pass(name, factory):
    structure = structure_of(name, factory)
    assert describe_skips(structure) == []
    assert structure.output_shape == (1, 3, 64, 96)
    assert all(j.live for j in structure.joins)
    assert not structure.bypass and structure.stem_influence >= 0.5 * structure.input_influence


def test_a_u_net_without_skips_is_named():
    problems = describe_skips(structure_of("no_skip", lambda: unet_variants.TinyUNet(skip="none")))
    assert problems == ["no encoder features are concatenated into the decoder at resolution 1, 1/2 "
                        "(concatenations found at: none)"]


def test_added_skips_are_named_as_additive():
    problems = describe_skips(structure_of("add_skip", lambda: unet_variants.TinyUNet(skip="add")))
    assert "added to the decoder at resolution 1, 1/2" in problems[0]
    assert "concatenates them along the channel axis" in problems[0]


def test_a_skip_from_the_wrong_level_is_named():
    problems = describe_skips(structure_of("wrong_level", lambda: unet_variants.TinyUNet(skip="wrong_level")))
    assert problems == ["at resolution 1 the decoder concatenates encoder features taken from resolution 1/2, "
                        "resized to fit: a skip from the wrong level"]


def test_skips_multiplied_by_zero_do_not_count():
    structure = structure_of("dead_skips", lambda: networks.SkipUNet(dead=True))
    assert [j.live for j in structure.joins] == [False, False]
    assert describe_skips(structure) == [
        "at resolution 1, 1/2 the encoder features joined into the decoder do not change its output (the grader "
        "perturbed them and the output stayed the same): the skip must carry the encoder's features themselves"]
    one = describe_skips(structure_of("one_dead_skip", lambda: networks.SkipUNet(dead=True, dead_levels=(1,))))
    assert len(one) == 1 and one[0].startswith("at resolution 1/2 the encoder features joined")


def test_fpn_lateral_connections_are_recognised():
    structure = structure_of("smp_fpn", lambda: create_model("FPN"))
    assert {j.op for j in structure.joins} == {"Add"}
    assert "additive lateral connections, as in FPN" in describe_skips(structure)[0]


def test_resnet34_encoder_is_read_from_the_graph():
    structure = structure_of("smp_unet_resnet34", lambda: create_model())
    assert structure.stem == (64, 7, 2)
    assert structure.residual_adds == structure.basic_blocks == {64: 3, 128: 4, 256: 6, 512: 3}
    assert structure.inert_adds == {} and structure.downsampling == {128: 1, 256: 1, 512: 1}
    assert structure.trunk_weights == 21_267_648
    assert describe_encoder(structure, *RESNET34) == []
    assert [structure.scale(s) for s in structure.skip_levels] == ["1/2", "1/4", "1/8", "1/16"]


@pytest.mark.parametrize("conv", [False, True], ids=["x_plus_0x", "x_plus_conv_x_times_0"])
def test_resnet18_padded_with_additions_that_do_nothing_is_not_resnet34(conv):
    structure = structure_of(f"padded_resnet18_{conv}", lambda: networks.padded_resnet18_unet(conv))
    assert structure.residual_adds == {64: 2, 128: 2, 256: 2, 512: 2}
    assert structure.inert_adds == {64: 1, 128: 2, 256: 4, 512: 1}
    weights = 11_166_912 + (5_052_672 if conv else 0)  # ResNet18's, and the do-nothing 3×3 convolutions'
    assert describe_encoder(structure, *RESNET34) == [
        "the encoder has 2-2-2-2 residual blocks at 64/128/256/512 channels",
        f"the encoder's convolutions hold {weights / 1e6:.2f}M weights; ResNet34's hold 21.3M",
        "8 additions in the encoder did not count as residual blocks: the grader perturbed their branches and the "
        "output did not change"]
    assert describe_skips(structure) == []


def test_resnet34_in_outline_without_basic_blocks_is_not_resnet34():
    structure = structure_of("fake_resnet34", networks.FakeResNet34UNet)
    assert structure.stem == (64, 7, 2) and structure.residual_adds == {64: 3, 128: 4, 256: 6, 512: 3}
    assert structure.basic_blocks == {} and structure.downsampling == {}
    assert describe_encoder(structure, *RESNET34) == [
        "the encoder has 0-0-0-0 residual blocks at 64/128/256/512 channels",
        "16 residual blocks at 64/128/256/512 channels do not hold two 3×3 convolutions in series on the branch "
        "that both change the output and both read and give the block's number of channels, as a ResNet basic block "
        "does",
        "no residual block at 128/256/512 channels halves the resolution, as the first block of each of those "
        "ResNet stages does (stride 2)",
        "the encoder's convolutions hold 0.19M weights; ResNet34's hold 21.3M"]
    assert describe_skips(structure) == []  # its skips are real


SIGNAL = ["the input reaches the output along a path that does not pass through the encoder's first convolution: "
          "a second network next to the encoder computes part of the output",
          "perturbing the features of the encoder's first convolution changed the output"]


@pytest.mark.parametrize("name,unet", [("parasite_tiny", unet_variants.TinyUNet),
                                       ("parasite_fake_resnet34", networks.FakeResNet34UNet)])
def test_a_u_net_riding_along_next_to_another_network_is_named(name, unet):
    structure = structure_of(name, lambda: networks.ParasiteUNet(unet()))
    assert structure.bypass and structure.stem_influence < 1e-3 * structure.input_influence
    assert all(j.live for j in structure.joins)  # relative to their yardsticks, its skips look real
    for problems in (describe_skips(structure), describe_encoder(structure, *RESNET34)):
        assert problems[0] == SIGNAL[0] and problems[1].startswith(SIGNAL[1])
        assert "the output hardly depends on the encoder" in problems[1]
    assert len(describe_skips(structure)) == 2


LAYOUT = {"input_size": [64, 96], "output_shape": [1, 3, 64, 96], "trunk_levels": [[64, 96], [32, 48]],
          "bottleneck": [32, 48], "stem": [8, 3, 1], "op_types": ["Conv", "Concat"], "bypass": False,
          "trunk_weights": 1000, "stem_influence": 0.4, "input_influence": 0.5,
          "joins": [{"op": "Concat", "size": [64, 96], "encoder_size": [64, 96], "channels": 8, "influence": 0.2,
                     "reference": 0.5}],
          "residual_adds": [{"channels": 8, "size": [64, 96], "in_size": [64, 96], "influence": [0.5, 0.3],
                             "conv_influence": 0.4, "convs": 2, "widths": [8, 8], "fan_ins": [8, 8], "stored": [576, 576],
                             "chain": [{"carried": True, "influence": 0.3}, {"carried": True, "influence": 0.2}]}]}


def test_influence_is_judged_against_the_yardstick():
    assert from_layout(LAYOUT).joins[0].live and from_layout(LAYOUT).residual_adds == {8: 1}
    faint = {**LAYOUT, "joins": [{**LAYOUT["joins"][0], "influence": 0.5 * INFLUENCE_RATIO * 0.5}],
             "residual_adds": [{**LAYOUT["residual_adds"][0], "conv_influence": 0.0}]}
    structure = from_layout(faint)
    assert not structure.joins[0].live and structure.residual_adds == {} and structure.inert_adds == {8: 1}
    assert from_layout(LAYOUT).basic_blocks == {8: 1}
    one_dead = [{"carried": True, "influence": 0.3}, {"carried": True, "influence": 0.0}]
    assert from_layout({**LAYOUT, "residual_adds": [{**LAYOUT["residual_adds"][0], "chain": one_dead}]}
                       ).basic_blocks == {}


@pytest.mark.parametrize("widths,fan_ins", [([1, 8], [8, 1]), ([8, 1], [8, 8]), ([8], [8]), ([], []),
                                            ([8, 8], [1, 1]), ([8, 8], [8, 3]), ([8, 8], []), ([8, 8], [4, 4])])
def test_a_branch_squeezed_below_the_blocks_channels_is_not_a_basic_block(widths, fan_ins):
    # 3×3s of c -> 1 -> c, reading the channels' mean, or grouped in two, weigh little: a ResNet18 padded with
    # such blocks passed for ResNet34
    squeezed = from_layout({**LAYOUT, "residual_adds": [{**LAYOUT["residual_adds"][0], "widths": widths,
                                                         "fan_ins": fan_ins}]})
    assert squeezed.basic_blocks == {} and squeezed.residual_adds == {8: 1}
    opening = from_layout({**LAYOUT, "residual_adds": [{**LAYOUT["residual_adds"][0], "fan_ins": [4, 8],
                                                         "stored": [288, 576]}]})
    assert opening.basic_blocks == {8: 1}  # a stage's first block reads half its channels
    # weights expanded from a few stored values, or shared with another convolution, are not a block's own
    for stored in ([72, 576], [576, 0], []):
        shared = from_layout({**LAYOUT, "residual_adds": [{**LAYOUT["residual_adds"][0], "stored": stored}]})
        assert shared.basic_blocks == {}


def test_the_stem_is_judged_against_the_input():
    assert describe_signal(from_layout(LAYOUT)) == []
    faint = describe_signal(from_layout({**LAYOUT, "stem_influence": 0.5 * SIGNAL_RATIO * 0.5}))
    assert len(faint) == 1 and faint[0].startswith(SIGNAL[1] + " 5.0e-02 times as much as perturbing the input")
    assert describe_signal(from_layout({**LAYOUT, "bypass": True})) == [SIGNAL[0]]


@pytest.mark.parametrize("broken", [
    {"joins": [{"op": "Concat", "size": [64], "encoder_size": None, "channels": 8, "influence": 0, "reference": 1}]},
    {"residual_adds": [{"channels": 8, "influence": [float("nan"), 1.0], "conv_influence": 1.0}]},
    {"residual_adds": [{"channels": 8, "influence": [1.0], "conv_influence": 1.0}]},
    {"input_size": "64x96"},
    {"op_types": "Conv"},
    {"bypass": 1},
    {"trunk_weights": -1},
    {"stem_influence": float("nan")},
    {"residual_adds": [{"channels": 8, "size": [64, 96], "in_size": [64, 96], "influence": [1.0, 1.0],
                        "conv_influence": 1.0, "chain": "3x3"}]},
])
def test_a_malformed_report_is_a_value_error(broken):
    with pytest.raises((ValueError, KeyError, TypeError)):
        from_layout({**LAYOUT, **broken})
