"""Airflow glue: Assets, the Cosmos task-group factory, and running DAGs for a range of days.

The only stage that imports Airflow; the library below it is tested without Airflow.
"""
