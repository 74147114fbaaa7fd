"""`python -m mailflow`: the same as the `mailflow` command."""

from mailflow.cli import main

main()
