"""The `gwas` command line."""
