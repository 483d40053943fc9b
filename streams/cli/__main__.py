"""``python -m streams.cli``: the same entry point as the ``leitstand`` console script."""

from .main import main

main()
