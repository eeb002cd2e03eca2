// The storage.sync scenario of tests/test_client_kinto_js.py. Reads {remote, users: {name: {authorization,
// secret}}}
// as JSON on stdin, runs two devices of `alice` and one of `carol` against the server, and prints a JSON report
// (what each device holds after each step, the HTTP traffic) for the test to check.
"use strict";

const realFetch = globalThis.fetch;
const traffic = [];
let beforeBatch = null;
let phase = "setup";

// kinto.js binds globalThis.fetch when a client is made: wrap it first, to record the traffic and to let the
// scenario slip another device's sync in between a device's pull and its push.
globalThis.fetch = async (url, init = {}) => {
  const u = new URL(url);
  const entry = { phase, method: init.method || "GET", path: u.pathname, query: u.search };
  if (entry.method === "POST" && u.pathname.endsWith("/batch")) {
    const body = JSON.parse(init.body);
    entry.requests = body.requests.map((r) => ({
      method: r.method || body.defaults?.method, path: r.path, headers: { ...body.defaults?.headers, ...r.headers },
    }));
    if (beforeBatch) {
      const hook = beforeBatch;
      beforeBatch = null;
      await hook();
    }
  }
  const response = await realFetch(url, init);
  entry.status = response.status;
  if (entry.requests && response.ok) {
    entry.statuses = (await response.clone().json()).responses.map((r) => r.status);
  }
  traffic.push(entry);
  return response;
};

const { Device } = require("./storage_sync.cjs");

const EXT1 = "{d0c4a5e3-storage-sync-test}";
const EXT2 = "second@example.org";
const BOTH = [EXT1, EXT2];

async function main() {
  const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const device = (name, user) => new Device({ name, remote: input.remote,
    authorization: input.users[user].authorization,
    accountSecret: input.users[user].secret });
  const a = device("a", "alice");
  const b = device("b", "alice");
  const c = device("c", "carol");
  const report = { steps: {} };
  const snapshot = async (step) => {
    report.steps[step] = {};
    for (const [name, dev] of [["a", a], ["b", b]]) {
      report.steps[step][name] = { [EXT1]: await dev.get(EXT1), [EXT2]: await dev.get(EXT2) };
    }
  };

  phase = "first-sync";
  await a.set(EXT1, { colour: "red", "shared key": "x", obsolete: 1 });
  await a.set(EXT2, { n: 1 });
  await a.syncAll(BOTH);
  await b.syncAll(BOTH);
  await snapshot("first-sync");

  // Both devices edit offline, then sync in turn: B's pull brings A's colour while B changed it too.
  phase = "offline-edits";
  await a.set(EXT1, { colour: "blue", a_only: true });
  await a.remove(EXT1, ["obsolete"]);
  await b.set(EXT1, { colour: "green", b_only: true });
  await b.set(EXT2, { n: 2 });
  report.offline = { a: await a.syncAll(BOTH), b: await b.syncAll(BOTH), a2: await a.syncAll(BOTH) };
  await snapshot("offline-edits");

  // A conflict at push time: A syncs its edit between B's pull and B's batch, so B's If-Match fails (412)
  // and kinto.js resolves it from the server's `details.existing`.
  phase = "push-conflict";
  await a.set(EXT1, { size: "L" });
  await b.set(EXT1, { size: "M" });
  beforeBatch = async () => { report.pushConflictA = await a.syncAll(BOTH); };
  report.pushConflictB = await b.syncAll(BOTH);
  report.pushConflictA2 = await a.syncAll(BOTH);
  await snapshot("push-conflict");

  // Another user of the same server: nothing of alice's.
  phase = "other-user";
  await c.syncAll([EXT1]);
  report.carol = await c.get(EXT1);

  // The user's data is wiped on the server (DELETE /buckets/default): A notices on its next sync and uploads
  // what it holds again; B then gets everything back, A's new key included.
  phase = "flush";
  const r = await realFetch(`${input.remote}/buckets/default`,
    { method: "DELETE", headers: { Authorization: input.users.alice.authorization } });
  report.flushStatus = r.status;
  await a.set(EXT1, { after_flush: true });
  await a.syncAll(BOTH);
  await b.syncAll(BOTH);
  await snapshot("flush");
  report.flushesDetected = { a: a.flushesDetected, b: b.flushesDetected };
  report.resolved = { a: a.resolved, b: b.resolved };
  report.traffic = traffic;
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n${e.data ? JSON.stringify(e.data) : ""}\n`);
  process.exit(1);
});
