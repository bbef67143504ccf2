"""``python -m rlcert.certify``: same as ``rlcert certify``."""

from rlcert.certify.cli.certify import main

raise SystemExit(main())
