"""`make docker-demo`: the demo study through `docker compose up`, every Batch job in the worker image.

1. the base image: `$GWAS_PYTHON_IMAGE`, else `python:3.11-slim-bookworm` if the engine has it, else
   `local/bookworm-python:3.11`, built here when missing (debootstrap: no registry is needed, see
   docker/README.md) with this machine's CA bundle, so that pip in the builds trusts what the host trusts;
2. the worker and harness images (docker/Dockerfile, docker/local.Dockerfile) with that base; regenie
   from the official image only where it can be pulled (`GWAS_REGENIE_FROM`, default `none` here:
   the jobs run regenie-py), or `context` with `--regenie-dist DIR` (e.g. ../shared/tools/regenie-v4.1.2);
3. the state machine synthesized from the CDK app (`gwas local blueprint`), the demo study simulated;
4. `docker-compose up -d` (host networking), `gwas submit --local`, follow the workflow, `gwas results`;
5. `docker-compose down`, and where the results are, with the time of each phase.

Every command is an argv list. Docker's own client is `/usr/bin/docker` where it exists (Debian's
build of it has BuildKit built in; docs: ../shared/notes/docker.md), Compose is `docker-compose` or
`docker compose`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_PYTHON = "python:3.11-slim-bookworm"
LOCAL_PYTHON = "local/bookworm-python:3.11"
WORKER_IMAGE = "gwas-worker:local"
HARNESS_IMAGE = "gwas-local-harness:local"
DEBIAN_MIRROR = "http://deb.debian.org/debian"


class DemoError(RuntimeError):
    pass


def docker_cli() -> str:
    explicit = os.environ.get("GWAS_DOCKER")
    if explicit:
        return explicit
    if Path("/usr/bin/docker").exists():
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        raise DemoError("no docker client: install Docker (Debian: apt-get install docker.io docker-compose)")
    return found


def compose_cli(docker: str) -> list[str]:
    found = shutil.which("docker-compose")
    if found is not None:
        return [found]
    if subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    raise DemoError("no Docker Compose: install docker-compose (Debian) or the compose plugin")


def run(argv: list[str], *, env: dict[str, str] | None = None, log: Path | None = None, what: str) -> str:
    """Run a command; its output goes to `log` when given (builds are long). Raises DemoError naming it."""
    started = time.monotonic()
    if log is None:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        output = proc.stdout + proc.stderr
    else:
        with open(log, "w") as fh:
            proc = subprocess.run(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True, check=False)
        output = log.read_text(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        where = f" (full log: {log})" if log else ""
        raise DemoError(f"{what} failed (exit {proc.returncode}){where}:\n{tail}")
    print(f"  {what}: {time.monotonic() - started:.0f} s", flush=True)
    return proc.stdout if log is None else output


def image_exists(docker: str, image: str) -> bool:
    return subprocess.run([docker, "image", "inspect", image], capture_output=True, check=False).returncode == 0


def apt_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    return DEBIAN_MIRROR


def build_base_image(docker: str, tag: str, logs: Path) -> None:
    """A minimal Debian bookworm with Python 3.11, imported as `tag` (about a minute)."""
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None or os.geteuid() != 0:
        raise DemoError(f"no base image {OFFICIAL_PYTHON} or {tag}, and it cannot be built here: debootstrap "
                        "(apt-get install debootstrap) and root are needed, or set GWAS_PYTHON_IMAGE to a local image")
    with tempfile.TemporaryDirectory(prefix="gwas-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run([debootstrap, "--variant=minbase", "--include=python3,python3-venv,python3-pip,ca-certificates",
             "bookworm", str(rootfs), apt_mirror()], log=logs / "debootstrap.log", what=f"debootstrap {tag}")
        # The host's CA bundle: where HTTPS goes through an inspecting proxy, pip in the builds needs it.
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if bundle.is_file():
            shutil.copyfile(bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([docker, "import", "-", tag], stdin=tar.stdout, capture_output=True, text=True,
                                  check=False)
        if tar.stdout is not None:
            tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise DemoError(f"docker import {tag} failed: {imported.stderr.strip()}")


def base_image(docker: str, logs: Path) -> str:
    chosen = os.environ.get("GWAS_PYTHON_IMAGE")
    if chosen:
        if not image_exists(docker, chosen):
            raise DemoError(f"GWAS_PYTHON_IMAGE={chosen}: no such image in this engine")
        return chosen
    for candidate in (OFFICIAL_PYTHON, LOCAL_PYTHON):
        if image_exists(docker, candidate):
            return candidate
    build_base_image(docker, LOCAL_PYTHON, logs)
    return LOCAL_PYTHON


def build_images(docker: str, python_image: str, logs: Path, regenie_dist: Path | None) -> dict[str, str]:
    regenie_from = os.environ.get("GWAS_REGENIE_FROM") or ("context" if regenie_dist else "none")
    plink2_from = os.environ.get("GWAS_PLINK2_FROM") or "debian"
    dist = ROOT / "docker" / "regenie-dist"
    if regenie_from == "context":
        if regenie_dist is None:
            raise DemoError("GWAS_REGENIE_FROM=context needs --regenie-dist DIR (regenie.bin and lib/)")
        if dist.exists():
            shutil.rmtree(dist)
        shutil.copytree(regenie_dist, dist)
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    args = ["--build-arg", f"PYTHON_IMAGE={python_image}"]
    try:
        run([docker, "build", "--network", "host", *args, "--build-arg", f"REGENIE_FROM={regenie_from}",
             "--build-arg", f"PLINK2_FROM={plink2_from}", "-f", "docker/Dockerfile", "-t", WORKER_IMAGE, str(ROOT)],
            env=env, log=logs / "build-worker.log", what=f"build {WORKER_IMAGE} (regenie: {regenie_from}, "
                                                              f"plink2: {plink2_from})")
    finally:
        if regenie_from == "context":
            shutil.rmtree(dist, ignore_errors=True)
    run([docker, "build", "--network", "host", *args, "-f", "docker/local.Dockerfile", "-t", HARNESS_IMAGE,
         str(ROOT)], env=env, log=logs / "build-harness.log", what=f"build {HARNESS_IMAGE}")
    return {"PYTHON_IMAGE": python_image, "REGENIE_FROM": regenie_from, "PLINK2_FROM": plink2_from}


def gwas(*args: str, env: dict[str, str], what: str) -> str:
    return run([sys.executable, "-m", "controller.cli.main", *args], env=env, what=what)


def wait_for_stack(state_file: Path, timeout: float, compose: list[str], env: dict[str, str]) -> dict:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if state_file.is_file():
            state = json.loads(state_file.read_text())
            try:
                urllib.request.urlopen(state["endpoint"] + "/moto-api/data.json", timeout=2).close()
                return state
            except OSError:
                pass
        time.sleep(1)
    logs = subprocess.run([*compose, "logs", "--tail", "30", "emulator"], env=env, capture_output=True, text=True,
                          check=False)
    raise DemoError(f"the emulator container did not come up within {timeout:.0f} s:\n{logs.stdout}{logs.stderr}")


def demo(*, local_dir: Path, samples: int, variants: int, keep_running: bool, regenie_dist: Path | None,
         skip_build: bool) -> dict:
    """Everything above; returns what the run produced (workflow id, status, results dir, timings)."""
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    local_dir = local_dir.resolve()
    logs = local_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    docker = docker_cli()
    compose = compose_cli(docker)
    if subprocess.run([docker, "version"], capture_output=True, check=False).returncode != 0:
        raise DemoError("no Docker engine answers (start dockerd: ../shared/notes/docker.md or docker/README.md)")
    print("images", flush=True)
    if skip_build and image_exists(docker, WORKER_IMAGE) and image_exists(docker, HARNESS_IMAGE):
        build = {"PYTHON_IMAGE": os.environ.get("GWAS_PYTHON_IMAGE", "(as built)")}
        print("  images present: not rebuilt", flush=True)
    else:
        build = build_images(docker, base_image(docker, logs), logs, regenie_dist)
    timings["images"] = time.monotonic() - t0
    version = run([docker, "run", "--rm", "--pull=never", "--network", "host", WORKER_IMAGE, "--version"],
                  what="gwas-worker --version")
    print("\n".join("    " + line for line in version.strip().splitlines()), flush=True)

    t1 = time.monotonic()
    print("study and state machine", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GWAS_"))}
    env.update(GWAS_LOCAL_DIR=str(local_dir), GWAS_LOCAL_STATE=str(local_dir / "local-stack.json"),
               GWAS_PYTHON_IMAGE=build["PYTHON_IMAGE"], PYTHONPATH=str(ROOT))
    gwas("local", "blueprint", "--out", str(local_dir / "blueprint.json"), env=env, what="gwas local blueprint")
    from regenie_py.simulate import simulate_dataset

    data = local_dir / "demo-data"
    if data.exists():
        shutil.rmtree(data)
    simulate_dataset(data, samples=samples, variants=variants, chromosomes=3, seed=1, formats=("bed",))
    timings["prepare"] = time.monotonic() - t1

    t2 = time.monotonic()
    print("docker compose up", flush=True)
    state_file = local_dir / "local-stack.json"
    state_file.unlink(missing_ok=True)
    compose_file = ["-f", str(ROOT / "docker-compose.yml"), "-p", "gwas-local"]
    run([*compose, *compose_file, "up", "-d", "--no-build"], env=env, what="compose up")
    try:
        wait_for_stack(state_file, 180, [*compose, *compose_file], env)
        timings["stackUp"] = time.monotonic() - t2
        t3 = time.monotonic()
        print("workflow", flush=True)
        workflow_id = gwas("submit", str(data), "--manifest", str(data / "manifest.json"), "--local", "--wait",
                           "--quiet", env=env, what="gwas submit --local").strip().splitlines()[-1]
        print(f"  workflow id: {workflow_id}", flush=True)
        status = "?"
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            out = subprocess.run([sys.executable, "-m", "controller.cli.main", "status", workflow_id, "--local",
                                  "--json"], env=env, capture_output=True, text=True, check=False)
            if out.returncode == 0:
                status = json.loads(out.stdout).get("status", "?")
                if status in ("COMPLETED", "FAILED", "CANCELLED", "REJECTED"):
                    break
            time.sleep(2)
        timings["workflow"] = time.monotonic() - t3
        print(f"  {workflow_id}: {status} in {timings['workflow']:.0f} s", flush=True)
        results = local_dir / "demo-results"
        gwas("results", workflow_id, "--local", "--out", str(results), env=env, what="gwas results --local")
        gwas("jobs", workflow_id, "--local", env=env, what="gwas jobs --local")
    finally:
        if not keep_running:
            run([*compose, *compose_file, "down"], env=env, what="compose down")
    timings["total"] = time.monotonic() - t0
    return {"workflowId": workflow_id, "status": status, "results": str(results), "build": build,
            "timings": {k: round(v, 1) for k, v in timings.items()}, "workDir": str(local_dir / "work")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m local.docker_demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--local-dir", type=Path, default=ROOT / ".gwas-local",
                   help="blueprint, state file, work dir, demo data and results (default: .gwas-local)")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--variants", type=int, default=3000)
    p.add_argument("--regenie-dist", type=Path, default=None,
                   help="a regenie build (regenie.bin and lib/, e.g. ../shared/tools/regenie-v4.1.2) for the image")
    p.add_argument("--skip-build", action="store_true", help="use the images already built, if both are there")
    p.add_argument("--keep-running", action="store_true", help="leave the compose stack up")
    args = p.parse_args(argv)
    try:
        outcome = demo(local_dir=args.local_dir, samples=args.samples, variants=args.variants,
                       keep_running=args.keep_running, regenie_dist=args.regenie_dist, skip_build=args.skip_build)
    except DemoError as err:
        print(f"docker demo: {err}", file=sys.stderr)
        return 1
    (args.local_dir / "docker-demo.json").write_text(json.dumps(outcome, indent=1))
    print(f"workflow {outcome['workflowId']}: {outcome['status']}")
    print(f"results: {outcome['results']} (report: {outcome['results']}/results/report/report.html)")
    print("times (s): " + ", ".join(f"{k} {v}" for k, v in outcome["timings"].items()))
    return 0 if outcome["status"] == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main())
