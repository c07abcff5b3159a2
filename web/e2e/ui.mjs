// Browser checks of gantry's web UI: Debian's chromium driven headless by
// playwright-core, against a live gantry node with a real runner that the
// Go test (internal/conformance/browser) starts and describes in --fixture.
// Prints PASS/FAIL per check and a last "N passed, M failed" line.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const fx = JSON.parse(readFileSync(process.argv[process.argv.indexOf("--fixture") + 1], "utf8"));
const TIMEOUT = 20000;
let passed = 0, failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`PASS ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${String(e && e.message || e).split("\n")[0]}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

async function signIn(page, username, password) {
  await page.goto(fx.url + "/users/sign_in");
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL(fx.url + "/");
}

const browser = await chromium.launch({ executablePath: fx.chromium, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const ctx = await browser.newContext({ acceptDownloads: true });
  ctx.setDefaultTimeout(TIMEOUT);
  const page = await ctx.newPage();
  const job = (id) => `${fx.url}/${fx.project}/-/jobs/${id}`;

  await check("sign in with a password", async () => {
    await signIn(page, fx.admin.username, fx.admin.password);
    const who = await page.locator(".who").innerText();
    assert(who.includes(`Signed in as ${fx.admin.username}`), `header says ${JSON.stringify(who)}`);
  });

  await check("open the pipeline from the project's pipelines", async () => {
    await page.goto(`${fx.url}/${fx.project}`);
    await page.getByRole("link", { name: `#${fx.pipeline_id}`, exact: true }).click();
    await page.waitForURL(`${fx.url}/${fx.project}/-/pipelines/${fx.pipeline_id}`);
    for (const stage of ["build", "test", "deploy"]) {
      await page.getByRole("heading", { name: stage, exact: true }).waitFor();
    }
    const graph = await page.locator(".graph").innerText();
    assert(graph.includes("slow") && graph.includes("needs: build"), `graph: ${graph}`);
  });

  await check("watch a running job's log grow live", async () => {
    await page.goto(job(fx.slow_job_id));
    await page.locator("#log-live").waitFor();
    const lines = () => page.locator("#log .ln").count();
    const before = await lines();
    // New lines arrive over the event stream, with no reload.
    await page.evaluate(() => { window.__samePage = true; });
    await page.waitForFunction((n) => document.querySelectorAll("#log .ln").length > n + 2, before);
    assert(await page.evaluate(() => window.__samePage === true), "the page reloaded");
    const last = await page.locator("#log .ln:not(.partial)").last().innerText();
    assert(/tick \d+/.test(last), `last line ${JSON.stringify(last)}`);
  });

  await check("press cancel and see the job stop", async () => {
    await page.locator("#job-cancel").click();
    await page.waitForURL(job(fx.slow_job_id));
    await page.locator("h1 .st-canceled, h1 .st-canceling").first().waitFor();
    await page.locator("h1 .st-canceled").waitFor();
    assert(await page.locator("#job-cancel").count() === 0, "cancel is still offered");
  });

  await check("play a manual job with a variable", async () => {
    await page.goto(job(fx.deploy_job_id));
    await page.getByLabel("Key 1").fill("GREETING");
    await page.getByLabel("Value 1").fill("hello-from-the-browser");
    await page.locator("#job-play").click();
    await page.waitForURL(job(fx.deploy_job_id));
    await page.locator("h1 .st-success, h1 .st-failed").first().waitFor({ timeout: 60000 })
      .catch(async (e) => { throw new Error(`${e.message}; page shows ${JSON.stringify(await page.locator("main").innerText())}`); });
    const log = await page.locator("#log").innerText();
    assert(await page.locator("h1 .st-success").count() === 1, `the job did not succeed: ${log.slice(-300)}`);
    assert(log.includes("deploying with GREETING=hello-from-the-browser"), `log: ${log.slice(-300)}`);
  });

  await check("download an artifact", async () => {
    await page.goto(job(fx.build_job_id));
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#artifacts-download").click()]);
    const stream = await download.createReadStream();
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const zip = Buffer.concat(chunks);
    assert(zip.subarray(0, 2).toString() === "PK", "not a zip");
    assert(zip.includes(Buffer.from("out/result.txt")), "the zip lacks out/result.txt");
    assert(download.suggestedFilename() === "artifacts.zip", `file name ${download.suggestedFilename()}`);
  });

  await check("a reporter sees no action buttons", async () => {
    const rctx = await browser.newContext();
    rctx.setDefaultTimeout(TIMEOUT);
    const rp = await rctx.newPage();
    await signIn(rp, fx.reporter.username, fx.reporter.password);
    for (const id of [fx.build_job_id, fx.slow_job_id, fx.deploy_job_id]) {
      await rp.goto(job(id));
      await rp.locator("#log").waitFor();
      const buttons = await rp.locator("#job-cancel, #job-retry, #job-erase, #job-play, form.play").count();
      assert(buttons === 0, `job ${id} shows ${buttons} action controls`);
    }
    // The admin sees them on the same job: the check above is not vacuous.
    await page.goto(job(fx.build_job_id));
    assert(await page.locator("#job-retry").count() === 1, "the admin has no retry button");
    await rctx.close();
  });

  await check("pages have landmarks and labelled controls", async () => {
    await page.goto(job(fx.build_job_id));
    for (const sel of ["header", "nav", "main", "aside"]) assert(await page.locator(sel).count() > 0, `no ${sel}`);
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 1, `the page is ${overflow}px wider than a narrow screen`);
  });
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
