"""A stack with a work dir saves its state when it stops and the next stack on that work dir restores it:
objects (content, metadata, folder markers), workflow and job records; a workflow left unfinished ends
FAILED (its execution did not survive); restored manifests do not start workflows again."""

from __future__ import annotations

import json

import pytest

from controller.core.fsx_posix import directory_metadata, file_metadata


@pytest.fixture
def stacks(emulator, tmp_path):
    from local.stack import LocalStack

    def make():
        return LocalStack(tmp_path / "work", emulator=emulator, write_state=False, persist=True)

    return make


def test_objects_records_and_outcomes_survive_the_stack(stacks, tmp_path):
    with stacks() as first:
        res = first.require_resources()
        s3 = first.client("s3")
        s3.put_object(Bucket=res.results_bucket, Key="workflows/wf-1/", Body=b"", Metadata=directory_metadata())
        s3.put_object(Bucket=res.results_bucket, Key="workflows/wf-1/merged/Y1.txt", Body=b"rows\n",
                      Metadata=file_metadata(), ContentType="text/plain")
        store = first.status_store()
        store.create_workflow("wf-done", status="INITIALIZED", outputUri=f"s3://{res.results_bucket}/workflows/wf-1/")
        store.put_jobs("wf-done", [{"jobId": "step1", "stepNumber": 1, "command": ["--step", "1"]}])
        store.create_workflow("wf-cut", status="INITIALIZED",
                              executionArn=f"{res.state_machine_arn.replace(':stateMachine:', ':execution:')}:wf-cut")
    saved = json.loads((tmp_path / "work" / "state" / "s3.json").read_text())
    assert saved[res.results_bucket]["workflows/wf-1/"]["folder"] is True

    with stacks() as second:
        assert second.restored is not None and second.restored.objects == 2
        s3 = second.client("s3")
        head = s3.head_object(Bucket=res.results_bucket, Key="workflows/wf-1/")
        assert head["Metadata"] == directory_metadata()
        body = s3.get_object(Bucket=res.results_bucket, Key="workflows/wf-1/merged/Y1.txt")
        assert body["Body"].read() == b"rows\n" and body["Metadata"] == file_metadata()
        assert body["ContentType"] == "text/plain"
        store = second.status_store()
        assert [j["jobId"] for j in store.list_jobs("wf-done")] == ["step1"]
        # Its execution died with the first stack: reconciled on restore, so it can be rerun.
        assert "wf-cut" in second.restored.reconciled
        assert store.get_workflow("wf-cut")["status"] == "FAILED"
        # The restore's object events are not uploads: nothing waits in the manifest queue.
        attrs = second.client("sqs").get_queue_attributes(
            QueueUrl=second.require_resources().manifest_queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"
        s3.delete_object(Bucket=res.results_bucket, Key="workflows/wf-1/merged/Y1.txt")

    with stacks() as third:
        keys = [o["Key"] for o in third.client("s3").list_objects_v2(Bucket=res.results_bucket).get("Contents", [])]
        assert keys == ["workflows/wf-1/"]  # a deleted object stays deleted
    assert not (tmp_path / "work" / "state" / "s3" / res.results_bucket / "workflows" / "wf-1" / "merged" / "Y1.txt").exists()


def test_a_work_dir_holds_one_stack_at_a_time(stacks, tmp_path):
    from local.persistence import WorkDirInUse, WorkDirLock

    lock = WorkDirLock(tmp_path / "work")
    lock.acquire()
    try:
        with pytest.raises(WorkDirInUse, match="in use by a running local stack"):
            stacks().start()
    finally:
        lock.release()
