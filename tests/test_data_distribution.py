"""Distributed strategies see the same global batches as a single device.

MirroredStrategy over 2 logical CPUs (1 pipeline, 2 replicas) and a 2-worker
MultiWorkerMirroredStrategy on localhost (2 pipelines, 1 replica each). Logical devices
must be configured, and a multi-worker strategy created, before TF initializes its
runtime, which other tests in the same process may already have done, so each check
runs in child processes: this file run as a script.
"""

import json
import os
import socket
import subprocess
import sys

GLOBAL_BATCH = 8
STEPS = 3


def _mirrored_child(data_dir: str) -> dict:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  from lag_tf import data  # pylint: disable=g-import-not-at-top

  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  lm_data = data.LanguageModelingData(
      'python_stdlib_corpus/small', data_dir=data_dir, sequence_length=16)
  contexts = []
  report = {}
  for objective in ('mlm', 'causal'):

    def dataset_fn(input_context, objective=objective):
      contexts.append((input_context.num_input_pipelines,
                       input_context.input_pipeline_id,
                       input_context.num_replicas_in_sync))
      return lm_data.train_dataset(input_context, GLOBAL_BATCH, objective)

    distributed = iter(strategy.distribute_datasets_from_function(dataset_fn))

    @tf.function
    def replica_inputs(iterator):
      # What a training step sees: each replica's batch, inside strategy.run.
      return strategy.run(lambda batch: batch['inputs'], args=(next(iterator),))

    single = iter(lm_data.train_dataset(None, GLOBAL_BATCH, objective))
    for step in range(STEPS):
      if step == STEPS - 1:
        per_replica = replica_inputs(distributed)
        assembled = {'inputs': tf.concat(
            strategy.experimental_local_results(per_replica), 0).numpy()}
      else:
        per_replica = next(distributed)
        assembled = {key: tf.concat(strategy.experimental_local_results(value), 0).numpy()
                     for key, value in per_replica.items()}
      expected = next(single)
      report[f'{objective}/{step}'] = all(
          (expected[key].numpy() == value).all() for key, value in assembled.items())
  report['contexts'] = contexts
  return report


def _multi_worker_child(data_dir: str, worker_index: int, ports: list[int]) -> dict:
  os.environ['TF_CONFIG'] = json.dumps({
      'cluster': {'worker': [f'localhost:{port}' for port in ports]},
      'task': {'type': 'worker', 'index': worker_index}})
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TF op
  from lag_tf import data  # pylint: disable=g-import-not-at-top

  # Both workers prepare the corpus in the same data_dir at the same time, as a real
  # multi-worker run on one machine would.
  lm_data = data.LanguageModelingData(
      'python_stdlib_corpus/small', data_dir=data_dir, sequence_length=16)
  contexts = []

  def dataset_fn(input_context):
    contexts.append((input_context.num_input_pipelines,
                     input_context.input_pipeline_id,
                     input_context.num_replicas_in_sync))
    return lm_data.train_dataset(input_context, GLOBAL_BATCH, 'mlm')

  distributed = iter(strategy.distribute_datasets_from_function(dataset_fn))

  @tf.function
  def global_targets_and_inputs(iterator):
    def replica_fn(batch):
      # Place this replica's rows at its slot of the global batch and sum over
      # replicas: every worker gets the global batch (all_gather fails on CPU MWMS).
      context = tf.distribute.get_replica_context()
      rows = tf.shape(batch['inputs'])[0]
      slots = tf.range(rows) + context.replica_id_in_sync_group * rows
      placed = {key: tf.scatter_nd(slots[:, None], tf.cast(batch[key], tf.float32),
                                   [GLOBAL_BATCH, 16])
                for key in ('inputs', 'targets', 'weights')}
      return context.all_reduce('sum', placed)
    return strategy.run(replica_fn, args=(next(iterator),))

  single = iter(lm_data.train_dataset(None, GLOBAL_BATCH, 'mlm'))
  report = {}
  for step in range(STEPS):
    assembled = global_targets_and_inputs(distributed)
    expected = next(single)
    report[f'mlm/{step}'] = all(
        (expected[key].numpy() == strategy.experimental_local_results(value)[0].numpy()
         ).all() for key, value in assembled.items())
  report['contexts'] = contexts
  return report


def _child_environment() -> dict:
  environment = dict(os.environ)
  environment['PYTHONPATH'] = os.pathsep.join(
      [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
       environment.get('PYTHONPATH', '')])
  environment['TF_CPP_MIN_LOG_LEVEL'] = '2'
  environment.pop('TF_CONFIG', None)
  return environment


def _report_of(completed: subprocess.CompletedProcess) -> dict:
  assert completed.returncode == 0, completed.stderr[-3000:]
  return json.loads(completed.stdout.strip().splitlines()[-1])


def _free_ports(count: int) -> list[int]:
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_mirrored_strategy_global_batches_match_a_single_device(tmp_path):
  completed = subprocess.run(
      [sys.executable, os.path.abspath(__file__), 'mirrored', str(tmp_path)],
      capture_output=True, text=True, env=_child_environment(), timeout=300)
  report = _report_of(completed)
  assert report.pop('contexts') == [[1, 0, 2], [1, 0, 2]]
  assert report == {f'{objective}/{step}': True
                    for objective in ('mlm', 'causal') for step in range(STEPS)}


def test_multi_worker_global_batches_match_a_single_device(tmp_path):
  ports = _free_ports(2)
  workers = [
      subprocess.Popen(
          [sys.executable, os.path.abspath(__file__), 'multi_worker', str(tmp_path),
           str(index), *map(str, ports)],
          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
          env=_child_environment())
      for index in range(2)]
  try:
    outputs = [worker.communicate(timeout=300) for worker in workers]
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  for index, (worker, (stdout, stderr)) in enumerate(zip(workers, outputs)):
    report = _report_of(subprocess.CompletedProcess(
        worker.args, worker.returncode, stdout, stderr))
    assert report.pop('contexts') == [[2, index, 2]]
    assert report == {f'mlm/{step}': True for step in range(STEPS)}


if __name__ == '__main__':
  if sys.argv[1] == 'mirrored':
    print(json.dumps(_mirrored_child(sys.argv[2])))
  else:
    print(json.dumps(_multi_worker_child(
        sys.argv[2], int(sys.argv[3]), [int(port) for port in sys.argv[4:]])))
