"""The library backbones (ResNet-34 U-Net, SegFormer MiT-B0): the seam between encoder and
decoder computes exactly what segmentation-models-pytorch computes, the last layers are the
modules that make the coarsest feature and the representation, ``new_decoder`` gives fresh
weights of the same design, and ``pretrained_path`` loads a local file or names it."""

from __future__ import annotations

import inspect

import pytest
import segmentation_models_pytorch as smp
import torch

from wing.models import BACKBONES, resnet_unet

SIDE = 64
# small decoders; the encoders are the library's, whole
OPTIONS = {
    "resnet_unet": {"decoder_channels": (16, 16, 8, 8, 8)},
    "segformer": {"decoder_segmentation_channels": 16},
}
STRIDES = {"resnet_unet": (2, 4, 8, 16, 32), "segformer": (4, 8, 16, 32)}
NAMES = sorted(OPTIONS)


def build(name: str, seed: int = 0, **options):
    torch.manual_seed(seed)
    return BACKBONES.get(name)(**{**OPTIONS[name], **options})


def image(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(seed))


def library_encoder(backbone):
    """The library's encoder module inside ours (what ``pretrained_path`` is loaded into)."""
    return getattr(backbone.encoder, {"resnet_unet": "resnet", "segformer": "mit"}[backbone.name])


@pytest.fixture(scope="module", params=NAMES)
def built(request):
    backbone = build(request.param)
    backbone.encoder.eval()  # MiT's stochastic depth is random in training mode
    backbone.decoder.eval()
    return backbone


def test_features_stages_and_representation_have_the_declared_shapes(built):
    x = image()
    with torch.no_grad():
        features = built.encoder(x)
        assert [tuple(f.shape) for f in features] == [
            (2, c, SIDE // s, SIDE // s)
            for c, s in zip(built.encoder.channels, STRIDES[built.name], strict=True)
        ]
        y = built.decoder.begin(features)
        for index, width in enumerate(built.decoder.stage_channels):
            y = built.decoder.stage(index, y, features)
            assert y.shape[:2] == (2, width)
        representation = built.decoder.end(y, features)
    assert representation.shape == (2, built.out_channels, SIDE, SIDE)
    assert built.out_channels == built.decoder.stage_channels[-1]
    assert built.input_multiple == 32


def test_last_layers_make_the_coarsest_feature_and_the_representation(built):
    made = {}
    hooks = [
        built.encoder.last_layer.register_forward_hook(lambda m, i, o: made.update(encoder=o)),
        built.decoder.last_layer.register_forward_hook(lambda m, i, o: made.update(decoder=o)),
    ]
    with torch.no_grad():
        features = built.encoder(image())
        representation = built.decoder(features)
        after_end = built.decoder.end(made["decoder"], features)
    for hook in hooks:
        hook.remove()
    assert torch.equal(made["encoder"], features[-1])
    assert torch.equal(after_end, representation)


def test_resnet_unet_computes_exactly_what_smps_unet_computes():
    torch.manual_seed(0)
    library = smp.Unet("resnet34", encoder_weights=None, **OPTIONS["resnet_unet"]).eval()
    ours = build("resnet_unet", seed=0)
    ours.encoder.eval()
    ours.decoder.eval()
    # built from the same random numbers: the same weights under the library's names
    assert all(
        torch.equal(value, library.state_dict()[f"{part}.{key}"])
        for part, module in (("encoder", ours.encoder.resnet), ("decoder", ours.decoder))
        for key, value in module.state_dict().items()
    )
    with torch.no_grad():
        expected = library.decoder(library.encoder(image()))
        assert torch.equal(ours.decoder(ours.encoder(image())), expected)


def test_segformer_computes_exactly_what_smps_segformer_computes():
    torch.manual_seed(0)
    library = smp.Segformer("mit_b0", encoder_weights=None, **OPTIONS["segformer"]).eval()
    ours = build("segformer", seed=0)
    ours.encoder.eval()
    ours.decoder.eval()
    assert all(
        torch.equal(value, library.state_dict()[f"{part}.{key}"])
        for part, module in (("encoder", ours.encoder.mit), ("decoder", ours.decoder))
        for key, value in module.state_dict().items()
    )
    with torch.no_grad():
        expected = library.decoder(library.encoder(image()))
        features = ours.encoder(image())
        fused = ours.decoder.stage(0, ours.decoder.begin(features), features)
        assert torch.equal(fused, expected)
        # the library's head upsamples its class scores; ours upsamples the representation
        upsampling = library.segmentation_head[1]
        assert torch.equal(ours.decoder(features), upsampling(expected))


@pytest.mark.parametrize("name", NAMES)
def test_new_decoder_has_the_same_design_and_fresh_weights(name):
    backbone = build(name)
    fresh = backbone.new_decoder()
    assert type(fresh) is type(backbone.decoder)
    assert fresh.stage_channels == backbone.decoder.stage_channels
    assert fresh.out_channels == backbone.decoder.out_channels
    old, new = backbone.decoder.state_dict(), fresh.state_dict()
    assert {k: v.shape for k, v in new.items()} == {k: v.shape for k, v in old.items()}
    weights = [key for key, value in old.items() if value.dim() > 1]
    assert weights and all(not torch.equal(old[key], new[key]) for key in weights)
    assert not {id(p) for p in fresh.parameters()} & {id(p) for p in backbone.decoder.parameters()}
    with torch.no_grad():
        representation = fresh(backbone.encoder(image()))
    assert representation.shape == (2, backbone.out_channels, SIDE, SIDE)


@pytest.mark.parametrize("name", NAMES)
def test_pretrained_path_loads_the_encoder_and_only_the_encoder(name, tmp_path):
    path = tmp_path / "encoder.pt"
    saved = library_encoder(build(name, seed=1)).state_dict()
    torch.save(saved, path)
    random = build(name, seed=2)
    loaded = build(name, seed=2, pretrained_path=str(path))
    state = library_encoder(loaded).state_dict()
    assert state.keys() == saved.keys()
    assert all(torch.equal(state[key], saved[key]) for key in saved)
    assert any(
        not torch.equal(value, saved[key])
        for key, value in library_encoder(random).state_dict().items()
    )
    assert all(
        torch.equal(value, random.decoder.state_dict()[key])
        for key, value in loaded.decoder.state_dict().items()
    )
    assert loaded.options["pretrained_path"] == str(path)


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_or_unfitting_pretrained_file_is_named_in_the_error(name, tmp_path):
    missing = tmp_path / "absent.pt"
    with pytest.raises(ValueError, match="absent.pt"):
        build(name, pretrained_path=str(missing))
    unfitting = tmp_path / "other_network.pt"
    torch.save({"conv.weight": torch.zeros(1, 3, 3, 3)}, unfitting)
    with pytest.raises(ValueError, match="other_network.pt.*keys missing"):
        build(name, pretrained_path=str(unfitting))
    not_a_state_dict = tmp_path / "notes.txt"
    not_a_state_dict.write_text("not weights", encoding="utf-8")
    with pytest.raises(ValueError, match="notes.txt"):
        build(name, pretrained_path=str(not_a_state_dict))


@pytest.mark.parametrize("name", NAMES)
def test_options_are_the_builders_and_rebuild_the_backbone(name):
    backbone = build(name)
    builder = BACKBONES.get(name)
    assert backbone.name == name
    assert set(backbone.options) == set(inspect.signature(builder).parameters)
    torch.manual_seed(0)
    again = builder(**backbone.options)
    assert again.encoder.channels == backbone.encoder.channels
    assert again.decoder.stage_channels == backbone.decoder.stage_channels


@pytest.mark.parametrize("name", NAMES)
def test_builds_on_the_meta_device_without_drawing_random_numbers(name):
    """The configuration check reads ``input_multiple`` from a meta-device build."""
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with torch.device("meta"):
        backbone = BACKBONES.get(name)()
    assert backbone.input_multiple == 32
    assert {p.device.type for p in backbone.encoder.parameters()} == {"meta"}
    assert torch.equal(torch.rand(3), expected)


def test_resnet_unet_needs_one_decoder_width_per_encoder_stage():
    with pytest.raises(ValueError, match="decoder_channels"):
        resnet_unet.build(decoder_channels=(16, 8))
