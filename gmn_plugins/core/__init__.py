"""The vocabulary every other layer speaks, torch- and mujoco-free: experiment specs and their named options,
modalities, sensors, families, query kinds, points, the plugin hooks, manager and registry.
"""
