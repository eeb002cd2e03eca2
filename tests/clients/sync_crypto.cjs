// Client-side encryption for the kinto.js scenarios, as Firefox's storage.sync did it: the server only ever
// sees ciphertext, record ids and collection ids are salted hashes, and deletions travel as encrypted blobs
// (a plaintext tombstone would tell the server which key was removed). AES-GCM through Node's WebCrypto;
// the record's remote id is the additional data, so a blob moved to another id fails to decrypt.
"use strict";

const { webcrypto } = require("node:crypto");

const subtle = webcrypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder();

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const unb64 = (text) => new Uint8Array(Buffer.from(text, "base64"));
const b64url = (bytes) => Buffer.from(bytes).toString("base64url");

function randomBytes(n) {
  return webcrypto.getRandomValues(new Uint8Array(n));
}

async function aesKey(raw) {
  return subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

/** The keyring's key, derived from the account's secret (Firefox: kExtSync from FxA's kB) with HKDF. */
async function keyringKey(accountSecretHex) {
  const ikm = await subtle.importKey("raw", Buffer.from(accountSecretHex, "hex"), "HKDF", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: enc.encode("storage.sync keyring") },
    ikm, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

/** base64url(SHA-256(salt || 0x00 || value)): ids the server cannot map back to extension ids or keys. */
async function saltedHash(saltB64, value) {
  const salt = unb64(saltB64);
  const data = enc.encode(value);
  const buf = new Uint8Array(salt.length + 1 + data.length);
  buf.set(salt, 0);
  buf.set(data, salt.length + 1);
  return b64url(new Uint8Array(await subtle.digest("SHA-256", buf)));
}

/**
 * A kinto.js remote transformer. `getKey()` resolves to the AES-GCM key, `remoteId(record)` to the id used on
 * the server (the local id when ids are not hashed).
 */
class EncryptingTransformer {
  constructor(getKey, remoteId = async (record) => record.id) {
    this.getKey = getKey;
    this.remoteId = remoteId;
  }

  async encode(record) {
    const id = await this.remoteId(record);
    const { last_modified, _status, ...plain } = record;
    if (_status === "deleted") plain.deleted = true;
    const IV = randomBytes(12);
    const ciphertext = await subtle.encrypt({ name: "AES-GCM", iv: IV, additionalData: enc.encode(id) },
      await this.getKey(), enc.encode(JSON.stringify(plain)));
    const out = { id, ciphertext: b64(new Uint8Array(ciphertext)), IV: b64(IV) };
    // The status drives kinto.js's If-Match / If-None-Match headers; a deletion is pushed as an update.
    out._status = _status === "deleted" ? "updated" : _status;
    if (last_modified !== undefined) out.last_modified = last_modified;
    return out;
  }

  async decode(record) {
    if (!record.ciphertext) {
      if (record.deleted) return record;
      throw new Error(`record ${record.id} has no ciphertext`);
    }
    const clear = await subtle.decrypt(
      { name: "AES-GCM", iv: unb64(record.IV), additionalData: enc.encode(record.id) },
      await this.getKey(), unb64(record.ciphertext));
    const plain = JSON.parse(dec.decode(clear));
    if (record.last_modified !== undefined) plain.last_modified = record.last_modified;
    return plain;
  }
}

module.exports = { EncryptingTransformer, aesKey, b64, keyringKey, randomBytes, saltedHash, unb64 };
