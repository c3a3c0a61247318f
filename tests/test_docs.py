"""The front door stays a front door: the README fits on two screens, and every link it makes
into the repository (docs pages, pictures) points at a file that exists. The docs site itself
is checked by `make docs` (mkdocs build --strict) in .ci/run."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: The README's budget (issue 26: "fits on two screens", about 150 lines).
MAX_README_LINES = 150

# [text](target) and ![alt](target); the target ends at the first space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def readme_links(text: str) -> list[str]:
    """Relative link targets of a Markdown text, outside code blocks, without anchors."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue                               # http(s):, mailto:, in-page anchors
        targets.append(unquote(target.split("#", 1)[0]))
    return targets


def test_readme_fits_on_two_screens():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_README_LINES, (
        f"README.md has {n} lines (budget {MAX_README_LINES}): move the detail into a page "
        f"under docs/ and link to it")


def test_readme_links_point_at_files():
    targets = readme_links(README.read_text(encoding="utf-8"))
    assert any(t.startswith("docs/") for t in targets), "the README links into docs/"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


@pytest.mark.parametrize("text, expected", [
    ("see [the app](docs/app.md) and ![x](docs/a.png)", ["docs/app.md", "docs/a.png"]),
    ("[spec](docs/spec.md#fields) [web](https://example.org) [here](#top)", ["docs/spec.md"]),
    ("```\n[not a link](docs/nowhere.md)\n```\n[real](docs/x.md)", ["docs/x.md"]),
])
def test_readme_links_parser(text, expected):
    assert readme_links(text) == expected


def test_link_check_catches_a_missing_docs_page():
    targets = readme_links("[gone](docs/no-such-page.md)")
    assert [t for t in targets if not (ROOT / t).exists()] == ["docs/no-such-page.md"]
