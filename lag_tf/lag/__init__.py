"""LAG: probe every growth candidate for k steps, select by a rule, commit, continue."""
