#!/usr/bin/ruby
# frozen_string_literal: true

# Jobs API conformance checks for gantry, driven through the Ruby gitlab gem
# 4.17 (Debian's ruby-gitlab) and its `ruby-gitlab` CLI.
#
#   ruby conformance/ruby/jobs_conformance.rb --fixture fixture.json [--scenario scenario.json] [--only name]...
#
# The fixture is the JSON written by gantry/internal/testenv (Server.FixtureJSON);
# the scenario is the JSON written by gantry/internal/conformance/scenario
# (Document.JSON): a live node whose pipeline the gantry runner executed.
# Every check prints one line, `PASS name` or `FAIL name: detail`; the last line
# is `N passed, M failed` over both, and the exit status is 1 when anything failed.
#
# The gem sends every token of 21 or more characters as `Authorization: Bearer`,
# so all calls made with the fixture's personal access tokens take that path.
# In each phase the read-only checks run first; the actions (cancel, retry,
# erase, play) change the world and so run last, each on a job in a suitable status.

require 'json'
require 'open3'
require 'optparse'
require 'tmpdir'
require 'timeout'
require 'uri'
require 'zlib'

begin
  require 'gitlab'
rescue LoadError => e
  warn "cannot load the gitlab gem (#{e.message}); install Debian's ruby-gitlab"
  exit 2
end

MISSING_ID = 999_999_999
CLI_TIMEOUT = 30 # seconds, per CLI invocation

class CheckFailed < StandardError; end

def expect(cond, detail)
  raise CheckFailed, detail unless cond
end

def expect_eq(got, want, what)
  raise CheckFailed, "#{what}: got #{got.inspect}, want #{want.inspect}" unless got == want
end

# Wire records every request the gem makes (method, full URI, headers) and
# stops a client that keeps following links.
module Wire
  Request = Struct.new(:method, :uri, :headers)

  class << self
    attr_accessor :limit

    def requests
      @requests ||= []
    end

    def start(limit = nil)
      @requests = []
      @limit = limit
    end

    def record(response)
      req = response.request
      requests << Request.new(req.http_method.name.split('::').last.upcase, req.last_uri.to_s, req.options[:headers] || {})
      return unless limit && requests.size > limit

      raise CheckFailed, "more than #{limit} requests; client is looping; requests: #{requests.map(&:uri)}"
    end
  end

  # Prepended to Gitlab::Request: every response passes through validate.
  module Hook
    def validate(response)
      Wire.record(response)
      super
    end
  end
end
Gitlab::Request.prepend(Wire::Hook)

# run_cli runs the ruby-gitlab CLI against endpoint as token, with no
# configuration of its own.
def run_cli(endpoint, token, *args)
  exe = File.executable?('/usr/bin/ruby-gitlab') ? '/usr/bin/ruby-gitlab' : 'ruby-gitlab'
  Dir.mktmpdir('gantry-ruby-cli-home-') do |home|
    env = { 'HOME' => home, 'PATH' => '/usr/bin:/bin', 'LANG' => 'C.UTF-8',
            'GITLAB_API_ENDPOINT' => endpoint, 'GITLAB_API_PRIVATE_TOKEN' => token }
    Timeout.timeout(CLI_TIMEOUT) do
      out, err, st = Open3.capture3(env, exe, *args.map(&:to_s), chdir: home, unsetenv_others: true, stdin_data: '')
      return [out, err, st]
    end
  end
rescue Timeout::Error
  raise CheckFailed, "timed out after #{CLI_TIMEOUT}s: #{args.join(' ')}"
end

def run_cli_json(endpoint, token, *args)
  out, err, st = run_cli(endpoint, token, *args)
  expect(st.success?, "exit status #{st.exitstatus} (stdout #{out.strip.inspect}, stderr #{err.strip.inspect})")
  JSON.parse(out)
rescue JSON::ParserError => e
  raise CheckFailed, "output is not JSON (#{e.message}): #{out.inspect[0, 300]}"
end

class Harness
  attr_reader :passed, :failed

  CHECKS = [
    %w[project_jobs_first_page check_jobs_first_page],
    %w[project_jobs_auto_paginate_per_page_4 check_jobs_auto_paginate],
    %w[project_jobs_next_page_links check_jobs_next_page],
    %w[project_jobs_each_page check_jobs_each_page],
    %w[project_jobs_paginate_with_limit check_jobs_paginate_with_limit],
    %w[project_jobs_page_past_end check_jobs_past_end],
    %w[project_jobs_scope_string check_scope_string],
    %w[project_jobs_scope_array check_scope_array],
    %w[project_jobs_scope_invalid_400 check_scope_invalid],
    %w[project_jobs_keyset check_keyset],
    %w[project_jobs_by_path check_by_path],
    %w[project_jobs_by_path_paginated check_by_path_paginated],
    %w[bearer_header_for_long_token check_bearer_header],
    %w[short_token_private_token_401 check_short_token],
    %w[bad_bearer_token_401 check_bad_bearer],
    %w[guest_403 check_guest],
    %w[pipeline_jobs_excludes_retried check_pipeline_jobs],
    %w[pipeline_jobs_include_retried check_pipeline_jobs_include_retried],
    %w[pipeline_jobs_scope_array check_pipeline_jobs_scope],
    %w[pipeline_jobs_last_page_link check_pipeline_jobs_last_page],
    %w[pipeline_jobs_missing_pipeline_404 check_pipeline_missing],
    %w[pipeline_bridges check_pipeline_bridges],
    %w[job check_job],
    %w[job_404 check_job_missing],
    %w[job_other_project_404 check_job_other_project],
    %w[job_trace check_job_trace],
    %w[job_trace_empty check_job_trace_empty],
    %w[cli_jobs_scope check_cli_jobs_scope],
    %w[cli_job_only check_cli_job_only],
    %w[cli_pipeline_jobs_include_retried check_cli_pipeline_jobs],
    %w[cli_job_trace check_cli_job_trace],
    %w[cli_job_404 check_cli_job_missing],
    %w[job_cancel_pending check_cancel_pending],
    %w[job_cancel_running check_cancel_running],
    %w[job_retry_failed check_retry],
    %w[job_retry_skipped_403 check_retry_not_retryable],
    %w[job_erase_success check_erase],
    %w[job_erase_created_403 check_erase_not_erasable],
    %w[job_play_manual check_play],
    %w[job_play_failed_400 check_play_unplayable],
    %w[cli_job_cancel check_cli_cancel]
  ].freeze

  def initialize(fx)
    @fx = fx
    @url = fx['url'].sub(%r{/+\z}, '')
    @endpoint = "#{@url}/api/v4"
    @pat = fx['tokens']['developer']
    @pid = fx['project_id']
    @path = fx['project_path']
    @pipeline_id = fx['pipeline_id']
    @by_status = fx['jobs_by_status']
    @all_ids = fx['all_build_ids']
    @status_of = @all_ids.zip(fx['all_build_statuses']).to_h
    @trace = fx['trace'].b
    # The main pipeline's builds: one per status plus the two attempts of "flaky".
    @pipeline_latest = (@by_status.values + [fx['retried_new_id']]).sort.reverse
    @pipeline_all = (@pipeline_latest + [fx['retried_old_id']]).sort.reverse
    @gl = client(@pat)
    @passed = 0
    @failed = 0
  end

  def client(token)
    Gitlab.client(endpoint: @endpoint, private_token: token, httparty: { timeout: 15 })
  end

  def ids_with(statuses, among = nil)
    @all_ids.select { |i| (among.nil? || among.include?(i)) && statuses.include?(@status_of[i]) }
  end

  def query_of(req)
    URI.parse(req.uri).query
  end

  def expect_error(klass, status)
    got = yield
  rescue Gitlab::Error::ResponseError => e
    expect(e.is_a?(klass), "raised #{e.class}: #{e.message}, want #{klass}")
    expect_eq(e.response_status, status, 'response_status')
    e
  else
    raise CheckFailed, "no error; got #{got.inspect[0, 300]}"
  end

  def run(name, meth)
    meth.is_a?(Method) ? meth.call : send(meth)
    @passed += 1
    puts "PASS #{name}"
  rescue CheckFailed => e
    @failed += 1
    puts "FAIL #{name}: #{e.message}"
  rescue StandardError => e
    @failed += 1
    puts "FAIL #{name}: #{e.class}: #{e.message.lines.first&.strip}"
    warn(([e.full_message(highlight: false).lines.first] + e.backtrace.first(5)).map { |l| "  | #{l.chomp}" }.join("\n"))
  ensure
    $stdout.flush
    Wire.start
  end

  # ---- project jobs ----------------------------------------------------------

  def check_jobs_first_page
    jobs = @gl.jobs(@pid)
    expect(jobs.is_a?(Gitlab::PaginatedResponse), "got #{jobs.class}, want Gitlab::PaginatedResponse")
    expect_eq(jobs.map(&:id), @all_ids.first(20), 'ids on the first page (default per_page 20)')
    expect_eq(jobs.map(&:status), @all_ids.first(20).map { |i| @status_of[i] }, 'statuses')
    expect_eq(jobs.has_next_page?, @all_ids.size > 20, 'has_next_page?')
  end

  def check_jobs_auto_paginate
    pages = (@all_ids.size / 4.0).ceil
    Wire.start(pages + 1)
    ids = @gl.jobs(@pid, per_page: 4).auto_paginate.map(&:id)
    expect_eq(ids, @all_ids, 'ids with per_page 4, auto_paginate')
    expect_eq(Wire.requests.size, pages, 'requests')
    follow = Wire.requests.drop(1).map { |r| URI.decode_www_form(query_of(r) || '').to_h }
    expect(follow.all? { |q| q['per_page'] == '4' }, "follow-ups lost per_page: #{Wire.requests.map(&:uri)}")
    expect(Wire.requests.all? { |r| URI.parse(r.uri).path == "/api/v4/projects/#{@pid}/jobs" }, "a follow-up left the endpoint: #{Wire.requests.map(&:uri)}")
  end

  def check_jobs_next_page
    first = @gl.jobs(@pid, per_page: 4)
    expect_eq(first.map(&:id), @all_ids.first(4), 'page 1 ids')
    expect_eq([first.has_next_page?, first.has_prev_page?, first.has_first_page?], [true, false, true], '[next?, prev?, first?] on page 1')
    # GitLab counts nothing on this list: no rel="last".
    expect_eq(first.has_last_page?, false, 'has_last_page? (no rel="last" on /projects/:id/jobs)')
    second = first.next_page
    expect_eq(second.map(&:id), @all_ids[4, 4], 'page 2 ids')
    expect_eq(second.has_prev_page?, true, 'has_prev_page? on page 2')
    expect_eq(second.prev_page.map(&:id), @all_ids.first(4), 'prev_page of page 2')
    expect_eq(second.first_page.map(&:id), @all_ids.first(4), 'first_page of page 2')
  end

  def check_jobs_each_page
    sizes = []
    @gl.jobs(@pid, per_page: 6).each_page { |page| sizes << page.size }
    n = @all_ids.size
    want = Array.new(n / 6, 6)
    want << n % 6 if (n % 6).positive?
    expect_eq(sizes, want, 'page sizes with per_page 6')
  end

  def check_jobs_paginate_with_limit
    Wire.start(2)
    ids = @gl.jobs(@pid, per_page: 4).paginate_with_limit(6).map(&:id)
    expect_eq(ids, @all_ids.first(6), 'paginate_with_limit(6) ids')
  end

  def check_jobs_past_end
    page = (@all_ids.size / 5.0).ceil + 1
    jobs = @gl.jobs(@pid, per_page: 5, page: page)
    expect_eq(jobs.to_a, [], "page #{page} (past the end)")
    expect_eq(jobs.has_next_page?, false, 'has_next_page?')
  end

  def check_scope_string
    Wire.start
    jobs = @gl.jobs(@pid, scope: 'manual')
    expect_eq(query_of(Wire.requests.first), 'scope=manual', 'query sent')
    want = ids_with(%w[manual])
    expect(!want.empty?, 'fixture has no manual build')
    expect_eq(jobs.map { |j| [j.id, j.status, j.name, j.stage, j.allow_failure] }, want.map { |i| [i, 'manual', 'job-manual', 'deploy', true] },
              'scope=manual (id, status, name, stage, allow_failure)')
  end

  def check_scope_array
    Wire.start
    jobs = @gl.jobs(@pid, scope: %w[failed success], per_page: 100)
    expect_eq(query_of(Wire.requests.first), 'scope%5B%5D=failed&scope%5B%5D=success&per_page=100', 'query sent')
    want = ids_with(%w[failed success])
    expect_eq(jobs.map { |j| [j.id, j.status] }, want.map { |i| [i, @status_of[i]] }, 'scope[]=failed&scope[]=success (id, status)')
  end

  def check_scope_invalid
    e = expect_error(Gitlab::Error::BadRequest, 400) { @gl.jobs(@pid, scope: %w[failed bogus]) }
    expect(e.message.include?('scope does not have a valid value'), "message #{e.message.inspect}")
  end

  def check_keyset
    pages = (@all_ids.size / 4.0).ceil
    Wire.start(pages + 2)
    ids = @gl.jobs(@pid, pagination: 'keyset', order_by: 'id', sort: 'desc', per_page: 4).auto_paginate.map(&:id)
    expect_eq(ids, @all_ids, 'keyset ids (order_by=id, sort=desc, per_page=4)')
    follow = Wire.requests.drop(1).map { |r| URI.decode_www_form(query_of(r) || '').to_h }
    expect(follow.size >= pages - 1, "only #{Wire.requests.size} requests for #{pages} pages")
    expect(follow.all? { |q| q['cursor'] && q['per_page'] == '4' }, "follow-up keyset requests lost cursor or per_page: #{Wire.requests.map(&:uri)}")
  end

  def check_by_path
    Wire.start
    ids = @gl.jobs(@path, per_page: 100).map(&:id)
    want_path = "/api/v4/projects/#{@path.gsub('/', '%2F')}/jobs"
    expect_eq(URI.parse(Wire.requests.first.uri).path, want_path, 'path sent')
    expect_eq(ids, @all_ids, "ids via #{@path}")
  end

  def check_by_path_paginated
    # The gem follows Link URLs verbatim (less its endpoint path): the
    # project segment must stay encoded in them.
    pages = (@all_ids.size / 4.0).ceil
    Wire.start(pages + 1)
    ids = @gl.jobs(@path, per_page: 4).auto_paginate.map(&:id)
    expect_eq(ids, @all_ids, "ids via #{@path}, per_page 4")
    want_path = "/api/v4/projects/#{@path.gsub('/', '%2F')}/jobs"
    expect(Wire.requests.all? { |r| URI.parse(r.uri).path == want_path }, "requests left #{want_path}: #{Wire.requests.map(&:uri)}")
    Wire.start(pages + 2)
    pl = @gl.pipeline_jobs(@path, @pipeline_id, per_page: 4)
    expect_eq(pl.auto_paginate.map(&:id), @pipeline_latest, "pipeline job ids via #{@path}, per_page 4")
    expect_eq(pl.last_page.map(&:id), @pipeline_latest.drop(((@pipeline_latest.size - 1) / 4) * 4), 'last_page via path')
  end

  def check_bearer_header
    Wire.start
    @gl.job(@pid, @by_status['failed'])
    h = Wire.requests.first.headers
    expect_eq(h['Authorization'], "Bearer #{@pat}", 'Authorization header')
    expect_eq(h['PRIVATE-TOKEN'], nil, 'PRIVATE-TOKEN header')
    expect_eq(h['Content-Type'], 'application/x-www-form-urlencoded', 'Content-Type the gem sends on a GET')
  end

  def check_short_token
    Wire.start
    e = expect_error(Gitlab::Error::Unauthorized, 401) { client('glpat-short-bad').jobs(@pid) }
    expect_eq(Wire.requests.first.headers['PRIVATE-TOKEN'], 'glpat-short-bad', 'PRIVATE-TOKEN header for a short token')
    expect(e.message.include?('401 Unauthorized'), "message #{e.message.inspect}")
  end

  def check_bad_bearer
    expect_error(Gitlab::Error::Unauthorized, 401) { client('glpat-not-a-real-token-0000000000').jobs(@pid) }
  end

  def check_guest
    e = expect_error(Gitlab::Error::Forbidden, 403) { client(@fx['tokens']['guest']).jobs(@pid) }
    expect(e.message.include?('403 Forbidden'), "message #{e.message.inspect}")
  end

  # ---- pipeline jobs and bridges ------------------------------------------------

  def check_pipeline_jobs
    jobs = @gl.pipeline_jobs(@pid, @pipeline_id)
    ids = jobs.map(&:id)
    expect(!ids.include?(@fx['retried_old_id']), "retried job #{@fx['retried_old_id']} listed without include_retried: #{ids}")
    expect_eq(ids, @pipeline_latest, 'pipeline job ids (latest only, id desc)')
    expect(jobs.all? { |j| j.pipeline.id == @pipeline_id }, 'a job has another pipeline.id')
    flaky = jobs.find { |j| j.id == @fx['retried_new_id'] }
    expect_eq([flaky.name, flaky.stage, flaky.status], %w[flaky test success], 'retry (name, stage, status)')
  end

  def check_pipeline_jobs_include_retried
    Wire.start
    jobs = @gl.pipeline_jobs(@pid, @pipeline_id, include_retried: true)
    expect_eq(query_of(Wire.requests.first), 'include_retried=true', 'query sent')
    expect_eq(jobs.map(&:id), @pipeline_all, 'pipeline job ids with include_retried')
    old = jobs.find { |j| j.id == @fx['retried_old_id'] }
    expect_eq([old.name, old.status], %w[flaky failed], 'retried attempt (name, status)')
  end

  def check_pipeline_jobs_scope
    jobs = @gl.pipeline_jobs(@pid, @pipeline_id, scope: %w[failed success])
    want = ids_with(%w[failed success], @pipeline_latest)
    expect_eq(jobs.map { |j| [j.id, j.status] }, want.map { |i| [i, @status_of[i]] }, 'pipeline jobs scope (id, status)')
  end

  def check_pipeline_jobs_last_page
    # The pipeline lists are counted, so they link the last page.
    first = @gl.pipeline_jobs(@pid, @pipeline_id, per_page: 4)
    expect_eq(first.map(&:id), @pipeline_latest.first(4), 'page 1 ids')
    expect_eq(first.has_last_page?, true, 'has_last_page?')
    n = @pipeline_latest.size
    last_ids = @pipeline_latest.drop(((n - 1) / 4) * 4)
    expect_eq(first.last_page.map(&:id), last_ids, 'last_page ids')
    expect_eq(first.auto_paginate.map(&:id), @pipeline_latest, 'auto_paginate ids')
  end

  def check_pipeline_missing
    e = expect_error(Gitlab::Error::NotFound, 404) { @gl.pipeline_jobs(@pid, MISSING_ID) }
    expect(e.message.include?('404 Not found'), "message #{e.message.inspect}")
  end

  def check_pipeline_bridges
    bridges = @gl.pipeline_bridges(@pid, @pipeline_id)
    expect_eq(bridges.map { |b| [b.id, b.name, b.stage, b.status] }, [[@fx['bridge_id'], 'trigger-child', 'deploy', 'success']], 'bridges (id, name, stage, status)')
    dp = bridges.first.to_h['downstream_pipeline']
    expect(dp.is_a?(Hash), "downstream_pipeline is #{dp.inspect}, want an object")
    expect_eq([dp['id'], dp['status']], [@fx['downstream_pipeline_id'], 'success'], 'downstream_pipeline (id, status)')
  end

  # ---- single job and trace --------------------------------------------------------

  def check_job
    id = @by_status['failed']
    j = @gl.job(@pid, id)
    expect(j.is_a?(Gitlab::ObjectifiedHash), "got #{j.class}, want Gitlab::ObjectifiedHash")
    expect_eq([j.id, j.name, j.stage, j.status, j.ref, j.tag, j.failure_reason], [id, 'job-failed', 'test', 'failed', 'main', false, 'script_failure'],
              '(id, name, stage, status, ref, tag, failure_reason)')
    expect_eq([j.pipeline.id, j.pipeline.project_id], [@pipeline_id, @pid], '(pipeline.id, pipeline.project_id)')
    expect_eq(j.web_url, "#{@url}/#{@path}/-/jobs/#{id}", 'web_url')
    expect_eq(j.user.username, 'alice', 'user.username')
    expect_eq(j.tag_list, %w[docker linux], 'tag_list')
  end

  def check_job_missing
    e = expect_error(Gitlab::Error::NotFound, 404) { @gl.job(@pid, MISSING_ID) }
    expect(e.message.include?('404 Not found'), "message #{e.message.inspect}")
  end

  def check_job_other_project
    e = expect_error(Gitlab::Error::NotFound, 404) { client(@fx['tokens']['outsider']).job(@fx['other_project_id'], @fx['other_job_id']) }
    expect(e.message.include?('404 Project Not Found'), "message #{e.message.inspect}")
  end

  def check_job_trace
    Wire.start
    body = @gl.job_trace(@pid, @by_status['failed'])
    expect(body.is_a?(String), "job_trace returned #{body.class}, want String")
    expect_eq(Wire.requests.first.headers['Accept'], 'text/plain', 'Accept sent')
    expect_eq(body.b, @trace, 'trace bytes')
  end

  def check_job_trace_empty
    # HTTParty's parser turns an empty body into nil, against GitLab too.
    body = @gl.job_trace(@pid, @by_status['created'])
    expect(body.nil? || body == '', "trace of a job without a log: #{body.inspect}")
  end

  # ---- CLI -----------------------------------------------------------------------

  def cli(*args)
    run_cli(@endpoint, @pat, *args)
  end

  def cli_json(*args)
    run_cli_json(@endpoint, @pat, *args)
  end

  def check_cli_jobs_scope
    data = cli_json('jobs', @pid, "{scope: ['failed', 'success'], per_page: 100}", '--json', '--only=id,status')
    want = ids_with(%w[failed success])
    expect_eq(data['result'], want.map { |i| { 'id' => i, 'status' => @status_of[i] } }, 'CLI jobs scope (id, status)')
  end

  def check_cli_job_only
    id = @by_status['failed']
    data = cli_json('job', @pid, id, '--json', '--only=id,status,name,stage')
    expect_eq(data['result'], { 'id' => id, 'name' => 'job-failed', 'stage' => 'test', 'status' => 'failed' }, 'CLI job --only')
  end

  def check_cli_pipeline_jobs
    data = cli_json('pipeline_jobs', @pid, @pipeline_id, '{include_retried: true}', '--json', '--only=id')
    expect_eq(data['result'].map { |r| r['id'] }, @pipeline_all, 'CLI pipeline_jobs include_retried ids')
  end

  def check_cli_job_trace
    out, err, st = cli('job_trace', @pid, @by_status['failed'])
    expect(st.success?, "exit status #{st.exitstatus} (stderr #{err.strip.inspect})")
    # The CLI prints the string with puts, which adds the final newline.
    expect_eq(out.b, "#{@trace}\n".b, 'CLI trace output')
  end

  def check_cli_job_missing
    out, err, st = cli('job', @pid, MISSING_ID)
    expect(!st.success?, "exit status 0; output #{out.inspect}")
    expect((out + err).include?('Server responded with code 404, message: 404 Not found'), "output #{(out + err).inspect}")
  end

  def check_cli_cancel
    id = @by_status['scheduled']
    data = cli_json('job_cancel', @pid, id, '--json', '--only=id,status')
    expect_eq(data['result'], { 'id' => id, 'status' => 'canceled' }, 'CLI job_cancel of a scheduled job')
  end

  # ---- actions (these change the fixture: they run last) ------------------------------

  def check_cancel_pending
    id = @by_status['pending']
    Wire.start
    j = @gl.job_cancel(@pid, id)
    expect_eq(Wire.requests.first.method, 'POST', 'method')
    expect_eq([j.id, j.name, j.status], [id, 'job-pending', 'canceled'], '(id, name, status)')
    expect(j.finished_at, "finished_at is #{j.finished_at.inspect}")
    expect_eq(@gl.job(@pid, id).status, 'canceled', 'status read back')
  end

  def check_cancel_running
    id = @by_status['running']
    j = @gl.job_cancel(@pid, id)
    expect_eq([j.id, j.status], [id, 'canceling'], '(id, status)')
  end

  def check_retry
    id = @by_status['failed']
    j = @gl.job_retry(@pid, id)
    expect(j.id > @all_ids.max, "retry id #{j.id} is not a new job")
    expect_eq([j.name, j.stage, j.ref, j.pipeline.id], ['job-failed', 'test', 'main', @pipeline_id], 'new job (name, stage, ref, pipeline.id)')
    # The build stage still has open jobs (created, scheduled, ...): the new attempt waits.
    expect_eq(j.status, 'created', 'new job status')
    ids = @gl.pipeline_jobs(@pid, @pipeline_id).map(&:id)
    expect(ids.include?(j.id) && !ids.include?(id), "latest pipeline jobs #{ids} should have #{j.id} instead of #{id}")
  end

  def check_retry_not_retryable
    e = expect_error(Gitlab::Error::Forbidden, 403) { @gl.job_retry(@pid, @by_status['skipped']) }
    expect(e.message.include?('403 Forbidden - Job is not retryable'), "message #{e.message.inspect}")
  end

  def check_erase
    id = @by_status['success']
    j = @gl.job_erase(@pid, id)
    expect_eq([j.id, j.status, j.erased_at], [id, 'success', '2026-01-15T10:00:00.000Z'], '(id, status, erased_at)')
    expect_eq(j.artifacts, [], 'artifacts after erase')
  end

  def check_erase_not_erasable
    e = expect_error(Gitlab::Error::Forbidden, 403) { @gl.job_erase(@pid, @by_status['created']) }
    expect(e.message.include?('403 Forbidden - Job is not erasable!'), "message #{e.message.inspect}")
  end

  def check_play
    id = @by_status['manual']
    j = @gl.job_play(@pid, id)
    expect_eq([j.id, j.name, j.status], [id, 'job-manual', 'pending'], '(id, name, status)')
  end

  def check_play_unplayable
    e = expect_error(Gitlab::Error::BadRequest, 400) { @gl.job_play(@pid, @by_status['failed']) }
    expect(e.message.include?('400 Bad request - Unplayable Job'), "message #{e.message.inspect}")
  end

  def run_all(only)
    CHECKS.each do |name, meth|
      next if only.any? && !only.include?(name)

      run(name, meth)
    end
  end
end

# read_zip_entry returns one file of a zip archive (stored or deflated),
# read through the central directory; Ruby's standard library has no zip reader.
def read_zip_entry(data, name)
  data = data.b
  eocd = data.rindex("PK\x05\x06".b)
  expect(eocd, 'not a zip archive')
  count, at = data[eocd + 10, 2].unpack1('v'), data[eocd + 16, 4].unpack1('V')
  names = []
  count.times do
    expect(data[at, 4] == "PK\x01\x02".b, 'bad central directory')
    method = data[at + 10, 2].unpack1('v')
    size = data[at + 20, 4].unpack1('V')
    name_len, extra_len, comment_len = data[at + 28, 6].unpack('vvv')
    local = data[at + 42, 4].unpack1('V')
    entry = data[at + 46, name_len].force_encoding('UTF-8')
    names << entry
    if entry == name
      start = local + 30 + data[local + 26, 2].unpack1('v') + data[local + 28, 2].unpack1('v')
      raw = data[start, size]
      return (method == 8 ? Zlib::Inflate.new(-Zlib::MAX_WBITS).inflate(raw) : raw).force_encoding('UTF-8')
    end
    at += 46 + name_len + extra_len + comment_len
  end
  raise CheckFailed, "#{name} is not in the archive (#{names})"
end

# body_of reads a download: the gem returns a FileResponse for binary bodies
# and the parsed body (a String) otherwise.
def body_of(resp)
  return resp.read if resp.respond_to?(:read)
  return resp if resp.is_a?(String)

  raise CheckFailed, "got #{resp.class}: #{resp.inspect[0, 200]}"
end

# Scenario checks run against a live node whose pipeline the gantry runner
# executed; they share the Harness's counters and its PASS/FAIL lines.
class Scenario
  CHECKS = [
    %w[scenario_project_jobs_auto_paginate check_auto_paginate],
    %w[scenario_project_jobs_each_page check_each_page],
    %w[scenario_project_jobs_keyset check_keyset],
    %w[scenario_project_jobs_scope check_scope],
    %w[scenario_project_jobs_by_path check_by_path],
    %w[scenario_pipeline_jobs check_pipeline_jobs],
    %w[scenario_pipeline_jobs_include_retried check_pipeline_jobs_retried],
    %w[scenario_pipeline_jobs_scope check_pipeline_scope],
    %w[scenario_bridges check_bridges],
    %w[scenario_child_pipeline_jobs check_child_jobs],
    %w[scenario_job_each check_job_each],
    %w[scenario_failed_jobs check_failed],
    %w[scenario_finished_job_fields check_finished_fields],
    %w[scenario_traces check_traces],
    %w[scenario_whoami_log check_whoami_log],
    %w[scenario_action_outcomes check_outcomes],
    %w[scenario_job_artifacts check_job_artifacts],
    %w[scenario_job_artifact_file check_artifact_file],
    %w[scenario_artifacts_by_ref check_artifacts_by_ref],
    %w[scenario_test_report check_test_report],
    %w[scenario_roles check_roles],
    %w[scenario_cli check_cli],
    %w[scenario_job_play check_play],
    %w[scenario_job_retry check_retry],
    %w[scenario_job_cancel check_cancel],
    %w[scenario_job_erase check_erase]
  ].freeze

  def initialize(sc, harness)
    @sc = sc
    @h = harness
    @endpoint = "#{sc['url'].sub(%r{/+\z}, '')}/api/v4"
    @pid = sc['project_id']
    @plid = sc['pipeline_id']
    @jobs = sc['jobs']
    @ids = sc['project_build_ids']
    @status_of = @ids.zip(sc['project_build_statuses']).to_h
    @gl = client('developer')
  end

  def client(role)
    Gitlab.client(endpoint: @endpoint, private_token: @sc['tokens'][role], httparty: { timeout: 15 })
  end

  def job_id(name)
    @jobs.fetch(name)['id']
  end

  def wait_status(id, done)
    deadline = Time.now + 60 # a guard against a hang, not a measurement
    loop do
      j = @gl.job(@pid, id)
      return j if done.include?(j.status) || Time.now > deadline

      sleep 0.05
    end
  end

  def expect_error(klass, status, &block)
    @h.expect_error(klass, status, &block)
  end

  # ---- lists ---------------------------------------------------------------

  def check_auto_paginate
    pages = (@ids.size / 5.0).ceil
    Wire.start(pages + 1)
    jobs = @gl.jobs(@pid, per_page: 5).auto_paginate
    expect_eq(jobs.map { |j| [j.id, j.status] }, @ids.map { |i| [i, @status_of[i]] }, 'project jobs [id, status], every page')
    expect_eq(Wire.requests.size, pages, 'requests (Link rel="next" followed, none past the end)')
  end

  def check_each_page
    sizes = []
    @gl.jobs(@pid, per_page: 5).each_page { |page| sizes << page.size }
    expect_eq(sizes.sum, @ids.size, 'jobs over every page')
    expect_eq(sizes, [5] * (@ids.size / 5) + [@ids.size % 5].reject(&:zero?), 'page sizes')
  end

  def check_keyset
    Wire.start((@ids.size / 5.0).ceil + 1)
    ids = @gl.jobs(@pid, pagination: 'keyset', order_by: 'id', sort: 'desc', per_page: 5).auto_paginate.map(&:id)
    expect_eq(ids, @ids, 'keyset ids')
    expect(Wire.requests.drop(1).all? { |r| r.uri.include?('cursor=') }, "follow-ups without a cursor: #{Wire.requests.map(&:uri)}")
  end

  def check_scope
    jobs = @gl.jobs(@pid, scope: %w[failed canceled], per_page: 100)
    expect_eq(jobs.map(&:id), @ids.select { |i| %w[failed canceled].include?(@status_of[i]) }, 'scope[]=failed&scope[]=canceled')
    expect_eq(jobs.map(&:name).uniq.sort, %w[broken flaky long], 'names')
  end

  def check_by_path
    ids = @gl.jobs(@sc['project_path'], per_page: 100).map(&:id)
    expect_eq(ids, @ids, "ids via #{@sc['project_path']}")
  end

  def check_pipeline_jobs
    jobs = @gl.pipeline_jobs(@pid, @plid, per_page: 100)
    expect_eq(jobs.map(&:id), @sc['pipeline_build_ids'], 'ids (latest attempts)')
    got = jobs.to_h { |j| [j.name, [j.id, j.stage, j.status, j.allow_failure]] }
    want = @jobs.transform_values { |j| [j['id'], j['stage'], j['status'], j['allow_failure']] }
    expect_eq(got, want, 'name -> [id, stage, status, allow_failure]')
  end

  def check_pipeline_jobs_retried
    jobs = @gl.pipeline_jobs(@pid, @plid, include_retried: true, per_page: 100)
    expect_eq(jobs.map(&:id), @sc['pipeline_build_ids_with_retried'], 'ids with include_retried')
    old = jobs.find { |j| j.id == @sc['retried_old_id'] }
    expect_eq([old&.name, old&.status], %w[broken failed], 'retried attempt')
  end

  def check_pipeline_scope
    jobs = @gl.pipeline_jobs(@pid, @plid, scope: %w[manual skipped])
    expect_eq(jobs.map { |j| [j.name, j.status] }.sort, [%w[approve manual], %w[late skipped]], 'scope manual, skipped')
  end

  def check_bridges
    b = @sc['bridge']
    bridges = @gl.pipeline_bridges(@pid, @plid)
    expect_eq(bridges.map { |x| [x.id, x.name, x.stage, x.status] }, [[b['id'], 'child', 'deploy', 'success']], 'bridges')
    dp = bridges.first.downstream_pipeline
    expect_eq([dp.id, dp.status, dp.source], [@sc['child_pipeline_id'], 'success', 'parent_pipeline'], 'downstream_pipeline')
  end

  def check_child_jobs
    c = @sc['child_jobs']['child-test']
    jobs = @gl.pipeline_jobs(@pid, @sc['child_pipeline_id'])
    expect_eq(jobs.map { |j| [j.id, j.name, j.status] }, [[c['id'], 'child-test', 'success']], 'child pipeline jobs')
  end

  # ---- single jobs ---------------------------------------------------------

  def check_job_each
    @jobs.each do |name, want|
      j = @gl.job(@pid, want['id'])
      expect_eq([j.id, j.name, j.stage, j.status, j.allow_failure, j.ref, j.pipeline.id, j.commit.id],
                [want['id'], name, want['stage'], want['status'], want['allow_failure'], 'main', @plid, @sc['sha']], "job #{name}")
    end
  end

  def check_failed
    broken = @gl.job(@pid, job_id('broken'))
    expect_eq([broken.status, broken.failure_reason, broken.allow_failure], ['failed', 'script_failure', false], 'broken')
    flaky = @gl.job(@pid, job_id('flaky'))
    expect_eq([flaky.status, flaky.failure_reason, flaky.allow_failure], ['failed', 'script_failure', true], 'flaky')
  end

  def check_finished_fields
    j = @gl.job(@pid, @sc['artifact_job_id'])
    expect_eq([j.runner.id, j.user.username, j.artifacts_file.filename], [@sc['runner_id'], 'alice', @sc['artifact_archive']],
              '[runner.id, user.username, artifacts_file.filename]')
    expect(j.duration.is_a?(Float) && j.started_at && j.finished_at, "duration #{j.duration.inspect}")
    types = j.artifacts.map { |a| a['file_type'] }.sort
    expect(types.include?('archive') && types.include?('trace'), "artifact types #{types}")
  end

  def check_traces
    @sc['traces'].each do |id, wants|
      log = @gl.job_trace(@pid, id.to_i)
      expect(log.is_a?(String), "job_trace(#{id}) returned #{log.class}")
      wants.each { |w| expect(log.include?(w), "log of job #{id} lacks #{w.inspect}") }
    end
  end

  def check_whoami_log
    id = @sc['whoami_job_id']
    log = @gl.job_trace(@pid, id)
    start = log.index('{"id":')
    expect(start, "no JSON in the log: #{log.inspect}")
    # curl prints no newline: the runner's next command echo follows the object.
    seen = JSON.parse(log[start..][/\A\{.*?\}(?=\e|\n|\z)/m] || '')
    expect_eq([seen['id'], seen['name'], seen['status'], seen.dig('pipeline', 'id')], [id, 'whoami', 'running', @plid], 'GET /job as the job saw it')
  rescue JSON::ParserError => e
    raise CheckFailed, "the answer in the log is not JSON: #{e.message}"
  end

  def check_outcomes
    canceled = @gl.job(@pid, @sc['canceled_job_id'])
    expect_eq([canceled.name, canceled.status], %w[long canceled], 'canceled job')
    played = @gl.job(@pid, @sc['played_job_id'])
    expect_eq([played.name, played.status], %w[deploy success], 'played job')
    expect(@gl.job_trace(@pid, @sc['played_job_id']).include?("deploying to #{@sc['played_value']}"), 'the variable is not in the played job\'s log')
    old, fresh = @gl.job(@pid, @sc['retried_old_id']), @gl.job(@pid, @sc['retried_new_id'])
    expect_eq([old.name, old.status, fresh.name, fresh.status], %w[broken failed broken failed], 'attempts')
    erased = @gl.job(@pid, @sc['erased_job_id'])
    expect(erased.erased_at, 'erased_at unset')
    expect_eq(erased.artifacts, [], 'erased job artifacts')
    expect_eq(@gl.job_trace(@pid, @sc['erased_job_id']).to_s, '', 'erased job log')
  end

  # ---- artifacts and the test report ---------------------------------------------

  def check_job_artifacts
    zip = body_of(@gl.job_artifacts(@pid, @sc['artifact_job_id']))
    expect_eq(read_zip_entry(zip, @sc['artifact_path']), @sc['artifact_content'], 'file in the archive')
  end

  # single_file calls one of the gem's single-file downloads. The gem 4.17
  # returns a file only for a body tagged ASCII-8BIT and parses anything
  # else as JSON; HTTParty here tags every body UTF-8, so the method raises
  # Gitlab::Error::Parsing against GitLab as well. Then the same request is
  # sent through the gem's client (its URL, auth and headers) with a parser
  # that keeps the body, so the bytes are still checked.
  def single_file(path, query = {})
    body_of(yield)
  rescue Gitlab::Error::Parsing
    @gl.get(path, query: query, format: nil, headers: { Accept: 'application/octet-stream' }, parser: proc { |body, _| body })
  end

  def check_artifact_file
    id, path = @sc['artifact_job_id'], @sc['binary_artifact_path']
    body = single_file("/projects/#{@pid}/jobs/#{id}/artifacts/#{path}") { @gl.download_job_artifact_file(@pid, id, path) }
    expect_eq(body, @sc['binary_artifact_content'], 'single file')
  end

  def check_artifacts_by_ref
    ref, name, path = @sc['stable_ref'], @sc['artifact_job_name'], @sc['binary_artifact_path']
    zip = body_of(@gl.job_artifacts_download(@pid, ref, name))
    expect_eq(read_zip_entry(zip, @sc['artifact_path']), @sc['stable_artifact_content'], 'file in the ref\'s archive')
    one = single_file("/projects/#{@pid}/jobs/artifacts/#{ref}/raw/#{path}", job: name) { @gl.download_branch_artifact_file(@pid, ref, path, name) }
    expect_eq(one, @sc['stable_binary_content'], 'ref\'s single file')
    expect_error(Gitlab::Error::NotFound, 404) { @gl.job_artifacts_download(@pid, 'main', name) }
  end

  def check_test_report
    r = @gl.pipeline_test_report(@pid, @plid)
    w = @sc['junit']
    keys = %w[total_count success_count failed_count skipped_count error_count total_time]
    expect_eq(keys.map { |k| r.to_h[k] }, keys.map { |k| w[k] }, 'totals')
    expect_eq(r.test_suites.map { |s| s['name'] }, [w['suite_name']], 'suites')
  end

  # ---- roles and the CLI ---------------------------------------------------

  def check_roles
    %w[reporter maintainer root].each do |role|
      expect_eq(client(role).jobs(@pid, per_page: 100).map(&:id), @ids, "#{role} lists")
    end
    expect_error(Gitlab::Error::Forbidden, 403) { client('guest').jobs(@pid) }
    expect_error(Gitlab::Error::NotFound, 404) { client('outsider').job(@pid, job_id('build')) }
    expect_error(Gitlab::Error::Forbidden, 403) { client('reporter').job_retry(@pid, @sc['to_retry']) }
  end

  def check_cli
    dev = @sc['tokens']['developer']
    data = run_cli_json(@endpoint, dev, 'pipeline_jobs', @pid, @plid, "{scope: ['manual']}", '--json', '--only=id,name,status')
    expect_eq(data['result'], [{ 'id' => job_id('approve'), 'name' => 'approve', 'status' => 'manual' }], 'CLI pipeline_jobs scope manual')
    data = run_cli_json(@endpoint, dev, 'job', @pid, @sc['played_job_id'], '--json', '--only=id,name,status')
    expect_eq(data['result'], { 'id' => @sc['played_job_id'], 'name' => 'deploy', 'status' => 'success' }, 'CLI job')
    out, err, st = run_cli(@endpoint, dev, 'job_trace', @pid, @sc['played_job_id'])
    expect(st.success? && out.include?("deploying to #{@sc['played_value']}"), "CLI job_trace: #{out.inspect[0, 200]} #{err.inspect[0, 200]}")
  end

  # ---- the client's own actions (last) ---------------------------------------

  def check_play
    j = @gl.job_play(@pid, @sc['to_play'])
    expect_eq([j.id, j.name], [@sc['to_play'], 'approve'], '[id, name]')
    expect(%w[pending running success].include?(j.status), "status #{j.status}")
    expect_eq(wait_status(@sc['to_play'], %w[success failed]).status, 'success', 'status once run')
    expect(@gl.job_trace(@pid, @sc['to_play']).include?('approved with nothing'), 'played job log')
  end

  def check_retry
    j = @gl.job_retry(@pid, @sc['to_retry'])
    expect_eq([j.name, j.stage, j.pipeline.id], ['broken', 'test', @plid], '[name, stage, pipeline.id]')
    expect(j.id > @ids.max, "retry id #{j.id} is not new")
    ids = @gl.pipeline_jobs(@pid, @plid, per_page: 100).map(&:id)
    expect(ids.include?(j.id) && !ids.include?(@sc['to_retry']), "latest attempts #{ids}")
  end

  def check_cancel
    j = @gl.job_cancel(@pid, @sc['to_cancel'])
    expect_eq(j.id, @sc['to_cancel'], 'id')
    expect(%w[canceling canceled].include?(j.status), "status #{j.status}")
    expect_eq(wait_status(@sc['to_cancel'], %w[canceled]).status, 'canceled', 'status once the runner stopped')
  end

  def check_erase
    j = @gl.job_erase(@pid, @sc['to_erase'])
    expect_eq([j.id, j.status], [@sc['to_erase'], 'success'], '[id, status]')
    expect(j.erased_at, 'erased_at unset')
    expect_eq(@gl.job_trace(@pid, @sc['to_erase']).to_s, '', 'log after erase')
    e = expect_error(Gitlab::Error::Forbidden, 403) { @gl.job_erase(@pid, @sc['to_erase']) }
    expect(e.message.include?('403 Forbidden - Job is not erasable!'), "message #{e.message.inspect}")
  end

  def run_all(only)
    CHECKS.each do |name, meth|
      next if only.any? && !only.include?(name)

      @h.run(name, method(meth))
    end
  end
end

opts = { only: [] }
OptionParser.new do |o|
  o.banner = 'usage: jobs_conformance.rb --fixture FILE [--scenario FILE] [--only CHECK]...'
  o.on('--fixture FILE', 'fixture JSON written by gantry/internal/testenv') { |v| opts[:fixture] = v }
  o.on('--scenario FILE', 'scenario JSON written by gantry/internal/conformance/scenario') { |v| opts[:scenario] = v }
  o.on('--only CHECK', 'run only this check (repeatable)') { |v| opts[:only] << v }
end.parse!
abort 'missing --fixture' unless opts[:fixture]
$stdout.sync = true
harness = Harness.new(JSON.parse(File.read(opts[:fixture])))
harness.run_all(opts[:only])
Scenario.new(JSON.parse(File.read(opts[:scenario])), harness).run_all(opts[:only]) if opts[:scenario]
puts "#{harness.passed} passed, #{harness.failed} failed"
exit harness.failed.zero? ? 0 : 1
