"""A knowledge directory mounted at run time: new versions go live, malformed ones never do.

With `RXGATE_KNOWLEDGE_DIR` set, the worker looks at the directory every
`RXGATE_KNOWLEDGE_POLL_SECONDS` (default 10). When the content of its `*.toml` files changes
(a Kubernetes ConfigMap update swaps a symlink; an operator copies files), it loads the whole
directory again, all or nothing, as at start-up:

- it loads: the Processor decides with it from the next record on (decisions carry the new
  `knowledge_version`), `rxgate_knowledge_info{version}` shows it, and one INFO line says so;
- it does not load (a file half-copied, a typo, a `nan` limit): the version in use keeps
  serving; one ERROR line names the file and field, and `rxgate_knowledge_refused_total`
  counts the refusal (once per distinct content, not once per poll). The alert
  RxgateKnowledgeRefused fires on it.

A worker that starts on a malformed directory refuses to start (exit 2), so during a rolling
restart the workers still running keep the old version serving.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..knowledge import Knowledge, KnowledgeError, load_knowledge

log = logging.getLogger(__name__)


def fingerprint(directory: Path) -> str:
    """A digest of the names and contents of every *.toml file under the directory."""
    digest = hashlib.sha256()
    try:
        files = sorted(p for p in directory.rglob("*.toml") if p.is_file())
    except OSError as e:
        return f"unreadable: {e}"
    for path in files:
        digest.update(str(path.relative_to(directory)).encode("utf-8", "surrogateescape"))
        try:
            digest.update(path.read_bytes())
        except OSError as e:
            digest.update(f"unreadable: {e}".encode())
    return digest.hexdigest()


class KnowledgeWatcher:
    """Polls a knowledge directory; `poll()` returns new knowledge when a valid change shows."""

    def __init__(self, directory: str | Path, current: Knowledge) -> None:
        self.directory = Path(directory)
        self.current = current
        self._seen = fingerprint(self.directory)

    def poll(self) -> tuple[Knowledge | None, str | None]:
        """(new knowledge, None) after a valid change, (None, error) after a refused one,
        (None, None) when nothing changed."""
        now = fingerprint(self.directory)
        if now == self._seen:
            return None, None
        self._seen = now
        try:
            loaded = load_knowledge(self.directory)
        except KnowledgeError as e:
            return None, str(e)
        self.current = loaded
        return loaded, None
