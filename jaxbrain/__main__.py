"""``python -m jaxbrain``: see :mod:`jaxbrain.cli`."""

from jaxbrain.cli import main

raise SystemExit(main())
