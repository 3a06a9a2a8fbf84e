"""Launchers: Cloud TPU batch jobs (cloud_tpu), multi-worker runs on one or many hosts
(multi_worker). They build and run command lines for `lag_tf.main`; none imports TensorFlow."""
