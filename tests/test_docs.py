"""Every generated page in docs/ is listed in docs/README.md and names a generator that
exists; each page's own test (e.g. tests/datasets/test_docs.py) checks it is up to date.

A page is generated when it says ``Generated from the code by `python -m MODULE` ``.
"""

import importlib.util
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
INDEX = DOCS / "README.md"
GENERATED = re.compile(r"^Generated from the code by `python -m ([\w.]+)`", re.MULTILINE)
LINK = re.compile(r"\]\(([\w./-]+\.md)\)")
#: the pages generated today: losing the header line must not drop a page from the checks
EXPECTED = {"perturbations.md", "specs.md", "training.md", "formats.md"}


def generated_pages() -> dict[str, str]:
    """``{page name: generator module}`` of the generated pages in docs/."""
    found = {}
    for page in sorted(DOCS.glob("*.md")):
        m = GENERATED.search(page.read_text(encoding="utf-8"))
        if m:
            found[page.name] = m.group(1)
    return found


def test_the_expected_pages_say_they_are_generated():
    missing = sorted(EXPECTED - set(generated_pages()))
    assert not missing, f"pages without their 'Generated from the code by' line: {missing}"


def test_every_generated_page_is_linked_from_the_index():
    linked = set(LINK.findall(INDEX.read_text(encoding="utf-8")))
    unlisted = sorted(set(generated_pages()) - linked)
    assert not unlisted, f"docs/README.md does not link {unlisted}"


def test_the_index_links_pages_that_exist_with_their_commands():
    text = INDEX.read_text(encoding="utf-8")
    broken = sorted(p for p in LINK.findall(text) if not (DOCS / p).exists())
    assert not broken, f"docs/README.md links missing pages: {broken}"
    for page, module in generated_pages().items():
        command = f"python -m {module} > docs/{page}"
        assert f"`{command}`" in text, f"docs/README.md should name `{command}`"


def test_every_generator_module_exists():
    for page, module in generated_pages().items():
        assert importlib.util.find_spec(module) is not None, f"{page}: no module {module}"
