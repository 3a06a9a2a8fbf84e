"""Analysis of growth studies and LAG runs: correlation of loss(t) with final loss, regret,
compute accounting (`correlation`), reading experiment directories (`runs`), plots (`plots`),
the markdown report (`report`). The comparison suite's records, speedups and report live with
the suite, in benchmarks/speedup/.

The study's analysis (`correlation`, `runs`, `report`, `plots`) imports no TensorFlow, so its
reports build in seconds. Import the submodules directly; this package imports nothing so
`correlation` stays light.
"""
