import pytest
import torch
import torchvision
from torch import nn

from reference.models import ModelConfigError, UNet, build_model, create_model, encoder_feature_shapes


@pytest.mark.parametrize("height,width", [(64, 64), (96, 160), (256, 256)])
def test_build_model_gives_logits_per_pixel(height, width):
    model = build_model().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, height, width))
    assert out.shape == (2, 3, height, width)


def test_build_model_is_fully_convolutional_with_a_resnet34_encoder():
    model = build_model()
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    blocks = [len(getattr(model.encoder, f"layer{i}")) for i in range(1, 5)]
    assert blocks == [3, 4, 6, 3]
    assert model.encoder.conv1.kernel_size == (7, 7) and model.encoder.conv1.stride == (2, 2)


@pytest.mark.parametrize("height,width,depth", [(64, 64, 5), (48, 80, 4), (32, 96, 3)])
def test_unet_from_scratch_output_shape(height, width, depth):
    model = UNet(base_filters=8, depth=depth).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, height, width)).shape == (1, 3, height, width)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())


def test_unet_concatenates_encoder_features_into_the_decoder():
    model = UNet(base_filters=4, depth=3)
    first_merge = model.merge[0][0]
    assert first_merge.in_channels == 2 * 8  # upsampled 8 + skipped 8 channels


@pytest.mark.parametrize("height,width", [(256, 256), (224, 320), (255, 257), (97, 131), (33, 65)])
def test_encoder_feature_shapes_match_torchvision(height, width):
    net = torchvision.models.resnet34(weights=None).eval()
    x = torch.rand(1, 3, height, width)
    shapes = []
    with torch.no_grad():
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
    assert encoder_feature_shapes(height, width) == shapes


def test_fpn_and_other_encoders_are_a_config_change():
    fpn = create_model("FPN", "resnet34")
    unet18 = create_model("Unet", "resnet18", in_channels=1, num_classes=2)
    with torch.no_grad():
        assert fpn.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
        assert unet18.eval()(torch.rand(1, 1, 64, 64)).shape == (1, 2, 64, 64)


def test_unknown_architecture_lists_the_options():
    with pytest.raises(ModelConfigError, match="Available options are"):
        create_model("Unett")
