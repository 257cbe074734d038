"""Where and how a task's worker is launched: one module per backend behind one small Protocol."""
