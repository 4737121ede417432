#!/usr/bin/env python3
"""tests/sched/k8s_check.py - contrib/k8s/convert-job.yaml against the batch/v1 Job schema.

`kubectl apply --dry-run=client` needs a cluster's OpenAPI document, which no test machine has,
so this checks what that schema says of the fields the manifest uses: every field at every level
is one the Kubernetes API defines for it (a misspelt field is refused, as the API server's strict
validation does), with the right type; the parts are an Indexed Job whose completions equal its
parallelism and the N of every --part I/N, whose index reaches the command through
JOB_COMPLETION_INDEX, with a restart policy a Job accepts; every mounted volume is declared; and
the merge Job names the same DST and job id. It has not been run on a cluster (doc/partitioned.md).
Summary line: "k8s ok: N checks passed, M skipped" (test_cli.c reads it)."""
import os
import re
import sys

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML is not installed (Debian package python3-yaml; make deps installs it)")
    print("k8s ok: 0 checks passed, 1 skipped")
    sys.exit(0)

# The fields of the batch/v1 objects the manifest may use (Kubernetes API reference, v1.29),
# with their types: a dict names a nested object, a list [X] an array of X.
STR, INT, BOOL, ANY = "string", "integer", "boolean", "any"
OBJECT_META = {"name": STR, "namespace": STR, "labels": {"*": STR}, "annotations": {"*": STR}}
ENV_VAR = {"name": STR, "value": STR,
           "valueFrom": {"fieldRef": {"fieldPath": STR, "apiVersion": STR},
                         "secretKeyRef": {"name": STR, "key": STR, "optional": BOOL},
                         "configMapKeyRef": {"name": STR, "key": STR, "optional": BOOL}}}
QUANTITY = {"*": STR}
CONTAINER = {"name": STR, "image": STR, "imagePullPolicy": STR, "command": [STR], "args": [STR],
             "workingDir": STR, "env": [ENV_VAR],
             "resources": {"requests": QUANTITY, "limits": QUANTITY},
             "volumeMounts": [{"name": STR, "mountPath": STR, "readOnly": BOOL, "subPath": STR}]}
VOLUME = {"name": STR, "persistentVolumeClaim": {"claimName": STR, "readOnly": BOOL},
          "nfs": {"server": STR, "path": STR, "readOnly": BOOL}, "emptyDir": {"medium": STR}}
POD_SPEC = {"restartPolicy": STR, "containers": [CONTAINER], "volumes": [VOLUME],
            "nodeSelector": {"*": STR}, "serviceAccountName": STR}
JOB_SPEC = {"completionMode": STR, "completions": INT, "parallelism": INT, "backoffLimit": INT,
            "backoffLimitPerIndex": INT, "maxFailedIndexes": INT, "activeDeadlineSeconds": INT,
            "ttlSecondsAfterFinished": INT,
            "template": {"metadata": OBJECT_META, "spec": POD_SPEC}}
JOB = {"apiVersion": STR, "kind": STR, "metadata": OBJECT_META, "spec": JOB_SPEC}
PY_TYPES = {STR: str, INT: int, BOOL: bool}

checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAIL: {what}")
        sys.exit(1)
    checks += 1


def conforms(value, schema, where):
    """Every field of value is in schema with its type; refuses what the schema lacks."""
    if isinstance(schema, dict):
        check(isinstance(value, dict), f"{where}: an object, not {type(value).__name__}")
        for key, v in value.items():
            sub = schema.get(key, schema.get("*"))
            check(sub is not None, f"{where}.{key}: no such field in the batch/v1 Job schema")
            conforms(v, sub, f"{where}.{key}")
    elif isinstance(schema, list):
        check(isinstance(value, list), f"{where}: an array")
        for i, v in enumerate(value):
            conforms(v, schema[0], f"{where}[{i}]")
    elif schema != ANY:
        ok = isinstance(value, PY_TYPES[schema]) and not (schema == INT and isinstance(value, bool))
        check(ok, f"{where}: a {schema}, not {value!r}")


def command_of(container):
    """The command line the container runs: the script of a `sh -c`, else command + args."""
    words = container.get("command", []) + container.get("args", [])
    if words[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        words = words[2:3]
    return " ".join(words)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "contrib", "k8s", "convert-job.yaml")
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    check(len(docs) == 2, f"{path}: the parts Job and the merge Job, not {len(docs)} documents")
    for d in docs:
        conforms(d, JOB, d.get("metadata", {}).get("name", "?"))
        check(d["apiVersion"] == "batch/v1" and d["kind"] == "Job", "apiVersion batch/v1, kind Job")
        pod = d["spec"]["template"]["spec"]
        check(pod.get("restartPolicy") in ("Never", "OnFailure"), "a Job's pods restart Never or OnFailure")
        declared = {v["name"] for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                check(m["name"] in declared, f"volume {m['name']} is mounted and declared")
    parts, merge = docs
    spec = parts["spec"]
    check(spec.get("completionMode") == "Indexed", "the parts Job has completionMode: Indexed")
    check(spec.get("completions", 0) >= 1 and spec.get("parallelism") == spec.get("completions"),
          "completions >= 1 and parallelism equal to it")
    part = parts["spec"]["template"]["spec"]["containers"][0]
    cmd = command_of(part)
    env = {e["name"]: e for e in part.get("env", [])}
    check("JOB_COMPLETION_INDEX" in env, "the part container defines JOB_COMPLETION_INDEX")
    ref = env["JOB_COMPLETION_INDEX"].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
    check(ref == "metadata.annotations['batch.kubernetes.io/job-completion-index']",
          "JOB_COMPLETION_INDEX comes from the job-completion-index annotation")
    m = re.search(r'--part "?\$\{?JOB_COMPLETION_INDEX\}?/(\d+)"?', cmd)
    check(m is not None, f"the part runs --part $JOB_COMPLETION_INDEX/N: {cmd}")
    check(int(m.group(1)) == spec["completions"], f"--part's N ({m.group(1)}) equals completions ({spec['completions']})")
    words = cmd.split()
    check(words[:4] == ["exec", "modelprep", words[2], words[3]] and words[2] in ("convert", "split"),
          f"the part runs modelprep convert or split: {cmd}")
    dst = words[4]
    job_id = words[words.index("--job-id") + 1] if "--job-id" in words else None
    mcmd = merge["spec"]["template"]["spec"]["containers"][0]["command"]
    check(mcmd[:3] == ["modelprep", "merge", dst], f"the merge Job runs modelprep merge {dst}: {mcmd}")
    check(job_id is None or mcmd[3:5] == ["--job-id", job_id], "the merge Job names the parts' --job-id")
    wd = {c.get("workingDir") for d in docs for c in d["spec"]["template"]["spec"]["containers"]}
    check(len(wd) == 1, "the parts and the merge run in one working directory (relative SRC and DST)")
    print(f"k8s ok: {checks} checks passed, 0 skipped")


main()
