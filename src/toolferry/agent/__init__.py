"""A site that runs tasks: the hub's own in-process site (remote agents come later)."""
