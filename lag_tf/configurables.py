"""Every configurable a gin file may bind: importing this module registers them all with gin.

It is on the top floor (docs/design.md, "Layers"), so config_io stays on a bottom one. Whatever
parses gin files (the binaries, the benchmarks, tests) imports this module first. The comparison
suite's `SpeedupSuite` is not lag_tf's: the suite's gin files register it (`import
benchmarks.speedup.budget`).
"""

# pylint: disable=unused-import
import lag_tf.experiments  # noqa: F401  Experiments, and through them lag/, interop/, training/.
import lag_tf.growth  # noqa: F401  Growth operators (gin names module 'lag_tf.growth').
from lag_tf.data import LanguageModelingData  # noqa: F401
from lag_tf.training import determinism  # noqa: F401
from lag_tf.training import memory  # noqa: F401
from lag_tf.training import strategy  # noqa: F401
