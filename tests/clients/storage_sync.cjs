// A Firefox-like chrome.storage.sync on kinto.js, modelled on Firefox's ExtensionStorageSync (Kinto flavour):
// one device = one kinto.js instance over its own IndexedDB database (fake-indexeddb, a real IDB implementation
// in memory) syncing the user's `default` bucket.
//   * `storage-sync-crypto/keys`: the keyring (a random key and a salt per extension), encrypted with a key
//     derived from the account's secret; synced with kinto.js's SERVER_WINS, since the server's keyring is the
//     one its data was encrypted with.
//   * one collection per extension, named `ext-<salted hash of the extension id>`, records named
//     `id-<salted hash of the storage key>`, encrypted with the extension's key; synced with CLIENT_WINS.
//   * a "Server has been flushed" error from kinto.js (the server's collection is empty but newer than what the
//     device last saw) makes the device reset its sync status and upload everything again.
"use strict";

require("fake-indexeddb/auto");
const { randomUUID } = require("node:crypto");
const Kinto = require("kinto").default;
const { EncryptingTransformer, aesKey, b64, keyringKey, randomBytes, saltedHash, unb64 } = require("./sync_crypto.cjs");

const CRYPTO_COLLECTION = "storage-sync-crypto";
const KEYRING_ID = "keys";
const anyId = { generate() { throw new Error("ids are always given"); }, validate: () => true };

/** A storage key as a Kinto id: `key-` then letters and digits, anything else as `_<hex code point>_`. */
function keyToId(key) {
  let out = "key-";
  for (const ch of key) {
    out += /[A-Za-z0-9]/.test(ch) ? ch : `_${ch.codePointAt(0).toString(16).toUpperCase()}_`;
  }
  return out;
}

class Device {
  constructor({ name, remote, authorization, accountSecret }) {
    this.name = name;
    this.remote = remote;
    this.kinto = new Kinto({
      remote, bucket: "default", retry: 0, timeout: 30000,
      headers: { Authorization: authorization },
      adapterOptions: { dbName: `device-${name}` },
    });
    const ringKey = keyringKey(accountSecret);
    this.crypto = this.kinto.collection(CRYPTO_COLLECTION, {
      idSchema: anyId, remoteTransformers: [new EncryptingTransformer(() => ringKey)],
    });
    this.collections = new Map();
    this.flushesDetected = 0;
    this.resolved = [];
  }

  async keyring() {
    const { data } = await this.crypto.getAny(KEYRING_ID);
    return data && data._status !== "deleted" ? data : null;
  }

  async ringEntry(extensionId) {
    const ring = await this.keyring();
    if (!ring || !ring.keys[extensionId] || !ring.salts[extensionId]) {
      throw new Error(`${this.name}: no key for ${extensionId} in the keyring`);
    }
    return { key: ring.keys[extensionId], salt: ring.salts[extensionId] };
  }

  collection(extensionId) {
    if (!this.collections.has(extensionId)) {
      const transformer = new EncryptingTransformer(
        async () => aesKey(unb64((await this.ringEntry(extensionId)).key)),
        async (record) => `id-${await saltedHash((await this.ringEntry(extensionId)).salt, record.id)}`);
      this.collections.set(extensionId,
        this.kinto.collection(extensionId, { idSchema: anyId, remoteTransformers: [transformer] }));
    }
    return this.collections.get(extensionId);
  }

  async remoteCollectionId(extensionId) {
    return `ext-${await saltedHash((await this.ringEntry(extensionId)).salt, extensionId)}`;
  }

  // chrome.storage.sync's API, on the local database only (as offline).
  async set(extensionId, items) {
    const coll = this.collection(extensionId);
    for (const [key, value] of Object.entries(items)) {
      await coll.upsert({ id: keyToId(key), key, data: value });
    }
  }

  async remove(extensionId, keys) {
    const coll = this.collection(extensionId);
    for (const key of keys) await coll.deleteAny(keyToId(key));
  }

  async get(extensionId) {
    const { data } = await this.collection(extensionId).list();
    return Object.fromEntries(data.map((r) => [r.key, r.data]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Adds a key and a salt for each extension lacking one, locally; the next keyring sync publishes them. */
  async ensureKeys(extensionIds) {
    const ring = (await this.keyring()) || { id: KEYRING_ID, uuid: randomUUID(), keys: {}, salts: {} };
    const missing = extensionIds.filter((id) => !ring.keys[id] || !ring.salts[id]);
    if (!missing.length) return false;
    const { _status, ...record } = ring;
    for (const id of missing) {
      record.keys = { ...record.keys, [id]: b64(randomBytes(32)) };
      record.salts = { ...record.salts, [id]: b64(randomBytes(32)) };
    }
    await this.crypto.upsert(record);
    return true;
  }

  async syncKeyring() {
    const before = await this.keyring();
    let result;
    try {
      result = await this.crypto.sync({ strategy: Kinto.syncStrategy.SERVER_WINS });
    } catch (e) {
      if (!/Server has been flushed/.test(e.message)) throw e;
      this.flushesDetected += 1;
      await this.resetAll();
      result = await this.crypto.sync({ strategy: Kinto.syncStrategy.SERVER_WINS });
    }
    const accepted = result.resolved.length ? result.resolved[0].accepted : null;
    if (accepted && before && accepted.uuid !== before.uuid) {
      // Another device uploaded a new keyring (after a wipe): everything local must be uploaded again.
      await this.resetAll(false);
    }
    return result;
  }

  async resetAll(includeKeyring = true) {
    if (includeKeyring) await this.crypto.resetSyncStatus();
    for (const coll of this.collections.values()) await coll.resetSyncStatus();
  }

  /** One sync cycle: keys for every extension on the server first, then each extension's data. */
  async syncAll(extensionIds) {
    for (let round = 0; ; round += 1) {
      await this.ensureKeys(extensionIds);
      await this.syncKeyring();
      // A SERVER_WINS resolution may have dropped keys this device had just made: add them again.
      if (!(await this.ensureKeys(extensionIds))) break;
      if (round > 3) throw new Error(`${this.name}: keyring does not settle`);
    }
    const results = {};
    for (const extensionId of extensionIds) {
      const result = await this.collection(extensionId).sync({
        strategy: Kinto.syncStrategy.CLIENT_WINS, collection: await this.remoteCollectionId(extensionId),
      });
      this.resolved.push(...result.resolved.map((r) => ({ extension: extensionId, key: r.accepted?.key ?? r.id })));
      results[extensionId] = { ok: result.ok, resolved: result.resolved.length, conflicts: result.conflicts.length };
    }
    return results;
  }
}

module.exports = { Device, keyToId };
