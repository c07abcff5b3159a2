#!/usr/bin/python3
"""Jobs API conformance checks for gantry, driven through python-gitlab 3.12.

Run with Debian's interpreter (python-gitlab is only importable there):

    /usr/bin/python3 conformance/python/jobs_conformance.py --fixture fixture.json

    /usr/bin/python3 conformance/python/jobs_conformance.py --fixture fixture.json --scenario scenario.json

The fixture is the JSON written by gantry/internal/testenv (Server.FixtureJSON):
a seeded store, exercised read-only. The scenario is the JSON written by
gantry/internal/conformance/scenario (Document.JSON): a live node whose
pipeline the gantry runner executed; its checks read it, download artifacts,
and end with the client's actions (play, retry, cancel, erase).
Every check prints one line, `PASS name` or `FAIL name: detail`; the last line
is `N passed, M failed` over both, and the exit status is 1 when anything failed.
"""

import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
import zipfile

try:
    import gitlab
    import requests
    from gitlab.v4.objects import ProjectJob, ProjectPipelineBridge, ProjectPipelineJob
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"cannot import python-gitlab ({e}); run with Debian's /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

# python-gitlab warns when list() returns only the first of several pages;
# keep that noise out of the PASS/FAIL stream.
warnings.simplefilter("ignore", UserWarning)

HTTP_TIMEOUT = 15  # seconds, per request
CLI_TIMEOUT = 30  # seconds, per CLI invocation
MISSING_ID = 999999999


class CheckFailed(Exception):
    pass


def expect(cond, detail):
    if not cond:
        raise CheckFailed(detail)


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


class RequestCounter:
    """A requests response hook that counts requests and stops runaway loops.

    Raising from a hook propagates out of Session.request, so a client that
    keeps following `Link: rel="next"` is stopped at `limit` requests.
    """

    def __init__(self, session):
        self.count = 0
        self.limit = None
        self.urls = []
        session.hooks["response"].append(self)

    def __call__(self, resp, *args, **kwargs):
        self.count += 1
        self.urls.append(resp.request.url)
        if self.limit is not None and self.count > self.limit:
            raise CheckFailed(f"more than {self.limit} requests; client is looping; requests: {self.urls}")
        return resp

    def start(self, limit=None):
        self.count, self.limit, self.urls = 0, limit, []

    def stop(self):
        self.limit = None
        return self.count


def run_cli(url, token, *args):
    """Runs the python-gitlab CLI with a private token and no configuration."""
    exe = shutil.which("python-gitlab") or "/usr/bin/python-gitlab"
    cmd = [exe, "--server-url", url, "--private-token", token, *args]
    with tempfile.TemporaryDirectory(prefix="gantry-cli-home-") as home:
        env = {"HOME": home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            return subprocess.run(cmd, env=env, cwd=home, capture_output=True, timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"timed out after {CLI_TIMEOUT}s: {' '.join(args)}")


def cli_json(r, what):
    expect_eq(r.returncode, 0, f"{what} exit status (stderr: {r.stderr.decode(errors='replace').strip()!r})")
    return json.loads(r.stdout)


class Harness:
    def __init__(self, fx):
        self.fx = fx
        self.url = fx["url"].rstrip("/")
        self.tokens = fx["tokens"]
        self.pat = self.tokens["developer"]
        self.project_id = int(fx["project_id"])
        self.project_path = fx["project_path"]
        self.pipeline_id = int(fx["pipeline_id"])
        self.by_status = {k: int(v) for k, v in fx["jobs_by_status"].items()}
        self.all_ids = [int(i) for i in fx["all_build_ids"]]
        self.status_of = dict(zip(self.all_ids, fx["all_build_statuses"]))
        self.trace = fx["trace"].encode("utf-8")
        # The main pipeline's builds: one per status plus the two attempts of "flaky".
        self.pipeline_latest = set(self.by_status.values()) | {int(fx["retried_new_id"])}
        self.pipeline_all = self.pipeline_latest | {int(fx["retried_old_id"])}

        self.gl = self.client(private_token=self.pat)
        self.counter = RequestCounter(self.gl.session)
        self.p = self.gl.projects.get(self.project_id, lazy=True)
        self.pl = self.p.pipelines.get(self.pipeline_id, lazy=True)
        self.passed = 0
        self.failed = 0

    def client(self, **auth):
        return gitlab.Gitlab(self.url, timeout=HTTP_TIMEOUT, **auth)

    def ids_with(self, statuses, among=None):
        ids = self.all_ids if among is None else [i for i in self.all_ids if i in among]
        return [i for i in ids if self.status_of[i] in statuses]

    def run(self, name, fn):
        started = time.monotonic()
        try:
            fn()
        except CheckFailed as e:
            self.failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # an unexpected client error is a failure too
            self.failed += 1
            detail = f"{type(e).__name__}: {e}"
            code = getattr(e, "response_code", None)
            if code is not None:
                detail += f" (response_code={code})"
            print(f"FAIL {name}: {detail}", flush=True)
            tb = traceback.format_exc().strip().splitlines()
            print("  | " + "\n  | ".join(tb[-6:]), file=sys.stderr, flush=True)
        else:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        finally:
            self.counter.stop()
            took = time.monotonic() - started
            if took > 1:
                print(f"  ({name} took {took:.1f}s)", file=sys.stderr, flush=True)

    # ---- project jobs -----------------------------------------------------

    def check_list_default(self):
        jobs = self.p.jobs.list()
        want = self.all_ids[:20]
        expect(len(self.all_ids) >= 1, "fixture has no builds")
        expect_eq(len(jobs), len(want), "number of jobs on the first page (default per_page 20)")
        bad = [type(j).__name__ for j in jobs if not isinstance(j, ProjectJob)]
        expect(not bad, f"items are not ProjectJob: {bad}")
        ids = [j.id for j in jobs]
        expect(all(a > b for a, b in zip(ids, ids[1:])), f"ids not strictly descending: {ids}")
        expect_eq(ids, want, "ids")

    def check_list_get_all(self):
        n = len(self.all_ids)
        pages = max(1, math.ceil(n / 4))
        # One extra request is tolerated (an empty last page); more is a loop.
        self.counter.start(limit=pages + 1)
        jobs = self.p.jobs.list(get_all=True, per_page=4)
        used = self.counter.stop()
        ids = [j.id for j in jobs]
        expect_eq(ids, self.all_ids, "ids with get_all=True, per_page=4")
        expect(pages <= used <= pages + 1, f"{used} requests for {n} jobs at 4 per page, want {pages} (or {pages + 1})")

    def check_list_iterator(self):
        self.counter.start(limit=math.ceil(len(self.all_ids) / 4) + 2)
        it = self.p.jobs.list(iterator=True, per_page=4)
        expect_eq(it.current_page, 1, "it.current_page")
        expect_eq(it.next_page, 2, "it.next_page")
        expect_eq(it.per_page, 4, "it.per_page")
        expect_eq(it.prev_page, None, "it.prev_page")
        expect_eq(it.total, None, "it.total (no X-Total on /projects/:id/jobs)")
        expect_eq(it.total_pages, None, "it.total_pages (no X-Total-Pages on /projects/:id/jobs)")
        ids = [j.id for j in it]
        expect_eq(ids, self.all_ids, "ids iterated with iterator=True, per_page=4")

    def check_scope_list(self):
        jobs = self.p.jobs.list(scope=["failed", "success"], get_all=True)
        got = [(j.id, j.status) for j in jobs]
        want = [(i, self.status_of[i]) for i in self.ids_with({"failed", "success"})]
        expect(want, "fixture has no failed/success builds")
        expect_eq(got, want, "scope[]=failed&scope[]=success (id, status)")

    def check_scope_string(self):
        jobs = self.p.jobs.list(scope="manual", get_all=True)
        got = [(j.id, j.status) for j in jobs]
        want = [(i, "manual") for i in self.ids_with({"manual"})]
        expect(want, "fixture has no manual build")
        expect_eq(got, want, "scope[]=manual (id, status)")

    def check_keyset(self):
        self.counter.start(limit=math.ceil(len(self.all_ids) / 4) + 2)
        jobs = self.p.jobs.list(pagination="keyset", order_by="id", sort="desc", per_page=4, get_all=True)
        expect_eq([j.id for j in jobs], self.all_ids, "keyset ids (order_by=id, sort=desc, per_page=4)")
        expect(any("cursor=" in u for u in self.counter.urls[1:]),
               f"follow-up keyset requests carry no cursor: {self.counter.urls}")

    def check_project_by_path(self):
        by_path = self.gl.projects.get(self.project_path, lazy=True).jobs.list(get_all=True)
        by_id = self.p.jobs.list(get_all=True)
        expect_eq([j.id for j in by_path], [j.id for j in by_id], f"ids via {self.project_path!r} vs via {self.project_id}")
        expect_eq([j.id for j in by_path], self.all_ids, "ids via project path")

    # ---- pipeline jobs and bridges -----------------------------------------

    def check_pipeline_jobs_latest(self):
        jobs = self.pl.jobs.list(get_all=True)
        bad = [type(j).__name__ for j in jobs if not isinstance(j, ProjectPipelineJob)]
        expect(not bad, f"items are not ProjectPipelineJob: {bad}")
        ids = [j.id for j in jobs]
        old, new = int(self.fx["retried_old_id"]), int(self.fx["retried_new_id"])
        expect(old not in ids, f"retried job {old} listed without include_retried: {ids}")
        expect(new in ids, f"retry {new} missing: {ids}")
        expect_eq(ids, sorted(self.pipeline_latest, reverse=True), "pipeline job ids (latest only, id desc)")

    def check_pipeline_jobs_include_retried(self):
        jobs = self.pl.jobs.list(include_retried=True, get_all=True)
        ids = [j.id for j in jobs]
        expect(int(self.fx["retried_old_id"]) in ids, f"retried job {self.fx['retried_old_id']} missing: {ids}")
        expect_eq(ids, sorted(self.pipeline_all, reverse=True), "pipeline job ids with include_retried=True")

    def check_pipeline_jobs_scope_repeated(self):
        # python-gitlab 3.12 sends scope=failed&scope=success (no brackets) here.
        self.counter.start()
        jobs = self.pl.jobs.list(scope=["failed", "success"], get_all=True)
        sent = self.counter.urls[0] if self.counter.urls else ""
        expect("scope=failed&scope=success" in sent, f"client sent an unexpected query: {sent}")
        got = [(j.id, j.status) for j in jobs]
        want = [(i, self.status_of[i]) for i in self.ids_with({"failed", "success"}, among=self.pipeline_latest)]
        expect_eq(got, want, "scope=failed&scope=success on pipeline jobs (union; id, status)")

    def check_pipeline_bridges(self):
        bridges = self.pl.bridges.list()
        bad = [type(b).__name__ for b in bridges if not isinstance(b, ProjectPipelineBridge)]
        expect(not bad, f"items are not ProjectPipelineBridge: {bad}")
        expect_eq([b.id for b in bridges], [int(self.fx["bridge_id"])], "bridge ids")
        dp = bridges[0].downstream_pipeline
        expect(isinstance(dp, dict), f"downstream_pipeline is {dp!r}, want an object")
        expect_eq(dp.get("id"), int(self.fx["downstream_pipeline_id"]), "downstream_pipeline.id")

    # ---- single job and trace ----------------------------------------------

    def check_get_job(self):
        jid = self.by_status["failed"]
        j = self.p.jobs.get(jid)
        expect(isinstance(j, ProjectJob), f"got {type(j).__name__}, want ProjectJob")
        expect_eq(j.id, jid, "id")
        expect_eq(j.status, "failed", "status")
        expect_eq(j.pipeline["id"], self.pipeline_id, "pipeline.id")
        expect_eq(j.failure_reason, "script_failure", "failure_reason")
        expect(isinstance(j.web_url, str) and j.web_url.endswith(f"/-/jobs/{jid}"),
               f"web_url {j.web_url!r} does not end with /-/jobs/{jid}")
        expect_eq(j.web_url, f"{self.url}/{self.project_path}/-/jobs/{jid}", "web_url")

    def check_get_job_content_type(self):
        jid = self.by_status["failed"]
        r = requests.get(f"{self.url}/api/v4/projects/{self.project_id}/jobs/{jid}",
                         headers={"PRIVATE-TOKEN": self.pat}, timeout=HTTP_TIMEOUT)
        expect_eq(r.status_code, 200, "status code")
        expect_eq(r.headers.get("Content-Type"), "application/json", "Content-Type")
        expect_eq(r.json().get("id"), jid, "body id")

    def check_trace(self):
        j = self.p.jobs.get(self.by_status["failed"], lazy=True)
        body = j.trace()
        expect(isinstance(body, bytes), f"trace() returned {type(body).__name__}, want bytes")
        expect_eq(body, self.trace, "trace bytes")

    def check_trace_empty(self):
        body = self.p.jobs.get(self.by_status["created"], lazy=True).trace()
        expect(isinstance(body, bytes), f"trace() returned {type(body).__name__}, want bytes")
        expect_eq(body, b"", "trace of a job without a log")

    # ---- errors and authentication -----------------------------------------

    def check_get_missing(self):
        try:
            j = self.p.jobs.get(MISSING_ID)
        except gitlab.exceptions.GitlabGetError as e:
            expect_eq(e.response_code, 404, "response_code")
            expect(e.error_message, "empty error_message")
        else:
            raise CheckFailed(f"no error; got job {j.id}")

    def check_bad_token(self):
        gl = self.client(private_token="glpat-not-a-real-token-0000000000")
        try:
            jobs = gl.projects.get(self.project_id, lazy=True).jobs.list()
        except gitlab.exceptions.GitlabAuthenticationError as e:
            expect_eq(e.response_code, 401, "response_code")
        else:
            raise CheckFailed(f"no error; listed {len(jobs)} jobs")

    def check_job_token(self):
        gl = self.client(job_token=self.fx["job_token"])
        job = gl.http_get("/job")
        expect(isinstance(job, dict), f"http_get returned {type(job).__name__}, want dict (is Content-Type exact?)")
        expect_eq(job.get("id"), self.by_status["running"], "GET /job id")
        expect_eq(job.get("status"), "running", "GET /job status")

    def check_oauth_bearer(self):
        gl = self.client(oauth_token=self.pat)
        jobs = gl.projects.get(self.project_id, lazy=True).jobs.list(get_all=True)
        expect_eq([j.id for j in jobs], self.all_ids, "ids listed with Authorization: Bearer")

    # ---- CLI ---------------------------------------------------------------

    def cli(self, *args):
        return run_cli(self.url, self.pat, *args)

    def check_cli_list_scope(self):
        r = self.cli("-o", "json", "project-job", "list", "--project-id", str(self.project_id), "--scope", "failed")
        expect_eq(r.returncode, 0, f"exit status (stderr: {r.stderr.decode(errors='replace').strip()!r})")
        data = json.loads(r.stdout)
        expect(isinstance(data, list), f"output is {type(data).__name__}, want a JSON list")
        got = [(d.get("id"), d.get("status")) for d in data]
        want = [(i, "failed") for i in self.ids_with({"failed"})]
        expect(want, "fixture has no failed build")
        expect_eq(got, want, "CLI project-job list --scope failed (id, status)")

    def check_cli_get_missing(self):
        r = self.cli("project-job", "get", "--project-id", str(self.project_id), "--id", str(MISSING_ID))
        out = (r.stdout + r.stderr).decode(errors="replace")
        expect(r.returncode != 0, f"exit status 0; output {out!r}")
        expect("404" in out, f"no 404 in output {out!r}")

    def check_cli_trace(self):
        r = self.cli("project-job", "trace", "--project-id", str(self.project_id), "--id", str(self.by_status["failed"]))
        expect_eq(r.returncode, 0, f"exit status (stderr: {r.stderr.decode(errors='replace').strip()!r})")
        expect_eq(r.stdout, self.trace, "CLI trace output")

    CHECKS = [
        ("project_jobs_list_first_page", "check_list_default"),
        ("project_jobs_list_get_all_per_page_4", "check_list_get_all"),
        ("project_jobs_list_iterator_headers", "check_list_iterator"),
        ("project_jobs_scope_list", "check_scope_list"),
        ("project_jobs_scope_string", "check_scope_string"),
        ("project_jobs_keyset", "check_keyset"),
        ("project_jobs_by_path", "check_project_by_path"),
        ("pipeline_jobs_excludes_retried", "check_pipeline_jobs_latest"),
        ("pipeline_jobs_include_retried", "check_pipeline_jobs_include_retried"),
        ("pipeline_jobs_scope_repeated_key", "check_pipeline_jobs_scope_repeated"),
        ("pipeline_bridges", "check_pipeline_bridges"),
        ("get_job", "check_get_job"),
        ("get_job_content_type_exact", "check_get_job_content_type"),
        ("job_trace", "check_trace"),
        ("job_trace_empty", "check_trace_empty"),
        ("get_job_404", "check_get_missing"),
        ("bad_token_401", "check_bad_token"),
        ("job_token_get_job", "check_job_token"),
        ("oauth_bearer_list", "check_oauth_bearer"),
        ("cli_project_job_list_scope", "check_cli_list_scope"),
        ("cli_project_job_get_404", "check_cli_get_missing"),
        ("cli_project_job_trace", "check_cli_trace"),
    ]

    def run_all(self, only=None):
        for name, method in self.CHECKS:
            if only and name not in only:
                continue
            self.run(name, getattr(self, method))


class Scenario:
    """Checks against the live scenario: values the runner produced.

    Read-only checks come first; the client's own actions run last, each
    on the job the scenario left for it (to_play, to_retry, to_cancel,
    to_erase).
    """

    def __init__(self, sc, harness):
        self.sc = sc
        self.h = harness
        self.url = sc["url"].rstrip("/")
        self.tok = sc["tokens"]
        self.pid = int(sc["project_id"])
        self.gl = gitlab.Gitlab(self.url, private_token=self.tok["developer"], timeout=HTTP_TIMEOUT)
        self.counter = RequestCounter(self.gl.session)
        self.p = self.gl.projects.get(self.pid, lazy=True)
        self.pl = self.p.pipelines.get(int(sc["pipeline_id"]), lazy=True)
        self.jobs = sc["jobs"]
        self.project_ids = [int(i) for i in sc["project_build_ids"]]
        self.status_of = dict(zip(self.project_ids, sc["project_build_statuses"]))

    def job(self, name):
        return self.jobs[name]

    def client(self, role):
        return gitlab.Gitlab(self.url, private_token=self.tok[role], timeout=HTTP_TIMEOUT)

    # ---- lists ---------------------------------------------------------------

    def check_project_jobs_all(self):
        n = len(self.project_ids)
        self.counter.start(limit=math.ceil(n / 5) + 1)
        jobs = self.p.jobs.list(get_all=True, per_page=5)
        expect_eq([(j.id, j.status) for j in jobs], [(i, self.status_of[i]) for i in self.project_ids],
                  "project jobs (id, status), per_page=5, every page")
        expect(self.counter.count in (math.ceil(n / 5), math.ceil(n / 5) + 1), f"{self.counter.count} requests for {n} jobs")

    def check_project_jobs_headers(self):
        it = self.p.jobs.list(iterator=True, per_page=5)
        expect_eq((it.current_page, it.next_page, it.per_page, it.total), (1, 2, 5, None), "(page, next page, per page, total)")
        expect_eq([j.id for j in it], self.project_ids, "ids through the iterator")

    def check_project_jobs_keyset(self):
        self.counter.start(limit=math.ceil(len(self.project_ids) / 5) + 2)
        jobs = self.p.jobs.list(pagination="keyset", order_by="id", sort="desc", per_page=5, get_all=True)
        expect_eq([j.id for j in jobs], self.project_ids, "keyset ids")
        expect(any("cursor=" in u for u in self.counter.urls[1:]), f"no cursor followed: {self.counter.urls}")

    def check_project_jobs_scope(self):
        jobs = self.p.jobs.list(scope=["failed", "canceled"], get_all=True)
        want = [i for i in self.project_ids if self.status_of[i] in ("failed", "canceled")]
        expect_eq([j.id for j in jobs], want, "scope[]=failed&scope[]=canceled ids")
        names = sorted({j.name for j in jobs})
        expect_eq(names, ["broken", "flaky", "long"], "names of failed and canceled jobs")

    def check_project_by_path(self):
        jobs = self.gl.projects.get(self.sc["project_path"], lazy=True).jobs.list(get_all=True, per_page=100)
        expect_eq([j.id for j in jobs], self.project_ids, f"ids via {self.sc['project_path']!r}")

    def check_pipeline_jobs(self):
        jobs = self.pl.jobs.list(get_all=True)
        expect_eq([j.id for j in jobs], self.sc["pipeline_build_ids"], "pipeline job ids (latest attempts)")
        got = {j.name: (j.id, j.stage, j.status, j.allow_failure) for j in jobs}
        want = {n: (j["id"], j["stage"], j["status"], j["allow_failure"]) for n, j in self.jobs.items()}
        expect_eq(got, want, "name -> (id, stage, status, allow_failure)")

    def check_pipeline_jobs_retried(self):
        jobs = self.pl.jobs.list(include_retried=True, get_all=True)
        ids = [j.id for j in jobs]
        expect_eq(ids, self.sc["pipeline_build_ids_with_retried"], "ids with include_retried=True")
        old = [j for j in jobs if j.id == self.sc["retried_old_id"]]
        expect(old and old[0].name == "broken" and old[0].status == "failed", f"retried attempt: {old}")

    def check_pipeline_jobs_totals(self):
        it = self.pl.jobs.list(iterator=True, per_page=5)
        n = len(self.sc["pipeline_build_ids"])
        expect_eq((it.total, it.total_pages, it.next_page), (n, math.ceil(n / 5), 2), "(X-Total, X-Total-Pages, X-Next-Page)")

    def check_pipeline_jobs_scope(self):
        jobs = self.pl.jobs.list(scope=["manual", "skipped"], get_all=True)
        expect_eq(sorted((j.name, j.status) for j in jobs), [("approve", "manual"), ("late", "skipped")], "scope=manual&scope=skipped")

    def check_bridges(self):
        bridges = self.pl.bridges.list()
        b = self.sc["bridge"]
        expect_eq([(x.id, x.name, x.stage, x.status) for x in bridges], [(b["id"], "child", "deploy", "success")], "bridges")
        dp = bridges[0].downstream_pipeline
        expect_eq((dp.get("id"), dp.get("status"), dp.get("source")), (self.sc["child_pipeline_id"], "success", "parent_pipeline"), "downstream_pipeline")

    def check_child_jobs(self):
        child = self.p.pipelines.get(self.sc["child_pipeline_id"], lazy=True).jobs.list(get_all=True)
        want = self.sc["child_jobs"]["child-test"]
        expect_eq([(j.id, j.name, j.status) for j in child], [(want["id"], "child-test", "success")], "child pipeline jobs")

    # ---- single jobs ---------------------------------------------------------

    def check_get_each_job(self):
        for name, want in self.jobs.items():
            j = self.p.jobs.get(want["id"])
            got = (j.id, j.name, j.stage, j.status, j.allow_failure, j.ref, j.pipeline["id"], j.commit["id"])
            expect_eq(got, (want["id"], name, want["stage"], want["status"], want["allow_failure"], "main", self.sc["pipeline_id"], self.sc["sha"]),
                      f"job {name}")

    def check_failed_jobs(self):
        broken = self.p.jobs.get(self.job("broken")["id"])
        expect_eq((broken.status, broken.failure_reason, broken.allow_failure), ("failed", "script_failure", False), "broken")
        flaky = self.p.jobs.get(self.job("flaky")["id"])
        expect_eq((flaky.status, flaky.failure_reason, flaky.allow_failure), ("failed", "script_failure", True), "flaky (allow_failure)")

    def check_finished_job_fields(self):
        j = self.p.jobs.get(self.sc["artifact_job_id"])
        expect_eq(j.runner["id"], self.sc["runner_id"], "runner.id")
        expect_eq(j.user["username"], "alice", "user (the pusher)")
        expect(j.started_at and j.finished_at and isinstance(j.duration, float) and j.duration >= 0,
               f"started_at {j.started_at!r}, finished_at {j.finished_at!r}, duration {j.duration!r}")
        expect_eq(j.artifacts_file.get("filename"), self.sc["artifact_archive"], "artifacts_file.filename")
        # `artifacts` is a method of ProjectJob; the field is in attributes.
        types = sorted(a["file_type"] for a in j.attributes["artifacts"])
        expect("archive" in types and "trace" in types, f"artifacts file types {types}")

    def check_traces(self):
        for jid, wants in self.sc["traces"].items():
            log = self.p.jobs.get(int(jid), lazy=True).trace().decode("utf-8", errors="replace")
            for w in wants:
                expect(w in log, f"log of job {jid} lacks {w!r}")

    def check_whoami_log(self):
        jid = self.sc["whoami_job_id"]
        log = self.p.jobs.get(jid, lazy=True).trace().decode()
        line = next((l for l in log.splitlines() if l.startswith("{")), None)
        expect(line is not None, f"no JSON line in the log: {log!r}")
        # curl prints no newline: the runner's next command echo follows.
        seen, _ = json.JSONDecoder().raw_decode(line)
        expect_eq((seen.get("id"), seen.get("name"), seen.get("status"), seen.get("pipeline", {}).get("id")),
                  (jid, "whoami", "running", self.sc["pipeline_id"]), "GET /job as seen by the job itself")

    def check_canceled(self):
        j = self.p.jobs.get(self.sc["canceled_job_id"])
        expect_eq((j.name, j.status), ("long", "canceled"), "canceled job")
        expect(j.finished_at, "finished_at unset")

    def check_played(self):
        j = self.p.jobs.get(self.sc["played_job_id"])
        expect_eq((j.name, j.status), ("deploy", "success"), "played job")
        log = j.trace().decode()
        expect(f"deploying to {self.sc['played_value']}" in log, f"variable not in the log: {log!r}")

    def check_retried(self):
        old, new = self.p.jobs.get(self.sc["retried_old_id"]), self.p.jobs.get(self.sc["retried_new_id"])
        expect_eq((old.name, old.status, new.name, new.status), ("broken", "failed", "broken", "failed"), "attempts")
        expect(new.id > old.id, f"retry {new.id} not after {old.id}")
        expect(f"broken attempt {new.id}" in new.trace().decode(), "retry's own log")

    def check_erased(self):
        j = self.p.jobs.get(self.sc["erased_job_id"])
        expect(j.erased_at, f"erased_at {j.erased_at!r}")
        expect_eq(j.trace(), b"", "erased job's log")
        expect_eq(j.attributes["artifacts"], [], "erased job's artifacts")

    # ---- artifacts and test report --------------------------------------------

    def check_artifacts_archive(self):
        data = self.p.jobs.get(self.sc["artifact_job_id"], lazy=True).artifacts()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            expect_eq(z.read(self.sc["artifact_path"]).decode(), self.sc["artifact_content"], "file in the archive")

    def check_artifact_file(self):
        data = self.p.jobs.get(self.sc["artifact_job_id"], lazy=True).artifact(self.sc["artifact_path"])
        expect_eq(data.decode(), self.sc["artifact_content"], "single artifact file")

    def check_artifacts_by_ref(self):
        ref, name = self.sc["stable_ref"], self.sc["artifact_job_name"]
        data = self.p.artifacts.download(ref_name=ref, job=name)
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            expect_eq(z.read(self.sc["artifact_path"]).decode(), self.sc["stable_artifact_content"], "file in the ref's archive")
        raw = self.p.artifacts.raw(ref, self.sc["artifact_path"], name)
        expect_eq(raw.decode(), self.sc["stable_artifact_content"], "ref's single file")
        try:
            self.p.artifacts.download(ref_name="main", job=name)
        except gitlab.exceptions.GitlabGetError as e:
            expect_eq(e.response_code, 404, "main has no successful pipeline")
        else:
            raise CheckFailed("artifacts of main, whose pipeline has not succeeded")

    def check_artifact_missing(self):
        try:
            self.p.jobs.get(self.sc["artifact_job_id"], lazy=True).artifact("out/no-such-file")
        except gitlab.exceptions.GitlabGetError as e:
            expect_eq(e.response_code, 404, "response_code")
        else:
            raise CheckFailed("no error for a missing artifact file")

    def check_test_report(self):
        r = self.pl.test_report.get()
        want = self.sc["junit"]
        got = tuple(getattr(r, k) for k in ("total_count", "success_count", "failed_count", "skipped_count", "error_count"))
        expect_eq(got, tuple(want[k] for k in ("total_count", "success_count", "failed_count", "skipped_count", "error_count")), "totals")
        expect_eq(round(r.total_time, 3), want["total_time"], "total_time")
        expect_eq([s["name"] for s in r.test_suites], [want["suite_name"]], "suites")

    # ---- tokens and roles ----------------------------------------------------

    def check_job_token(self):
        job = gitlab.Gitlab(self.url, job_token=self.sc["job_token"], timeout=HTTP_TIMEOUT).http_get("/job")
        expect_eq((job.get("id"), job.get("name"), job.get("status")), (self.sc["job_token_job_id"], "hold", "running"), "GET /job")

    def check_roles(self):
        for role in ("reporter", "maintainer", "root"):
            jobs = self.client(role).projects.get(self.pid, lazy=True).jobs.list(get_all=True, per_page=100)
            expect_eq([j.id for j in jobs], self.project_ids, f"{role} lists every job")
        for role, code in (("guest", 403), ("outsider", 404)):
            try:
                self.client(role).projects.get(self.pid, lazy=True).jobs.list()
            except gitlab.exceptions.GitlabListError as e:
                expect_eq(e.response_code, code, f"{role} response_code")
            else:
                raise CheckFailed(f"{role} listed the jobs")
        try:
            self.client("reporter").projects.get(self.pid, lazy=True).jobs.get(self.sc["to_retry"], lazy=True).retry()
        except gitlab.exceptions.GitlabJobRetryError as e:
            expect_eq(e.response_code, 403, "reporter retry response_code")
        else:
            raise CheckFailed("a reporter retried a job")

    # ---- CLI -----------------------------------------------------------------

    def check_cli(self):
        dev = self.tok["developer"]
        data = cli_json(run_cli(self.url, dev, "-o", "json", "project-job", "list", "--project-id", str(self.pid), "--scope", "manual"), "list")
        expect_eq([(d["id"], d["name"]) for d in data], [(self.job("approve")["id"], "approve")], "CLI project-job list --scope manual")
        d = cli_json(run_cli(self.url, dev, "-o", "json", "project-job", "get", "--project-id", str(self.pid), "--id", str(self.sc["played_job_id"])), "get")
        expect_eq((d["name"], d["status"]), ("deploy", "success"), "CLI project-job get")
        data = cli_json(run_cli(self.url, dev, "-o", "json", "project-pipeline-bridge", "list", "--project-id", str(self.pid),
                                "--pipeline-id", str(self.sc["pipeline_id"])), "bridges")
        expect_eq([(d["id"], d["downstream_pipeline"]["id"]) for d in data], [(self.sc["bridge"]["id"], self.sc["child_pipeline_id"])], "CLI bridges")

    # ---- the client's own actions (last) --------------------------------------

    def wait_status(self, jid, done):
        deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
        while True:
            j = self.p.jobs.get(jid)
            if j.status in done or time.monotonic() > deadline:
                return j
            time.sleep(0.05)

    def check_play(self):
        j = self.p.jobs.get(self.sc["to_play"], lazy=True)
        expect_eq(j.play(), None, "play() result")
        j = self.wait_status(self.sc["to_play"], ("success", "failed"))
        expect_eq((j.name, j.status), ("approve", "success"), "played job")
        expect("approved with nothing" in j.trace().decode(), "played job's log")

    def check_retry(self):
        got = self.p.jobs.get(self.sc["to_retry"], lazy=True).retry()
        expect(isinstance(got, dict), f"retry() returned {type(got).__name__}")
        expect(got["id"] > self.sc["to_retry"], f"new id {got['id']}")
        expect_eq((got["name"], got["stage"]), ("broken", "test"), "retry")
        expect(got["status"] in ("created", "pending", "running", "failed"), f"status {got['status']}")
        ids = [j.id for j in self.pl.jobs.list(include_retried=True, get_all=True)]
        expect(got["id"] in ids and self.sc["to_retry"] in ids, f"both attempts in {ids}")

    def check_cancel(self):
        got = self.p.jobs.get(self.sc["to_cancel"], lazy=True).cancel()
        expect_eq(got["id"], self.sc["to_cancel"], "id")
        expect(got["status"] in ("canceling", "canceled"), f"status {got['status']}")
        j = self.wait_status(self.sc["to_cancel"], ("canceled",))
        expect_eq(j.status, "canceled", "status once the runner stopped")
        try:
            gitlab.Gitlab(self.url, job_token=self.sc["job_token"], timeout=HTTP_TIMEOUT).http_get("/job")
        except gitlab.exceptions.GitlabAuthenticationError as e:
            expect_eq(e.response_code, 401, "the canceled job's token")
        else:
            raise CheckFailed("the canceled job's token still works")

    def check_erase(self):
        j = self.p.jobs.get(self.sc["to_erase"], lazy=True)
        expect_eq(j.erase(), None, "erase() result")
        j = self.p.jobs.get(self.sc["to_erase"])
        expect(j.erased_at, "erased_at unset")
        expect_eq(j.trace(), b"", "log after erase")
        try:
            self.p.jobs.get(self.sc["to_erase"], lazy=True).erase()
        except gitlab.exceptions.GitlabJobEraseError as e:
            expect_eq(e.response_code, 403, "erasing again")
        else:
            raise CheckFailed("erased twice")

    CHECKS = [
        ("scenario_project_jobs_all_pages", "check_project_jobs_all"),
        ("scenario_project_jobs_headers", "check_project_jobs_headers"),
        ("scenario_project_jobs_keyset", "check_project_jobs_keyset"),
        ("scenario_project_jobs_scope", "check_project_jobs_scope"),
        ("scenario_project_jobs_by_path", "check_project_by_path"),
        ("scenario_pipeline_jobs", "check_pipeline_jobs"),
        ("scenario_pipeline_jobs_include_retried", "check_pipeline_jobs_retried"),
        ("scenario_pipeline_jobs_totals", "check_pipeline_jobs_totals"),
        ("scenario_pipeline_jobs_scope", "check_pipeline_jobs_scope"),
        ("scenario_bridges", "check_bridges"),
        ("scenario_child_pipeline_jobs", "check_child_jobs"),
        ("scenario_get_each_job", "check_get_each_job"),
        ("scenario_failed_jobs", "check_failed_jobs"),
        ("scenario_finished_job_fields", "check_finished_job_fields"),
        ("scenario_traces", "check_traces"),
        ("scenario_whoami_log", "check_whoami_log"),
        ("scenario_canceled_job", "check_canceled"),
        ("scenario_played_job", "check_played"),
        ("scenario_retried_job", "check_retried"),
        ("scenario_erased_job", "check_erased"),
        ("scenario_artifacts_archive", "check_artifacts_archive"),
        ("scenario_artifact_file", "check_artifact_file"),
        ("scenario_artifacts_by_ref", "check_artifacts_by_ref"),
        ("scenario_artifact_missing_404", "check_artifact_missing"),
        ("scenario_test_report", "check_test_report"),
        ("scenario_job_token_get_job", "check_job_token"),
        ("scenario_roles", "check_roles"),
        ("scenario_cli", "check_cli"),
        ("scenario_play", "check_play"),
        ("scenario_retry", "check_retry"),
        ("scenario_cancel", "check_cancel"),
        ("scenario_erase", "check_erase"),
    ]

    def run_all(self, only=None):
        for name, method in self.CHECKS:
            if only and name not in only:
                continue
            self.h.run(name, getattr(self, method))
            self.counter.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", required=True, help="fixture JSON written by gantry/internal/testenv")
    ap.add_argument("--scenario", help="scenario JSON written by gantry/internal/conformance/scenario")
    ap.add_argument("--only", action="append", help="run only this check (repeatable)")
    args = ap.parse_args(argv)
    with open(args.fixture, encoding="utf-8") as f:
        fx = json.load(f)
    h = Harness(fx)
    h.run_all(only=args.only)
    if args.scenario:
        with open(args.scenario, encoding="utf-8") as f:
            Scenario(json.load(f), h).run_all(only=args.only)
    print(f"{h.passed} passed, {h.failed} failed", flush=True)
    return 1 if h.failed else 0


if __name__ == "__main__":
    sys.exit(main())
