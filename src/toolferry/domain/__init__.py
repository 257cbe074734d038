"""Pure models and rules of toolferry: tasks, their states and events. No I/O; imports nothing else."""
