"""Transparency: the algorithm register (``registry``), after-the-fact explanations from the
audit log (``explain``) and the declared facts of each component (``entries``).
docs/transparency.md has the reader's view."""
