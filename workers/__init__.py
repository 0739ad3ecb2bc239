"""Background work: the RQ worker, its jobs, the recommenders and the pending-item sweeper."""
