"""What a run leaves behind: files written atomically, summary.json, report.html and its plots."""
