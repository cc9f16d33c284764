// The approver page (docs/approvers.md §7): a client of the approver routes
// of docs/api.md §9.4 and of the onboarding of §9.10, as `hsmgate approver`
// is one on the command line. The approver's key is an ECDSA P-256 key that
// WebCrypto generates here as not extractable and IndexedDB keeps: every
// signature is made in this browser. What a task shows of the key, the
// payload and the time is read from its approval token (§9.5), the bytes
// the approver signs. Gateway data only ever reaches the page as text
// (textContent); the Content-Security-Policy enforces it with Trusted Types.
"use strict";

(() => {
  const DB_NAME = "hsmgate-approver";
  const STORE = "approver";
  const KEY_RECORD = "key"; // the CryptoKeyPair
  const ONBOARDING_RECORD = "onboarding"; // {name, certificate}: never the code
  const CREDENTIAL = "hsmgate-approver-credential"; // sessionStorage only
  const REFRESH_MS = 10000;
  const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
  const SIGNATURE = { name: "ECDSA", hash: "SHA-256" };

  const $ = (id) => document.getElementById(id);
  const utf8 = new TextEncoder();

  let keys = null; // the approver's CryptoKeyPair
  let spki = ""; // its public key, base64 DER SubjectPublicKeyInfo
  let clockOffset = 0; // the gateway's clock minus this one, in ms (from Date headers)
  let busy = false; // an action runs: the periodic refresh waits
  let polling = true; // false after a failed fetch, until the approver acts

  // ---- bytes

  function toBase64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }

  function fromBase64(text) {
    const s = atob(text || "");
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // decodeUTF8 returns the text of bytes, or null when they are not UTF-8.
  function decodeUTF8(bytes) {
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      return null;
    }
  }

  // ---- the key, kept in IndexedDB (a CryptoKey is structured-cloneable;
  // a non-extractable one stays so in storage)

  function openDB() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  // stored runs one request on the store and resolves with its result once
  // its transaction has committed (a key is stored, or it is an error).
  async function stored(mode, op) {
    const db = await openDB();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const req = op(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(req.result);
        tx.onabort = () => reject(tx.error || req.error);
      });
    } finally {
      db.close();
    }
  }

  // loadKey returns the stored key pair, making and storing one on the
  // first visit. add, not put: of two tabs opened at once, the first key
  // stored wins and the other tab reads it.
  async function loadKey() {
    const existing = await stored("readonly", (s) => s.get(KEY_RECORD));
    if (existing) return { pair: existing, fresh: false };
    const pair = await crypto.subtle.generateKey(ECDSA, false, ["sign", "verify"]);
    try {
      await stored("readwrite", (s) => s.add({ publicKey: pair.publicKey, privateKey: pair.privateKey }, KEY_RECORD));
    } catch (err) {
      if (err && err.name === "ConstraintError") return { pair: await stored("readonly", (s) => s.get(KEY_RECORD)), fresh: false };
      throw err;
    }
    // Ask the browser not to evict the key under storage pressure; it may say no.
    if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => {});
    return { pair, fresh: true };
  }

  // derInteger encodes a big-endian unsigned integer as a DER INTEGER.
  function derInteger(b) {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = Array.from(b.subarray(i));
    if (v[0] & 0x80) v.unshift(0);
    return [0x02, v.length, ...v];
  }

  // sign signs msg with the approver's key. WebCrypto answers r‖s; the
  // gateway verifies DER ECDSA (docs/api.md §9.4), SEQUENCE {r, s}, whose
  // length is below 128 for P-256.
  async function sign(msg) {
    const raw = new Uint8Array(await crypto.subtle.sign(SIGNATURE, keys.privateKey, msg));
    const half = raw.length / 2;
    const r = derInteger(raw.subarray(0, half));
    const s = derInteger(raw.subarray(half));
    return new Uint8Array([0x30, r.length + s.length, ...r, ...s]);
  }

  // ---- the gateway

  // GatewayError is an answer other than 200, with the error envelope.
  class GatewayError extends Error {
    constructor(status, envelope) {
      const reason = envelope.reason ? " " + envelope.reason : "";
      super("the gateway answered " + status + reason + (envelope.message ? ": " + envelope.message : ""));
      this.status = status;
      this.reason = envelope.reason || "";
    }
  }

  // noteClock keeps the gateway's clock from an answer's Date header. The
  // header is whole seconds rounded down, so the timestamps made from it
  // are never ahead of the gateway, which refuses a timestamp from its
  // future (approval.futureTimestampWindow, docs/api.md §9.8).
  function noteClock(resp) {
    const date = Date.parse(resp.headers.get("Date") || "");
    if (!Number.isNaN(date)) clockOffset = date - Date.now();
  }

  // call sends body as JSON to path, relative to the page (so /v1/…), and
  // returns the decoded answer (null for an empty one).
  async function call(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    const credential = sessionStorage.getItem(CREDENTIAL);
    if (credential) headers["X-API-KEY"] = credential;
    const resp = await fetch(path, {
      method, headers, body: JSON.stringify(body), cache: "no-store", credentials: "omit", redirect: "error",
    });
    noteClock(resp);
    const text = await resp.text();
    if (resp.status !== 200) {
      let envelope = {};
      try {
        envelope = JSON.parse(text) || {};
      } catch {
        // An answer without the envelope keeps its status alone.
      }
      throw new GatewayError(resp.status, envelope);
    }
    return text ? JSON.parse(text) : null;
  }

  // proof is the approver's proof of its key: its signature over the
  // current time, in whole seconds (docs/api.md §9.4).
  async function proof() {
    const ts = new Date(Date.now() + clockOffset).toISOString().replace(/\.\d+Z$/, "Z");
    const sig = await sign(utf8.encode(ts));
    return { timestamp: ts, timestampSignature: toBase64(sig), timestampDigestAlgorithm: "SHA-256", approverPublicKey: spki };
  }

  // proven calls path with the proof and extra members. A timestamp the
  // gateway finds off is tried once more, with the gateway's clock now
  // known from the refusal's Date header.
  async function proven(method, path, extra) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call(method, path, Object.assign(await proof(), extra));
      } catch (err) {
        if (attempt > 0 || !(err instanceof GatewayError) || err.reason !== "input.timestamp.off") throw err;
      }
    }
  }

  // ---- the approval token (docs/api.md §9.5)

  // elements reads a framed TLV structure: u32 length, then elements u16
  // tag, u16 length, value, zero-padded to 4 bytes, little-endian. The
  // first element of each tag counts.
  function elements(framed) {
    const view = new DataView(framed.buffer, framed.byteOffset, framed.byteLength);
    if (framed.length < 4 || view.getUint32(0, true) !== framed.length - 4) throw new Error("the approval token has a bad length");
    const els = new Map();
    for (let o = 4; o < framed.length;) {
      if (framed.length - o < 4) throw new Error("the approval token has a truncated element");
      const tag = view.getUint16(o, true);
      const n = view.getUint16(o + 2, true);
      const step = 4 + Math.ceil(n / 4) * 4;
      if (o + step > framed.length) throw new Error("the approval token has a truncated element");
      if (!els.has(tag)) els.set(tag, framed.subarray(o + 4, o + 4 + n));
      o += step;
    }
    return els;
  }

  // readToken returns what an approval token says: its operation code, the
  // key's label, the payload and the request's time.
  function readToken(tbs) {
    const els = elements(tbs);
    const op = els.get(0x003b);
    const label = els.get(0x1002);
    const stamp = els.get(0x1054);
    const payload = els.has(0x1057) ? els.get(0x1057) : els.get(0x1058);
    if (!op || op.length !== 4 || !label || !stamp || !payload) {
      throw new Error("the approval token lacks an operation, a key label, a timestamp or a payload");
    }
    const seconds = elements(stamp).get(0x0107);
    if (!seconds || seconds.length !== 8) throw new Error("the approval token's timestamp has no time");
    const view = (b) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    return {
      operationCode: view(op).getUint32(0, true),
      label: new TextDecoder().decode(label),
      payload,
      time: new Date(Number(view(seconds).getBigUint64(0, true)) * 1000),
    };
  }

  // operationMembers names the operation by the level-3 member holding the
  // request (docs/api.md §9.4); tokenOperations by the token's code when
  // that member is missing.
  const operationMembers = {
    signedSignRequest: "sign", signedDecryptRequest: "decrypt", signedUnwrapKeyRequest: "unwrap",
    signedBlockKeyRequest: "block", signedUnblockKeyRequest: "unblock", signedModifyKeyRequest: "modify",
    signedCertificateRequestRequest: "csr", signedSignCertificateRequest: "certificate",
    signedSelfSignCertificateRequestDto: "self-signed certificate",
  };
  const tokenOperations = { 1: "use", 2: "block", 3: "unblock", 4: "modify" };

  // readTask turns a level-6 task into what the page shows.
  async function readTask(wire) {
    const tbs = fromBase64(wire.approvalToBeSigned);
    const token = readToken(tbs);
    let operation = tokenOperations[token.operationCode] || "operation " + token.operationCode;
    for (const [member, name] of Object.entries(operationMembers)) {
      if (wire[member]) operation = name;
    }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", token.payload));
    return {
      id: wire.id, tbsText: wire.approvalToBeSigned, tbs, token, operation, digest: hex(digest),
      payloadType: wire.payloadType || "", metaData: fromBase64(wire.metaData), status: wire.requestStatus || {},
    };
  }

  // ---- what a person reads

  // A character a person cannot see as itself: controls, format characters
  // (such as the right-to-left override), unassigned and private ones.
  const HIDDEN = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;
  const HIDDEN_ALL = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/gu;

  // spell writes a hidden character as \u{…}.
  const spell = (c) => "\\u{" + c.codePointAt(0).toString(16) + "}";

  // printable is s, quoted with its hidden characters spelled out when it
  // holds any (a key label is the requester's choice).
  function printable(s) {
    if (!HIDDEN.test(s)) return s;
    return '"' + s.replace(HIDDEN_ALL, spell) + '"';
  }

  // payloadText is the payload as text when it is printable UTF-8 (line
  // breaks and tabs allowed), otherwise base64, as `hsmgate approver show`.
  function payloadText(p) {
    const text = decodeUTF8(p);
    if (text !== null && /^[\p{L}\p{M}\p{N}\p{P}\p{S}\p{Zs}\t\n\r]*$/u.test(text)) return { kind: "text", value: text };
    return { kind: "base64", value: toBase64(p) };
  }

  // indentJSON indents valid JSON text without decoding it, so that every
  // number and member shows exactly as the requester wrote it (JSON.parse
  // would round large numbers and fold repeated members).
  function indentJSON(text) {
    let out = "";
    let depth = 0;
    let inString = false;
    let escaped = false;
    const newline = () => "\n" + "  ".repeat(depth);
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        out += c;
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (" \t\n\r".includes(c)) continue;
      if (c === '"') {
        inString = true;
        out += c;
      } else if (c === "{" || c === "[") {
        let next = i + 1;
        while (" \t\n\r".includes(text[next])) next++;
        if (text[next] === (c === "{" ? "}" : "]")) {
          out += c + text[next]; // empty: {} or []
          i = next;
        } else {
          depth++;
          out += c + newline();
        }
      } else if (c === "}" || c === "]") {
        depth--;
        out += newline() + c;
      } else if (c === ",") {
        out += c + newline();
      } else if (c === ":") {
        out += ": ";
      } else {
        out += c;
      }
    }
    return out;
  }

  // metaDataText is the metaData indented when it is JSON, otherwise its
  // size and base64.
  function metaDataText(md) {
    if (md.length === 0) return "none";
    const text = decodeUTF8(md);
    if (text !== null) {
      try {
        JSON.parse(text);
        // JSON strings hold no raw control character: the line breaks are
        // the indentation's; other hidden characters are spelled out.
        return indentJSON(text).replace(/[\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/gu, spell);
      } catch {
        // Not JSON: shown as bytes below.
      }
    }
    return md.length + " bytes, not JSON: " + toBase64(md);
  }

  // approvalsText is "approved/asked" of the request's rule, with the
  // rejections when there are any.
  function approvalsText(st) {
    const n = (l) => (Array.isArray(l) ? l.length : 0);
    const asked = n(st.approvedBy) + n(st.notYetApprovedBy) + n(st.rejectedBy);
    let out = n(st.approvedBy) + " of " + asked + " approved";
    if (n(st.rejectedBy) > 0) out += " (" + n(st.rejectedBy) + " rejected)";
    return out;
  }

  // timeLeft is the time until expiresAt on the gateway's clock.
  function timeLeft(expiresAt) {
    if (!expiresAt) return "no limit";
    const ms = Date.parse(expiresAt) - (Date.now() + clockOffset);
    if (!(ms > 0)) return "expired";
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return (h ? h + "h" : "") + (h || m ? m + "m" : "") + (s % 60) + "s";
  }

  // el makes an element with text content and attributes.
  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // renderTask builds one task's entry: the details, Approve and Reject.
  function renderTask(task) {
    const item = el("li");
    const article = el("article", undefined, { "data-task-id": task.id, "aria-labelledby": "task-" + task.id });
    article.append(el("h3", task.operation + " with key " + printable(task.token.label), { id: "task-" + task.id }));
    const dl = el("dl");
    const row = (name, field, value, tag) => {
      const dd = el("dd");
      dd.append(el(tag || "span", value, { "data-field": field }));
      dl.append(el("dt", name), dd);
    };
    row("Operation", "operation", task.operation);
    row("Key", "key", printable(task.token.label));
    const payload = payloadText(task.token.payload);
    let about = task.token.payload.length + " bytes, " + (payload.kind === "text" ? "text" : "shown in base64");
    if (task.payloadType) about += ", type " + task.payloadType;
    row("Payload", "payload-about", about);
    row(payload.kind === "text" ? "Payload text" : "Payload (base64)", "payload", payload.value, "pre");
    row("Payload SHA-256", "payload-sha256", task.digest, "code");
    row("MetaData", "metadata", metaDataText(task.metaData), "pre");
    row("Approvals", "approvals", approvalsText(task.status));
    row("Time left", "time-left", timeLeft(task.status.expiresAt));
    row("Requested", "requested", task.token.time.toISOString().replace(".000Z", "Z"));
    row("Request", "request", (task.status.id || "") + (task.status.status ? " (" + task.status.status + ")" : ""), "code");
    row("Task", "task", task.id, "code");
    article.append(dl);
    const approve = el("button", "Approve", { type: "button", class: "approve", "aria-describedby": "task-" + task.id });
    const reject = el("button", "Reject", { type: "button", class: "reject", "aria-describedby": "task-" + task.id });
    approve.addEventListener("click", () => act("approved", task, () => approveTask(task)));
    reject.addEventListener("click", () => act("rejected", task, () => proven("DELETE", "v1/task", { id: task.id })));
    const actions = el("p", undefined, { class: "actions" });
    actions.append(approve, " ", reject);
    article.append(actions);
    item.append(article);
    return item;
  }

  // approveTask signs the task's approval token and posts the approval
  // (docs/api.md §9.4); the request may have executed when it returns.
  async function approveTask(task) {
    const sig = await sign(task.tbs);
    await call("POST", "v1/approval", {
      id: task.id, approvalToBeSigned: task.tbsText, signature: toBase64(sig), approvalDigestAlgorithm: "SHA-256", approverPublicKey: spki,
    });
  }

  // ---- messages

  // explain adds what an approver can do about a refusal.
  function explain(err) {
    const hints = {
      "invalid.onetimepassword": "the name or the one-time code is wrong, or the code was used, expired or died after wrong guesses",
      "input.timestamp.off": "this computer's clock is far from the gateway's",
      "too.many.failures": "too many wrong codes: wait before trying again",
    };
    let text = err instanceof Error ? err.message : String(err);
    if (err instanceof GatewayError && hints[err.reason]) text += " (" + hints[err.reason] + ")";
    else if (err instanceof GatewayError && err.status === 401) text += " (this gateway asks for an approver credential: set it below)";
    return text;
  }

  // showError shows what failed last, in place of what went well before.
  function showError(err) {
    $("status").textContent = "";
    $("error").textContent = explain(err);
  }

  // say shows what went well last; a failure shown stays until the task
  // list is fetched again.
  function say(text) {
    $("status").textContent = text;
  }

  // ---- actions

  // act runs one approver action on task, refreshes the list, and then
  // tells how the action went.
  async function act(done, task, run) {
    if (busy) return;
    busy = true;
    for (const b of document.querySelectorAll("#tasks button")) b.disabled = true;
    let failure = null;
    try {
      await run();
    } catch (err) {
      failure = err;
    }
    busy = false;
    polling = true;
    await refresh();
    if (failure) showError(failure);
    else say("Task " + task.id + " (" + task.operation + " with key " + printable(task.token.label) + ") " + done + ".");
  }

  // refresh fetches the open tasks at detail level 6 and shows them.
  async function refresh() {
    if (!keys) return;
    try {
      const answer = await proven("POST", "v1/filteredAllApprovalTask", { detailLevel: "level6" });
      const tasks = await Promise.all(((answer && answer.tasks) || []).map(readTask));
      $("tasks").replaceChildren(...tasks.map(renderTask));
      $("error").textContent = ""; // what failed before works now
      const when = new Date().toLocaleTimeString();
      $("tasks-state").textContent = (tasks.length === 0 ? "No task waits for you" : tasks.length + (tasks.length === 1 ? " task waits" : " tasks wait") + " for you") + " (as of " + when + ").";
    } catch (err) {
      polling = false; // a refusal would repeat: the approver acts first
      $("tasks-state").textContent = "Could not fetch the tasks: refresh to try again.";
      showError(err);
    }
  }

  async function onboard(ev) {
    ev.preventDefault();
    const name = $("approver-name").value.trim();
    const codeField = $("one-time-code");
    const code = codeField.value.replace(/\s+/g, "");
    try {
      const answer = await call("POST", "v1/approver/onboard", { approverName: name, oneTimeCode: code, publicKey: spki });
      codeField.value = ""; // used up: no reason to keep it, even on the page
      await stored("readwrite", (s) => s.put({ name, certificate: answer.approverCertificate }, ONBOARDING_RECORD));
      showOnboarding({ name, certificate: answer.approverCertificate });
      say("Onboarded as " + name + ": policies can now name you as an onboarded approver.");
      polling = true;
      await refresh();
    } catch (err) {
      showError(err);
    }
  }

  function showOnboarding(rec) {
    if (!rec) return;
    $("onboard-state").textContent = "Onboarded as " + rec.name + ": the gateway's approver CA certified this key.";
    $("certificate").textContent = rec.certificate || "";
    $("certificate-details").hidden = !rec.certificate;
    $("onboard-details").open = false; // done: onboarding again is the exception
  }

  function showCredential() {
    $("credential-state").textContent = sessionStorage.getItem(CREDENTIAL)
      ? "A credential is set for this tab: the requests carry it as X-API-KEY."
      : "No credential set: the requests carry your key's signature only.";
  }

  async function start() {
    $("onboard-form").addEventListener("submit", onboard);
    $("credential-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = $("credential").value.trim();
      $("credential").value = "";
      if (value) sessionStorage.setItem(CREDENTIAL, value);
      showCredential();
      polling = true;
      refresh();
    });
    $("credential-forget").addEventListener("click", () => {
      sessionStorage.removeItem(CREDENTIAL);
      showCredential();
    });
    $("refresh").addEventListener("click", () => {
      polling = true;
      refresh();
    });
    showCredential();
    if (!window.isSecureContext || !window.crypto || !crypto.subtle || !window.indexedDB) {
      $("key-state").textContent = "This page needs a secure (HTTPS) connection and a browser with WebCrypto and IndexedDB.";
      return;
    }
    try {
      const loaded = await loadKey();
      keys = loaded.pair;
      spki = toBase64(new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey)));
      $("public-key").textContent = spki;
      $("key-state").textContent = (loaded.fresh ? "A new key was made in this browser. " : "Your key, made in this browser on an earlier visit. ") +
        "Its private half cannot be exported, not even by this page: clearing this site's data deletes it, and you would be onboarded again.";
      showOnboarding(await stored("readonly", (s) => s.get(ONBOARDING_RECORD)));
    } catch (err) {
      $("key-state").textContent = "Your key could not be loaded or made.";
      showError(err);
      return;
    }
    await refresh();
    setInterval(() => {
      if (polling && !busy && !document.hidden) refresh();
    }, REFRESH_MS);
  }

  start();
})();
