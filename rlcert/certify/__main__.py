"""``python -m rlcert.certify``: same as ``rlcert certify``."""

from rlcert.certify.cli import main

raise SystemExit(main())
