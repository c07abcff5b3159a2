#!/usr/bin/env node
// Jobs API conformance checks for gantry, driven through @gitbeaker/rest 43.8.
//
//   npm ci --prefix conformance/gitbeaker
//   node conformance/gitbeaker/jobs_conformance.mjs --fixture fixture.json [--scenario scenario.json] [--only name]...
//
// The fixture is the JSON written by gantry/internal/testenv (Server.FixtureJSON);
// the scenario is the JSON written by gantry/internal/conformance/scenario
// (Document.JSON): a live node whose pipeline the gantry runner executed.
// Every check prints one line, `PASS name` or `FAIL name: detail`; the last line
// is `N passed, M failed` over both, and the exit status is 1 when anything failed.
//
// In each phase the read-only checks run first; the actions (cancel, retry,
// erase, play) change the world and so run last, each on a job in a suitable status.

import { readFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { isDeepStrictEqual, inspect } from 'node:util';
import { Gitlab, GitbeakerRequestError } from '@gitbeaker/rest';

const MISSING_ID = 999999999;

class CheckFailed extends Error {}

function expect(cond, detail) {
  if (!cond) throw new CheckFailed(detail);
}

function show(v) {
  return inspect(v, { depth: 4, breakLength: Infinity, maxArrayLength: 200 });
}

function expectEq(got, want, what) {
  if (!isDeepStrictEqual(got, want)) throw new CheckFailed(`${what}: got ${show(got)}, want ${show(want)}`);
}

// Every request the client makes goes through the global fetch; recording
// them shows what was sent on the wire and how many requests a call took.
const wire = { requests: [], limit: null };
const realFetch = globalThis.fetch;
globalThis.fetch = async (req, ...rest) => {
  wire.requests.push({ method: req.method, url: req.url });
  if (wire.limit !== null && wire.requests.length > wire.limit) {
    throw new CheckFailed(`more than ${wire.limit} requests; client is looping; requests: ${show(wire.requests.map((r) => r.url))}`);
  }
  return realFetch(req, ...rest);
};

function startWire(limit = null) {
  wire.requests = [];
  wire.limit = limit;
}

// expectError runs fn and returns the GitbeakerRequestError it throws.
async function expectError(fn, status) {
  let got;
  try {
    got = await fn();
  } catch (e) {
    expect(e instanceof GitbeakerRequestError, `threw ${e?.name}: ${e?.message}, want GitbeakerRequestError`);
    expectEq(e.cause?.response?.status, status, 'cause.response.status');
    return e;
  }
  throw new CheckFailed(`no error; got ${show(got)}`);
}

class Harness {
  constructor(fx) {
    this.fx = fx;
    this.url = fx.url.replace(/\/+$/, '');
    this.pat = fx.tokens.developer;
    this.pid = fx.project_id;
    this.path = fx.project_path;
    this.pipelineId = fx.pipeline_id;
    this.byStatus = fx.jobs_by_status;
    this.allIds = fx.all_build_ids;
    this.statusOf = new Map(fx.all_build_ids.map((id, i) => [id, fx.all_build_statuses[i]]));
    // The main pipeline's builds: one per status plus the two attempts of "flaky".
    this.pipelineLatest = new Set([...Object.values(this.byStatus), fx.retried_new_id]);
    this.pipelineAll = new Set([...this.pipelineLatest, fx.retried_old_id]);
    this.api = this.client({ token: this.pat });
    this.passed = 0;
    this.failed = 0;
  }

  client(auth) {
    return new Gitlab({ host: this.url, queryTimeout: 15000, ...auth });
  }

  idsWith(statuses, among = null) {
    return this.allIds.filter((id) => (among === null || among.has(id)) && statuses.includes(this.statusOf.get(id)));
  }

  desc(set) {
    return [...set].sort((a, b) => b - a);
  }

  async run(name, fn) {
    const started = Date.now();
    try {
      await fn.call(this);
      this.passed++;
      console.log(`PASS ${name}`);
    } catch (e) {
      this.failed++;
      if (e instanceof CheckFailed) {
        console.log(`FAIL ${name}: ${e.message}`);
      } else {
        let detail = `${e?.name}: ${e?.message}`;
        const status = e?.cause?.response?.status;
        if (status !== undefined) detail += ` (status ${status}, ${e.cause.request?.method} ${e.cause.request?.url})`;
        console.log(`FAIL ${name}: ${detail}`);
        console.error(String(e?.stack || e).split('\n').slice(0, 6).map((l) => `  | ${l}`).join('\n'));
      }
    } finally {
      startWire();
      const took = (Date.now() - started) / 1000;
      if (took > 1) console.error(`  (${name} took ${took.toFixed(1)}s)`);
    }
  }

  // ---- project jobs (Jobs.all) ---------------------------------------------

  async checkAllDefault() {
    // Auto-pagination is on by default: every page of 20 is followed.
    const pages = Math.max(1, Math.ceil(this.allIds.length / 20));
    startWire(pages + 1);
    const jobs = await this.api.Jobs.all(this.pid);
    expect(Array.isArray(jobs), `got ${show(jobs)}, want an array`);
    expectEq(jobs.map((j) => j.id), this.allIds, 'ids');
    expectEq(jobs.map((j) => j.status), this.allIds.map((id) => this.statusOf.get(id)), 'statuses');
    expectEq(wire.requests.length, pages, 'requests');
  }

  async checkAllPerPage() {
    const pages = Math.ceil(this.allIds.length / 4);
    startWire(pages + 1);
    const jobs = await this.api.Jobs.all(this.pid, { perPage: 4 });
    expectEq(jobs.map((j) => j.id), this.allIds, 'ids with perPage 4');
    expectEq(wire.requests.length, pages, 'requests');
    const followUps = wire.requests.slice(1).map((r) => new URL(r.url));
    expect(followUps.every((u) => u.searchParams.get('per_page') === '4'), `follow-ups lost per_page: ${show(wire.requests.map((r) => r.url))}`);
    expectEq(followUps.map((u) => u.searchParams.get('page')), followUps.map((_, i) => String(i + 2)), 'follow-up page numbers');
  }

  async checkAllSinglePage() {
    // An explicit page stops auto-pagination.
    startWire(1);
    const jobs = await this.api.Jobs.all(this.pid, { page: 2, perPage: 4 });
    expectEq(jobs.map((j) => j.id), this.allIds.slice(4, 8), 'ids of page 2 at 4 per page');
  }

  async checkAllMaxPages() {
    startWire(2);
    const jobs = await this.api.Jobs.all(this.pid, { perPage: 3, maxPages: 2 });
    expectEq(jobs.map((j) => j.id), this.allIds.slice(0, 6), 'ids with perPage 3, maxPages 2');
  }

  async checkOffsetWalk() {
    // Walk page by page with showExpanded, as a UI would.
    const perPage = 5;
    const pages = Math.ceil(this.allIds.length / perPage);
    const ids = [];
    let page = 1;
    for (let i = 0; i < pages + 1 && page; i++) {
      const { data, paginationInfo: pi } = await this.api.Jobs.all(this.pid, { page, perPage, showExpanded: true });
      ids.push(...data.map((j) => j.id));
      expectEq(pi.current, page, `paginationInfo.current on page ${page}`);
      expectEq(pi.perPage, perPage, `paginationInfo.perPage on page ${page}`);
      expectEq(pi.previous, page > 1 ? page - 1 : null, `paginationInfo.previous on page ${page}`);
      expectEq(pi.next, page < pages ? page + 1 : null, `paginationInfo.next on page ${page}`);
      // GitLab paginates this list without counting: no X-Total, no X-Total-Pages.
      expect(Number.isNaN(pi.total), `paginationInfo.total on page ${page} is ${pi.total}, want NaN (no X-Total on /projects/:id/jobs)`);
      expect(Number.isNaN(pi.totalPages), `paginationInfo.totalPages on page ${page} is ${pi.totalPages}, want NaN`);
      page = pi.next;
    }
    expect(!page, 'still a next page after walking every page');
    expectEq(ids, this.allIds, 'ids walked page by page');
  }

  async checkPastLastPage() {
    const page = Math.ceil(this.allIds.length / 5) + 1;
    const { data, paginationInfo: pi } = await this.api.Jobs.all(this.pid, { page, perPage: 5, showExpanded: true });
    expectEq(data, [], `page ${page} (past the end)`);
    expectEq(pi.next, null, 'paginationInfo.next');
  }

  async checkScopeSingle() {
    startWire();
    const jobs = await this.api.Jobs.all(this.pid, { scope: 'manual' });
    const q = new URL(wire.requests[0].url).search;
    expectEq(q, '?scope=manual', 'query sent');
    const want = this.idsWith(['manual']);
    expect(want.length > 0, 'fixture has no manual build');
    expectEq(jobs.map((j) => [j.id, j.status, j.name, j.stage, j.allow_failure]), want.map((id) => [id, 'manual', 'job-manual', 'deploy', true]),
      'scope=manual (id, status, name, stage, allow_failure)');
  }

  async checkScopeMany() {
    startWire();
    const jobs = await this.api.Jobs.all(this.pid, { scope: ['failed', 'success'] });
    const q = new URL(wire.requests[0].url).search;
    expectEq(q, '?scope%5B%5D=failed&scope%5B%5D=success', 'query sent');
    const want = this.idsWith(['failed', 'success']);
    expectEq(jobs.map((j) => [j.id, j.status]), want.map((id) => [id, this.statusOf.get(id)]), 'scope[]=failed&scope[]=success (id, status)');
  }

  async checkScopeManyPaginated() {
    // Follow-up requests rebuild their query from the Link URL: the scope must survive.
    const want = this.idsWith(['failed', 'success', 'canceled', 'manual']);
    startWire(Math.ceil(want.length / 2) + 1);
    const jobs = await this.api.Jobs.all(this.pid, { scope: ['failed', 'success', 'canceled', 'manual'], perPage: 2 });
    expectEq(jobs.map((j) => j.id), want, 'ids across pages');
    expectEq(wire.requests.length, Math.ceil(want.length / 2), 'requests');
  }

  async checkScopeInvalid() {
    const e = await expectError(() => this.api.Jobs.all(this.pid, { scope: ['failed', 'bogus'] }), 400);
    expectEq(e.cause.description, 'scope does not have a valid value', 'error');
  }

  async checkKeyset() {
    const pages = Math.ceil(this.allIds.length / 4);
    startWire(pages + 2);
    const jobs = await this.api.Jobs.all(this.pid, { pagination: 'keyset', orderBy: 'id', sort: 'desc', perPage: 4 });
    expectEq(jobs.map((j) => j.id), this.allIds, 'keyset ids (order_by=id, sort=desc, per_page=4)');
    const follow = wire.requests.slice(1).map((r) => new URL(r.url).searchParams);
    expect(follow.length >= pages - 1, `only ${wire.requests.length} requests for ${pages} pages`);
    expect(follow.every((p) => p.get('cursor') && p.get('pagination') === 'keyset' && p.get('per_page') === '4'),
      `follow-up keyset requests lost cursor, pagination or per_page: ${show(wire.requests.map((r) => r.url))}`);
  }

  async checkKeysetAsc() {
    // GitLab's keyset on jobs knows only id descending.
    const e = await expectError(() => this.api.Jobs.all(this.pid, { pagination: 'keyset', orderBy: 'id', sort: 'asc', perPage: 5 }), 405);
    expectEq(e.cause.description, 'Keyset pagination is not yet available for this type of request', 'error');
  }

  async checkByPath() {
    startWire();
    const jobs = await this.api.Jobs.all(this.path);
    expect(wire.requests[0].url.includes(`/projects/${encodeURIComponent(this.path)}/jobs`), `request ${wire.requests[0].url}`);
    expectEq(jobs.map((j) => j.id), this.allIds, `ids via ${this.path}`);
  }

  // ---- pipeline jobs and bridges --------------------------------------------

  async checkPipelineJobs() {
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.pipelineId });
    const ids = jobs.map((j) => j.id);
    expect(!ids.includes(this.fx.retried_old_id), `retried job ${this.fx.retried_old_id} listed without include_retried`);
    expectEq(ids, this.desc(this.pipelineLatest), 'pipeline job ids (latest only, id desc)');
    expect(jobs.every((j) => j.pipeline?.id === this.pipelineId), 'a job has another pipeline.id');
    const flaky = jobs.find((j) => j.id === this.fx.retried_new_id);
    expectEq([flaky.name, flaky.stage, flaky.status], ['flaky', 'test', 'success'], 'retry (name, stage, status)');
  }

  async checkPipelineJobsIncludeRetried() {
    startWire();
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.pipelineId, includeRetried: true });
    expect(new URL(wire.requests[0].url).searchParams.get('include_retried') === 'true', `query sent: ${wire.requests[0].url}`);
    expectEq(jobs.map((j) => j.id), this.desc(this.pipelineAll), 'pipeline job ids with include_retried');
    const old = jobs.find((j) => j.id === this.fx.retried_old_id);
    expectEq([old.name, old.status], ['flaky', 'failed'], 'retried attempt (name, status)');
  }

  async checkPipelineJobsScope() {
    startWire();
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.pipelineId, scope: ['failed', 'success'] });
    expectEq(new URL(wire.requests[0].url).search, '?scope%5B%5D=failed&scope%5B%5D=success', 'query sent');
    const want = this.idsWith(['failed', 'success'], this.pipelineLatest);
    expectEq(jobs.map((j) => [j.id, j.status]), want.map((id) => [id, this.statusOf.get(id)]), 'pipeline jobs scope (id, status)');
  }

  async checkPipelineJobsTotals() {
    // The pipeline lists are counted: X-Total and X-Total-Pages are present.
    const n = this.pipelineLatest.size;
    const perPage = 4;
    const pages = Math.ceil(n / perPage);
    const ids = [];
    for (let page = 1; page <= pages; page++) {
      const { data, paginationInfo: pi } = await this.api.Jobs.all(this.pid, { pipelineId: this.pipelineId, page, perPage, showExpanded: true });
      ids.push(...data.map((j) => j.id));
      expectEq([pi.total, pi.totalPages, pi.current, pi.next, pi.previous, pi.perPage],
        [n, pages, page, page < pages ? page + 1 : null, page > 1 ? page - 1 : null, perPage],
        `paginationInfo [total, totalPages, current, next, previous, perPage] on page ${page}`);
    }
    expectEq(ids, this.desc(this.pipelineLatest), 'ids walked page by page');
  }

  async checkPipelineMissing() {
    const e = await expectError(() => this.api.Jobs.all(this.pid, { pipelineId: MISSING_ID }), 404);
    expectEq(e.cause.description, '404 Not found', 'message');
  }

  async checkBridges() {
    const bridges = await this.api.Jobs.allPipelineBridges(this.pid, this.pipelineId);
    expectEq(bridges.map((b) => [b.id, b.name, b.stage, b.status]), [[this.fx.bridge_id, 'trigger-child', 'deploy', 'success']], 'bridges (id, name, stage, status)');
    const dp = bridges[0].downstream_pipeline;
    expect(dp && typeof dp === 'object', `downstream_pipeline is ${show(dp)}, want an object`);
    expectEq([dp.id, dp.status, dp.ref], [this.fx.downstream_pipeline_id, 'success', 'main'], 'downstream_pipeline (id, status, ref)');
    expectEq(bridges[0].pipeline?.id, this.pipelineId, 'pipeline.id');
  }

  async checkBridgesScope() {
    const ok = await this.api.Jobs.allPipelineBridges(this.pid, this.pipelineId, { scope: ['success', 'failed'] });
    expectEq(ok.map((b) => b.id), [this.fx.bridge_id], 'bridge ids with scope[]=success&scope[]=failed');
    const none = await this.api.Jobs.allPipelineBridges(this.pid, this.pipelineId, { scope: 'failed' });
    expectEq(none, [], 'bridges with scope=failed');
  }

  async checkKeysetByPath() {
    const pages = Math.ceil(this.allIds.length / 4);
    startWire(pages + 2);
    const jobs = await this.api.Jobs.all(this.path, { pagination: 'keyset', orderBy: 'id', sort: 'desc', perPage: 4 });
    expectEq(jobs.map((j) => j.id), this.allIds, `keyset ids via ${this.path}`);
    const want = `/api/v4/projects/${encodeURIComponent(this.path)}/jobs`;
    expect(wire.requests.every((r) => new URL(r.url).pathname === want), `requests left ${want}: ${show(wire.requests.map((r) => r.url))}`);
  }

  async checkBridgesTotals() {
    const { data, paginationInfo: pi } = await this.api.Jobs.allPipelineBridges(this.pid, this.pipelineId, { showExpanded: true });
    expectEq(data.map((b) => b.id), [this.fx.bridge_id], 'bridge ids');
    expectEq([pi.total, pi.totalPages, pi.current, pi.next], [1, 1, 1, null], 'paginationInfo [total, totalPages, current, next]');
  }

  // ---- single job and its log -------------------------------------------------

  async checkShow() {
    const id = this.byStatus.failed;
    const j = await this.api.Jobs.show(this.pid, id);
    expectEq([j.id, j.name, j.stage, j.status, j.ref, j.tag, j.failure_reason], [id, 'job-failed', 'test', 'failed', 'main', false, 'script_failure'],
      '(id, name, stage, status, ref, tag, failure_reason)');
    expectEq([j.pipeline?.id, j.pipeline?.project_id], [this.pipelineId, this.pid], '(pipeline.id, pipeline.project_id)');
    expectEq(j.web_url, `${this.url}/${this.path}/-/jobs/${id}`, 'web_url');
    expectEq(j.duration, 60.5, 'duration');
    expectEq(j.user?.username, 'alice', 'user.username');
    expectEq(j.runner?.description, 'shared-1', 'runner.description');
  }

  async checkShowSuccess() {
    const id = this.byStatus.success;
    const j = await this.api.Jobs.show(this.pid, id);
    expectEq([j.id, j.status, j.coverage, j.failure_reason], [id, 'success', 81.5, undefined], '(id, status, coverage, failure_reason)');
    expectEq(j.artifacts?.map((a) => a.file_type), ['archive', 'metadata', 'trace'], 'artifacts file types');
    expectEq(j.artifacts_file?.filename, 'artifacts.zip', 'artifacts_file.filename');
  }

  async checkShowCamelize() {
    const api = this.client({ token: this.pat, camelize: true });
    const j = await api.Jobs.show(this.pid, this.byStatus.failed);
    expectEq([j.failureReason, j.webUrl?.endsWith(`/-/jobs/${this.byStatus.failed}`)], ['script_failure', true], '(failureReason, webUrl) with camelize');
  }

  async checkShowMissing() {
    const e = await expectError(() => this.api.Jobs.show(this.pid, MISSING_ID), 404);
    expectEq(e.cause.description, '404 Not found', 'message');
  }

  async checkShowOtherProject() {
    // otto is a member of nothing: a private project does not exist for him.
    const api = this.client({ token: this.fx.tokens.outsider });
    const e = await expectError(() => api.Jobs.show(this.fx.other_project_id, this.fx.other_job_id), 404);
    expectEq(e.cause.description, '404 Project Not Found', 'message');
  }

  async checkShowLog() {
    const body = await this.api.Jobs.showLog(this.pid, this.byStatus.failed);
    expectEq(typeof body, 'string', 'type of showLog()');
    expectEq(body, this.fx.trace, 'trace');
  }

  async checkShowLogEmpty() {
    const body = await this.api.Jobs.showLog(this.pid, this.byStatus.created);
    expectEq(body, '', 'trace of a job without a log');
  }

  async checkShowLogStream() {
    const { data, status, headers } = await this.api.Jobs.showLog(this.pid, this.byStatus.failed, { asStream: true, showExpanded: true });
    expectEq(status, 200, 'status');
    expectEq(headers['content-type'], 'text/plain', 'content-type');
    const text = await new Response(data).text();
    expectEq(text, this.fx.trace, 'streamed trace');
  }

  // ---- authentication ---------------------------------------------------------

  async checkBadToken() {
    const api = this.client({ token: 'glpat-not-a-real-token-0000000000' });
    const e = await expectError(() => api.Jobs.all(this.pid), 401);
    expectEq(e.cause.description, '401 Unauthorized', 'message');
  }

  async checkGuestForbidden() {
    // A guest of a private project may not read its jobs.
    const api = this.client({ token: this.fx.tokens.guest });
    const e = await expectError(() => api.Jobs.all(this.pid), 403);
    expectEq(e.cause.description, '403 Forbidden', 'message');
  }

  async checkOAuthBearer() {
    const api = this.client({ oauthToken: this.pat });
    const jobs = await api.Jobs.all(this.pid);
    expectEq(jobs.map((j) => j.id), this.allIds, 'ids listed with authorization: Bearer');
  }

  async checkJobTokenLists() {
    // A job token may list its own project's jobs and a pipeline's jobs and bridges.
    const api = this.client({ jobToken: this.fx.job_token });
    const jobs = await api.Jobs.all(this.pid);
    expectEq(jobs.map((j) => j.id), this.allIds, 'project job ids with job-token');
    const pjobs = await api.Jobs.all(this.pid, { pipelineId: this.pipelineId });
    expectEq(pjobs.map((j) => j.id), this.desc(this.pipelineLatest), 'pipeline job ids with job-token');
    const bridges = await api.Jobs.allPipelineBridges(this.pid, this.pipelineId);
    expectEq(bridges.map((b) => b.id), [this.fx.bridge_id], 'bridge ids with job-token');
  }

  async checkJobTokenShowJob() {
    // GET /projects/:id/jobs/:job_id takes no job token: with one only, there is no user.
    const api = this.client({ jobToken: this.fx.job_token });
    const e = await expectError(() => api.Jobs.show(this.pid, this.byStatus.failed), 401);
    expectEq(e.cause.description, '401 Unauthorized', 'message');
  }

  async checkShowConnectedJob() {
    const api = this.client({ jobToken: this.fx.job_token });
    // gitbeaker 43.8 looks for the job token in Jobs.headers, where its own
    // constructor never puts it; without this line it throws before sending.
    api.Jobs.headers['job-token'] = this.fx.job_token;
    const j = await api.Jobs.showConnectedJob();
    expectEq([j.id, j.status, j.name, j.pipeline?.id], [this.byStatus.running, 'running', 'job-running', this.pipelineId], 'GET /job (id, status, name, pipeline.id)');
  }

  async checkShowConnectedJobFinished() {
    const api = this.client({ jobToken: this.fx.finished_job_token });
    api.Jobs.headers['job-token'] = this.fx.finished_job_token;
    await expectError(() => api.Jobs.showConnectedJob(), 401);
  }

  // ---- actions (these change the fixture: they run last) ----------------------

  async checkCancelPending() {
    const id = this.byStatus.pending;
    startWire();
    const { data: j, status } = await this.api.Jobs.cancel(this.pid, id, { showExpanded: true });
    expectEq(wire.requests[0].method, 'POST', 'method');
    expectEq(status, 201, 'HTTP status');
    expectEq([j.id, j.name, j.status], [id, 'job-pending', 'canceled'], '(id, name, status)');
    expect(j.finished_at, `finished_at is ${show(j.finished_at)}`);
    const again = await this.api.Jobs.show(this.pid, id);
    expectEq(again.status, 'canceled', 'status read back');
  }

  async checkCancelRunning() {
    // A running job is told to stop through its runner: canceling first.
    const id = this.byStatus.running;
    const j = await this.api.Jobs.cancel(this.pid, id);
    expectEq([j.id, j.status], [id, 'canceling'], '(id, status)');
  }

  async checkForceCancelDeveloper() {
    // force (a JSON boolean in gitbeaker's body) is for maintainers only.
    startWire();
    const e = await expectError(() => this.api.Jobs.cancel(this.pid, this.byStatus.canceling, { force: true }), 403);
    expectEq(e.cause.description, '403 Forbidden', 'message');
  }

  async checkForceCancelMaintainer() {
    const api = this.client({ token: this.fx.tokens.maintainer });
    const id = this.byStatus.canceling;
    const j = await api.Jobs.cancel(this.pid, id, { force: true });
    expectEq([j.id, j.status], [id, 'canceled'], '(id, status) after force cancel of a canceling job');
  }

  async checkEraseOthersJob() {
    // bob is a developer but the job is alice's: only maintainers erase others' jobs.
    const api = this.client({ token: this.fx.tokens.developer2 });
    const e = await expectError(() => api.Jobs.erase(this.pid, this.byStatus.failed), 403);
    expectEq(e.cause.description, '403 Forbidden', 'message');
  }

  async checkCancelFinished() {
    // Cancel is idempotent on a finished job: 201 with the job unchanged.
    const id = this.byStatus.success;
    const j = await this.api.Jobs.cancel(this.pid, id);
    expectEq([j.id, j.status], [id, 'success'], '(id, status)');
  }

  async checkRetry() {
    const id = this.byStatus.failed;
    const { data: j, status } = await this.api.Jobs.retry(this.pid, id, { showExpanded: true });
    expectEq(status, 201, 'HTTP status');
    expect(j.id > Math.max(...this.allIds), `retry id ${j.id} is not a new job`);
    expectEq([j.name, j.stage, j.ref, j.pipeline?.id], ['job-failed', 'test', 'main', this.pipelineId], 'new job (name, stage, ref, pipeline.id)');
    // The build stage still has open jobs (created, scheduled, ...): the new attempt waits.
    expectEq(j.status, 'created', 'new job status');
    expectEq(j.failure_reason, undefined, 'failure_reason of the new job');
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.pipelineId, includeRetried: true });
    const old = jobs.find((x) => x.id === id);
    expect(old, `the old attempt ${id} is no longer listed with include_retried`);
    const latest = await this.api.Jobs.all(this.pid, { pipelineId: this.pipelineId });
    const ids = latest.map((x) => x.id);
    expect(ids.includes(j.id) && !ids.includes(id), `latest pipeline jobs ${show(ids)} should have ${j.id} instead of ${id}`);
  }

  async checkRetryNotRetryable() {
    const e = await expectError(() => this.api.Jobs.retry(this.pid, this.byStatus.skipped), 403);
    expectEq(e.cause.description, '403 Forbidden - Job is not retryable', 'message');
  }

  async checkErase() {
    const id = this.byStatus.success;
    const { data: j, status } = await this.api.Jobs.erase(this.pid, id, { showExpanded: true });
    expectEq(status, 201, 'HTTP status');
    expectEq([j.id, j.status], [id, 'success'], '(id, status)');
    expectEq(j.erased_at, '2026-01-15T10:00:00.000Z', 'erased_at');
    expectEq(j.artifacts, [], 'artifacts after erase');
    const log = await this.api.Jobs.showLog(this.pid, id);
    expectEq(log, '', 'trace after erase');
  }

  async checkEraseRunning() {
    const e = await expectError(() => this.api.Jobs.erase(this.pid, this.byStatus.created), 403);
    expectEq(e.cause.description, '403 Forbidden - Job is not erasable!', 'message');
  }

  async checkPlay() {
    const id = this.byStatus.manual;
    startWire();
    const { data: j, status } = await this.api.Jobs.play(this.pid, id, { jobVariablesAttributes: [{ key: 'DEPLOY_TARGET', value: 'staging' }], showExpanded: true });
    const req = wire.requests[0];
    expectEq(req.method, 'POST', 'method');
    expectEq(status, 200, 'HTTP status');
    expectEq([j.id, j.name, j.status], [id, 'job-manual', 'pending'], '(id, name, status)');
  }

  async checkPlayUnplayable() {
    const e = await expectError(() => this.api.Jobs.play(this.pid, this.byStatus.failed), 400);
    expectEq(e.cause.description, '400 Bad request - Unplayable Job', 'message');
  }

  async checkActionsReadOnlyToken() {
    // read_api may read but not act.
    const api = this.client({ token: this.fx.tokens.readonly });
    const e = await expectError(() => api.Jobs.cancel(this.pid, this.byStatus.scheduled), 403);
    expect(/insufficient_scope|Forbidden/.test(e.cause.description), `message ${show(e.cause.description)}`);
  }

  static CHECKS = [
    ['project_jobs_all_auto_paginate', 'checkAllDefault'],
    ['project_jobs_all_per_page_4', 'checkAllPerPage'],
    ['project_jobs_all_explicit_page', 'checkAllSinglePage'],
    ['project_jobs_all_max_pages', 'checkAllMaxPages'],
    ['project_jobs_offset_walk_show_expanded', 'checkOffsetWalk'],
    ['project_jobs_past_last_page', 'checkPastLastPage'],
    ['project_jobs_scope_string', 'checkScopeSingle'],
    ['project_jobs_scope_array', 'checkScopeMany'],
    ['project_jobs_scope_array_paginated', 'checkScopeManyPaginated'],
    ['project_jobs_scope_invalid_400', 'checkScopeInvalid'],
    ['project_jobs_keyset_desc', 'checkKeyset'],
    ['project_jobs_keyset_asc', 'checkKeysetAsc'],
    ['project_jobs_by_path', 'checkByPath'],
    ['pipeline_jobs_excludes_retried', 'checkPipelineJobs'],
    ['pipeline_jobs_include_retried', 'checkPipelineJobsIncludeRetried'],
    ['pipeline_jobs_scope_array', 'checkPipelineJobsScope'],
    ['pipeline_jobs_totals', 'checkPipelineJobsTotals'],
    ['pipeline_jobs_missing_pipeline_404', 'checkPipelineMissing'],
    ['pipeline_bridges', 'checkBridges'],
    ['pipeline_bridges_totals', 'checkBridgesTotals'],
    ['pipeline_bridges_scope', 'checkBridgesScope'],
    ['project_jobs_keyset_by_path', 'checkKeysetByPath'],
    ['show_job', 'checkShow'],
    ['show_job_success_artifacts', 'checkShowSuccess'],
    ['show_job_camelize', 'checkShowCamelize'],
    ['show_job_404', 'checkShowMissing'],
    ['show_job_other_project_404', 'checkShowOtherProject'],
    ['show_log', 'checkShowLog'],
    ['show_log_empty', 'checkShowLogEmpty'],
    ['show_log_stream', 'checkShowLogStream'],
    ['bad_token_401', 'checkBadToken'],
    ['guest_403', 'checkGuestForbidden'],
    ['oauth_bearer_list', 'checkOAuthBearer'],
    ['job_token_lists', 'checkJobTokenLists'],
    ['job_token_show_job_401', 'checkJobTokenShowJob'],
    ['show_connected_job', 'checkShowConnectedJob'],
    ['show_connected_job_finished_401', 'checkShowConnectedJobFinished'],
    ['cancel_pending', 'checkCancelPending'],
    ['cancel_running', 'checkCancelRunning'],
    ['cancel_finished_unchanged', 'checkCancelFinished'],
    ['cancel_force_developer_403', 'checkForceCancelDeveloper'],
    ['cancel_force_maintainer', 'checkForceCancelMaintainer'],
    ['erase_others_job_403', 'checkEraseOthersJob'],
    ['cancel_read_api_token_403', 'checkActionsReadOnlyToken'],
    ['retry_failed', 'checkRetry'],
    ['retry_skipped_403', 'checkRetryNotRetryable'],
    ['erase_success', 'checkErase'],
    ['erase_created_403', 'checkEraseRunning'],
    ['play_manual_with_variables', 'checkPlay'],
    ['play_failed_400', 'checkPlayUnplayable'],
  ];

  async runAll(only) {
    for (const [name, method] of Harness.CHECKS) {
      if (only.length && !only.includes(name)) continue;
      await this.run(name, this[method]);
    }
  }
}

// readZipEntry returns one file of a zip archive (stored or deflated),
// read through the central directory; node has no zip reader of its own.
function readZipEntry(buf, name) {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  expect(eocd >= 0, 'not a zip archive');
  const entries = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  const names = [];
  for (let i = 0; i < entries; i++) {
    expect(buf.readUInt32LE(at) === 0x02014b50, 'bad central directory');
    const method = buf.readUInt16LE(at + 10);
    const size = buf.readUInt32LE(at + 20);
    const nameLen = buf.readUInt16LE(at + 28);
    const skip = nameLen + buf.readUInt16LE(at + 30) + buf.readUInt16LE(at + 32);
    const local = buf.readUInt32LE(at + 42);
    const entry = buf.toString('utf8', at + 46, at + 46 + nameLen);
    names.push(entry);
    if (entry === name) {
      const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
      const data = buf.subarray(start, start + size);
      return (method === 8 ? inflateRawSync(data) : data).toString('utf8');
    }
    at += 46 + skip;
  }
  throw new CheckFailed(`${name} is not in the archive (${show(names)})`);
}

// bodyBuffer reads a download: gitbeaker returns a Blob for binary
// Content-Types and a string for text/* (a single .txt file is text/plain,
// as Workhorse types entries by their extension).
async function bodyBuffer(b) {
  if (typeof b === 'string') return Buffer.from(b, 'utf8');
  expect(b && typeof b.arrayBuffer === 'function', `got ${show(b)}, want a Blob or a string`);
  return Buffer.from(await b.arrayBuffer());
}

// Scenario checks run against a live node whose pipeline the gantry runner
// executed; they share the Harness's counters and its PASS/FAIL lines.
class Scenario {
  constructor(sc, harness) {
    this.sc = sc;
    this.h = harness;
    this.url = sc.url.replace(/\/+$/, '');
    this.pid = sc.project_id;
    this.plid = sc.pipeline_id;
    this.jobs = sc.jobs;
    this.ids = sc.project_build_ids;
    this.statusOf = new Map(sc.project_build_ids.map((id, i) => [id, sc.project_build_statuses[i]]));
    this.api = this.client('developer');
  }

  client(role) {
    return new Gitlab({ host: this.url, queryTimeout: 15000, token: this.sc.tokens[role] });
  }

  jobClient() {
    const api = new Gitlab({ host: this.url, queryTimeout: 15000, jobToken: this.sc.job_token });
    api.Jobs.headers['job-token'] = this.sc.job_token; // gitbeaker 43.8's showConnectedJob looks there
    return api;
  }

  async waitStatus(id, done) {
    const deadline = Date.now() + 60000; // a guard against a hang, not a measurement
    for (;;) {
      const j = await this.api.Jobs.show(this.pid, id);
      if (done.includes(j.status) || Date.now() > deadline) return j;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // ---- lists ---------------------------------------------------------------

  async checkAllPages() {
    const pages = Math.ceil(this.ids.length / 5);
    startWire(pages + 1);
    const jobs = await this.api.Jobs.all(this.pid, { perPage: 5 });
    expectEq(jobs.map((j) => [j.id, j.status]), this.ids.map((id) => [id, this.statusOf.get(id)]), 'project jobs (id, status), every page');
    expectEq(wire.requests.length, pages, 'requests (Link rel="next" followed, none past the end)');
  }

  async checkOffsetHeaders() {
    const { data, paginationInfo: pi } = await this.api.Jobs.all(this.pid, { page: 1, perPage: 5, showExpanded: true });
    expectEq(data.map((j) => j.id), this.ids.slice(0, 5), 'first page');
    expectEq([pi.current, pi.next, pi.previous, pi.perPage], [1, 2, null, 5], 'paginationInfo [current, next, previous, perPage]');
    expect(Number.isNaN(pi.total), `paginationInfo.total ${pi.total}, want NaN (no X-Total on project jobs)`);
  }

  async checkKeyset() {
    // Link-only pagination: no X-Next-Page, only the cursor in rel="next".
    startWire(Math.ceil(this.ids.length / 5) + 1);
    const jobs = await this.api.Jobs.all(this.pid, { pagination: 'keyset', orderBy: 'id', sort: 'desc', perPage: 5 });
    expectEq(jobs.map((j) => j.id), this.ids, 'keyset ids');
    expect(wire.requests.slice(1).every((r) => r.url.includes('cursor=')), `follow-ups without a cursor: ${show(wire.requests.map((r) => r.url))}`);
  }

  async checkScope() {
    const jobs = await this.api.Jobs.all(this.pid, { scope: ['failed', 'canceled'] });
    const want = this.ids.filter((id) => ['failed', 'canceled'].includes(this.statusOf.get(id)));
    expectEq(jobs.map((j) => j.id), want, 'scope[]=failed&scope[]=canceled');
    expectEq([...new Set(jobs.map((j) => j.name))].sort(), ['broken', 'flaky', 'long'], 'names');
  }

  async checkByPath() {
    const jobs = await this.api.Jobs.all(this.sc.project_path, { perPage: 100 });
    expectEq(jobs.map((j) => j.id), this.ids, `ids via ${this.sc.project_path}`);
  }

  async checkPipelineJobs() {
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.plid });
    expectEq(jobs.map((j) => j.id), this.sc.pipeline_build_ids, 'ids (latest attempts)');
    const got = Object.fromEntries(jobs.map((j) => [j.name, [j.id, j.stage, j.status, j.allow_failure]]));
    const want = Object.fromEntries(Object.entries(this.jobs).map(([n, j]) => [n, [j.id, j.stage, j.status, j.allow_failure]]));
    expectEq(got, want, 'name -> [id, stage, status, allow_failure]');
  }

  async checkPipelineJobsRetried() {
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.plid, includeRetried: true });
    expectEq(jobs.map((j) => j.id), this.sc.pipeline_build_ids_with_retried, 'ids with include_retried');
    const old = jobs.find((j) => j.id === this.sc.retried_old_id);
    expectEq([old?.name, old?.status], ['broken', 'failed'], 'retried attempt');
  }

  async checkPipelineTotals() {
    const n = this.sc.pipeline_build_ids.length;
    const { paginationInfo: pi } = await this.api.Jobs.all(this.pid, { pipelineId: this.plid, page: 1, perPage: 5, showExpanded: true });
    expectEq([pi.total, pi.totalPages, pi.next], [n, Math.ceil(n / 5), 2], 'paginationInfo [total, totalPages, next]');
  }

  async checkPipelineScope() {
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.plid, scope: ['manual', 'skipped'] });
    expectEq(jobs.map((j) => [j.name, j.status]).sort(), [['approve', 'manual'], ['late', 'skipped']], 'scope manual, skipped');
  }

  async checkBridges() {
    const b = this.sc.bridge;
    const bridges = await this.api.Jobs.allPipelineBridges(this.pid, this.plid);
    expectEq(bridges.map((x) => [x.id, x.name, x.stage, x.status]), [[b.id, 'child', 'deploy', 'success']], 'bridges');
    const dp = bridges[0].downstream_pipeline;
    expectEq([dp?.id, dp?.status, dp?.source], [this.sc.child_pipeline_id, 'success', 'parent_pipeline'], 'downstream_pipeline');
  }

  async checkChildJobs() {
    const jobs = await this.api.Jobs.all(this.pid, { pipelineId: this.sc.child_pipeline_id });
    const c = this.sc.child_jobs['child-test'];
    expectEq(jobs.map((j) => [j.id, j.name, j.status]), [[c.id, 'child-test', 'success']], 'child pipeline jobs');
  }

  // ---- single jobs ---------------------------------------------------------

  async checkShowEach() {
    for (const [name, want] of Object.entries(this.jobs)) {
      const j = await this.api.Jobs.show(this.pid, want.id);
      expectEq([j.id, j.name, j.stage, j.status, j.allow_failure, j.ref, j.pipeline?.id, j.commit?.id],
        [want.id, name, want.stage, want.status, want.allow_failure, 'main', this.plid, this.sc.sha], `job ${name}`);
    }
  }

  async checkFailed() {
    const broken = await this.api.Jobs.show(this.pid, this.jobs.broken.id);
    expectEq([broken.status, broken.failure_reason, broken.allow_failure], ['failed', 'script_failure', false], 'broken');
    const flaky = await this.api.Jobs.show(this.pid, this.jobs.flaky.id);
    expectEq([flaky.status, flaky.failure_reason, flaky.allow_failure], ['failed', 'script_failure', true], 'flaky');
  }

  async checkFinishedFields() {
    const j = await this.api.Jobs.show(this.pid, this.sc.artifact_job_id);
    expectEq([j.runner?.id, j.user?.username, j.artifacts_file?.filename], [this.sc.runner_id, 'alice', this.sc.artifact_archive], '[runner.id, user.username, artifacts_file.filename]');
    expect(typeof j.duration === 'number' && j.started_at && j.finished_at, `duration ${j.duration}, started_at ${j.started_at}, finished_at ${j.finished_at}`);
    const types = j.artifacts.map((a) => a.file_type).sort();
    expect(types.includes('archive') && types.includes('trace'), `artifact types ${show(types)}`);
  }

  async checkTraces() {
    for (const [id, wants] of Object.entries(this.sc.traces)) {
      const log = await this.api.Jobs.showLog(this.pid, Number(id));
      expectEq(typeof log, 'string', `type of showLog(${id})`);
      for (const w of wants) expect(log.includes(w), `log of job ${id} lacks ${show(w)}`);
    }
  }

  async checkWhoamiLog() {
    const id = this.sc.whoami_job_id;
    const log = await this.api.Jobs.showLog(this.pid, id);
    const start = log.indexOf('{"id":');
    expect(start >= 0, `no JSON in the log: ${show(log)}`);
    // curl prints no newline: the runner's next command echo follows the object.
    let depth = 0;
    let end = start;
    for (; end < log.length; end++) {
      if (log[end] === '{') depth++;
      else if (log[end] === '}' && --depth === 0) break;
    }
    const seen = JSON.parse(log.slice(start, end + 1));
    expectEq([seen.id, seen.name, seen.status, seen.pipeline?.id], [id, 'whoami', 'running', this.plid], 'GET /job as the job saw it');
  }

  async checkOutcomes() {
    const canceled = await this.api.Jobs.show(this.pid, this.sc.canceled_job_id);
    expectEq([canceled.name, canceled.status], ['long', 'canceled'], 'canceled job');
    const played = await this.api.Jobs.show(this.pid, this.sc.played_job_id);
    expectEq([played.name, played.status], ['deploy', 'success'], 'played job');
    const log = await this.api.Jobs.showLog(this.pid, this.sc.played_job_id);
    expect(log.includes(`deploying to ${this.sc.played_value}`), 'the variable is not in the played job\'s log');
    const old = await this.api.Jobs.show(this.pid, this.sc.retried_old_id);
    const fresh = await this.api.Jobs.show(this.pid, this.sc.retried_new_id);
    expectEq([old.name, old.status, fresh.name, fresh.status], ['broken', 'failed', 'broken', 'failed'], 'attempts');
    const erased = await this.api.Jobs.show(this.pid, this.sc.erased_job_id);
    expect(erased.erased_at, 'erased_at unset');
    expectEq(erased.artifacts, [], 'erased job artifacts');
    expectEq(await this.api.Jobs.showLog(this.pid, this.sc.erased_job_id), '', 'erased job log');
  }

  // ---- artifacts and the test report ---------------------------------------------

  async checkArchive() {
    const buf = await bodyBuffer(await this.api.JobArtifacts.downloadArchive(this.pid, { jobId: this.sc.artifact_job_id }));
    expectEq(readZipEntry(buf, this.sc.artifact_path), this.sc.artifact_content, 'file in the archive');
  }

  async checkArtifactFile() {
    const buf = await bodyBuffer(await this.api.JobArtifacts.downloadArchive(this.pid, { jobId: this.sc.artifact_job_id, artifactPath: this.sc.artifact_path }));
    expectEq(buf.toString('utf8'), this.sc.artifact_content, 'single file');
  }

  async checkArtifactsByRef() {
    const opts = { ref: this.sc.stable_ref, job: this.sc.artifact_job_name };
    const zip = await bodyBuffer(await this.api.JobArtifacts.downloadArchive(this.pid, opts));
    expectEq(readZipEntry(zip, this.sc.artifact_path), this.sc.stable_artifact_content, 'file in the ref\'s archive');
    startWire();
    const one = await bodyBuffer(await this.api.JobArtifacts.downloadArchive(this.pid, { ...opts, artifactPath: this.sc.artifact_path }));
    expectEq(one.toString('utf8'), this.sc.stable_artifact_content, 'ref\'s single file (path sent as out%2Fresult.txt)');
    expect(wire.requests[0].url.includes('/raw/out%2Fresult.txt'), `sent ${wire.requests[0].url}`);
    await expectError(() => this.api.JobArtifacts.downloadArchive(this.pid, { ref: 'main', job: this.sc.artifact_job_name }), 404);
  }

  async checkArtifactsJobToken() {
    const api = this.jobClient();
    const buf = await bodyBuffer(await api.JobArtifacts.downloadArchive(this.pid, { jobId: this.sc.artifact_job_id, artifactPath: this.sc.artifact_path }));
    expectEq(buf.toString('utf8'), this.sc.artifact_content, 'single file with the running job\'s token');
  }

  async checkTestReport() {
    const r = await this.api.Pipelines.showTestReport(this.pid, this.plid);
    const w = this.sc.junit;
    expectEq([r.total_count, r.success_count, r.failed_count, r.skipped_count, r.error_count, r.total_time],
      [w.total_count, w.success_count, w.failed_count, w.skipped_count, w.error_count, w.total_time], 'totals');
    expectEq(r.test_suites.map((s) => s.name), [w.suite_name], 'suites');
  }

  // ---- tokens and roles ----------------------------------------------------

  async checkConnectedJob() {
    const j = await this.jobClient().Jobs.showConnectedJob();
    expectEq([j.id, j.name, j.status, j.pipeline?.id], [this.sc.job_token_job_id, 'hold', 'running', this.plid], 'GET /job');
  }

  async checkRoles() {
    for (const role of ['reporter', 'maintainer', 'root']) {
      const jobs = await this.client(role).Jobs.all(this.pid, { perPage: 100 });
      expectEq(jobs.map((j) => j.id), this.ids, `${role} lists`);
    }
    await expectError(() => this.client('guest').Jobs.all(this.pid), 403);
    await expectError(() => this.client('outsider').Jobs.show(this.pid, this.jobs.build.id), 404);
    await expectError(() => this.client('reporter').Jobs.retry(this.pid, this.sc.to_retry), 403);
    await expectError(() => this.client('reporter').Jobs.play(this.pid, this.sc.to_play), 403);
  }

  // ---- the client's own actions (last) ---------------------------------------

  async checkPlay() {
    const { data: j, status } = await this.api.Jobs.play(this.pid, this.sc.to_play,
      { jobVariablesAttributes: [{ key: 'APPROVAL', value: 'gitbeaker' }], showExpanded: true });
    expectEq([status, j.id, j.name], [200, this.sc.to_play, 'approve'], '[HTTP status, id, name]');
    expect(['pending', 'running', 'success'].includes(j.status), `status ${j.status}`);
    const done = await this.waitStatus(this.sc.to_play, ['success', 'failed']);
    expectEq(done.status, 'success', 'status once run');
    expect((await this.api.Jobs.showLog(this.pid, this.sc.to_play)).includes('approved with gitbeaker'), 'the variable is not in the log');
  }

  async checkRetry() {
    const { data: j, status } = await this.api.Jobs.retry(this.pid, this.sc.to_retry, { showExpanded: true });
    expectEq([status, j.name, j.stage, j.pipeline?.id], [201, 'broken', 'test', this.plid], '[HTTP status, name, stage, pipeline.id]');
    expect(j.id > Math.max(...this.ids), `retry id ${j.id} is not new`);
    const latest = await this.api.Jobs.all(this.pid, { pipelineId: this.plid });
    expect(latest.some((x) => x.id === j.id) && !latest.some((x) => x.id === this.sc.to_retry), 'latest attempts');
  }

  async checkCancel() {
    const j = await this.api.Jobs.cancel(this.pid, this.sc.to_cancel);
    expectEq(j.id, this.sc.to_cancel, 'id');
    expect(['canceling', 'canceled'].includes(j.status), `status ${j.status}`);
    expectEq((await this.waitStatus(this.sc.to_cancel, ['canceled'])).status, 'canceled', 'status once the runner stopped');
    await expectError(() => this.jobClient().Jobs.showConnectedJob(), 401);
  }

  async checkErase() {
    const { data: j, status } = await this.api.Jobs.erase(this.pid, this.sc.to_erase, { showExpanded: true });
    expectEq([status, j.id, j.status], [201, this.sc.to_erase, 'success'], '[HTTP status, id, status]');
    expect(j.erased_at, 'erased_at unset');
    expectEq(await this.api.Jobs.showLog(this.pid, this.sc.to_erase), '', 'log after erase');
    const e = await expectError(() => this.api.Jobs.erase(this.pid, this.sc.to_erase), 403);
    expectEq(e.cause.description, '403 Forbidden - Job is not erasable!', 'erasing again');
  }

  static CHECKS = [
    ['scenario_project_jobs_all_pages', 'checkAllPages'],
    ['scenario_project_jobs_offset_headers', 'checkOffsetHeaders'],
    ['scenario_project_jobs_keyset_link_only', 'checkKeyset'],
    ['scenario_project_jobs_scope', 'checkScope'],
    ['scenario_project_jobs_by_path', 'checkByPath'],
    ['scenario_pipeline_jobs', 'checkPipelineJobs'],
    ['scenario_pipeline_jobs_include_retried', 'checkPipelineJobsRetried'],
    ['scenario_pipeline_jobs_totals', 'checkPipelineTotals'],
    ['scenario_pipeline_jobs_scope', 'checkPipelineScope'],
    ['scenario_bridges', 'checkBridges'],
    ['scenario_child_pipeline_jobs', 'checkChildJobs'],
    ['scenario_show_each_job', 'checkShowEach'],
    ['scenario_failed_jobs', 'checkFailed'],
    ['scenario_finished_job_fields', 'checkFinishedFields'],
    ['scenario_traces', 'checkTraces'],
    ['scenario_whoami_log', 'checkWhoamiLog'],
    ['scenario_action_outcomes', 'checkOutcomes'],
    ['scenario_artifacts_archive', 'checkArchive'],
    ['scenario_artifact_file', 'checkArtifactFile'],
    ['scenario_artifacts_by_ref', 'checkArtifactsByRef'],
    ['scenario_artifacts_job_token', 'checkArtifactsJobToken'],
    ['scenario_test_report', 'checkTestReport'],
    ['scenario_show_connected_job', 'checkConnectedJob'],
    ['scenario_roles', 'checkRoles'],
    ['scenario_play_with_variables', 'checkPlay'],
    ['scenario_retry', 'checkRetry'],
    ['scenario_cancel', 'checkCancel'],
    ['scenario_erase', 'checkErase'],
  ];

  async runAll(only) {
    for (const [name, method] of Scenario.CHECKS) {
      if (only.length && !only.includes(name)) continue;
      await this.h.run(name, this[method].bind(this));
    }
  }
}

function parseArgs(argv) {
  const out = { fixture: null, scenario: null, only: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--fixture') out.fixture = argv[++i];
    else if (a === '--scenario') out.scenario = argv[++i];
    else if (a === '--only') out.only.push(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  if (!out.fixture) throw new Error('usage: jobs_conformance.mjs --fixture FILE [--scenario FILE] [--only CHECK]...');
  return out;
}

const args = parseArgs(process.argv.slice(2));
const fx = JSON.parse(readFileSync(args.fixture, 'utf8'));
const harness = new Harness(fx);
await harness.runAll(args.only);
if (args.scenario) await new Scenario(JSON.parse(readFileSync(args.scenario, 'utf8')), harness).runAll(args.only);
console.log(`${harness.passed} passed, ${harness.failed} failed`);
process.exitCode = harness.failed ? 1 : 0;
