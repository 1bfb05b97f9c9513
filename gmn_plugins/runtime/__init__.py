"""Process and file plumbing: atomic files and checksums, locks, fault messages, thread counts, the allocator.

No model code and no MuJoCo; above ``core`` only (``allocator`` validates ``train.malloc`` against
``core.options``).
"""
