"""escalate: handle escalated issues from the moment a recruiter raises one to its resolution."""

__version__ = "0.1.0"
