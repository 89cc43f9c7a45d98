"""Benchmarks that print measured figures: `python -m video_para.bench NAME [args]`.

Each NAME is a module in this package exposing `main(argv)`; none of them asserts a target."""
