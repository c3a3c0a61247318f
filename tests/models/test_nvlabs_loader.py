"""Opt-in: NVIDIA's own ``legacy.load_network_pkl`` loads the ``.pkl`` rewrite writes and
renders the edited model (``tools/check_nvlabs_load.py``). Needs checkouts of NVIDIA's
repositories, which CI does not have: set ``REWRITE_NVLABS_STYLEGAN3`` (NVlabs/stylegan3)
and/or ``REWRITE_NVLABS_STYLEGAN2ADA`` (NVlabs/stylegan2-ada-pytorch), with NVIDIA's
dependencies (scipy, click, requests) importable."""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("check_nvlabs_load",
                                                  ROOT / "tools" / "check_nvlabs_load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("fixture, env", [
    ("stylegan2ada_tiny64.pkl", "REWRITE_NVLABS_STYLEGAN2ADA"),
    ("stylegan3t_tiny64.pkl", "REWRITE_NVLABS_STYLEGAN3"),
    ("stylegan3r_tiny64.pkl", "REWRITE_NVLABS_STYLEGAN3")])
def test_nvidias_loader_renders_the_edited_pickle(fixtures_dir, fixture, env, tmp_path,
                                                  monkeypatch, capsys):
    checkout = os.environ.get(env)
    if not checkout:
        pytest.skip(f"set {env} to a checkout of NVIDIA's repository to run this check")
    monkeypatch.setenv("REWRITE_CACHE", str(tmp_path / "cache"))
    rc = _tool().main([str(fixtures_dir / fixture), "--nvlabs", checkout,
                       "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr()
