"""The grading service: HTTP API, storage, reviews, disputes, jobs and access control around
the pure `grader` library."""
