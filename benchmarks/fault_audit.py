"""Fault audit: bad input and machine faults on the CLIs, each with its exit code and the first line it printed.

    python benchmarks/fault_audit.py [--work DIR] [--markdown]

Runs every case of the reliability issues (#10; #31's that need real processes) against the gmn_plugins that
``python`` imports (point PYTHONPATH at another checkout to audit that one) and prints one row per case: exit code,
lines on stderr, whether a traceback appeared, and the first line. Mounting a full or read-only tmpfs needs root;
those cases are skipped otherwise. Takes about 3 minutes on 2 cores (tiny data, a few training steps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = str(REPO / "specs" / "quickstart.toml")
TINY = ["data.train_scenes=4", "data.val_scenes=2", "data.views=4", "data.shard_size=2", "data.workers=1",
        "train.batch_scenes=2", "train.max_targets=3", "model.sigma=0.3", "--no-progress"]  # fmt: skip


def cli(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"gmn_plugins.cli.{module}", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})  # fmt: skip


def mount(where: Path, size: int) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="scratch directory (default: a new temp directory)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="gmn-audit-"))
    data, run = work / "data", work / "run"
    mounts: list[Path] = []
    rows = []

    def gmn_run(*more, out=run, data_dir=data):
        return cli("run", SPEC, *TINY, f"data.dir={json.dumps(str(data_dir))}", f"train.out={json.dumps(str(out))}",
                   *more)  # fmt: skip

    def record(case: str, result: subprocess.CompletedProcess | None, note: str = "") -> None:
        if result is None:
            rows.append((case, "-", "-", "-", note or "skipped"))
            return
        err = result.stderr.strip().splitlines()
        first = next((line for line in err if line.strip()), result.stdout.strip().splitlines()[-1:] or [""])
        first = first if isinstance(first, str) else first[0]
        rows.append((case, str(result.returncode), str(len(err)), "yes" if "Traceback" in result.stderr else "",
                     (note + " " if note else "") + first[:150]))  # fmt: skip
        print(f"{case:58s} exit {result.returncode}", file=sys.stderr)

    base = gmn_run("train.steps=2", "train.checkpoint_every=1")
    assert base.returncode == 0, base.stderr

    # 1. two runs on one directory
    cmd = [sys.executable, "-m", "gmn_plugins.cli.run", SPEC, *TINY, f"data.dir={json.dumps(str(data))}",
           f"train.out={json.dumps(str(work / 'busy'))}", "train.steps=100000", "train.checkpoint_every=100000"]  # fmt: skip
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (work / "busy" / "metrics.jsonl").exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    record("second gmn-run on a run directory in use", gmn_run("train.steps=2", out=work / "busy"))
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    record("gmn-run after the holder was killed -9", gmn_run("train.steps=2", out=work / "busy"))

    # 2. resume on other data
    other = work / "run-other"
    shutil.copytree(run, other)
    record("resume with data.blocks=4 (another dataset)", gmn_run("train.steps=3", "data.blocks=4", out=other,
                                                                  data_dir=work / "data4"))  # fmt: skip
    moved = work / "data-moved"
    shutil.copytree(data, moved)
    record("resume on the same dataset, moved", gmn_run("train.steps=3", out=other, data_dir=moved))
    # 2b. a flipped bit in a checkpoint
    flipped = work / "run-flipped"
    shutil.copytree(run, flipped)
    import torch

    ckpt = torch.load(flipped / "checkpoint.pt", weights_only=True)
    name = next(iter(ckpt["model"]))
    ckpt["model"][name].view(-1).view(torch.int32)[0] ^= 1 << 30
    torch.save(ckpt, flipped / "checkpoint.pt")
    record("resume from a checkpoint with one flipped weight bit", gmn_run("train.steps=3", out=flipped))

    # 3. corrupted shard, then the advice
    damaged = work / "data-damaged"
    shutil.copytree(data, damaged)
    shard = damaged / "train" / "shard-00001.npz"
    shard.write_bytes(shard.read_bytes()[:-4] + b"oops")
    record("gmn-run on a dataset with a corrupted shard", gmn_run("train.steps=3", out=work / "run-damaged",
                                                                  data_dir=damaged))  # fmt: skip
    shard.write_bytes(shard.read_bytes()[:-4] + b"oops")
    (damaged / "train" / "shard-00000.npz").unlink()
    gen = ["--scenes", "4", "--val", "2", "--views", "4", "--shard-size", "2", "--workers", "1", "--no-progress"]
    record("gmn-data generate on it (same settings)", cli("data", "generate", "--out", str(damaged), *gen))
    record("  then gmn-data verify", cli("data", "verify", str(damaged)))

    # 4. bounds at --dry-run
    for override in ("data.blocks=1000000000000", "seed=-1", "seed=18446744073709551616", "train.device=\"cuda:7\"",
                     "train.lr=1e12", "model.sigma=nan"):  # fmt: skip
        record(f"--dry-run {override}", cli("run", SPEC, override, "--dry-run"))

    # 5. one line, not a traceback
    record("spec path is a directory", cli("run", str(work)))
    binary = work / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    record("spec path is a binary file", cli("run", str(binary)))
    record("modalities = \"rgb\" (a string)", cli("run", SPEC, "modalities=\"rgb\"", "--dry-run"))
    for name, size in (("manifest.json", 0.5), ("config.json", 0.5)):
        trunc = work / f"data-trunc-{name}"
        shutil.copytree(data, trunc)
        text = (trunc / name).read_bytes()
        (trunc / name).write_bytes(text[: int(len(text) * size)])
        record(f"truncated {name}: gmn-data verify", cli("data", "verify", str(trunc)))
        record(f"truncated {name}: gmn-data info", cli("data", "info", str(trunc)))
        record(f"truncated {name}: gmn-run", gmn_run("train.steps=3", out=work / f"run-trunc-{name}", data_dir=trunc))
    record("gmn-data generate --workers -1", cli("data", "generate", "--out", str(work / "w"), *gen[:-3],
                                                 "--workers", "-1"))  # fmt: skip
    record("gmn-data generate --blocks 0", cli("data", "generate", "--out", str(work / "b"), *gen, "--blocks", "0"))
    bad = work / "data-show"
    shutil.copytree(data, bad)
    (bad / "train" / "shard-00000.npz").write_bytes((bad / "train" / "shard-00000.npz").read_bytes()[:100])
    record("gmn-data show on a corrupted shard", cli("data", "show", str(bad), "--scene", "0", "--out",
                                                     str(work / "s.png")))  # fmt: skip

    # 6. stale checkpoint temp files
    stale = work / "run-stale"
    shutil.copytree(run, stale)
    (stale / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"\0" * 1000)
    result = gmn_run("train.steps=2", out=stale)
    record("stale .checkpoint.pt.*.tmp at start", result,
           "removed" if not (stale / ".checkpoint.pt.k1ll3d.tmp").exists() else "left")  # fmt: skip

    # 7. a non-finite loss
    record("loss becomes non-finite (model.sigma=1e-200)", gmn_run("train.steps=3", "model.sigma=1e-200",
                                                                  out=work / "run-nan"))  # fmt: skip

    # 8. machine faults on tmpfs (root only)
    size = (run / "checkpoint.pt").stat().st_size
    full = work / "full"
    if mount(full, int(size * 1.6)):
        mounts.append(full)
        record("disk full during a checkpoint save", gmn_run("train.steps=3", "train.checkpoint_every=1",
                                                             out=full / "run"))  # fmt: skip
    else:
        record("disk full during a checkpoint save", None)
    tiny = work / "tiny"
    if mount(tiny, 48 * 1024):
        mounts.append(tiny)
        record("disk full during generation", cli("data", "generate", "--out", str(tiny / "d"), *gen))
    ro = work / "ro"
    if mount(ro, 128 << 20):
        mounts.append(ro)
        shutil.copytree(run, ro / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        record("read-only run directory: gmn-run", gmn_run("train.steps=3", out=ro / "run"))
        record("read-only run directory: gmn-eval missing", cli("evaluate", "missing", str(ro / "run"), "--scenes", "1",
                                                                "--no-progress"))  # fmt: skip
    packing = work / "packing"  # issue 31, point 4: the packed copy does not fit (SIGBUS, exit 135, before)
    if mount(packing, 160 * 1024):
        mounts.append(packing)
        shutil.copytree(damaged, packing / "d", ignore=shutil.ignore_patterns("packed"))
        record("disk full while packing: gmn-data pack", cli("data", "pack", str(packing / "d"), "--no-progress"))
    else:
        record("disk full while packing: gmn-data pack", None)
    for where in reversed(mounts):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)

    # 9. issue 31: nothing lost, nothing silent
    lost = work / "data-no-config"
    shutil.copytree(data, lost)
    (lost / "config.json").unlink()
    record("config.json deleted, gmn-run seed=1", gmn_run("train.steps=1", "seed=1", out=work / "run-seed1",
                                                         data_dir=lost), "config.json " +
           ("rewritten" if (lost / "config.json").exists() else "not rewritten"))  # fmt: skip
    race = work / "data-race"
    procs = [subprocess.Popen([sys.executable, "-m", "gmn_plugins.cli.data", "generate", "--out", str(race), *gen[:4],
                               "--views", views, *gen[6:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for views in ("5", "15")]  # fmt: skip
    for views, proc in zip(("5", "15"), procs):
        out, err = proc.communicate(timeout=600)
        record(f"two generate started together: --views {views}", subprocess.CompletedProcess(proc.args,
                                                                                               proc.returncode, out, err))
    mine = work / "mine"
    mine.mkdir()
    (mine / "manifest.json").write_text('{"name": "my app"}\n')
    record("generate --out DIR holding the user's manifest.json", cli("data", "generate", "--out", str(mine), *gen),
           "kept" if (mine / "manifest.json").read_text() == '{"name": "my app"}\n' else "OVERWRITTEN")  # fmt: skip
    record("gmn-data generate --views 100000", cli("data", "generate", "--out", str(work / "v"), *gen[:4], "--views",
                                                    "100000", *gen[6:]))  # fmt: skip
    record("gmn-data generate --seed -1", cli("data", "generate", "--out", str(work / "s"), *gen, "--seed", "-1"))
    stray = work / "run-stray"
    shutil.copytree(run, stray)
    with open(stray / "metrics.jsonl", "ab") as f:
        f.write(b"\xff\xfe\x00 stray bytes\n")
    record("stray bytes in metrics.jsonl, then resume", gmn_run("train.steps=3", out=stray))
    empty = work / "data-empty-manifest"
    shutil.copytree(data, empty)
    (empty / "manifest.json").write_text("{}")
    record("{} manifest: gmn-data verify", cli("data", "verify", str(empty)))
    record("{} manifest: gmn-data pack", cli("data", "pack", str(empty), "--no-progress"))
    record("gmn-eval missing --seed -1", cli("evaluate", "missing", str(run), "--seed", "-1", "--no-progress"))
    record("gmn-eval predict --context -1", cli("evaluate", "predict", str(run), "--context", "-1", "--no-progress"))
    record("gmn-eval missing --device bogus", cli("evaluate", "missing", str(run), "--device", "bogus"))
    bitrot = work / "data-packed-bit"
    shutil.copytree(data, bitrot)
    rgb = bitrot / "packed" / "train" / "camera.rgb.npy"
    if rgb.is_file():
        stat, raw = rgb.stat(), bytearray(rgb.read_bytes())
        raw[-1] ^= 1
        rgb.write_bytes(bytes(raw))
        os.utime(rgb, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        record("a flipped bit in the packed copy: gmn-data verify", cli("data", "verify", str(bitrot)))

    header = ("case", "exit", "lines", "traceback", "first line")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(cell.replace("|", "\\|").replace(str(work), "W") for cell in row) + " |")
    else:
        for row in rows:
            print(f"{row[0]:52s} {row[1]:>4s} {row[2]:>5s} {row[3]:>4s}  {row[4].replace(str(work), 'W')}")


if __name__ == "__main__":
    main()
