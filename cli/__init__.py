"""The `ltbench` command line (installed as the package ``lt_bench_cli``)."""
