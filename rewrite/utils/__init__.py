"""Plumbing shared by every room: errors, atomic files, safe checkpoints, images,
torchrun process groups and the cache folder."""
