"""What the benchmark scripts share, and nothing else: timing (timing.py), the machine description and result files
(record.py), and the workloads more than one script measures: the AIM pair against the reference design
(aim_pair.py), the Kinetics-like synthetic videos (videos.py) and one model row of the methods and backbones tables
(model_row.py).

A script run as a file puts the repository root on ``sys.path`` first, then imports from here:
``from benchmarks._core.timing import seconds_per_call``."""
