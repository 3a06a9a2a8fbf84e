"""The growth-vs-scratch comparison suite: does growing reach a scratch model's loss for less
compute? Run from the repository's root: `python -m benchmarks.speedup --suite small ...`
(`__main__`).

  budget          the suite's gin configurable (SpeedupSuite) and each method's equal-compute
                  plan and gin bindings
  records         the suite's records of its runs (RunInfo, RunRecord) and where they live
  runs            a suite's runs (model dirs or committed records) as charged FLOP curves
  frontier        the maths: curves, the scratch frontier's envelope, speedups, intervals
  plots           the frontier figure
  report          the suite's report.md, plots and pre-registered headline line
  decision_costs  what each selection rule paid for one candidate, from committed records

Built on lag_tf's public modules; lag_tf imports nothing from here. This file imports nothing:
every run's `lag_tf.main` imports `budget` (the suite's gin files do) and no more of the suite.
"""
