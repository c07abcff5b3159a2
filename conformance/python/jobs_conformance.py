#!/usr/bin/python3
"""Jobs API conformance checks for gantry, driven through python-gitlab 3.12.

Run with Debian's interpreter (python-gitlab is only importable there):

    /usr/bin/python3 conformance/python/jobs_conformance.py --fixture fixture.json

The fixture is the JSON written by gantry/internal/testenv (Server.FixtureJSON).
Every check prints one line, `PASS name` or `FAIL name: detail`; the last line
is `N passed, M failed`, and the exit status is 1 when anything failed.

Only read-only endpoints are exercised (no cancel/retry/erase/play).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings

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
        exe = shutil.which("python-gitlab") or "/usr/bin/python-gitlab"
        cmd = [exe, "--server-url", self.url, "--private-token", self.pat, *args]
        with tempfile.TemporaryDirectory(prefix="gantry-cli-home-") as home:
            env = {"HOME": home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
            try:
                return subprocess.run(cmd, env=env, cwd=home, capture_output=True, timeout=CLI_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise CheckFailed(f"timed out after {CLI_TIMEOUT}s: {' '.join(args)}")

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
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 1 if self.failed else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", required=True, help="fixture JSON written by gantry/internal/testenv")
    ap.add_argument("--only", action="append", help="run only this check (repeatable)")
    args = ap.parse_args(argv)
    with open(args.fixture, encoding="utf-8") as f:
        fx = json.load(f)
    return Harness(fx).run_all(only=args.only)


if __name__ == "__main__":
    sys.exit(main())
