"""Strategy factory, the custom distributed loop, schedules, checkpoints and metrics."""
