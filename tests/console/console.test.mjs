// The agent console in a real browser, against a real `tlao dev` with the stand-in
// kiro-cli: sign in, start tasks and watch them live, download an artifact, see a
// failure explained, be refused a foreign workspace's run — and every page passes
// axe-core with no serious or critical violation. Screenshots of every page go to
// target/console-screenshots/.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";

import { Api, axePath, launchBrowser, screenshot, seriousViolations, startDevServer } from "./harness.mjs";

/** The largest archive the server under test accepts (small, to test the refusal). */
const MAX_ARCHIVE_BYTES = 256 * 1024;

describe("the agent console", { timeout: 240_000 }, () => {
  let server;
  let browser;
  let context;
  let auditContext;
  let page;
  let api;
  let scratch;
  const browserErrors = [];
  let completedRun;

  before(async () => {
    server = await startDevServer({ TLAO_GUARDRAILS__MAX_ARCHIVE_BYTES: String(MAX_ARCHIVE_BYTES) });
    browser = await launchBrowser();
    // The flow runs under the console's real Content-Security-Policy; the audits need
    // to inject axe-core, which only a CSP-bypassing context allows.
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    auditContext = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") {
        browserErrors.push(message.text());
      }
    });
    page.on("pageerror", (error) => browserErrors.push(String(error)));
    api = await Api.login(server.url, server.adminKey);
    scratch = await mkdtemp(path.join(tmpdir(), "tlao-console-files-"));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    if (scratch) {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  const url = (route) => `${server.url}${route}`;

  /** Fails on serious or critical axe violations of `route`, seen with this session. */
  async function audit(route, label) {
    await auditContext.clearCookies();
    await auditContext.addCookies(await context.cookies());
    const serious = await seriousViolations(auditContext, url(route), label);
    assert.deepEqual(serious.map((v) => `${v.id}: ${v.help}`), [], `${label} has serious accessibility violations`);
  }

  /**
   * Audits a live run page: axe runs once the page's script is following the run (the
   * live state says so and a streamed line arrived), and the run must still be live
   * when it is done.
   */
  async function auditLive(route, label) {
    await auditContext.clearCookies();
    await auditContext.addCookies(await context.cookies());
    let stillLive = false;
    const serious = await seriousViolations(auditContext, url(route), label, async (live) => {
      await live.locator("#live-state", { hasText: /Live/ }).waitFor({ timeout: 10_000 });
      await live.locator("#log .line").first().waitFor({ timeout: 10_000 });
    });
    stillLive = ["queued", "running"].includes((await api.call("GET", `/runs/${route.split("/").pop()}`)).status);
    assert.deepEqual(serious.map((v) => `${v.id}: ${v.help}`), [], `${label} has serious accessibility violations`);
    assert.ok(stillLive, `${label}: the run was over before the audit finished`);
  }

  async function logLines() {
    const text = await page.locator("#log").innerText();
    return text.split("\n").map((line) => line.trim());
  }

  async function startTask({ taskType = "spec.generate", prompt, executor = "", archive } = {}) {
    await page.goto(url("/console/runs/new"));
    await page.getByLabel("Task type").selectOption(taskType);
    await page.getByLabel("Prompt").fill(prompt);
    await page.getByLabel("Executor").selectOption(executor);
    if (archive) {
      await page.getByLabel("Workspace archive (optional)").setInputFiles(archive);
    }
    await page.getByRole("button", { name: "Start run" }).click();
  }

  async function waitForStatus(status, timeout = 30_000) {
    await page.locator(`#run-status .badge[data-status="${status}"]`).waitFor({ timeout });
  }

  async function tarGz(name, files) {
    const dir = path.join(scratch, name);
    execFileSync("mkdir", ["-p", dir]);
    for (const [file, content] of Object.entries(files)) {
      await writeFile(path.join(dir, file), content);
    }
    const archive = path.join(scratch, `${name}.tar.gz`);
    execFileSync("tar", ["czf", archive, "-C", dir, "."]);
    return archive;
  }

  it("tlao dev prints the console's address", () => {
    assert.equal(server.consoleLine, `Console: ${server.url}/console`);
  });

  it("sends a visitor without a session to the login page, which refuses a wrong key", async () => {
    await page.goto(url("/console/runs"));
    assert.equal(new URL(page.url()).pathname, "/console/login");
    assert.equal(new URL(page.url()).searchParams.get("next"), "/console/runs");
    await screenshot(page, "01-login");
    await audit("/console/login", "login");

    await page.getByLabel("API key").fill("tlao_not_a_real_key");
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/console/login") && r.request().method() === "POST"),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    assert.equal(response.status(), 401);
    await assert.doesNotReject(page.getByRole("alert").getByText("That API key is not valid").waitFor());
    await screenshot(page, "02-login-refused");
  });

  it("signs in with the API key into an HttpOnly, SameSite=Strict session and goes where it was asked", async () => {
    await page.getByLabel("API key").fill(server.adminKey);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(url("/console/runs"));
    const session = (await context.cookies()).find((c) => c.name === "tlao_session");
    assert.ok(session, "a session cookie is set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    assert.equal(session.path, "/");
  });

  it("shows the dashboard: workspace usage, recent runs, executors with their health", async () => {
    await page.goto(url("/console"));
    await assert.doesNotReject(page.getByRole("heading", { name: "Dashboard" }).waitFor());
    const text = await page.locator("main").innerText();
    assert.match(text, /Runs today \(UTC\)/);
    assert.match(text, /0 of 100/);
    assert.match(text, /Running now/);
    assert.match(text, /Storage used/);
    const executors = page.getByRole("table", { name: "Executors" });
    assert.match(await executors.innerText(), /kiro/);
    assert.match(await executors.innerText(), /shell/);
    assert.match(await executors.innerText(), /kiro-cli (\(.*\) )?found by \d+ workers?/);
    await screenshot(page, "03-dashboard-empty");
    // The first Tab reaches the skip link, which moves focus to the main content.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to main content");
    await page.keyboard.press("Enter");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "main");
    await audit("/console", "dashboard");
  });

  it("starts a task from the form and shows its log lines live, then its completion and artifact", async () => {
    await page.goto(url("/console/runs/new"));
    await screenshot(page, "04-start-task");
    await audit("/console/runs/new", "start a task");

    let navigations = 0;
    const countNavigations = (frame) => {
      if (frame === page.mainFrame()) {
        navigations += 1;
      }
    };
    await startTask({ prompt: "plan the work, lines:50 slow" });
    await page.waitForURL(/\/console\/runs\/run_[0-9A-Z]{26}$/);
    completedRun = page.url().split("/").pop();
    page.on("framenavigated", countNavigations);

    // The lines arrive one every 100 ms: the first is on the page while the last is
    // not yet, and the last then arrives without the page being loaded again.
    await page.locator("#log .line", { hasText: /^line 1\s*$/ }).waitFor({ timeout: 30_000 });
    const early = await logLines();
    assert.ok(early.includes("line 1"));
    assert.ok(!early.includes("line 50"), "the run was still printing when its first line appeared");
    assert.match(await page.locator("#live-state").innerText(), /Live/);
    await screenshot(page, "05-run-live");
    await auditLive(`/console/runs/${completedRun}`, "run (live)");
    const pause = page.getByRole("button", { name: "Pause auto-scroll" });
    await pause.click();
    assert.equal(await page.locator("#log-pause").getAttribute("aria-pressed"), "true");
    await page.getByRole("button", { name: "Resume auto-scroll" }).click();
    assert.equal(await page.locator("#log-pause").getAttribute("aria-pressed"), "false");
    // The Cancel button is focused when the run ends and the script replaces it: the
    // focus moves to the page's heading, not to nowhere.
    await page.getByRole("button", { name: "Cancel run" }).focus();
    await page.locator("#log .line", { hasText: /^line 50\s*$/ }).waitFor({ timeout: 30_000 });
    await waitForStatus("completed");
    await page.locator("#run-facts").getByRole("link", { name: "plan.json" }).waitFor({ timeout: 10_000 });
    page.off("framenavigated", countNavigations);
    assert.equal(navigations, 0, "the page followed the run without reloading");
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H1", "the focus went to the heading");

    const lines = await logLines();
    for (let i = 1; i <= 50; i += 1) {
      assert.equal(lines.filter((line) => line === `line ${i}`).length, 1, `line ${i} appears once`);
    }
    assert.ok(!lines.some((line) => line.includes("\u001b")), "no ANSI escape reaches the page");
    const facts = await page.locator("#run-facts").innerText();
    assert.match(facts, /Finished/);
    assert.match(facts, /Credits: 0\.42/);
    await screenshot(page, "06-run-completed");
    await audit(`/console/runs/${completedRun}`, "run (completed)");
  });

  it("downloads an artifact through the console", async () => {
    await page.goto(url(`/console/runs/${completedRun}`));
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "plan.json" }).click(),
    ]);
    const plan = JSON.parse(await readFile(await download.path(), "utf8"));
    assert.equal(plan.title, "Stand-in plan");
  });

  it("lists runs with status badges, filters and the run's timing", async () => {
    await page.goto(url("/console/runs?status=completed"));
    const table = page.getByRole("table", { name: "Runs" });
    const row = table.getByRole("row", { name: new RegExp(completedRun) });
    assert.match(await row.innerText(), /completed/);
    assert.match(await row.innerText(), /spec\.generate/);
    assert.match(await row.innerText(), /kiro/);
    await screenshot(page, "07-runs");
    await audit("/console/runs?status=completed", "runs");

    await page.getByLabel("Status").selectOption("failed");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.waitForURL(/status=failed/);
    assert.match(await page.getByRole("table", { name: "Runs" }).innerText(), /No runs match/);
  });

  it("explains why a failed run failed", async () => {
    await startTask({ prompt: "this will fail" });
    await page.waitForURL(/\/console\/runs\/run_/);
    await waitForStatus("failed");
    const reason = page.getByRole("region", { name: "Why it failed" });
    await reason.waitFor({ timeout: 10_000 });
    assert.match(await reason.innerText(), /The executor exited with an error/);
    assert.match(await reason.innerText(), /stand-in failure/);
    await screenshot(page, "08-run-failed");
    await audit(new URL(page.url()).pathname, "run (failed)");
  });

  it("cancels a running run from its page", async () => {
    await startTask({ prompt: "hang around" });
    await page.waitForURL(/\/console\/runs\/run_/);
    await waitForStatus("running");
    await screenshot(page, "09-run-running");
    const runId = new URL(page.url()).pathname.split("/").pop();

    // The button asks first; saying no leaves the run alone.
    const questions = [];
    page.once("dialog", (dialog) => {
      questions.push(dialog.message());
      return dialog.dismiss();
    });
    await page.getByRole("button", { name: "Cancel run" }).click();
    await page.waitForTimeout(300);
    assert.equal(questions.length, 1);
    assert.match(questions[0], new RegExp(`Cancel run ${runId}\\?`));
    assert.equal((await api.call("GET", `/runs/${runId}`)).status, "running");

    page.once("dialog", (dialog) => dialog.accept());
    await page.getByRole("button", { name: "Cancel run" }).click();
    await waitForStatus("cancelled");
    assert.equal(await page.getByRole("button", { name: "Cancel run" }).count(), 0);
  });

  it("uploads an archive with the task, and refuses one over the limit on the form", async () => {
    const small = await tarGz("repo", { "README.md": "# Demo\n", "obsolete.txt": "old\n" });
    await startTask({ taskType: "code.change", prompt: "change the readme", archive: small });
    await page.waitForURL(/\/console\/runs\/run_/);
    await waitForStatus("completed");
    await page.locator("#run-facts").getByRole("link", { name: "changes.patch" }).waitFor({ timeout: 10_000 });
    assert.match(await page.locator("#run-facts").innerText(), /arc_/);

    const big = await tarGz("big", { "noise.bin": randomBytes(MAX_ARCHIVE_BYTES + 64 * 1024) });
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/console/runs") && r.request().method() === "POST"),
      startTask({ taskType: "code.change", prompt: "change it all", archive: big }),
    ]);
    assert.equal(response.status(), 422);
    const summary = page.getByRole("alert");
    assert.match(await summary.innerText(), /larger than this workspace's limit of 256\.0 KiB/);
    assert.equal(await page.getByLabel("Prompt").inputValue(), "change it all");
    assert.equal(await page.getByLabel("Task type").inputValue(), "code.change");
    await screenshot(page, "10-start-task-refused");

    // The same page, audited: submitted again in the audit context.
    await auditContext.clearCookies();
    await auditContext.addCookies(await context.cookies());
    const auditPage = await auditContext.newPage();
    await auditPage.goto(url("/console/runs/new"));
    await auditPage.getByLabel("Prompt").fill("change it all");
    await auditPage.getByLabel("Workspace archive (optional)").setInputFiles(big);
    await auditPage.getByRole("button", { name: "Start run" }).click();
    await auditPage.getByRole("alert").waitFor();
    await auditPage.addScriptTag({ path: axePath });
    // eslint-disable-next-line no-undef
    const results = await auditPage.evaluate(async () => await axe.run(document, { resultTypes: ["violations"] }));
    await auditPage.close();
    const serious = results.violations.filter((v) => ["serious", "critical"].includes(v.impact));
    assert.deepEqual(serious.map((v) => `${v.id}: ${v.help}`), [], "the form with errors has serious violations");
  });

  it("lists the workspace's artifacts with type, size, run and download", async () => {
    await page.goto(url("/console/artifacts"));
    const table = page.getByRole("table", { name: "Artifacts" });
    const row = table.getByRole("row", { name: /plan\.json/ });
    assert.match(await row.innerText(), /plan/);
    assert.match(await row.innerText(), /B/);
    assert.match(await row.innerText(), new RegExp(completedRun));
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      row.getByRole("link", { name: "Download plan.json" }).click(),
    ]);
    assert.equal(JSON.parse(await readFile(await download.path(), "utf8")).title, "Stand-in plan");
    await screenshot(page, "11-artifacts");
    await audit("/console/artifacts", "artifacts");
  });

  it("shows the dashboard with runs, failures and storage", async () => {
    await page.goto(url("/console"));
    const text = await page.locator("main").innerText();
    assert.match(text, /4 of 100/);
    assert.match(text, /artifacts/);
    assert.match(await page.getByRole("table", { name: "Executors" }).innerText(), /last run/);
    await screenshot(page, "12-dashboard");
    await audit("/console", "dashboard (with runs)");
  });

  it("strips control characters from streamed lines and announces the stream's state", async () => {
    const task = await api.call("POST", "/tasks", {
      workspaceId: server.workspace,
      taskType: "doc.write",
      input: { prompt: "hang around" },
    });
    const run = await api.call("POST", "/runs", { taskId: task.taskId });
    // The stream is stood in for, to send what no stand-in agent prints.
    const line = "a\rb\u0007c\u0008d\te\u001b[31mf\u001b[0m\u007fg\u009bh";
    const body = `event: log\ndata: ${JSON.stringify({ seq: 99, type: "log", stream: "stdout", text: line })}\n\n`
      + `event: end\ndata: ${JSON.stringify({ status: "cancelled" })}\n\n`;
    await page.route(`**/console/runs/${run.runId}/events*`, (route) =>
      route.fulfill({ status: 200, headers: { "Content-Type": "text/event-stream" }, body }));
    try {
      await page.goto(url(`/console/runs/${run.runId}`));
      assert.equal(await page.locator("#live-state").getAttribute("role"), "status");
      await page.locator("#live-state", { hasText: "The run is over." }).waitFor({ timeout: 10_000 });
      const text = await page.locator("#log").evaluate((log) => log.textContent);
      assert.ok(text.includes("abcd\tefgh\n"), JSON.stringify(text));
      assert.doesNotMatch(text, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    } finally {
      await page.unroute(`**/console/runs/${run.runId}/events*`);
      await api.call("POST", `/runs/${run.runId}/cancel`);
    }
  });

  it("keeps the runs list and the dashboard current without a reload", async () => {
    await page.goto(url("/console/runs"));
    const [workspace] = (await api.call("GET", "/workspaces")).items;
    const task = await api.call("POST", "/tasks", {
      workspaceId: workspace.workspaceId,
      taskType: "spec.generate",
      input: { prompt: "plan it, lines:20 slow" },
    });
    const run = await api.call("POST", "/runs", { taskId: task.taskId });
    const navigations = [];
    page.on("framenavigated", (frame) => navigations.push(frame.url()));

    // Started elsewhere, the run appears, runs and completes on the open page.
    const row = page.getByRole("table", { name: "Runs" }).getByRole("row", { name: new RegExp(run.runId) });
    await row.waitFor({ timeout: 15_000 });
    await page.waitForFunction(
      (id) => [...document.querySelectorAll("#runs-list tr")].some((tr) => tr.textContent.includes(id) && tr.textContent.includes("completed")),
      run.runId,
      { timeout: 30_000 },
    );
    assert.deepEqual(navigations, [], "the page was not reloaded");

    await page.goto(url("/console"));
    const before = await page.locator("#usage").innerText();
    const second = await api.call("POST", "/runs", { taskId: task.taskId });
    await page.waitForFunction(
      (id) => document.querySelector("#recent-runs")?.textContent.includes(id),
      second.runId,
      { timeout: 15_000 },
    );
    assert.notEqual(await page.locator("#usage").innerText(), before, "the usage cards follow too");
    await api.waitForRun(second.runId);
  });

  it("refuses a foreign workspace's run with a 403 page that explains", async () => {
    const created = await api.call("POST", "/users", { name: "someone-else" });
    const other = await Api.login(server.url, created.apiKey);
    const ws = await other.call("POST", "/workspaces", { name: "someone else's" });
    const task = await other.call("POST", "/tasks", {
      workspaceId: ws.workspaceId,
      taskType: "doc.write",
      input: { prompt: "write the docs" },
    });
    const run = await other.call("POST", "/runs", { taskId: task.taskId });

    const response = await page.goto(url(`/console/runs/${run.runId}`));
    assert.equal(response.status(), 403);
    assert.match(await page.locator("main").innerText(), /This run belongs to a workspace you are not a member of/);
    await screenshot(page, "13-forbidden");
    await audit(`/console/runs/${run.runId}`, "403 page");
  });

  it("answers unknown and malformed ids with a 404 page", async () => {
    const unknown = await page.goto(url("/console/runs/run_01ARZ3NDEKTSV4RRFFQ69G5FAV"));
    assert.equal(unknown.status(), 404);
    assert.match(await page.locator("main").innerText(), /There is no run with the id/);
    const malformed = await page.goto(url("/console/runs/not-a-run"));
    assert.equal(malformed.status(), 404);
    assert.match(await page.locator("main").innerText(), /is not a run id/);
    await screenshot(page, "14-not-found");
    await audit("/console/runs/not-a-run", "404 page");
  });

  it("switches workspace from the header", async () => {
    await api.call("POST", "/workspaces", { name: "second" });
    await page.goto(url("/console/runs"));
    await page.getByLabel("Workspace").selectOption({ label: "second" });
    await page.getByRole("button", { name: "Switch" }).click();
    await page.waitForURL(url("/console/runs"));
    assert.match(await page.locator("main").innerText(), /in workspace second/);
    assert.match(await page.getByRole("table", { name: "Runs" }).innerText(), /No runs match/);
    await page.getByLabel("Workspace").selectOption({ label: "default" });
    await page.getByRole("button", { name: "Switch" }).click();
    await page.waitForURL(url("/console/runs"));
    assert.match(await page.getByRole("table", { name: "Runs" }).innerText(), new RegExp(completedRun));
  });

  it("signs out, after which pages ask to sign in again", async () => {
    await page.goto(url("/console"));
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/console\/login$/);
    assert.equal((await context.cookies()).find((c) => c.name === "tlao_session"), undefined);
    await page.goto(url("/console"));
    assert.equal(new URL(page.url()).pathname, "/console/login");
  });

  it("ran every page under its Content-Security-Policy without a script error", () => {
    // Pages answered with 401/403/404/422 on purpose are reported as failed loads.
    const unexpected = browserErrors.filter((text) => !/^Failed to load resource: the server responded with a status of (401|403|404|422)/.test(text));
    assert.deepEqual(unexpected, []);
  });
});
