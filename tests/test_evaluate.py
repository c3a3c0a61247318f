"""Evaluation, method comparison, report, layer advice and matching on the real face model."""

import re
from pathlib import Path

import numpy as np
import pytest

import rewrite.sample_cache as sample_cache
from rewrite.advisor import match, suggest_layers
from rewrite.edit import EditSpec
from rewrite.evaluate import compare_methods, evaluate, method_variants
from rewrite.models import load_model
from rewrite.report import write_outputs

from .conftest import run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEEDS = list(range(1000, 1064))


@pytest.fixture(scope="module")
def model():
    return load_model("dcgan-digiface64")


@pytest.fixture(scope="module")
def comparison(model):
    spec = EditSpec.load(EXAMPLES / "add-sunglasses.json")
    return compare_methods(model, spec, SEEDS)


def test_rank1_is_more_local_than_finetuning_at_comparable_efficacy(comparison):
    """The paper's claim on held-out samples, as a test that could fail."""
    by = {r.label: r.metrics for r in comparison}
    ours = by["closed-form+refine r1"]
    assert ours["firing samples"] > 5
    for baseline in ("finetune-layer", "finetune-all"):
        theirs = by[baseline]
        assert ours["change outside"] < 0.7 * theirs["change outside"], (baseline, ours, theirs)
        assert ours["PSNR outside"] > theirs["PSNR outside"]
        assert ours["efficacy"] >= theirs["efficacy"] - 0.1
        assert ours["change inside"] >= 0.8 * theirs["change inside"]


def test_comparison_covers_the_papers_methods(comparison, model):
    labels = [r.label for r in comparison]
    assert labels == ["closed-form+refine r1", "closed-form+refine r3", "finetune-layer",
                      "finetune-all"]
    erase = method_variants(EditSpec.load(EXAMPLES / "remove-glasses.json"))
    assert [s.solver for s in erase][-1] == "dissect-erase"
    # The model is left as it was.
    assert model.fingerprint() == load_model("dcgan-digiface64").fingerprint()
    # All methods share the firing regions.
    assert all(np.array_equal(r.fire, comparison[0].fire) for r in comparison)


def test_report_is_self_contained(comparison, tmp_path):
    paths = write_outputs(comparison, tmp_path, "add-sunglasses")
    page = paths["html"].read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]*)['"]""", page)
    assert refs and all(r.startswith("data:") for r in refs)
    assert "closed-form+refine r1" in page and "finetune-all" in page
    assert (tmp_path / "tradeoff.png").is_file() and (tmp_path / "metrics.csv").is_file()
    csv_text = (tmp_path / "metrics.csv").read_text()
    assert csv_text.startswith("method,efficacy,change inside")
    assert len(csv_text.strip().splitlines()) == 5


def test_second_evaluation_reuses_rendered_samples(model, tmp_path, monkeypatch):
    spec = EditSpec.load(EXAMPLES / "add-sunglasses.json")
    first = evaluate(model, spec, SEEDS[:8])

    def boom(*a, **k):
        raise AssertionError("rendered again")

    monkeypatch.setattr(sample_cache, "generate", boom)
    again = evaluate(model, spec, SEEDS[:8])
    assert np.array_equal(again.after, first.after)
    assert again.metrics["change outside"] == first.metrics["change outside"]


def test_erase_evaluation_reports_the_unit_drop(model):
    r = evaluate(model, EditSpec.load(EXAMPLES / "remove-glasses.json"), SEEDS[:32])
    assert 0 < r.metrics["erased-unit drop"] <= 1
    assert "colour gain" not in r.metrics


def test_suggest_layer_prefers_the_layer_of_the_lessons(model):
    advice = suggest_layers(model, EditSpec.load(EXAMPLES / "add-sunglasses.json"),
                            stats_samples=500)
    assert advice[0].layer == "main.6" and advice[0].auc > 0.9
    skipped = [a for a in advice if np.isnan(a.auc)]
    assert {a.layer for a in skipped} == {"main.0", "main.3"} and "empty" in skipped[0].note


def test_match_finds_samples_where_the_rule_fires(model):
    spec = EditSpec.load(EXAMPLES / "add-sunglasses.json")
    samples, scores, resp = match(model, spec, range(100), top=5)
    assert len(samples) == 5 and list(scores) == sorted(scores, reverse=True)
    assert resp.shape == (5, 8, 8)
    # The strongest responses sit on the eye rows (key rows 3-4 of 8).
    rows = resp.flatten(1).argmax(1) // 8
    assert ((rows >= 2) & (rows <= 4)).float().mean() >= 0.8


def test_eval_commands(tmp_path, model):
    spec = str(EXAMPLES / "add-sunglasses.json")
    proc = run_cli("eval", spec, "--seeds", "1000-1015", "--out", str(tmp_path / "e"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "e" / "report.html").is_file() and "efficacy" in proc.stdout
    proc = run_cli("suggest-layer", spec, "--stats-samples", "300")
    assert proc.returncode == 0 and "suggested: main.6" in proc.stdout, proc.stderr
    proc = run_cli("match", spec, "--seeds", "0-49", "--top", "4", "--out", str(tmp_path / "m.png"))
    assert proc.returncode == 0 and (tmp_path / "m.png").is_file(), proc.stderr
    proc = run_cli("eval", spec, "--seeds", "9-3")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
