"""Thin adapters to training frameworks and dashboards, each imported lazily."""
