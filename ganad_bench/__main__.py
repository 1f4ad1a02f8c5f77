"""`python -m ganad_bench ...` is `ganad-bench ...` (where the console script is not on the PATH, e.g. a checkout
run without an install)."""

from ganad_bench.cli import main

main()
