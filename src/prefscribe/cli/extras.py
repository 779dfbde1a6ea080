"""The one-line answer when a command needs an extra that is not installed (`pip install prefscribe` has
none): which extra, from the package's own metadata, and the pip command that adds it."""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement

# Distributions whose import name is not their name with - as _.
_IMPORT_NAMES = {"pyyaml": "yaml", "python-multipart": "multipart"}


def _import_name(distribution: str) -> str:
    name = distribution.lower()
    return _IMPORT_NAMES.get(name, name.replace("-", "_"))


def extras_providing(module: str) -> list[str]:
    """The extras of prefscribe that install `module` (a top-level import name), in the metadata's order; an
    extra that includes another (`mcp` takes `prefscribe[serve]`) provides what that one does."""
    try:
        dist = metadata.distribution("prefscribe")
    except metadata.PackageNotFoundError:  # a source tree on PYTHONPATH: no metadata to ask
        return []
    extras = dist.metadata.get_all("Provides-Extra") or []
    requirements = [Requirement(line) for line in dist.requires or []]

    def of(extra: str) -> list[Requirement]:
        return [r for r in requirements if r.marker is not None and r.marker.evaluate({"extra": extra})
                and not r.marker.evaluate({"extra": ""})]

    def provides(extra: str, seen: frozenset[str] = frozenset()) -> bool:
        for req in of(extra):
            if _import_name(req.name) == module:
                return True
            if req.name == "prefscribe" and any(provides(e, seen | {extra}) for e in req.extras if e not in seen):
                return True
        return False

    return [e for e in extras if provides(e)]


def missing_module_message(command: str, module: str, preferred: str | None = None) -> str:
    """`command` failed importing `module`: what to install, in one line (plain text: `[serve]` is not markup)."""
    top = module.split(".")[0]
    extras = extras_providing(top)
    if not extras:
        return f"error: prefscribe {command} needs the module {top!r}, which is not installed: install it " \
               f"(pip install {top}), or reinstall prefscribe"
    extra = preferred if preferred in extras else extras[0]
    return f"error: prefscribe {command} needs the {extra} extra ({top} is not installed): " \
           f"pip install 'prefscribe[{extra}]'"
