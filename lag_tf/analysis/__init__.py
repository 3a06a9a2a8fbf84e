"""Analysis of growth studies and LAG runs: correlation of loss(t) with final loss, regret,
compute accounting (`correlation`), reading experiment directories (`runs`), plots (`plots`)
and the markdown report (`report`).

Nothing here imports TensorFlow (except `runs` for gs:// paths), so reports build in seconds.
Import the submodules directly; this package imports nothing so `correlation` stays light.
"""
