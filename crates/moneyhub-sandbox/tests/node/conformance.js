// Conformance driver: Moneyhub's official Node client (@mft/moneyhub-api-client 5.2.1,
// unmodified) against a running moneyhub-sandbox. Configuration comes from the environment;
// every step checks what it got, and the script exits non-zero on the first surprise.
"use strict";
const http = require("http");
const crypto = require("crypto");
const { Moneyhub } = require("@mft/moneyhub-api-client");

const BASE = process.env.MH_BASE;
const MOCK = "1ffe704d39629a929c8e293880fb449a";
const MODELO = "b74f1a79f0be8bdb857d82d0f041d7d2";
const REDIRECT = "http://127.0.0.1:9999/cb";

function fail(step, msg) {
  throw new Error(`${step}: ${msg}`);
}
function check(step, cond, msg) {
  if (!cond) fail(step, msg || "check failed");
  console.log(`ok - ${step}`);
}
function describe(err) {
  const status = err.response && err.response.statusCode;
  return `status=${status} error=${err.error} error_description=${err.error_description} message=${err.message}`;
}
async function expectError(step, promise, status) {
  try {
    await promise;
  } catch (err) {
    const got = err.response && err.response.statusCode;
    if (got !== status) fail(step, `expected HTTP ${status}, got ${describe(err)}`);
    console.log(`ok - ${step} (HTTP ${status}, code ${err.error})`);
    return err;
  }
  fail(step, `expected HTTP ${status}, but the call succeeded`);
}

// Plays the browser: one GET of the authorisation URL, no redirect following.
function browse(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        const loc = res.headers.location;
        if (res.statusCode < 300 || res.statusCode > 399 || !loc) {
          return reject(new Error(`authorisation answered ${res.statusCode} without a redirect`));
        }
        const u = new URL(loc);
        const params = Object.fromEntries(u.searchParams.entries());
        if (params.error) return reject(new Error(`authorisation error ${params.error}: ${params.error_description}`));
        resolve(params);
      })
      .on("error", reject);
  });
}

// One GET of the authorisation URL, no redirect following: the callback's parameters,
// errors included.
function browseRaw(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        res.resume();
        const loc = res.headers.location;
        if (!loc) return reject(new Error(`authorisation answered ${res.statusCode} without a redirect`));
        resolve(Object.fromEntries(new URL(loc).searchParams.entries()));
      })
      .on("error", reject);
  });
}

// A GET with a bearer token of our own (5.2.1 has no per-call token option).
function getWithToken(url, token) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode, body: JSON.parse(body) });
          } catch (e) {
            reject(new Error(`GET ${url}: HTTP ${res.statusCode}, not JSON`));
          }
        });
      })
      .on("error", reject);
  });
}

async function connectFlow(mh, step, buildUrl, userId) {
  const state = crypto.randomBytes(8).toString("hex");
  const nonce = crypto.randomBytes(8).toString("hex");
  const url = await buildUrl({ state, nonce });
  const cb = await browse(url);
  check(`${step}: callback state`, cb.state === state, `state ${cb.state} != ${state}`);
  check(`${step}: callback iss`, cb.iss === `${BASE}/oidc`, `iss ${cb.iss}`);
  const tokens = await mh.exchangeCodeForTokens({
    paramsFromCallback: { code: cb.code, state: cb.state },
    localParams: { state, nonce, sub: userId },
  });
  const claims = tokens.claims();
  check(`${step}: id_token sub`, claims.sub === userId, `sub ${claims.sub}`);
  check(`${step}: id_token mh:con_id`, typeof claims["mh:con_id"] === "string", JSON.stringify(claims));
  return { url, claims, code: cb.code, state, nonce };
}

async function main() {
  const keys = process.env.MH_KEYS ? JSON.parse(process.env.MH_KEYS) : [];
  const config = {
    identityServiceUrl: BASE,
    resourceServerUrl: `${BASE}/v2.0`,
    options: { timeout: 10000 },
    client: {
      client_id: process.env.MH_CLIENT_ID,
      client_secret: process.env.MH_CLIENT_SECRET || undefined,
      token_endpoint_auth_method: process.env.MH_AUTH_METHOD,
      id_token_signed_response_alg: "RS256",
      request_object_signing_alg: process.env.MH_REQUEST_ALG || "none",
      redirect_uri: REDIRECT,
      response_type: "code",
      keys,
    },
  };
  const mh = await Moneyhub(config);
  console.log(`# ${process.env.MH_AUTH_METHOD} / request objects ${config.client.request_object_signing_alg}`);

  const all = await mh.listConnections();
  check("listConnections", Array.isArray(all) && all.length > 10, `${all && all.length}`);
  const test = await mh.listTestConnections();
  check("listTestConnections", Array.isArray(test) && test.some((b) => b.id === MOCK));

  const user = await mh.registerUser({ clientUserId: `conformance-${Date.now()}` });
  const userId = user.userId;
  check("registerUser", typeof userId === "string" && user.clientUserId.startsWith("conformance-"));
  check("getUser", (await mh.getUser({ userId })).userId === userId);
  const users = await mh.getUsers({ limit: 1 });
  check("getUsers limit", Array.isArray(users.data) && users.data.length === 1);

  // Front-channel request object (getAuthorizeUrlForCreatedUser) ...
  const first = await connectFlow(mh, "connect (request object)", ({ state, nonce }) =>
    mh.getAuthorizeUrlForCreatedUser({ bankId: MOCK, userId, state, nonce }), userId);
  check("request-object URL", first.url.includes("request="));
  const connectionId = first.claims["mh:con_id"];
  check("connection id prefix", connectionId.split(":")[0] === MOCK, connectionId);
  // ... and PAR.
  const second = await connectFlow(mh, "connect (PAR)", ({ state, nonce }) =>
    mh.getPushedAuthorisationRequestUrl({ bankId: MODELO, userId, state, nonce }), userId);
  check("PAR URL", second.url.includes("request_uri="));
  let reused = false;
  try {
    await mh.exchangeCodeForTokens({
      paramsFromCallback: { code: first.code, state: first.state },
      localParams: { state: first.state, nonce: first.nonce, sub: userId },
    });
    reused = true;
  } catch (err) {
    check("code reuse refused", err.error === "invalid_grant", describe(err));
  }
  if (reused) fail("code reuse", "a used code was accepted");

  const conns = await mh.getUserConnections({ userId });
  const mine = conns.data.find((c) => c.id === connectionId);
  check("getUserConnections", mine && mine.status === "ok" && conns.data.length === 2, JSON.stringify(conns.data));

  const sync = await mh.syncUserConnection({ userId, connectionId, customerIpAddress: "203.0.113.7" });
  check("syncUserConnection", sync.data && sync.data.status === "ok", JSON.stringify(sync));
  const syncId = sync.data.syncId;
  const throttled = await expectError("second sync is throttled", mh.syncUserConnection({ userId, connectionId }), 429);
  check("429 body", throttled.error === "TooManyRequests");
  const syncs = await mh.getConnectionSyncs({ userId, connectionId });
  check("getConnectionSyncs", syncs.data.some((s) => s.id === syncId));
  const one = await mh.getSync({ userId, syncId });
  check("getSync", one.data.id === syncId && one.data.connectionId === connectionId);

  const accounts = await mh.getAccounts({ userId });
  check("getAccounts", accounts.data.length >= 7, `${accounts.data.length}`);
  const account = await mh.getAccount({ userId, accountId: accounts.data[0].id });
  check("getAccount", account.data.id === accounts.data[0].id);
  const txs = await mh.getTransactions({ userId, params: { limit: 5 } });
  check("getTransactions limit", txs.data.length === 5 && typeof txs.links.next === "string");
  const page2 = await mh.getTransactions({ userId, params: { limit: 5, offset: 5 } });
  check("getTransactions offset", page2.data.length === 5 && page2.data[0].id !== txs.data[0].id);
  const ids = txs.data.slice(0, 2).map((t) => t.id);
  const unknown = crypto.randomUUID();
  const byIds = await mh.getTransactions({ userId, params: { ids: [...ids, unknown] } });
  check("getTransactions ids", byIds.data.length === 2 && byIds.data.every((t) => ids.includes(t.id)));
  check("missingTransactionIds", JSON.stringify(byIds.meta.missingTransactionIds) === JSON.stringify([unknown]));
  const tooMany = Array.from({ length: 51 }, () => crypto.randomUUID());
  await expectError("51 ids", mh.getTransactions({ userId, params: { ids: tooMany } }), 400);
  const tx = await mh.getTransaction({ userId, transactionId: ids[0] });
  check("getTransaction", tx.data.id === ids[0] && Number.isInteger(tx.data.amount.value));

  // What the official client's own tests expect of Moneyhub (issue 20).
  // A streamed multipart upload to a route the sandbox does not serve reads the 404, not EPIPE.
  await expectError("addFileToTransaction (streamed multipart) reads the 404",
    mh.addFileToTransaction({ userId, transactionId: ids[0], fileData: Buffer.alloc(256 * 1024, 7),
      fileName: "receipt.png" }), 404);
  // `{version: "v2"}` is `/v2`: the same routes; accounts-list without transactionData unless asked.
  const v2 = await Moneyhub({ ...config, resourceServerUrl: `${BASE}/v2` });
  const list = await v2.getAccountsList({ userId });
  check("v2 accounts-list leaves transactionData out", list.data.length >= 2
    && list.data.every((a) => !a.transactionData), JSON.stringify(list.data[0]));
  const listed = await v2.getAccountsList({ userId, params: { showTransactionData: true } });
  check("v2 accounts-list with showTransactionData", listed.data.some((a) => !!a.transactionData));
  // PAR accepts a user the client does not have; /oidc/auth refuses it with the state.
  {
    const url = await mh.getPushedAuthorisationRequestUrl({ bankId: MOCK, userId: "some-user-id",
      state: "unknown-user", nonce: "n" });
    check("PAR for an unknown user gives a request_uri", url.includes("request_uri="), url);
    const cb = await browseRaw(url);
    check("unknown user refused at /oidc/auth", cb.error === "invalid_request" && cb.state === "unknown-user",
      JSON.stringify(cb));
  }
  // Payments are not implemented: refused when the request object is pushed, not a data connection.
  const refused = await expectError("getPaymentAuthorizeUrl refused", mh.getPaymentAuthorizeUrl({ bankId: MOCK,
    payeeId: crypto.randomUUID(), payeeRef: "ref", amount: 1, payerRef: "other-ref", state: "pay", nonce: "n" }), 400);
  check("payment refusal names it", /payment/.test(String(refused.response.body)), String(refused.response.body));

  const expiresAt = new Date(Date.now() + 30 * 86400e3).toISOString();
  const patched = await mh.updateUserConnection({ userId, connectionId, expiresAt });
  check("updateUserConnection", patched === 204, `${patched}`);

  const reauth = await connectFlow(mh, "reauth", ({ state, nonce }) =>
    mh.getReauthAuthorizeUrlForCreatedUser({ userId, connectionId, state, nonce }), userId);
  check("reauth keeps the id", reauth.claims["mh:con_id"] === connectionId);
  const reconsent = await connectFlow(mh, "reconsent", ({ state, nonce }) =>
    mh.getReconsentAuthorizeUrlForCreatedUser({ userId, connectionId, state, nonce,
      expiresAt: new Date(Date.now() + 60 * 86400e3).toISOString() }), userId);
  check("reconsent keeps the id", reconsent.claims["mh:con_id"] === connectionId);

  // A transaction of the connection about to be deleted.
  const ownAccounts = accounts.data.filter((a) => a.connectionId === connectionId).map((a) => a.id);
  const own = await mh.getTransactions({ userId, params: { accountId: ownAccounts[0], limit: 1 } });
  check("a transaction of the connection", own.data.length === 1 && own.data[0].accountId === ownAccounts[0]);
  const deleted = await mh.deleteUserConnection({ userId, connectionId });
  check("deleteUserConnection", deleted === 204, `${deleted}`);
  const after = await mh.getUserConnections({ userId });
  check("connection gone", after.data.every((c) => c.id !== connectionId));
  await expectError("its transactions are gone", mh.getTransaction({ userId, transactionId: own.data[0].id }), 404);
  await expectError("its accounts are gone", mh.getAccount({ userId, accountId: ownAccounts[0] }), 404);

  check("deleteUser", (await mh.deleteUser({ userId })) === 204);
  await expectError("user gone", mh.getUser({ userId }), 404);
  // One-time access: getAuthorizeUrl without a sub value, exchangeCodeForTokens without sub,
  // then a data read with the exchange's access token.
  {
    const state = crypto.randomBytes(8).toString("hex");
    const nonce = crypto.randomBytes(8).toString("hex");
    const url = await mh.getAuthorizeUrl({
      state,
      nonce,
      scope: `openid id:${MOCK} accounts:read transactions:read:all`,
    });
    const cb = await browse(url);
    check("one-time: callback state", cb.state === state, `${cb.state}`);
    const tokens = await mh.exchangeCodeForTokens({
      paramsFromCallback: { code: cb.code, state: cb.state },
      localParams: { state, nonce },
    });
    const claims = tokens.claims();
    check("one-time: id_token names the user consent made", /^[0-9a-f]{24}$/.test(claims.sub), JSON.stringify(claims));
    check("one-time: mh:con_id", claims["mh:con_id"].split(":")[0] === MOCK);
    const made = await mh.getUser({ userId: claims.sub });
    check("one-time: managedBy user", made.managedBy === "user", JSON.stringify(made));
    const read = await getWithToken(`${BASE}/v2.0/transactions?limit=3`, tokens.access_token);
    check("one-time: data read with the exchange token", read.status === 200 && read.body.data.length === 3,
      JSON.stringify(read));
    const acc = await getWithToken(`${BASE}/v2.0/accounts`, tokens.access_token);
    check("one-time: accounts with the exchange token", acc.status === 200 && acc.body.data.length > 0);
  }

  // The Auth Requests API: create, consent, complete, read back; a replay is refused.
  {
    const arUser = (await mh.registerUser({ clientUserId: `conformance-ar-${Date.now()}` })).userId;
    const created = await mh.createAuthRequest({ redirectUri: REDIRECT, userId: arUser, scope: `openid ${MOCK}` });
    const ar = created.data;
    check("createAuthRequest", ar.status === "pending" && typeof ar.redirectParams.authUrl === "string"
      && ar.bankId === MOCK, JSON.stringify(created));
    const cb = await browse(ar.redirectParams.authUrl);
    check("auth request: callback state", cb.state === ar.redirectParams.state);
    const done = await mh.completeAuthRequest({ id: ar.id, authParams: { code: cb.code, state: cb.state } });
    check("completeAuthRequest", done.data.status === "complete" && done.data.connectionId.split(":")[0] === MOCK,
      JSON.stringify(done));
    const got = await mh.getAuthRequest({ id: ar.id });
    check("getAuthRequest", got.data.status === "complete" && got.data.connectionId === done.data.connectionId);
    const list = await mh.getAllAuthRequests({ limit: 100 });
    check("getAllAuthRequests", list.data.some((r) => r.id === ar.id));
    const arConns = await mh.getUserConnections({ userId: arUser });
    check("auth request made the connection", arConns.data.some((c) => c.id === done.data.connectionId));
    await expectError("completeAuthRequest replay",
      mh.completeAuthRequest({ id: ar.id, authParams: { code: cb.code, state: cb.state } }), 400);
    await expectError("getAuthRequest unknown", mh.getAuthRequest({ id: crypto.randomUUID() }), 404);
    // A reconsent through an auth request.
    const renew = await mh.createAuthRequest({ redirectUri: REDIRECT, userId: arUser, scope: "openid reconsent",
      connectionId: done.data.connectionId });
    const cb2 = await browse(renew.data.redirectParams.authUrl);
    const renewed = await mh.completeAuthRequest({ id: renew.data.id, authParams: { code: cb2.code, state: cb2.state } });
    check("reconsent through an auth request", renewed.data.status === "complete"
      && renewed.data.connectionId === done.data.connectionId, JSON.stringify(renewed));
  }
  console.log("CONFORMANCE PASSED");
}

main().catch((err) => {
  console.error(`not ok - ${err.message}`);
  if (err.response) console.error(describe(err));
  process.exit(1);
});
