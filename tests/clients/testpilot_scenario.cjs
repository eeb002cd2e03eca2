// The Test Pilot scenario of tests/test_client_kinto_js_apps.py: two apps (as Notes and Send were), each
// with its own per-app user, keep client-side encrypted records in their `default` bucket with kinto.js.
// Reads {remote, apps: {name: {authorization, secret}}} on stdin; prints a JSON report: what a second device of
// each app decrypted, and what happened when one app's token aimed at the other app's bucket.
"use strict";

require("fake-indexeddb/auto");
const Kinto = require("kinto").default;
const { EncryptingTransformer, keyringKey } = require("./sync_crypto.cjs");

const anyId = { generate() { throw new Error("ids are always given"); }, validate: () => true };

function device(input, app, name, bucket = "default") {
  const kinto = new Kinto({
    remote: input.remote, bucket, retry: 0, timeout: 30000,
    headers: { Authorization: input.apps[app].authorization },
    adapterOptions: { dbName: `${app}-${name}` },
  });
  const key = keyringKey(input.apps[app].secret);
  return kinto.collection(app, { idSchema: anyId, remoteTransformers: [new EncryptingTransformer(() => key)] });
}

async function userBucket(input, app) {
  const r = await fetch(`${input.remote}/`, { headers: { Authorization: input.apps[app].authorization } });
  return (await r.json()).user.bucket;
}

async function main() {
  const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const apps = Object.keys(input.apps);
  const report = { buckets: {}, readBack: {}, crossSync: {} };
  for (const app of apps) {
    report.buckets[app] = await userBucket(input, app);
    const first = device(input, app, "first");
    await first.create({ id: `${app}-1`, text: `secret of ${app}` }, { useRecordId: true });
    const synced = await first.sync({ strategy: Kinto.syncStrategy.CLIENT_WINS });
    if (!synced.ok) throw new Error(`${app}: first sync not ok`);
    const second = device(input, app, "second");
    await second.sync({ strategy: Kinto.syncStrategy.SERVER_WINS });
    report.readBack[app] = (await second.list()).data.map(({ id, text }) => ({ id, text }));
  }
  // Each app's token, pointed at the other app's bucket and collection (same person, other app).
  for (const [mine, theirs] of [[apps[0], apps[1]], [apps[1], apps[0]]]) {
    const intruder = device(input, mine, "intruder", report.buckets[theirs]);
    try {
      await intruder.sync({ strategy: Kinto.syncStrategy.PULL_ONLY, collection: theirs });
      report.crossSync[mine] = { ok: true, records: (await intruder.list()).data.length };
    } catch (e) {
      report.crossSync[mine] = { ok: false, status: e.response?.status ?? null, message: String(e.message) };
    }
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
