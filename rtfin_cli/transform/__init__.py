"""dbt invocation (programmatic dbtRunner) with a profile generated from rtfin settings."""
