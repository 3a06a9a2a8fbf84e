"""Analysis of growth studies and LAG runs: correlation of loss(t) with final loss, regret,
compute accounting (`correlation`), reading experiment directories (`runs`), plots (`plots`),
the markdown report (`report`), and the comparison suite's records, speedups and report
(`suite_records`, `speedup`, `speedup_runs`, `speedup_report`, `decision_costs`,
`frontier_plot`).

The study's analysis (`correlation`, `runs`, `report`, `plots`) imports no TensorFlow, so its
reports build in seconds; the suite's report reads the budget's plans (`lag.budget`), which
does. Import the submodules directly; this package imports nothing so `correlation` stays light.
"""
