"""Markdown for people: the current profile, its history of versions and a count of interactions. Written
to be read (or pasted into a wiki); import takes the JSON, Letta or mem0 formats."""

from __future__ import annotations

from ._records import UserDocument
from ._registry import Format, register


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def dump(doc: UserDocument) -> str:
    lines = [f"# Preference profile of {doc.user_id}", ""]
    head = doc.head
    lines += [head.profile if head else "_No profile yet._", ""]
    if head:
        lines += [f"Version {head.version}, by {head.author} ({_cell(head.editor) or 'unknown'}), "
                  f"covering {head.covers} interactions; written {head.created_at or 'at an unknown time'}.", ""]
    lines += [f"{len(doc.interactions)} interactions on record.", ""]
    if doc.versions:
        lines += ["## Versions", "", "| version | author | kind | editor | covers | written |",
                  "|---:|---|---|---|---:|---|"]
        for v in reversed(doc.versions):
            kind = f"rollback to {v.rollback_of}" if v.kind == "rollback" else v.kind
            lines.append(f"| {v.version} | {v.author} | {kind} | {_cell(v.editor)} | {v.covers} | "
                         f"{v.created_at or ''} |")
        lines.append("")
    return "\n".join(lines)


register(Format("markdown", "text/markdown; charset=utf-8", ".md", dump))
