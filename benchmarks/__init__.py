"""Benchmarks and studies that print tables. Most are scripts (`python benchmarks/<name>.py`);
the comparison suite is a package (`python -m benchmarks.speedup`, from the repository's root).
"""
