"""Profiles as data and as files, in one place: the JSON shape of a profile and of a profile version, the
prefscribe export document of a whole user, and a registry of formats for export and import (prefscribe
JSON, Markdown for people, a Letta agent file, mem0 memories). See docs/export.md.

    from prefscribe.formats import get_format, read_document
    text = get_format("letta").dump(document)        # a UserDocument, e.g. from Store.export_user
    document = read_document(text, "agent.af")       # the format is recognized from the content
"""

from . import _letta, _markdown, _mem0, _prefscribe  # noqa: F401  (each registers its format)
from ._prefscribe import check_document, parse_json
from ._records import (
    DOCUMENT,
    DOCUMENT_VERSION,
    PROFILE_FIELDS,
    InteractionRecord,
    UserDocument,
    VersionRecord,
    profile_record,
)
from ._registry import FORMATS, Format, get_format, loader, register
from ..errors import InputError


def read_document(text: str, source: str, format: str | None = None) -> UserDocument:
    """The UserDocument in `text` (a file's content; `source` names it in errors). Without `format`, the
    format is recognized from the content."""
    if format is not None:
        return loader(get_format(format))(text, source)
    data = parse_json(text, source)
    for fmt in FORMATS.values():
        if fmt.load and fmt.sniff and fmt.sniff(data):
            return fmt.load(text, source)
    raise InputError("not a prefscribe, Letta or mem0 export: give the format", path=source, field="format")


__all__ = ["DOCUMENT", "DOCUMENT_VERSION", "FORMATS", "PROFILE_FIELDS", "Format", "InteractionRecord",
           "UserDocument", "VersionRecord", "check_document", "get_format", "profile_record", "read_document",
           "register"]
