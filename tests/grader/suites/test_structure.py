"""Structure analysis on real exported graphs: U-Nets in several styles pass, broken ones are named."""

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from grader.suites.structure import analyse, describe_skips
from reference.models import UNet, create_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "networks"))
from unet_variants import TinyUNet  # noqa: E402

PROBE = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)
_cache: dict[str, object] = {}


def structure_of(name: str, factory, tmp_path_factory):
    if name not in _cache:
        model = factory().eval()
        dims = {0: torch.export.Dim("b", max=16), 2: 32 * torch.export.Dim("h", max=32),
                3: 32 * torch.export.Dim("w", max=32)}
        program = torch.onnx.export(model, (torch.rand(1, 3, 64, 64),), dynamo=True, verbose=False,
                                    dynamic_shapes={"x": dims})
        path = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
        program.save(str(path))
        _cache[name] = analyse(onnx.load(str(path)), PROBE)
    return _cache[name]


@pytest.mark.parametrize("name,factory", [
    ("scratch_unet", lambda: UNet(base_filters=8, depth=4)),
    ("transpose_concat", lambda: TinyUNet()),
    ("bilinear_concat", lambda: TinyUNet(up="bilinear")),
    ("smp_unet_resnet34", lambda: create_model()),
])
def test_u_nets_in_different_styles_pass(name, factory, tmp_path_factory):
    structure = structure_of(name, factory, tmp_path_factory)
    assert describe_skips(structure) == []
    assert structure.output_shape == (1, 3, 64, 96)


def test_a_u_net_without_skips_is_named(tmp_path_factory):
    problems = describe_skips(structure_of("no_skip", lambda: TinyUNet(skip="none"), tmp_path_factory))
    assert problems == ["no encoder features are concatenated into the decoder at resolution 1, 1/2 "
                        "(concatenations found at: none)"]


def test_added_skips_are_named_as_additive(tmp_path_factory):
    problems = describe_skips(structure_of("add_skip", lambda: TinyUNet(skip="add"), tmp_path_factory))
    assert "added to the decoder at resolution 1, 1/2" in problems[0]
    assert "concatenates them along the channel axis" in problems[0]


def test_a_skip_from_the_wrong_level_is_named(tmp_path_factory):
    problems = describe_skips(structure_of("wrong_level", lambda: TinyUNet(skip="wrong_level"), tmp_path_factory))
    assert problems == ["at resolution 1 the decoder concatenates encoder features taken from resolution 1/2, "
                        "resized to fit: a skip from the wrong level"]


def test_fpn_lateral_connections_are_recognised(tmp_path_factory):
    structure = structure_of("smp_fpn", lambda: create_model("FPN"), tmp_path_factory)
    assert {j.op for j in structure.joins} == {"Add"}
    assert "additive lateral connections, as in FPN" in describe_skips(structure)[0]


def test_resnet34_encoder_is_read_from_the_graph(tmp_path_factory):
    structure = structure_of("smp_unet_resnet34", lambda: create_model(), tmp_path_factory)
    assert structure.stem == (64, 7, 2)
    assert structure.residual_adds == {64: 3, 128: 4, 256: 6, 512: 3}
    assert [structure.scale(s) for s in structure.skip_levels] == ["1/2", "1/4", "1/8", "1/16"]
    resnet18 = structure_of("smp_unet_resnet18", lambda: create_model("Unet", "resnet18"), tmp_path_factory)
    assert resnet18.residual_adds == {64: 2, 128: 2, 256: 2, 512: 2}
