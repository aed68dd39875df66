"""The local FSx file system (local.fsx): what the data repository associations import from the
emulator's buckets and export back, through real S3 calls against the embedded emulator."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from local.fsx import LocalFsx


@pytest.fixture(scope="module")
def stack(emulator, tmp_path_factory):
    from local.stack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("stack"), emulator=emulator, write_state=False) as st:
        yield st


@pytest.fixture()
def s3(stack):
    return stack.client("s3")


def _mount(stack, bucket: str) -> Path:
    return Path(stack.fsx.mounts()[bucket])


def test_the_stack_mounts_both_buckets_under_its_work_dir(stack):
    res = stack.resources
    assert stack.path_mode == "fsx"
    assert stack.fsx.mounts() == {res.data_bucket: str(stack.work_dir / "fsx" / "data"),
                                  res.results_bucket: str(stack.work_dir / "fsx" / "results")}
    assert {b: a.export for b, a in stack.fsx.associations.items()} == {res.data_bucket: False, res.results_bucket: True}


def test_created_objects_are_on_the_file_system_when_the_call_returns(stack, s3, tmp_path):
    bucket = stack.resources.data_bucket
    s3.put_object(Bucket=bucket, Key="study/geno/chr1.bim", Body=b"1\trs1\t0\t100\tA\tG\n")
    assert (_mount(stack, bucket) / "study/geno/chr1.bim").read_bytes() == b"1\trs1\t0\t100\tA\tG\n"

    # A multipart upload (what `gwas submit` and `aws s3 cp` do for large files) and a copy.
    big = tmp_path / "big.bed"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    s3.upload_file(str(big), bucket, "study/geno/big.bed",
                   Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
    assert (_mount(stack, bucket) / "study/geno/big.bed").read_bytes() == big.read_bytes()
    s3.copy_object(Bucket=bucket, Key="study/copy.bim", CopySource={"Bucket": bucket, "Key": "study/geno/chr1.bim"})
    assert (_mount(stack, bucket) / "study/copy.bim").read_bytes() == b"1\trs1\t0\t100\tA\tG\n"

    # Changed and deleted objects (AutoImportPolicy NEW, CHANGED, DELETED).
    s3.put_object(Bucket=bucket, Key="study/copy.bim", Body=b"changed\n")
    assert (_mount(stack, bucket) / "study/copy.bim").read_bytes() == b"changed\n"
    s3.delete_object(Bucket=bucket, Key="study/copy.bim")
    assert not (_mount(stack, bucket) / "study/copy.bim").exists()
    assert not list(_mount(stack, bucket).rglob(".*import-*"))  # no partial files left behind


def test_keys_without_a_file_name_are_not_imported(stack, s3):
    bucket = stack.resources.data_bucket
    for key in ("study/../../escape.txt", "study//double.txt", "study/./dot.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 1  # the S3 call itself succeeded
    assert not (stack.work_dir / "escape.txt").exists() and not (stack.work_dir / "fsx" / "escape.txt").exists()
    assert not list(_mount(stack, bucket).rglob("double.txt")) and not list(_mount(stack, bucket).rglob("dot.txt"))
    s3.put_object(Bucket=bucket, Key="study/folder/", Body=b"")
    assert (_mount(stack, bucket) / "study/folder").is_dir()


def test_a_failed_import_is_reported_and_never_fails_the_s3_call(stack, s3):
    bucket = stack.resources.data_bucket
    (_mount(stack, bucket) / "blocked").mkdir()  # a directory where the object's file would go
    before = len(stack.fsx.import_errors)
    s3.put_object(Bucket=bucket, Key="blocked", Body=b"data")
    assert s3.get_object(Bucket=bucket, Key="blocked")["Body"].read() == b"data"
    (message,) = stack.fsx.import_errors[before:]
    assert f"s3://{bucket}/blocked" in message


def test_results_written_on_the_file_system_are_exported(stack, s3):
    bucket = stack.resources.results_bucket
    out = _mount(stack, bucket) / "workflows/w1/step2/step2-chr1"
    out.mkdir(parents=True)
    (out / "sim_Y1.regenie").write_text("CHROM GENPOS\n1 100\n")
    (out / "sim.log").write_text("log\n")
    summary = stack.fsx.export_changes()
    assert sorted(summary.exported) == [f"s3://{bucket}/workflows/w1/step2/step2-chr1/sim.log",
                                        f"s3://{bucket}/workflows/w1/step2/step2-chr1/sim_Y1.regenie"]
    got = s3.get_object(Bucket=bucket, Key="workflows/w1/step2/step2-chr1/sim_Y1.regenie")
    assert got["Body"].read() == b"CHROM GENPOS\n1 100\n"
    # The file's owner, group and mode go with it (FSx export), so an import gives them back.
    st = (out / "sim_Y1.regenie").stat()
    assert got["Metadata"] == {"file-owner": str(st.st_uid), "file-group": str(st.st_gid),
                               "file-permissions": f"{st.st_mode:07o}"}

    # Only what changed goes again; the export's own PutObject is not imported back over the file.
    mtime = (out / "sim.log").stat().st_mtime_ns
    assert stack.fsx.export_changes().exported == []
    assert (out / "sim.log").stat().st_mtime_ns == mtime
    (out / "sim.log").write_text("log, longer\n")
    assert stack.fsx.export_changes().exported == [f"s3://{bucket}/workflows/w1/step2/step2-chr1/sim.log"]

    # A removed file removes its object (AutoExportPolicy DELETED).
    (out / "sim.log").unlink()
    summary = stack.fsx.export_changes()
    assert summary.deleted == [f"s3://{bucket}/workflows/w1/step2/step2-chr1/sim.log"]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="workflows/w1/step2/step2-chr1/sim.log")


def test_imported_objects_are_not_exported_back_and_the_data_association_never_exports(stack, s3):
    res = stack.resources
    s3.put_object(Bucket=res.results_bucket, Key="workflows/w2/jobs/step1.json", Body=b"{}")
    assert (_mount(stack, res.results_bucket) / "workflows/w2/jobs/step1.json").read_bytes() == b"{}"
    assert stack.fsx.export_changes().exported == []

    (_mount(stack, res.data_bucket) / "written-by-a-job.txt").write_text("x")
    stack.fsx.export_changes()
    assert "Contents" not in s3.list_objects_v2(Bucket=res.data_bucket, Prefix="written-by-a-job.txt")


def test_other_buckets_are_not_associated(stack, s3, tmp_path, emulator):
    s3.create_bucket(Bucket="unassociated-bucket")
    s3.put_object(Bucket="unassociated-bucket", Key="a.txt", Body=b"a")
    assert not list((stack.work_dir / "fsx").rglob("a.txt"))


def test_a_new_file_system_starts_empty_like_its_buckets(tmp_path):
    stale = tmp_path / "fsx" / "results" / "workflows" / "old" / "step1.loco"  # a reused work directory
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier stack")
    (tmp_path / "keep.txt").write_text("not under the file system")
    fsx = LocalFsx.for_buckets(tmp_path / "fsx", data_bucket="d", results_bucket="r", account_id="123456789012")
    assert (tmp_path / "fsx" / "data").is_dir() and (tmp_path / "fsx" / "results").is_dir()
    assert not stale.exists() and (tmp_path / "keep.txt").exists()
    assert fsx.export_changes().exported == []


def test_posix_metadata_gives_imported_folders_and_files_the_workers_ownership(tmp_path):
    """As FSx imports them: without metadata root:root (0755 folders, 0644 files); with the
    system's markers and objects the workers' uid 1000 (only a root harness can set owners)."""
    import os
    from types import SimpleNamespace

    import pytest as _pytest

    from controller.core.fsx_posix import directory_metadata, file_metadata
    from local.fsx import LocalFsx

    if os.geteuid() != 0:
        _pytest.skip("setting owners needs root (CI runs as root)")
    fs = LocalFsx.for_buckets(tmp_path / "fsx", data_bucket="d-bkt", results_bucket="r-bkt", account_id="1")

    def obj(name, metadata, body=b"x"):
        return SimpleNamespace(name=name, metadata={f"x-amz-meta-{k}": v for k, v in metadata.items()},
                               value=body, size=len(body))

    fs.object_event("s3:ObjectCreated:Put", "r-bkt", obj("workflows/wf/", directory_metadata(), b""))
    fs.object_event("s3:ObjectCreated:Put", "r-bkt", obj("workflows/wf/plan.json", file_metadata()))
    fs.object_event("s3:ObjectCreated:Put", "r-bkt", obj("other/x.txt", {}))
    root = tmp_path / "fsx" / "results"
    st = (root / "workflows" / "wf").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o775)
    st = (root / "workflows" / "wf" / "plan.json").stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (1000, 0o664)
    assert ((root / "workflows").stat().st_uid, (root / "workflows").stat().st_mode & 0o7777) == (0, 0o755)
    assert ((root / "other" / "x.txt").stat().st_mode & 0o7777) == 0o644


def test_imported_files_and_folders_get_the_owner_their_metadata_names(stack, s3):
    """Through real PUTs: moto sets an object's metadata after its created event (patch (p)), and
    the owner must still reach the file system, or a uid-1000 job cannot write into its folders."""
    from controller.core.fsx_posix import directory_metadata, file_metadata

    if os.geteuid() != 0:
        pytest.skip("setting owners needs root (CI runs as root)")
    bucket = stack.resources.results_bucket
    s3.put_object(Bucket=bucket, Key="owned/wf/logs/", Body=b"", Metadata=directory_metadata())
    s3.put_object(Bucket=bucket, Key="owned/wf/plan.json", Body=b"{}", Metadata=file_metadata())
    s3.put_object(Bucket=bucket, Key="owned/plain.txt", Body=b"x")
    root = _mount(stack, bucket)
    st = (root / "owned" / "wf" / "logs").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o775)
    st = (root / "owned" / "wf" / "plan.json").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o664)
    st = (root / "owned" / "plain.txt").stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o644)
    assert (root / "owned").stat().st_uid == 0  # a folder no marker names: root-owned, as FSx makes it
