"""`python -m sandbox.cli`: the `propensity` command."""

from sandbox.cli import main

raise SystemExit(main())
