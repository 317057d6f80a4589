"""The review workbench (质检工作台): the page at `/` for QA reviewers, trainers and agents,
its static files, and the JSON it reads beyond the /v1 contract (`/v1/queue`,
`/v1/stats/overview`, `/v1/facets`, `/v1/me`)."""

from serving.web.routes import install

__all__ = ["install"]
