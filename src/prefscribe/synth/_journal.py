"""Resuming: every finished user is appended to a journal next to the output; a rerun with the same
settings skips them. (Model calls are cached as well, so even an interrupted chunk costs little.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError

MAGIC = "prefscribe-synth-journal"


class Journal:
    def __init__(self, path: str | Path, fingerprint: dict[str, Any], *, fresh: bool = False) -> None:
        self.path = Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.done: dict[str, dict] = {}
        if fresh and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_line({"journal": MAGIC, "fingerprint": self.fingerprint}, mode="w")

    def _load(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("journal") != MAGIC:
            raise InputError("not a synthesis journal; delete it or pass --fresh", path=str(self.path))
        if head.get("fingerprint") != self.fingerprint:
            raise InputError("this journal was written with other settings (models, thresholds, prompts or "
                             "data); pass --fresh to start over, or choose another --out", path=str(self.path))
        for number, line in enumerate(lines[1:], start=2):
            try:
                outcome = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # a line cut by an interruption: drop it, that user is redone
                    self.path.write_text("".join(x + "\n" for x in lines[:-1]), encoding="utf-8")
                    break
                raise InputError("malformed journal line; pass --fresh", path=str(self.path), line=number) from None
            self.done[outcome["user_id"]] = outcome

    def _write_line(self, obj: dict, mode: str = "a") -> None:
        with self.path.open(mode, encoding="utf-8") as fh:
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")

    def append(self, outcomes: list[dict]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            for outcome in outcomes:
                fh.write(json.dumps(outcome, ensure_ascii=False) + "\n")
                self.done[outcome["user_id"]] = outcome
