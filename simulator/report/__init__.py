"""Reports: progress display, summary tables, JSON/CSV exports and plots."""
