"""Storage: hosts (local directories and S3-compatible buckets) and folders (Backend.AI vfolders)."""
