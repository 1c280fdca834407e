"""Thin Thespian actors over the pure core: wiring, timers and supervision only."""
