"""Control plane: the domain core (manifest, detection, job plan, regenie commands, state store),
the Lambda handlers that adapt it to AWS events, and the `gwas` CLI."""
