"""grader: automatic QA grading (质检) of Chinese customer-service conversations."""

__version__ = "0.1.0"
