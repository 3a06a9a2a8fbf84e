"""TF_CONFIG for MultiWorkerMirroredStrategy, and free localhost ports for a one-host cluster."""

from __future__ import annotations

import contextlib
import json
import re
import socket
from typing import List, Sequence

_HOST_PORT = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\]):"
                        r"([0-9]{1,5})")


def tf_config(workers: Sequence[str], index: int) -> str:
  """The TF_CONFIG (JSON) of worker `index` in a cluster of `workers` ("host:port" each).

  Only 'worker' tasks: worker 0 is the chief (it writes the model dir's shared files).
  """
  if not 0 <= index < len(workers):
    raise ValueError(f"worker index {index} is outside the {len(workers)} workers")
  return json.dumps({"cluster": {"worker": list(workers)},
                     "task": {"type": "worker", "index": index}}, sort_keys=True)


def parse_hosts(hosts: str) -> List[str]:
  """'h1:port,h2:port' -> ['h1:port', 'h2:port'], refusing malformed or repeated entries."""
  workers = [h.strip() for h in hosts.split(",") if h.strip()]
  if not workers:
    raise ValueError("--hosts is empty; give host:port,host:port,...")
  for worker in workers:
    match = _HOST_PORT.fullmatch(worker)
    if not match or not 0 < int(match.group(1)) < 65536:
      raise ValueError(f"--hosts entry {worker!r} is not host:port")
  if len(set(workers)) != len(workers):
    raise ValueError(f"--hosts repeats an entry: {hosts}")
  return workers


def free_local_ports(count: int) -> List[int]:
  """`count` distinct ports that are free on 127.0.0.1 right now.

  All sockets stay bound until every port is found, so the OS cannot hand out one twice. Another
  process may still take a port before the workers bind it; that race is accepted (it shows up
  as a worker failing to start, not as a wrong result).
  """
  with contextlib.ExitStack() as stack:
    ports = []
    for _ in range(count):
      sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
      sock.bind(("127.0.0.1", 0))
      ports.append(sock.getsockname()[1])
    return ports
