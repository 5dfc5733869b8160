"""The labelled diagnosis suite: families, labels and baseline detectors (see benchmarks/diagnosis_suite.py)."""
