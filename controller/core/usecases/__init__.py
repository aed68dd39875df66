"""Use cases: what the system does, called alike by the Lambda handlers, the CLI and the local harness.

* `planning.plan_workflow`: check columns -> detect chromosomes -> plan jobs.
* `rerun.select_rerun_jobs`, `rerun.start_rerun`, `rerun.reset_for_rerun`: which jobs a rerun runs.
* `cancel.cancel_workflow`: stop executions, terminate Batch jobs, record CANCELLED.
* `reconcile.reconcile_workflows`: close workflows whose execution ended unrecorded.

They drive the status store and the narrow ports of `ports` (implemented over boto3 in
`controller.core.aws`), never a boto3 client directly.
"""
