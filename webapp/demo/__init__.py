"""Demo data: a fictional merchant with a self-made test CSD, branches and open tickets."""
