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

A Kubernetes ConfigMap volume is updated by the kubelet's atomic writer: the new files go into
a fresh hidden directory `..<timestamp>`, the symlink `..data` is renamed onto it in one step,
and the visible names (`knowledge.toml`, `drugs`, ...) are symlinks through `..data`. The
fingerprint follows those symlinks, so the swap shows as a change; a load that raced a swap
(the fingerprint differs after the load from before it: some files may be of the old
version, some of the new) is thrown away and the next poll loads again. A change that loads to
the very knowledge in use (the writer's old directory going away, a file touched) is no change.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..knowledge import Knowledge, KnowledgeError, load_knowledge

log = logging.getLogger(__name__)


MAX_DEPTH = 4  # knowledge.toml, drugs/<drug>.toml: a symlink loop cannot make the walk endless


def _toml_files(directory: Path) -> list[Path]:
    """Every *.toml file under the directory as the loader sees it: symlinks followed (a
    ConfigMap's names are symlinks through `..data`), the atomic writer's own `..*` entries
    skipped (they hold the same files under a name that changes with every update)."""
    found: list[Path] = []
    for top, dirs, files in os.walk(directory, followlinks=True):
        depth = len(Path(top).relative_to(directory).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith("..")) if depth < MAX_DEPTH else []
        found += [Path(top) / f for f in files if f.endswith(".toml") and not f.startswith("..")]
    return sorted(found)


def fingerprint(directory: Path) -> str:
    """A digest of the names and contents of every *.toml file under the directory."""
    digest = hashlib.sha256()
    try:
        files = [p for p in _toml_files(directory) if p.is_file()]
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
        try:
            loaded = load_knowledge(self.directory)
        except KnowledgeError as e:
            error: str | None = str(e)
            loaded = None
        else:
            error = None
        if fingerprint(self.directory) != now:
            return None, None  # it changed while loading: perhaps a mix of two versions; again next poll
        self._seen = now
        if error is not None:
            return None, error
        if loaded == self.current:
            return None, None
        self.current = loaded
        return loaded, None
