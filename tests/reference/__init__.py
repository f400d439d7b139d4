"""Independent transcriptions of each method's official code (the oracles): the tests check vidapter's modules,
converters and merges against them, and benchmarks/model/ measures vidapter's AIM against aim.py's design.

Import them as ``from reference.aim import Recognizer3D``: pytest puts tests/ on the path (tests/conftest.py), and the
benchmarks that need one put it there themselves."""
