"""asv benchmarks of theorybench (``asv.conf.json``; commands in ``docs/asv.md``)."""
