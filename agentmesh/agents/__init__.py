"""Agents and the run context: a role's step (``agent``), the four-role mesh (``mesh``), helpers for a graph's
own nodes (``nodes``), and what a running goal carries (``context``)."""
