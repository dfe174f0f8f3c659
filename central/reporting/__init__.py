"""What central reports about the work: statistics and the monthly index, Prometheus metrics."""
