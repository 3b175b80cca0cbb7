from pathlib import Path

from townhall import hookspecs
from townhall.hookdocs import render

ROOT = Path(__file__).resolve().parents[1]


def test_plugin_docs_are_generated_from_the_hook_specs() -> None:
    assert (ROOT / "docs" / "plugins.md").read_text() == render(), "run: python -m townhall.hookdocs > docs/plugins.md"


def test_every_hook_spec_has_a_docstring_and_prefix() -> None:
    specs = [name for name in dir(hookspecs) if name.startswith("townhall_")]
    assert len(specs) >= 6
    for name in specs:
        assert len((getattr(hookspecs, name).__doc__ or "").strip()) > 100, name


def test_every_builtin_module_is_an_entry_point() -> None:
    from importlib.metadata import entry_points

    declared = {ep.value for ep in entry_points(group="townhall")}
    builtins = {f"townhall.builtin.{p.stem}" for p in (ROOT / "townhall" / "builtin").glob("*.py")
                if p.stem != "__init__"}
    assert builtins <= declared, "add the module to [project.entry-points.townhall] and reinstall"
