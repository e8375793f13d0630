"""Engines that run user code. Each engine gives ``Processor`` objects, one per partition worker."""
