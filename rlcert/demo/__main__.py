"""``python -m rlcert.demo``: the main demo (see :mod:`rlcert.demo.main`)."""

from rlcert.demo.main import main

raise SystemExit(main())
