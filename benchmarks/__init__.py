"""vidapter's benchmarks: scripts grouped by what they measure (model/, data/, gpu/), sharing one core (_core/).

Each script runs as a file from the repository root (``python benchmarks/<group>/<script>.py --help``);
docs/benchmarks.md gives the command behind every published number."""
